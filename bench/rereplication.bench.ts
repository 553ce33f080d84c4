// The re-replication benchmark (docs/benchmarks.md, "Re-replication"): how long placement takes to
// re-create a killed node's groups elsewhere for a given data size, and the write latency while it
// does, against the same load without it, in the same run.
//
// Five dram processes with --kv-groups 8 (placement on: 8 groups x 3 replicas spread over five
// nodes), a short grace period (`graceMs`, set through PUT /v1/placement/settings); `keys` values of
// `valueBytes` written first (pseudo-random, so LevelDB's compression does not shrink them). Then, with `clients` closed-loop writers through the live nodes in
// turn: `seconds` of load with every node up (the baseline), then one node (neither node 1 nor the
// meta leader) is SIGKILLed and the same load runs while its groups are re-created; the time from
// the kill until GET /v1/placement shows every group back at three voters, none on the killed
// node, and no move in progress, polled every pollMs. Before it times anything it checks its
// results: the moves in the history replaced exactly the killed node's groups, and every write
// either load acknowledged reads back (and a sample of the data keys).
//
// Called by: bench/run.ts (`--rereplication`).

import { performance } from 'node:perf_hooks';
import { call, DramCluster, DramRoundRobinClient } from './cluster-dram.ts';
import { round, runLoad, until, valueOf, type LoadResult } from './cluster-load.ts';

const groupCount = 8;
const factor = 3;
const nodeCount = 5;
const pollMs = 200;
const placedTimeoutMs = 180_000;
const reReplicationTimeoutMs = 15 * 60_000;
const dataWritersMax = 32;
const dataSampleKeys = 500;
const writeTimeoutMs = 5000;

export interface ReReplicationOptions {
  readonly keys: number;
  readonly valueBytes: number;
  readonly seconds: number;
  readonly graceMs: number;
  readonly clients: number;
  readonly log: (line: string) => void;
}

export interface ReReplicationReport {
  readonly nodes: number;
  readonly groups: number;
  readonly factor: number;
  readonly keys: number;
  readonly valueBytes: number;
  /** keys x valueBytes: the data written before the kill (values only). */
  readonly dataBytes: number;
  readonly graceMs: number;
  readonly victim: number;
  /** The killed node's groups, each re-created elsewhere. */
  readonly groupsMoved: number;
  /** Their share of the data (dataBytes x groupsMoved / groups): what had to be copied. */
  readonly bytesMovedApprox: number;
  /** From the kill until every group is back at three voters elsewhere, no move in progress. */
  readonly reReplicationMs: number;
  /** The same, less the grace period (the moves themselves). */
  readonly afterGraceMs: number;
  readonly writes: { readonly without: LoadResult; readonly during: LoadResult };
  readonly p99Ratio: number;
  /** The load window covered the whole re-replication (else the "during" figures cover its start). */
  readonly loadCoveredReReplication: boolean;
  readonly dataKeysVerified: number;
}

interface PlacementAnswer {
  factor: number | null;
  groups: {
    group: number;
    replicas: number[];
    voters: number[] | null;
    learners: number[] | null;
    state: string | null;
  }[];
  moves: unknown[];
  history: { group: number; remove: number | null; outcome: string }[];
}

async function placementOf(cluster: DramCluster, node: number): Promise<PlacementAnswer> {
  const answer = await call(cluster.agent, cluster.httpPort(node), 'GET', '/v1/placement', undefined, 5000);
  if (answer.status !== 200) throw new Error(`GET /v1/placement on node ${node}: ${answer.status}`);
  return JSON.parse(answer.body.toString('utf8')) as PlacementAnswer;
}

/** Every group at the factor on `nodes` (per its leader's report), no learner, no move in progress. */
function settled(answer: PlacementAnswer, nodes: readonly number[]): boolean {
  return (
    answer.factor === factor &&
    answer.groups.length === groupCount &&
    answer.moves.length === 0 &&
    answer.groups.every(
      (group) =>
        group.voters?.length === factor &&
        group.learners?.length === 0 &&
        group.voters.every((node) => nodes.includes(node)),
    )
  );
}

/** Node 1's placement once it is settled on `nodes`, polled until `timeoutMs`. */
function untilSettled(
  cluster: DramCluster,
  nodes: readonly number[],
  what: string,
  timeoutMs: number,
): Promise<PlacementAnswer> {
  return until(
    what,
    async () => {
      const answer = await placementOf(cluster, 1);
      return settled(answer, nodes) ? answer : undefined;
    },
    timeoutMs,
    pollMs,
  );
}

async function writeData(cluster: DramCluster, options: ReReplicationOptions): Promise<void> {
  const target = new DramRoundRobinClient(cluster);
  let next = 0;
  const writer = async (): Promise<void> => {
    for (let k = next++; k < options.keys; k = next++) {
      const value = valueOf(k, options.valueBytes);
      let done = false;
      for (let attempt = 0; attempt < 5 && !done; attempt++)
        done = (await target.write(`data-${k}`, value, writeTimeoutMs)).ok;
      if (!done) throw new Error(`writing data-${k} failed five times`);
    }
  };
  await Promise.all(Array.from({ length: dataWritersMax }, writer));
}

async function verifyData(
  cluster: DramCluster,
  live: readonly number[],
  options: ReReplicationOptions,
): Promise<number> {
  const target = new DramRoundRobinClient(cluster, () => live);
  const step = Math.max(1, Math.floor(options.keys / dataSampleKeys));
  let verified = 0;
  for (let k = 0; k < options.keys; k += step) {
    const value = await target.read(`data-${k}`);
    const expected = valueOf(k, options.valueBytes);
    if (value === undefined || Buffer.compare(Buffer.from(value), Buffer.from(expected)) !== 0)
      throw new Error(`data-${k} does not read back after re-replication`);
    verified++;
  }
  return verified;
}

function loadOf(cluster: DramCluster, live: readonly number[], options: ReReplicationOptions, tag: string) {
  return runLoad(new DramRoundRobinClient(cluster, () => live), {
    clients: options.clients,
    keysOf: (client) => Array.from({ length: 16 }, (_, j) => `${tag}-${client}-${j}`),
    warmupMs: 1000,
    durationMs: options.seconds * 1000,
    timeoutMs: writeTimeoutMs,
  });
}

/** Waits until every group is at three replicas on the five nodes, then sets the node-gone grace: the placement then. */
async function placedWithGrace(cluster: DramCluster, graceMs: number): Promise<PlacementAnswer> {
  const placed = await untilSettled(cluster, cluster.ids, 'five nodes, every group at three replicas', placedTimeoutMs);
  const settings = await call(
    cluster.agent,
    cluster.httpPort(1),
    'PUT',
    '/v1/placement/settings',
    Buffer.from(JSON.stringify({ nodeGoneGraceMs: graceMs })),
    5000,
    'application/json',
  );
  if (settings.status !== 200) throw new Error(`PUT /v1/placement/settings: ${settings.status}`);
  return placed;
}

export async function runReReplicationBench(options: ReReplicationOptions): Promise<ReReplicationReport> {
  const cluster = new DramCluster(groupCount, undefined, [], nodeCount);
  try {
    cluster.startAll();
    const placed = await placedWithGrace(cluster, options.graceMs);
    options.log(`rereplication: writing ${options.keys} keys of ${options.valueBytes} bytes`);
    await writeData(cluster, options);
    options.log(`rereplication: ${options.seconds} s of load with every node up`);
    const without = await loadOf(cluster, cluster.ids, options, 'base');
    const metaLeader = (await cluster.status(1)).find((row) => row.group === 0)?.leader ?? 0;
    const victim = [...cluster.ids].reverse().find((id) => id !== 1 && id !== metaLeader) ?? nodeCount;
    const held = placed.groups.filter((group) => group.voters?.includes(victim)).map((group) => group.group);
    const live = cluster.ids.filter((id) => id !== victim);
    options.log(`rereplication: killing node ${victim} (groups ${held.join(',')}) under the same load`);
    const killedAt = performance.now();
    await cluster.kill(victim, 'SIGKILL');
    const during = loadOf(cluster, live, options, 'during');
    const after = await untilSettled(
      cluster,
      live,
      `the groups of node ${victim} re-created elsewhere`,
      reReplicationTimeoutMs,
    );
    const reReplicationMs = performance.now() - killedAt;
    const duringLoad = await during;
    const moved = after.history.filter((move) => move.remove === victim && move.outcome === 'finished');
    const movedGroups = [...new Set(moved.map((move) => move.group))].sort((a, b) => a - b);
    if (movedGroups.join(',') !== [...held].sort((a, b) => a - b).join(','))
      throw new Error(`moved groups ${movedGroups.join(',')} are not node ${victim}'s ${held.join(',')}`);
    if (without.verified === 0 || duringLoad.verified === 0) throw new Error('a load verified no write');
    const dataKeysVerified = await verifyData(cluster, live, options);
    const dataBytes = options.keys * options.valueBytes;
    return {
      nodes: nodeCount,
      groups: groupCount,
      factor,
      keys: options.keys,
      valueBytes: options.valueBytes,
      dataBytes,
      graceMs: options.graceMs,
      victim,
      groupsMoved: held.length,
      bytesMovedApprox: Math.round((dataBytes * held.length) / groupCount),
      reReplicationMs: Math.round(reReplicationMs),
      afterGraceMs: Math.round(reReplicationMs - options.graceMs),
      writes: { without, during: duringLoad },
      p99Ratio: round(duringLoad.p99Ms / without.p99Ms),
      loadCoveredReReplication: reReplicationMs <= 1000 + options.seconds * 1000,
      dataKeysVerified,
    };
  } catch (error) {
    for (const id of cluster.ids) options.log(`--- node ${id} log tail ---\n${cluster.logTail(id, 1500)}`);
    throw error;
  } finally {
    await cluster.stopAll();
  }
}
