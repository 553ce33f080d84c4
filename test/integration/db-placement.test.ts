// Placement of database shard groups on real processes (docs/placement.md, docs/databases.md): a
// real S3 server (s3rver, test/support/sample-s3.ts) holding a generated three-shard database and four nodes (kv groups at
// three copies, so placement is on). The database has two copies per shard. A node holding a shard
// is killed for longer than the grace period: every shard comes back to two copies, both `loaded`
// on live nodes (a two-copy shard group that lost one copy has no quorum, so it is founded again on
// its live copy, then a move adds a node that downloads the shard), and a query over every shard
// answers exactly what it answered before, from every live node. (The killed node is not brought
// back: once none of its replicas is left, the meta group removes it from the cluster, and a removed
// node id is refused for good; the drain of a returning node is in the planner's transcripts.)
// Every wait is a bounded poll.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleS3, type SampleS3 } from '../support/sample-s3.ts';
import { eventually, processCluster, type ProcessCluster } from './cluster-process.ts';
import { addShop, json, kvGroupsLed, stopDbCluster } from './db-cluster.ts';

const endpointsDir = fileURLToPath(new URL('../../examples/endpoints', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'dram-db-placement-it-'));
let s3: SampleS3;
let cluster: ProcessCluster;

interface Shard {
  shard: string;
  group: number | null;
  leader: number;
  members: { node: number; state: string; role: string | null }[];
}

/**
 * The shards once each has exactly two copies, both loaded, on `nodes`, with a PRIMARY among
 * them (undefined before).
 */
async function twoLoadedCopies(node: number, nodes: readonly number[]): Promise<Shard[] | undefined> {
  const answer = await json(`${cluster.url(node)}/v1/databases/shop/shards`);
  if (answer.status !== 200) return undefined;
  const shards = (answer.body as { shards: Shard[] }).shards;
  const settled = shards.every(
    (shard) =>
      shard.members.length === 2 &&
      shard.members.every((member) => nodes.includes(member.node) && member.state === 'loaded') &&
      shard.members.some((member) => member.role === 'PRIMARY'),
  );
  return shards.length === 3 && settled ? shards : undefined;
}

/** The count query's answer from node `id`, retried while it answers 503 (a shard between leaders or loads). */
async function count(id: number): Promise<unknown> {
  return eventually(async () => {
    const answer = await json(`${cluster.url(id)}/v1/databases/shop/query/count`, 'POST', {});
    return answer.status === 200 ? (answer.body as { result: unknown }).result : undefined;
  }, 200);
}

beforeAll(async () => {
  s3 = await startSampleS3(root, 3);
  const clusterId = `db-placement-it-${process.pid}-${Date.now()}`;
  cluster = processCluster(4, {
    args: [...s3.nodeArgs, '--endpoints', endpointsDir, '--cluster-id', clusterId],
  });
  await kvGroupsLed(cluster, 4);
}, 240_000);

afterAll(() => stopDbCluster(cluster, s3, root));

describe('database shard groups under placement', () => {
  it('a node holding shards, killed past the grace period: every shard back at two loaded copies, queries exact', async () => {
    await addShop(cluster, s3.source, 2, 3000);
    const before = await eventually(() => twoLoadedCopies(1, cluster.ids), 600);
    const expected = await count(1);
    expect(expected).toMatchObject({ count: 1500 });

    // The victim: a node holding a shard that does not lead the meta group (a meta election on top
    // would only slow the test down).
    const status = (await json(`${cluster.url(1)}/v1/status`)).body as { groups: { group: number; leader: number }[] };
    const metaLeader = status.groups.find((group) => group.group === 0)?.leader ?? 0;
    const holders = [...new Set(before.flatMap((shard) => shard.members.map((member) => member.node)))];
    const victim = holders.find((node) => node !== metaLeader) ?? 0;
    expect(victim).toBeGreaterThan(0);
    await cluster.kill(victim);
    const live = cluster.ids.filter((id) => id !== victim);

    const after = await eventually(() => twoLoadedCopies(live[0] ?? 1, live), 900, 200);
    for (const shard of after) {
      expect(shard.members.map((member) => member.node)).not.toContain(victim);
      // A shard the victim held lost its group's quorum (one of two copies): it has a new group.
      const was = before.find((entry) => entry.shard === shard.shard);
      if (was?.members.some((member) => member.node === victim) === true) expect(shard.group).not.toBe(was.group);
    }
    for (const id of live) expect(await count(id)).toEqual(expected);
  }, 300_000);
});
