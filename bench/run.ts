// `npm run bench`: runs the benchmarks and prints their figures as JSON on stdout (one object),
// with a table for people on stderr. `--time-ms N` sets each core benchmark's measuring time.
//
// `--cluster` adds the cluster benchmark (bench/cluster.bench.ts: a three-node dram cluster of
// real processes against a three-member etcd, a few minutes); its figures go under `cluster`.
//   --cluster-seconds N          measuring time of each load phase (default 10)
//   --cluster-phases a,b,...     subset of ceiling,floor,seq,shard,all,aseq,ashard,read,bseq,bshard,ball,transfer,failover (default: all)
//   --cluster-systems a,b        subset of dram,etcd (default: both)
//   --cluster-cpu-prof DIR       run every dram node under node --cpu-prof, node N's profiles in DIR/nN
//                                (on a graceful stop; use without the failover phase, which kills it)
//
// `--idle` adds the idle-groups benchmark (bench/idle-groups.bench.ts: 1,000 KV groups on three
// nodes, CPU per node once every group is quiet, and the same with quiescence off); its figures
// go under `idleGroups`. `--idle-groups N` (default 1000), `--idle-seconds N` (default 10).
//
// `--restart` adds the restart benchmark (bench/restart.bench.ts: restart-to-serving of a node
// whose shard holds 1M keys of 100 bytes, from its snapshot against a full log replay, alternating);
// then write latency on that shard with snapshots against without; its figures go under `restart`.
// `--restart-keys N` (default 1000000), `--restart-rounds N` (default 3).
//
// `--rereplication` adds the re-replication benchmark (bench/rereplication.bench.ts: five nodes,
// 8 groups x 3; a node SIGKILLed under a write load, time until its groups are back at three
// copies elsewhere, write p50/p99 meanwhile against the same load with every node up); its
// figures go under `rereplication`. `--rereplication-keys N` (default 20000),
// `--rereplication-value-bytes N` (1024), `--rereplication-seconds N` (load window, 30),
// `--rereplication-grace-ms N` (nodeGoneGraceMs, 2000).
//
// `--data` adds the data-plane benchmarks; today the query part (bench/query.bench.ts: p50/p99 of
// the example endpoints over generated Parquet and NDJSON); its figures go under `query`; and the
// download throughput (bench/download.bench.ts: the download controller against a plain parallel
// GetObject loop over the same files, in the same run), under `download`; and the time to first
// query on a lazy database against a full download (bench/lazy.bench.ts), under `lazy`.
// `--query-shards N`, `--query-events N`, `--query-samples N`, `--query-seconds N` (defaults there).
//
// `--query` adds the query fan-out benchmark (bench/query-cluster.bench.ts: fan-out overhead over 8
// and 16 shards against the same query run locally; p99 with and without hedging while a member of
// three real processes is stopped 200 ms every second; the smart client against the member
// fan-out); its figures go under `queryFanOut`. `--query-fanout-events N`,
// `--query-fanout-samples N`, `--query-fanout-seconds N` (defaults there).

import { cpus } from 'node:os';
import {
  clusterPhases,
  clusterSystems,
  clusterTable,
  runClusterBench,
  type ClusterPhase,
  type ClusterReport,
  type ClusterSystem,
} from './cluster.bench.ts';
import { runIdleGroupsBench, type IdleGroupsReport } from './idle-groups.bench.ts';
import { queryBenchOptionsFrom, queryTable, runQueryBench, type QueryReport } from './query.bench.ts';
import { runDownloadBench, type DownloadReport } from './download.bench.ts';
import { runLazyBench, type LazyReport } from './lazy.bench.ts';
import {
  queryClusterBenchOptionsFrom,
  queryClusterTables,
  runQueryClusterBench,
  type QueryClusterReport,
} from './query-cluster.bench.ts';
import { runRaftCoreBench } from './raft-core.bench.ts';
import { runRestartBench, type RestartReport } from './restart.bench.ts';
import { runReReplicationBench, type ReReplicationReport } from './rereplication.bench.ts';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

function subset<T extends string>(name: string, all: readonly T[]): Set<T> {
  const text = option(name);
  if (text === undefined) return new Set(all);
  const chosen = text.split(',').map((item) => item.trim());
  for (const item of chosen)
    if (!(all as readonly string[]).includes(item))
      throw new Error(`${name}: unknown "${item}" (one of ${all.join(', ')})`);
  return new Set(chosen as T[]);
}

const timeMs = Number(option('--time-ms') ?? 3000);
const people = new console.Console(process.stderr);
const raftCore = await runRaftCoreBench(timeMs);
people.table(
  raftCore.map((figure) => ({
    benchmark: figure.name,
    'entries/s': figure.entriesPerSecond,
    samples: figure.samples,
    'rme %': figure.rme,
  })),
);

let cluster: ClusterReport | undefined;
if (process.argv.includes('--cluster')) {
  const seconds = Number(option('--cluster-seconds') ?? 10);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 120)
    throw new Error('--cluster-seconds: expected a number of seconds in (0, 120]');
  cluster = await runClusterBench({
    seconds,
    phases: subset<ClusterPhase>('--cluster-phases', clusterPhases),
    systems: subset<ClusterSystem>('--cluster-systems', clusterSystems),
    cpuProfDir: option('--cluster-cpu-prof'),
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  people.table(clusterTable(cluster));
}

let idleGroups: IdleGroupsReport | undefined;
if (process.argv.includes('--idle')) {
  const groups = Number(option('--idle-groups') ?? 1000);
  const windowSeconds = Number(option('--idle-seconds') ?? 10);
  if (!Number.isSafeInteger(groups) || groups < 1 || groups > 10_000)
    throw new Error('--idle-groups: expected an integer in [1, 10000]');
  if (!Number.isFinite(windowSeconds) || windowSeconds <= 0 || windowSeconds > 120)
    throw new Error('--idle-seconds: expected a number of seconds in (0, 120]');
  idleGroups = await runIdleGroupsBench({
    groups,
    windowSeconds,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  people.table(
    idleGroups.variants.map((variant) => ({
      quiescence: variant.quiesce ? 'on' : 'off',
      ...variant.cpuPercent,
      quiet: `${variant.quietReplicas}/${variant.replicas}`,
      'settle s': variant.settleSeconds,
    })),
  );
}

let restart: RestartReport | undefined;
if (process.argv.includes('--restart')) {
  const keys = Number(option('--restart-keys') ?? 1_000_000);
  const rounds = Number(option('--restart-rounds') ?? 3);
  if (!Number.isSafeInteger(keys) || keys < 1 || keys > 10_000_000)
    throw new Error('--restart-keys: expected an integer in [1, 10000000]');
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20)
    throw new Error('--restart-rounds: expected an integer in [1, 20]');
  restart = await runRestartBench({
    keys,
    valueBytes: 100,
    rounds,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  people.table(
    restart.rounds.map((round) => ({
      'snapshot ms': round.snapshot.servingMs,
      'replay ms': round.replay.servingMs,
      speedup: round.speedup,
    })),
  );
  people.table(
    restart.writesDuringSnapshot.rounds.map((round) => ({
      'p99 ms, snapshots': round.snapshot.p99Ms,
      'p99 ms, none': round.none.p99Ms,
      ratio: round.p99Ratio,
      'longest turn ms': round.snapshot.turnMsMax,
      'compact ms': round.snapshot.compactMs,
    })),
  );
}

let query: QueryReport | undefined;
if (process.argv.includes('--data')) {
  query = await runQueryBench(
    queryBenchOptionsFrom(process.argv, '--query-', (line) => {
      process.stderr.write(`${line}\n`);
    }),
  );
  people.table(queryTable(query));
}
let rereplication: ReReplicationReport | undefined;
if (process.argv.includes('--rereplication')) {
  const keys = Number(option('--rereplication-keys') ?? 20_000);
  const valueBytes = Number(option('--rereplication-value-bytes') ?? 1024);
  const seconds = Number(option('--rereplication-seconds') ?? 30);
  const graceMs = Number(option('--rereplication-grace-ms') ?? 2000);
  if (!Number.isSafeInteger(keys) || keys < 1 || keys > 2_000_000)
    throw new Error('--rereplication-keys: expected an integer in [1, 2000000]');
  if (!Number.isSafeInteger(valueBytes) || valueBytes < 1 || valueBytes > 1 << 20)
    throw new Error('--rereplication-value-bytes: expected an integer in [1, 1048576]');
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
    throw new Error('--rereplication-seconds: expected a number of seconds in (0, 600]');
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > 600_000)
    throw new Error('--rereplication-grace-ms: expected an integer in [0, 600000]');
  rereplication = await runReReplicationBench({
    keys,
    valueBytes,
    seconds,
    graceMs,
    clients: 8,
    log: (line) => {
      process.stderr.write(`${line}\n`);
    },
  });
  people.table([
    {
      data: `${keys} x ${valueBytes} B`,
      'groups moved': rereplication.groupsMoved,
      're-replication ms': rereplication.reReplicationMs,
      'after grace ms': rereplication.afterGraceMs,
      'p99 without ms': rereplication.writes.without.p99Ms,
      'p99 during ms': rereplication.writes.during.p99Ms,
      'p99 ratio': rereplication.p99Ratio,
    },
  ]);
}
let download: DownloadReport | undefined;
if (process.argv.includes('--data')) {
  download = await runDownloadBench((line) => {
    process.stderr.write(`${line}\n`);
  });
  people.table([download]);
}

let lazy: LazyReport | undefined;
if (process.argv.includes('--data')) {
  lazy = await runLazyBench((line) => {
    process.stderr.write(`${line}\n`);
  });
  people.table([lazy]);
}

let queryFanOut: QueryClusterReport | undefined;
if (process.argv.includes('--query')) {
  queryFanOut = await runQueryClusterBench(
    queryClusterBenchOptionsFrom(process.argv, '--query-fanout-', (line) => {
      process.stderr.write(`${line}\n`);
    }),
  );
  for (const table of queryClusterTables(queryFanOut)) people.table(table);
}

const report = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
  raftCore,
  ...(cluster === undefined ? {} : { cluster }),
  ...(idleGroups === undefined ? {} : { idleGroups }),
  ...(restart === undefined ? {} : { restart }),
  ...(query === undefined ? {} : { query }),
  ...(download === undefined ? {} : { download }),
  ...(lazy === undefined ? {} : { lazy }),
  ...(rereplication === undefined ? {} : { rereplication }),
  ...(queryFanOut === undefined ? {} : { queryFanOut }),
  targets: { 'raft-core.batch64.entriesPerSecond': 500_000 },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
