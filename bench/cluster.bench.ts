// The cluster benchmark (`npm run -s bench -- --cluster`): a three-node dram cluster of real
// processes (fresh temp data dirs, fsync on, 8 KV groups) and, in the same run, the etcd 3.4
// anchor (three members from shared/tools/etcd-cluster.sh with dram's 50/250 ms heartbeat and
// election timeout), driven from this process at the same concurrency with 256-byte values:
//
//   ceiling   64 keep-alive HTTP clients against one no-op fastify server (the HTTP ceiling here)
//   floor     one synced LevelDB batch + two loopback round trips (bench/cluster-floor.ts)
//   seq       one client, sequential writes: p50, p99
//   shard     64 clients, keys of one shard (dram kv group 1): writes/s, p50, p99
//   all       256 clients, keys over every shard (dram: 8 groups, leaders spread 3/3/2): same figures
//   aseq      the seq phase with a plain client spreading requests over the three nodes (dram: HTTP
//             round robin, no leader hints; etcd: the etcd3 client over all three endpoints, each
//             call to a member picked at random): two requests in three land on a follower
//   ashard    the shard phase with that any-node client
//   read      64 clients reading the one shard's keys linearizably, sent to the leader only, then
//             spread over every node (dram: a follower asks the leader for a read index through
//             Raft and serves the value itself), then the two again (alternating)
//   bseq      dram only: the seq phase over the binary client protocol
//   bshard    dram only: the shard phase over the binary client protocol (one DramClient from
//             src/client, its 64 logical clients as concurrent loops over one connection per node)
//   ball      dram only: the all phase (256 logical clients) over the binary client protocol
//   transfer  admin leadership transfer while one client writes: longest gap between successes
//   failover  SIGKILL of the written shard's leader: time to the first successful write started
//             after the kill (writes retried after 1 ms, 50 ms per-request timeout); then the member
//             is restarted and the next run waits until all three are healthy and caught up
//
// The systems run one after the other (dram stopped before etcd starts): on two cores an idle
// cluster still costs CPU. Before anything is timed a few writes are read back; every timed phase
// reads back the last value of its keys. Every loop is bounded in count and time, and every
// process (dram and etcd) is stopped at the end, on error and on SIGINT/SIGTERM.
//
// The etcd client talks to the leader's endpoint for seq/shard/all (its best case; dram's client
// also goes straight to the leader) and to all three endpoints for transfer/failover (it must
// survive the leader's loss). Its retry and circuit-breaker policies are off (see cluster-etcd.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { asGroupId } from '../src/base/ids.ts';
import { call, DramBinaryTarget, DramClient, DramCluster, DramRoundRobinClient } from './cluster-dram.ts';
import { EtcdCluster, etcdEndpoints, EtcdTarget } from './cluster-etcd.ts';
import {
  BackgroundWriter,
  longestGap,
  makeValue,
  median,
  round,
  runLoad,
  runReadLoad,
  runSequential,
  until,
  verifyReadBack,
  type LoadResult,
  type SequentialResult,
  type WriteOutcome,
  type WriteSpan,
  type WriteTarget,
} from './cluster-load.ts';
import { measureFloor, type FloorResult } from './cluster-floor.ts';

export const clusterPhases = [
  'ceiling',
  'floor',
  'seq',
  'shard',
  'all',
  'aseq',
  'ashard',
  'read',
  'bseq',
  'bshard',
  'ball',
  'transfer',
  'failover',
] as const;
export type ClusterPhase = (typeof clusterPhases)[number];
export const clusterSystems = ['dram', 'etcd'] as const;
export type ClusterSystem = (typeof clusterSystems)[number];

export interface ClusterBenchOptions {
  /** Measuring time of each load phase (after 1 s of warm-up). */
  readonly seconds: number;
  readonly phases: ReadonlySet<ClusterPhase>;
  readonly systems: ReadonlySet<ClusterSystem>;
  /** Start every dram node under `node --cpu-prof`, node N's profiles in `DIR/nN` (node 1 leads the one-shard phase). */
  readonly cpuProfDir: string | undefined;
  readonly log: (line: string) => void;
}

export const clusterSettings = {
  nodes: 3,
  kvGroups: 8,
  valueBytes: 256,
  heartbeatMs: 50,
  electionMs: 250,
  sequential: { warmup: 200, count: 2000, timeoutMs: 5000, deadlineMs: 60_000 },
  shardClients: 64,
  allClients: 256,
  keysPerClient: 4,
  warmupMs: 1000,
  loadTimeoutMs: 5000,
  faultRuns: 5,
  faultRequestTimeoutMs: 50,
  pauseAfterErrorMs: 1,
  steadyMs: 400,
  afterTransferMs: 800,
  failoverWaitMs: 10_000,
} as const;

export const clusterTargets = {
  sequentialP50Ms: 0.8,
  httpShareOfCeiling: 0.7,
  oneShardWritesPerSecond: 25_000,
  oneShardP99Ms: 20,
  allShardsWritesPerSecond: 60_000,
  failoverMedianMs: 300,
  failoverMedianMsDesignTable: 400,
  transferGapMs: 50,
  anyNodeSequentialP50OfEtcd: 0.75,
  anyNodeWritesOfEtcd: 2.5,
  readsAnyOverLeader: 1.5,
} as const;

/** What the phases need from a system under test. */
interface System {
  readonly name: ClusterSystem;
  /** The client of the seq / shard / all phases. */
  readonly client: WriteTarget;
  /** The binary-protocol client of the bshard / ball phases (dram only). */
  readonly binaryClient?: WriteTarget & { close(): void };
  /** The client of the transfer / failover writer. */
  readonly faultClient: WriteTarget;
  /** The plain client of the aseq / ashard phases and the spread reads: requests to any node. */
  readonly anyClient: WriteTarget;
  /** Keys of one shard, `shardClients * keysPerClient` of them. */
  readonly shardKeys: readonly string[];
  allKeys(client: number): readonly string[];
  pids(): Map<string, number>;
  waitHealthy(): Promise<void>;
  /** The leader of the shard the fault phases write to. */
  leader(): Promise<string>;
  /** Asks the leader to hand over to the next member; resolves when the request is answered. */
  transfer(): Promise<{ readonly from: string; readonly to: string }>;
  /** Finds the written shard's leader; `kill` sends SIGKILL to it. */
  prepareKill(): Promise<{ readonly victim: string; readonly kill: () => void }>;
  restart(victim: string): Promise<void>;
  /** Per node counters (dram: from /metrics), read before and after each load phase. */
  readonly counters?: () => Promise<Record<string, Record<string, number>>>;
}

export interface HostActivity {
  readonly turnsPerSecond: number;
  readonly meanTurnMs: number;
  readonly syncWritesPerSecond: number;
  readonly meanSyncWriteMs: number;
  readonly unsyncedWritesPerSecond: number;
  readonly meanUnsyncedWriteMs: number;
  readonly writesAppliedPerTurn: number;
  readonly peerSentMBps: number;
}

export interface TransferRun {
  readonly from: string;
  readonly to: string;
  readonly leaderAfter: string;
  readonly gapMs: number;
  readonly writes: number;
  readonly errors: Record<string, number>;
}

export interface FailoverRun {
  readonly victim: string;
  readonly leaderAfter: string;
  readonly firstWriteMs: number;
  readonly errors: Record<string, number>;
}

export interface PhaseCost {
  readonly cpuPercent: Record<string, number>;
  readonly hosts?: Record<string, HostActivity>;
}
export type PhaseLoad = LoadResult & PhaseCost;

export interface SystemReport {
  version?: string;
  leaders?: Record<string, string>;
  precheck?: { readonly verified: number };
  sequential?: SequentialResult & PhaseCost;
  oneShard?: PhaseLoad;
  allShards?: PhaseLoad;
  /** The seq / shard phases with requests spread over every node (two in three to a follower). */
  sequentialAny?: SequentialResult & PhaseCost;
  oneShardAny?: PhaseLoad;
  /** 64 clients, linearizable reads of one shard: to its leader only, and spread over every node (two runs each, alternating). */
  readsLeader?: readonly PhaseLoad[];
  readsAny?: readonly PhaseLoad[];
  /** The seq / shard / all phases over the binary client protocol (dram only). */
  sequentialBinary?: SequentialResult & PhaseCost;
  oneShardBinary?: PhaseLoad;
  allShardsBinary?: PhaseLoad;
  transfer?: { readonly runs: readonly TransferRun[]; readonly maxGapMs: number; readonly medianGapMs: number };
  failover?: { readonly runs: readonly FailoverRun[]; readonly medianMs: number; readonly maxMs: number };
}

export interface ClusterReport {
  readonly settings: typeof clusterSettings;
  /** DAMON monitors on this machine and their sampling interval: they stall every process for 5-35 ms each sample (docs/benchmarks.md). */
  readonly damon: readonly {
    readonly kdamond: string;
    readonly state: string;
    readonly sampleMs: number | undefined;
  }[];
  /** 1-minute load average when the cluster benchmark started and ended (other work on the machine shows here). */
  readonly loadAverage: { readonly atStart: number; readonly atEnd: number };
  readonly ceiling?: LoadResult;
  /** One synced LevelDB batch + two loopback round trips (bench/cluster-floor.ts). */
  readonly floor?: FloorResult;
  readonly dram?: SystemReport;
  readonly etcd?: SystemReport;
  readonly ratios: Record<string, number>;
  readonly targets: readonly {
    readonly figure: string;
    readonly target: string;
    readonly dram: number | undefined;
    readonly etcd: number | undefined;
    readonly met: boolean | undefined;
  }[];
}

// ---------------------------------------------------------------------------------------------
// CPU accounting: % of one core used by each process over a phase (from /proc/<pid>/stat).

const clockTicksPerSecond = 100;

export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  } catch {
    return undefined;
  }
}

/** CPU seconds of the whole machine, all cores, from the first line of /proc/stat. */
function machineCpuSeconds():
  | { readonly task: number; readonly interrupts: number; readonly steal: number }
  | undefined {
  try {
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = (
      readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
    )
      .trim()
      .split(/\s+/u)
      .slice(1, 9)
      .map(Number);
    return {
      task: (user + nice + system) / clockTicksPerSecond,
      interrupts: (irq + softirq) / clockTicksPerSecond,
      steal: steal / clockTicksPerSecond,
    };
  } catch {
    return undefined;
  }
}

/**
 * Runs `work` and reports the CPU each process used, in % of one core: `bench` (this process,
 * the load generator), each node, `others`: whatever other processes ran meanwhile (kernel
 * threads, other people's work: a large figure means the run was disturbed), `interrupts`
 * (irq + softirq time of the machine, mostly the loopback traffic of this benchmark) and `steal`
 * (time the hypervisor gave the vCPUs to someone else).
 */
async function withCpu<T>(
  pids: ReadonlyMap<string, number>,
  work: () => Promise<T>,
): Promise<{ result: T; cpuPercent: Record<string, number> }> {
  const before = new Map([...pids].map(([name, pid]) => [name, cpuSecondsOf(pid)] as const));
  const machineBefore = machineCpuSeconds();
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const self = process.cpuUsage(selfBefore);
  const machineAfter = machineCpuSeconds();
  const cpuPercent: Record<string, number> = { bench: round(((self.user + self.system) / 1e6 / seconds) * 100, 1) };
  let ours = (self.user + self.system) / 1e6;
  for (const [name, pid] of pids) {
    const was = before.get(name);
    const now = cpuSecondsOf(pid);
    if (was !== undefined && now !== undefined) {
      cpuPercent[name] = round(((now - was) / seconds) * 100, 1);
      ours += now - was;
    }
  }
  if (machineBefore !== undefined && machineAfter !== undefined) {
    cpuPercent['others'] = round(Math.max(0, (machineAfter.task - machineBefore.task - ours) / seconds) * 100, 1);
    cpuPercent['interrupts'] = round(((machineAfter.interrupts - machineBefore.interrupts) / seconds) * 100, 1);
    cpuPercent['steal'] = round(((machineAfter.steal - machineBefore.steal) / seconds) * 100, 1);
  }
  return { result, cpuPercent };
}

// ---------------------------------------------------------------------------------------------
// Phases, the same code for both systems.

async function precheck(system: System): Promise<{ verified: number }> {
  const written = new Map<string, Uint8Array>();
  for (let k = 0; k < 16; k++) {
    const key = system.allKeys(k)[0] ?? `p${k}`;
    const value = makeValue(`${system.name}-pre`, k, 0);
    const outcome: WriteOutcome = await system.client.write(key, value, 5000);
    if (!outcome.ok) throw new Error(`${system.name}: precheck write of ${key} failed: ${outcome.error}`);
    written.set(key, value);
  }
  return { verified: await verifyReadBack(system.client, written) };
}

async function transferRuns(
  system: System,
  log: (line: string) => void,
): Promise<NonNullable<SystemReport['transfer']>> {
  const s = clusterSettings;
  const runs: TransferRun[] = [];
  for (let run = 0; run < s.faultRuns; run++) {
    await system.waitHealthy();
    const writer = new BackgroundWriter(system.faultClient, system.shardKeys[0] ?? 'k', {
      timeoutMs: s.faultRequestTimeoutMs,
      maxMs: 10_000,
      pauseAfterErrorMs: s.pauseAfterErrorMs,
    });
    try {
      await sleep(s.steadyMs);
      if (writer.successes.length === 0)
        throw new Error(`${system.name}: transfer run ${run + 1}: no write succeeded before the transfer`);
      const issuedMs = performance.now();
      const { from, to } = await system.transfer();
      await sleep(s.afterTransferMs);
      await writer.stop();
      const endMs = performance.now();
      const lastEnd = writer.successes.at(-1)?.endedMs ?? issuedMs;
      const gapMs = Math.max(longestGap(writer.successes, issuedMs, endMs), endMs - Math.max(lastEnd, issuedMs));
      const leaderAfter = await system.leader();
      const last = writer.lastKnown();
      if (last !== undefined) await verifyReadBack(system.faultClient, new Map([[last.key, last.value]]));
      const record: TransferRun = {
        from,
        to,
        leaderAfter,
        gapMs: round(gapMs),
        writes: writer.successes.length,
        errors: { ...writer.errorKinds },
      };
      runs.push(record);
      log(
        `  ${system.name} transfer ${run + 1}: ${from} -> ${to} (leader now ${leaderAfter}), longest gap ${record.gapMs} ms, errors ${JSON.stringify(record.errors)}; ${describeGap(writer, issuedMs)}`,
      );
      if (leaderAfter !== to)
        throw new Error(
          `${system.name}: transfer run ${run + 1}: leadership did not move to ${to} (leader is ${leaderAfter})`,
        );
    } finally {
      await writer.stop();
    }
  }
  const gaps = runs.map((run) => run.gapMs);
  return { runs, maxGapMs: Math.max(...gaps), medianGapMs: round(median(gaps)) };
}

/** What the writer saw from the transfer request on, in ms after it: each failed write (start-end error) and the slowest success. */
function describeGap(writer: BackgroundWriter, issuedMs: number): string {
  const at = (ms: number): string => (ms - issuedMs).toFixed(1);
  const failed = writer.failures
    .filter((span) => span.endedMs >= issuedMs)
    .map((span) => `${at(span.startedMs)}-${at(span.endedMs)} ${span.error}`);
  const slowest = writer.successes
    .filter((span) => span.endedMs >= issuedMs)
    .reduce<
      WriteSpan | undefined
    >((worst, span) => (worst === undefined || span.endedMs - span.startedMs > worst.endedMs - worst.startedMs ? span : worst), undefined);
  return `failed writes [${failed.join(', ')}], slowest success ${slowest === undefined ? 'none' : `${at(slowest.startedMs)}-${at(slowest.endedMs)}`}`;
}

async function failoverRuns(
  system: System,
  log: (line: string) => void,
): Promise<NonNullable<SystemReport['failover']>> {
  const s = clusterSettings;
  const runs: FailoverRun[] = [];
  for (let run = 0; run < s.faultRuns; run++) {
    await system.waitHealthy();
    const { victim, kill } = await system.prepareKill();
    const writer = new BackgroundWriter(system.faultClient, system.shardKeys[0] ?? 'k', {
      timeoutMs: s.faultRequestTimeoutMs,
      maxMs: 20_000,
      pauseAfterErrorMs: s.pauseAfterErrorMs,
    });
    let firstWriteMs: number;
    try {
      await sleep(s.steadyMs);
      if (writer.successes.length === 0)
        throw new Error(`${system.name}: failover run ${run + 1}: no write succeeded before the kill`);
      const killedMs = performance.now();
      kill();
      const first = await until(
        'the first successful write after the kill',
        () => Promise.resolve(writer.firstSuccessStartedAfter(killedMs)),
        s.failoverWaitMs,
        2,
      );
      firstWriteMs = first.endedMs - killedMs;
    } finally {
      await writer.stop();
    }
    const leaderAfter = await system.leader();
    const last = writer.lastKnown();
    if (last !== undefined) await verifyReadBack(system.faultClient, new Map([[last.key, last.value]]));
    const record: FailoverRun = {
      victim,
      leaderAfter,
      firstWriteMs: round(firstWriteMs),
      errors: { ...writer.errorKinds },
    };
    runs.push(record);
    log(
      `  ${system.name} failover ${run + 1}: killed ${victim}, new leader ${leaderAfter}, first write after ${record.firstWriteMs} ms, errors ${JSON.stringify(record.errors)}`,
    );
    await system.restart(victim);
  }
  await system.waitHealthy();
  const times = runs.map((run) => run.firstWriteMs);
  return { runs, medianMs: round(median(times)), maxMs: Math.max(...times) };
}

/** A phase with CPU accounting and, for dram, what each host did per second. */
async function measured<R extends object>(system: System, work: () => Promise<R>): Promise<R & PhaseCost> {
  const before = await system.counters?.();
  const started = performance.now();
  const { result, cpuPercent } = await withCpu(system.pids(), work);
  const seconds = (performance.now() - started) / 1000;
  const after = await system.counters?.();
  if (before === undefined || after === undefined) return { ...result, cpuPercent };
  const hosts: Record<string, HostActivity> = {};
  for (const [node, now] of Object.entries(after)) {
    const was = before[node] ?? {};
    const delta = (name: string): number => (now[name] ?? 0) - (was[name] ?? 0);
    const turns = delta('turns');
    const syncWrites = delta('syncWrites');
    const plainWrites = delta('plainWrites');
    hosts[node] = {
      turnsPerSecond: Math.round(turns / seconds),
      meanTurnMs: round(turns === 0 ? 0 : (delta('turnSeconds') / turns) * 1000, 3),
      syncWritesPerSecond: Math.round(syncWrites / seconds),
      meanSyncWriteMs: round(syncWrites === 0 ? 0 : (delta('syncWriteSeconds') / syncWrites) * 1000, 3),
      unsyncedWritesPerSecond: Math.round(plainWrites / seconds),
      meanUnsyncedWriteMs: round(plainWrites === 0 ? 0 : (delta('plainWriteSeconds') / plainWrites) * 1000, 3),
      writesAppliedPerTurn: round(turns === 0 ? 0 : delta('proposalsApplied') / turns, 2),
      peerSentMBps: round(delta('peerSentBytes') / seconds / 1e6, 2),
    };
  }
  return { ...result, cpuPercent, hosts };
}

/** ", hosts {...}" for a log line when the system reports host counters, else nothing. */
function hostsNote(result: PhaseCost): string {
  return result.hosts === undefined ? '' : `, hosts ${JSON.stringify(result.hosts)}`;
}

/** The write phases of one system (sequential, one shard, all shards), each measured and logged with a label. */
function writePhases(system: System, options: ClusterBenchOptions) {
  const s = clusterSettings;
  const { log } = options;
  const durationMs = options.seconds * 1000;
  return {
    sequential: async (label: string, target: WriteTarget): Promise<SequentialResult & PhaseCost> => {
      const result = await measured(system, () => runSequential(target, system.shardKeys.slice(0, 16), s.sequential));
      log(
        `${system.name}${label}: sequential p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors}, cpu % ${JSON.stringify(result.cpuPercent)}${hostsNote(result)}`,
      );
      return result;
    },
    oneShard: async (label: string, target: WriteTarget): Promise<PhaseLoad> => {
      const result = await measured(system, () =>
        runLoad(target, {
          clients: s.shardClients,
          keysOf: (c) => system.shardKeys.slice(c * s.keysPerClient, (c + 1) * s.keysPerClient),
          warmupMs: s.warmupMs,
          durationMs,
          timeoutMs: s.loadTimeoutMs,
        }),
      );
      log(
        `${system.name}${label}: ${s.shardClients} clients, one shard: ${result.writesPerSecond} writes/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors} ${JSON.stringify(result.errorKinds)}, cpu % ${JSON.stringify(result.cpuPercent)}${hostsNote(result)}`,
      );
      return result;
    },
    allShards: async (label: string, target: WriteTarget): Promise<PhaseLoad> => {
      const result = await measured(system, () =>
        runLoad(target, {
          clients: s.allClients,
          keysOf: (c) => system.allKeys(c),
          warmupMs: s.warmupMs,
          durationMs,
          timeoutMs: s.loadTimeoutMs,
        }),
      );
      log(
        `${system.name}${label}: ${s.allClients} clients, all shards: ${result.writesPerSecond} writes/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors} ${JSON.stringify(result.errorKinds)}, cpu % ${JSON.stringify(result.cpuPercent)}${hostsNote(result)}`,
      );
      return result;
    },
  };
}

/** The read phase: every key written once, then reads to the leader only and to any node, alternating, twice. */
async function readPhase(
  system: System,
  options: ClusterBenchOptions,
): Promise<{ readsLeader: PhaseLoad[]; readsAny: PhaseLoad[] }> {
  const s = clusterSettings;
  // Every key read must hold a value, whatever phases ran before.
  for (const [k, key] of system.shardKeys.entries()) {
    const outcome = await system.client.write(key, makeValue(`${system.name}-read`, 0, k), 5000);
    if (!outcome.ok) throw new Error(`${system.name}: writing ${key} before the read phase failed: ${outcome.error}`);
  }
  const readsLeader: PhaseLoad[] = [];
  const readsAny: PhaseLoad[] = [];
  for (let round = 0; round < 2; round++) {
    for (const [where, target, runs] of [
      ['leader only', system.client, readsLeader],
      ['any node', system.anyClient, readsAny],
    ] as const) {
      const result = await measured(system, () =>
        runReadLoad(target, {
          clients: s.shardClients,
          keysOf: (c) => system.shardKeys.slice(c * s.keysPerClient, (c + 1) * s.keysPerClient),
          warmupMs: s.warmupMs,
          durationMs: options.seconds * 1000,
        }),
      );
      runs.push(result);
      options.log(
        `${system.name} (reads, ${where}): ${s.shardClients} clients, one shard: ${result.writesPerSecond} reads/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, errors ${result.errors} ${JSON.stringify(result.errorKinds)}, cpu % ${JSON.stringify(result.cpuPercent)}`,
      );
    }
  }
  return { readsLeader, readsAny };
}

async function runPhases(system: System, options: ClusterBenchOptions, report: SystemReport): Promise<void> {
  const { log, phases } = options;
  report.precheck = await precheck(system);
  log(`${system.name}: precheck read back ${report.precheck.verified} keys`);
  const { sequential, oneShard, allShards } = writePhases(system, options);
  if (phases.has('seq')) report.sequential = await sequential('', system.client);
  if (phases.has('shard')) report.oneShard = await oneShard('', system.client);
  if (phases.has('all')) report.allShards = await allShards('', system.client);
  if (phases.has('aseq')) report.sequentialAny = await sequential(' (any node)', system.anyClient);
  if (phases.has('ashard')) report.oneShardAny = await oneShard(' (any node)', system.anyClient);
  if (phases.has('read'))
    ({ readsLeader: report.readsLeader, readsAny: report.readsAny } = await readPhase(system, options));
  if (phases.has('bseq') || phases.has('bshard') || phases.has('ball')) {
    const binary = system.binaryClient;
    if (binary === undefined) log(`${system.name}: no binary client protocol, bseq/bshard/ball skipped`);
    else {
      if (phases.has('bseq')) report.sequentialBinary = await sequential(' (binary)', binary);
      if (phases.has('bshard')) report.oneShardBinary = await oneShard(' (binary)', binary);
      if (phases.has('ball')) report.allShardsBinary = await allShards(' (binary)', binary);
    }
  }
  if (phases.has('transfer')) report.transfer = await transferRuns(system, log);
  if (phases.has('failover')) report.failover = await failoverRuns(system, log);
}

// ---------------------------------------------------------------------------------------------
// The systems.

function dramSystem(cluster: DramCluster): System {
  const group = asGroupId(1);
  const client = new DramClient(cluster);
  const shardKeys = client.keysIn(group, 's', clusterSettings.shardClients * clusterSettings.keysPerClient);
  return {
    name: 'dram',
    client,
    binaryClient: new DramBinaryTarget(cluster, clusterSettings.loadTimeoutMs),
    faultClient: new DramClient(cluster),
    anyClient: new DramRoundRobinClient(cluster),
    shardKeys,
    allKeys: (c) => Array.from({ length: clusterSettings.keysPerClient }, (_, k) => `a${c}-${k}`),
    pids: () => cluster.pids(),
    waitHealthy: () => cluster.waitHealthy(30_000),
    leader: async () => `n${await cluster.leaderOf(group)}`,
    async transfer() {
      const from = await cluster.leaderOf(group);
      const to = (from % cluster.ids.length) + 1;
      const answer = await cluster.transfer(group, from, to);
      if (answer.status !== 202 && answer.status !== 200)
        throw new Error(`dram: transfer-leadership answered ${answer.status}: ${answer.body.toString('utf8')}`);
      return { from: `n${from}`, to: `n${to}` };
    },
    async prepareKill() {
      const leader = await cluster.leaderOf(group);
      return { victim: `n${leader}`, kill: () => void cluster.kill(leader, 'SIGKILL') };
    },
    restart(victim) {
      cluster.start(Number(victim.slice(1)), false);
      return Promise.resolve();
    },
    counters: async () =>
      Object.fromEntries(
        await Promise.all(cluster.ids.map(async (id) => [`n${id}`, await cluster.counters(id)] as const)),
      ),
  };
}

function etcdSystem(cluster: EtcdCluster, leaderUrl: string): System & { close(): void } {
  const client = new EtcdTarget([leaderUrl]);
  const faultClient = new EtcdTarget(etcdEndpoints);
  const perClient = clusterSettings.keysPerClient;
  return {
    name: 'etcd',
    client,
    faultClient,
    // All three endpoints: each call goes to a member picked at random (etcd3's default).
    anyClient: faultClient,
    shardKeys: Array.from({ length: clusterSettings.shardClients * perClient }, (_, k) => `s${k}`),
    allKeys: (c) => Array.from({ length: perClient }, (_, k) => `a${c}-${k}`),
    pids: () => cluster.pids(),
    waitHealthy: () => cluster.waitHealthy(30_000),
    leader: async () => (await cluster.members()).leaderName,
    async transfer() {
      const { ids, leaderName } = await cluster.members();
      const to = `n${(Number(leaderName.slice(1)) % 3) + 1}`;
      const toId = ids.get(to);
      if (toId === undefined) throw new Error(`etcd: no member ${to}`);
      await cluster.moveLeader(leaderName, toId);
      return { from: leaderName, to };
    },
    async prepareKill() {
      const leader = await cluster.leader();
      return {
        victim: leader.name,
        kill: () => {
          process.kill(leader.pid, 'SIGKILL');
        },
      };
    },
    restart(victim) {
      cluster.restart(victim);
      return Promise.resolve();
    },
    close() {
      client.close();
      faultClient.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The HTTP ceiling: a fastify server that stores the body in a Map and answers {"index":1}.

const noopServer = `
import Fastify from 'fastify';
const app = Fastify();
const values = new Map();
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
app.put('/v1/kv/:key', async (request) => { values.set(request.params.key, request.body); return { index: 1 }; });
app.get('/v1/kv/:key', async (request, reply) => { const value = values.get(request.params.key); return value === undefined ? reply.code(404).send({ code: 'DRAM_ERR_KEY_NOT_FOUND' }) : reply.type('application/octet-stream').send(value); });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
`;

async function measureCeiling(
  options: ClusterBenchOptions,
  track: (child: ChildProcess) => void,
): Promise<LoadResult & { cpuPercent: Record<string, number> }> {
  const port = 27_500 + Math.floor(Math.random() * 400);
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['--input-type=module', '-e', noopServer], {
    cwd: root,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  track(child);
  const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });
  try {
    await until(
      'the no-op fastify server',
      async () => ((await call(agent, port, 'GET', '/v1/kv/x', undefined, 500)).status === 404 ? true : undefined),
      20_000,
      100,
    );
    const target: WriteTarget = {
      name: 'fastify-noop',
      async write(key, value, timeoutMs) {
        try {
          const answer = await call(agent, port, 'PUT', `/v1/kv/${encodeURIComponent(key)}`, value, timeoutMs);
          return answer.status === 200 ? { ok: true } : { ok: false, error: `HTTP ${answer.status}` };
        } catch (error) {
          return { ok: false, error: error instanceof Error ? error.message : 'error' };
        }
      },
      async read(key) {
        const answer = await call(agent, port, 'GET', `/v1/kv/${encodeURIComponent(key)}`, undefined, 5000);
        return answer.status === 200 ? answer.body : undefined;
      },
    };
    const s = clusterSettings;
    const pids = new Map(child.pid === undefined ? [] : [['server', child.pid] as const]);
    const { result, cpuPercent } = await withCpu(pids, () =>
      runLoad(target, {
        clients: s.shardClients,
        keysOf: (c) => [`c${c}-0`, `c${c}-1`],
        warmupMs: s.warmupMs,
        durationMs: options.seconds * 1000,
        timeoutMs: s.loadTimeoutMs,
      }),
    );
    options.log(
      `HTTP ceiling (no-op fastify, ${s.shardClients} clients): ${result.writesPerSecond} writes/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, cpu % ${JSON.stringify(cpuPercent)}`,
    );
    return { ...result, cpuPercent };
  } finally {
    agent.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

/** The mean rate of the runs of a phase, when it ran. */
function meanRate(runs: readonly LoadResult[] | undefined): number | undefined {
  if (runs === undefined || runs.length === 0) return undefined;
  return Math.round(runs.reduce((sum, run) => sum + run.writesPerSecond, 0) / runs.length);
}

/** Whether a measured figure meets its target; undefined when it was not measured. */
function meets(value: number | undefined, ok: (r: number) => boolean): boolean | undefined {
  return value === undefined ? undefined : ok(value);
}

function ratio(dram: number | undefined, etcd: number | undefined): number | undefined {
  return dram === undefined || etcd === undefined || etcd === 0 ? undefined : round(dram / etcd, 3);
}

/** dram's figures over etcd's (and over the HTTP ceiling and the floor), where both were measured. */
function ratiosOf(
  ceiling: LoadResult | undefined,
  dram: SystemReport | undefined,
  etcd: SystemReport | undefined,
  floor: FloorResult | undefined,
): Record<string, number> {
  const ratios: Record<string, number> = {};
  const put = (name: string, value: number | undefined): void => {
    if (value !== undefined) ratios[name] = value;
  };
  put('sequentialP50', ratio(dram?.sequential?.p50Ms, etcd?.sequential?.p50Ms));
  put('sequentialP99', ratio(dram?.sequential?.p99Ms, etcd?.sequential?.p99Ms));
  put('oneShardWritesPerSecond', ratio(dram?.oneShard?.writesPerSecond, etcd?.oneShard?.writesPerSecond));
  put('oneShardP99', ratio(dram?.oneShard?.p99Ms, etcd?.oneShard?.p99Ms));
  put('allShardsWritesPerSecond', ratio(dram?.allShards?.writesPerSecond, etcd?.allShards?.writesPerSecond));
  put('allShardsP99', ratio(dram?.allShards?.p99Ms, etcd?.allShards?.p99Ms));
  put('failoverMedian', ratio(dram?.failover?.medianMs, etcd?.failover?.medianMs));
  put('transferMaxGap', ratio(dram?.transfer?.maxGapMs, etcd?.transfer?.maxGapMs));
  put('oneShardShareOfHttpCeiling', ratio(dram?.oneShard?.writesPerSecond, ceiling?.writesPerSecond));
  put('sequentialBinaryP50OfFloor', ratio(dram?.sequentialBinary?.p50Ms, floor?.floorMs));
  put('sequentialBinaryP50OfEtcd', ratio(dram?.sequentialBinary?.p50Ms, etcd?.sequential?.p50Ms));
  put('sequentialAnyP50', ratio(dram?.sequentialAny?.p50Ms, etcd?.sequentialAny?.p50Ms));
  put('oneShardAnyWritesPerSecond', ratio(dram?.oneShardAny?.writesPerSecond, etcd?.oneShardAny?.writesPerSecond));
  put('oneShardAnyShareOfHttpCeiling', ratio(dram?.oneShardAny?.writesPerSecond, ceiling?.writesPerSecond));
  put('readsAnyOverLeaderDram', ratio(meanRate(dram?.readsAny), meanRate(dram?.readsLeader)));
  put('readsAnyOverLeaderEtcd', ratio(meanRate(etcd?.readsAny), meanRate(etcd?.readsLeader)));
  put('readsAnyPerSecond', ratio(meanRate(dram?.readsAny), meanRate(etcd?.readsAny)));
  return ratios;
}

/** The targets on latency and throughput over HTTP, to the leader and to any node. */
function httpTargets(
  ceiling: LoadResult | undefined,
  dram: SystemReport | undefined,
  etcd: SystemReport | undefined,
): ClusterReport['targets'] {
  const t = clusterTargets;
  return [
    {
      figure: 'sequential p50 (ms)',
      target: `<= ${t.sequentialP50Ms}`,
      dram: dram?.sequential?.p50Ms,
      etcd: etcd?.sequential?.p50Ms,
      met: meets(dram?.sequential?.p50Ms, (v) => v <= t.sequentialP50Ms),
    },
    {
      figure: '64 clients over HTTP, writes/s',
      target: `>= ${t.httpShareOfCeiling * 100}% of the no-op ceiling (${ceiling === undefined ? '?' : Math.round(ceiling.writesPerSecond * t.httpShareOfCeiling)})`,
      dram: dram?.oneShard?.writesPerSecond,
      etcd: etcd?.oneShard?.writesPerSecond,
      met:
        ceiling === undefined
          ? undefined
          : meets(dram?.oneShard?.writesPerSecond, (v) => v >= ceiling.writesPerSecond * t.httpShareOfCeiling),
    },
    {
      figure: 'any node: sequential p50 (ms)',
      target: `<= ${t.anyNodeSequentialP50OfEtcd}x etcd`,
      dram: dram?.sequentialAny?.p50Ms,
      etcd: etcd?.sequentialAny?.p50Ms,
      met: meets(
        ratio(dram?.sequentialAny?.p50Ms, etcd?.sequentialAny?.p50Ms),
        (r) => r <= t.anyNodeSequentialP50OfEtcd,
      ),
    },
    {
      figure: 'any node: 64 clients over HTTP, writes/s',
      target: `>= ${t.anyNodeWritesOfEtcd}x etcd and >= ${t.httpShareOfCeiling * 100}% of the no-op ceiling`,
      dram: dram?.oneShardAny?.writesPerSecond,
      etcd: etcd?.oneShardAny?.writesPerSecond,
      met: meets(
        ratio(dram?.oneShardAny?.writesPerSecond, etcd?.oneShardAny?.writesPerSecond),
        (r) =>
          r >= t.anyNodeWritesOfEtcd &&
          (ceiling === undefined ||
            (dram?.oneShardAny?.writesPerSecond ?? 0) >= ceiling.writesPerSecond * t.httpShareOfCeiling),
      ),
    },
    {
      figure: '64 clients, linearizable reads spread over all nodes, reads/s (etcd column: dram leader-only)',
      target: `>= ${t.readsAnyOverLeader}x the same load sent to the leader only`,
      dram: meanRate(dram?.readsAny),
      etcd: meanRate(dram?.readsLeader),
      met: meets(ratio(meanRate(dram?.readsAny), meanRate(dram?.readsLeader)), (r) => r >= t.readsAnyOverLeader),
    },
  ];
}

/** The targets on one shard's and all shards' throughput, over HTTP and over the binary protocol. */
function throughputTargets(dram: SystemReport | undefined, etcd: SystemReport | undefined): ClusterReport['targets'] {
  const t = clusterTargets;
  return [
    {
      figure: '64 clients one shard, writes/s',
      target: `>= ${t.oneShardWritesPerSecond}`,
      dram: dram?.oneShard?.writesPerSecond,
      etcd: etcd?.oneShard?.writesPerSecond,
      met: meets(dram?.oneShard?.writesPerSecond, (v) => v >= t.oneShardWritesPerSecond),
    },
    {
      figure: '64 clients one shard, p99 (ms)',
      target: `<= ${t.oneShardP99Ms}`,
      dram: dram?.oneShard?.p99Ms,
      etcd: etcd?.oneShard?.p99Ms,
      met: meets(dram?.oneShard?.p99Ms, (v) => v <= t.oneShardP99Ms),
    },
    {
      figure: '256 clients 8 shards, writes/s',
      target: `>= ${t.allShardsWritesPerSecond}`,
      dram: dram?.allShards?.writesPerSecond,
      etcd: etcd?.allShards?.writesPerSecond,
      met: meets(dram?.allShards?.writesPerSecond, (v) => v >= t.allShardsWritesPerSecond),
    },
    {
      figure: 'sequential p50, binary protocol (ms)',
      target: `<= ${t.sequentialP50Ms}`,
      dram: dram?.sequentialBinary?.p50Ms,
      etcd: undefined,
      met: meets(dram?.sequentialBinary?.p50Ms, (v) => v <= t.sequentialP50Ms),
    },
    {
      figure: '64 clients one shard, binary protocol, writes/s',
      target: `>= ${t.oneShardWritesPerSecond}`,
      dram: dram?.oneShardBinary?.writesPerSecond,
      etcd: undefined,
      met: meets(dram?.oneShardBinary?.writesPerSecond, (v) => v >= t.oneShardWritesPerSecond),
    },
    {
      figure: '64 clients one shard, binary protocol, p99 (ms)',
      target: `<= ${t.oneShardP99Ms}`,
      dram: dram?.oneShardBinary?.p99Ms,
      etcd: undefined,
      met: meets(dram?.oneShardBinary?.p99Ms, (v) => v <= t.oneShardP99Ms),
    },
    {
      figure: '256 clients 8 shards, binary protocol, writes/s',
      target: `>= ${t.allShardsWritesPerSecond}`,
      dram: dram?.allShardsBinary?.writesPerSecond,
      etcd: undefined,
      met: meets(dram?.allShardsBinary?.writesPerSecond, (v) => v >= t.allShardsWritesPerSecond),
    },
  ];
}

/** The targets on a leader's loss (failover) and on a leadership transfer. */
function recoveryTargets(dram: SystemReport | undefined, etcd: SystemReport | undefined): ClusterReport['targets'] {
  const t = clusterTargets;
  const failoverDram = dram?.failover?.medianMs;
  const failoverEtcd = etcd?.failover?.medianMs;
  return [
    {
      figure: 'leader SIGKILL to first write, median (ms)',
      target: `<= ${t.failoverMedianMs} and below etcd`,
      dram: failoverDram,
      etcd: failoverEtcd,
      met: meets(failoverDram, (v) => v <= t.failoverMedianMs && (failoverEtcd === undefined || v < failoverEtcd)),
    },
    {
      figure: 'leadership transfer, longest gap of 5 runs (ms)',
      target: `<= ${t.transferGapMs} in every run`,
      dram: dram?.transfer?.maxGapMs,
      etcd: etcd?.transfer?.maxGapMs,
      met: meets(dram?.transfer?.maxGapMs, (v) => v <= t.transferGapMs),
    },
  ];
}

function summarize(
  ceiling: LoadResult | undefined,
  dram: SystemReport | undefined,
  etcd: SystemReport | undefined,
  floor?: FloorResult,
): Pick<ClusterReport, 'ratios' | 'targets'> {
  return {
    ratios: ratiosOf(ceiling, dram, etcd, floor),
    targets: [...httpTargets(ceiling, dram, etcd), ...throughputTargets(dram, etcd), ...recoveryTargets(dram, etcd)],
  };
}

/**
 * The kernel's DAMON monitors (/sys/kernel/mm/damon/admin), if any. On the benchmark VM one runs
 * with a 500 ms sampling interval, and each sample stalls every process on the machine for 5-35 ms
 * (docs/benchmarks.md), which is most of a p99 and of a transfer gap, so every report says whether it ran.
 */
function damonMonitors(): ClusterReport['damon'] {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const count = Number(read(`${root}/nr_kdamonds`) ?? 0);
  return Array.from({ length: Number.isSafeInteger(count) ? Math.min(count, 16) : 0 }, (_, k) => {
    const sampleUs = Number(read(`${root}/${k}/contexts/0/monitoring_attrs/intervals/sample_us`));
    return {
      kdamond: String(k),
      state: read(`${root}/${k}/state`) ?? 'unknown',
      sampleMs: Number.isFinite(sampleUs) ? sampleUs / 1000 : undefined,
    };
  });
}

/** The processes a cluster bench has running, which its clean-up stops (at the end, on error, on a signal). */
interface Running {
  dramCluster?: DramCluster | undefined;
  etcdCluster?: EtcdCluster | undefined;
  etcd?: (System & { close(): void }) | undefined;
  readonly helpers: ChildProcess[];
}

/** Stops every process in `running`, once however often it is called. */
function cleanupOf(running: Running): () => Promise<void> {
  let cleaning: Promise<void> | undefined;
  return () =>
    (cleaning ??= (async () => {
      for (const child of running.helpers)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      running.etcd?.close();
      await Promise.allSettled([running.dramCluster?.stopAll(), running.etcdCluster?.stop()]);
    })());
}

/** Cleans up and exits on SIGINT/SIGTERM until `off()`; `by` is the signal that came, if one did. */
function stopOnSignal(
  log: (line: string) => void,
  cleanup: () => Promise<void>,
): { readonly interrupted: { by: NodeJS.Signals | undefined }; off(): void } {
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx),
  // and a second default SIGINT would end it before the clean-up has finished.
  const interrupted = { by: undefined as NodeJS.Signals | undefined };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted.by !== undefined) return;
    interrupted.by = signal;
    log(`${signal}: stopping every dram and etcd process`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    interrupted,
    off: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Three dram nodes started, their kv groups' leaders placed, the phases run, the nodes stopped. */
async function benchDram(
  options: ClusterBenchOptions,
  running: Running,
  interrupted: { readonly by: NodeJS.Signals | undefined },
): Promise<SystemReport> {
  const { log } = options;
  const report: SystemReport = {};
  const cluster = (running.dramCluster = new DramCluster(clusterSettings.kvGroups, options.cpuProfDir));
  log(`dram: starting three nodes, ${clusterSettings.kvGroups} kv groups, data under ${cluster.dir}`);
  cluster.startAll();
  try {
    await cluster.waitHealthy(60_000);
    // What a primary-balancing controller would do: group g led by node ((g - 1) mod 3) + 1,
    // so the one-shard phase's group 1 is led by node 1 (the one profiled with --cpu-prof).
    await cluster.placeLeaders((group) => ((group - 1) % cluster.ids.length) + 1, 30_000);
    report.leaders = Object.fromEntries(
      await Promise.all(
        cluster.groups.map(async (group) => [`kv/${group}`, `n${await cluster.leaderOf(group)}`] as const),
      ),
    );
    const system = dramSystem(cluster);
    try {
      await runPhases(system, options, report);
    } finally {
      system.binaryClient?.close();
    }
  } catch (error) {
    if (interrupted.by === undefined)
      for (const id of cluster.ids) log(`--- dram node ${id} log (tail) ---\n${cluster.logTail(id)}`);
    throw error;
  }
  await cluster.stopAll();
  running.dramCluster = undefined;
  return report;
}

/** Three etcd members started, the phases run against the leader's endpoint, the members stopped. */
async function benchEtcd(options: ClusterBenchOptions, running: Running): Promise<SystemReport> {
  const report: SystemReport = {};
  const cluster = (running.etcdCluster = new EtcdCluster(clusterSettings.heartbeatMs, clusterSettings.electionMs));
  options.log(
    `etcd: starting three members with ${cluster.script} (heartbeat ${cluster.heartbeatMs} ms, election ${cluster.electionMs} ms)`,
  );
  await cluster.start();
  report.version = await cluster.etcdVersion();
  await cluster.waitHealthy(30_000);
  const leader = await cluster.leader();
  report.leaders = { etcd: leader.name };
  const etcd = (running.etcd = etcdSystem(cluster, leader.url));
  await runPhases(etcd, options, report);
  etcd.close();
  running.etcd = undefined;
  await cluster.stop();
  running.etcdCluster = undefined;
  return report;
}

export async function runClusterBench(options: ClusterBenchOptions): Promise<ClusterReport> {
  const { log } = options;
  const loadAtStart = round(loadavg()[0] ?? 0);
  log(
    `cluster bench: 1-minute load average ${loadAtStart} at the start (anything else running on these two cores disturbs the figures)`,
  );
  const damon = damonMonitors();
  for (const monitor of damon)
    log(
      `cluster bench: DAMON kdamond ${monitor.kdamond} is ${monitor.state}, sampling every ${monitor.sampleMs ?? '?'} ms (each sample stalls the machine; see docs/benchmarks.md)`,
    );
  const running: Running = { helpers: [] };
  const cleanup = cleanupOf(running);
  const signals = stopOnSignal(log, cleanup);
  let ceiling: (LoadResult & { cpuPercent: Record<string, number> }) | undefined;
  let floor: FloorResult | undefined;
  let dramReport: SystemReport | undefined;
  let etcdReport: SystemReport | undefined;
  try {
    if (options.phases.has('ceiling')) ceiling = await measureCeiling(options, (child) => running.helpers.push(child));
    if (options.phases.has('floor')) floor = await measureFloor(log);
    if (options.systems.has('dram')) dramReport = await benchDram(options, running, signals.interrupted);
    if (options.systems.has('etcd')) etcdReport = await benchEtcd(options, running);
  } finally {
    await cleanup();
    signals.off();
  }
  return {
    settings: clusterSettings,
    damon,
    loadAverage: { atStart: loadAtStart, atEnd: round(loadavg()[0] ?? 0) },
    ...(ceiling === undefined ? {} : { ceiling }),
    ...(floor === undefined ? {} : { floor }),
    ...(dramReport === undefined ? {} : { dram: dramReport }),
    ...(etcdReport === undefined ? {} : { etcd: etcdReport }),
    ...summarize(ceiling, dramReport, etcdReport, floor),
  };
}

/** The people's table: one row per figure, dram next to etcd and the ratio. */
export function clusterTable(report: ClusterReport): Record<string, string | number | boolean | undefined>[] {
  return report.targets.map((row) => ({
    figure: row.figure,
    dram: row.dram,
    etcd: row.etcd,
    'dram/etcd': ratio(row.dram, row.etcd),
    target: row.target,
    met: row.met,
  }));
}
