// `npm run bench`: runs the benchmarks and prints their figures as JSON on stdout (one object),
// with a table for people on stderr. `--time-ms N` sets each core benchmark's measuring time.
//
// `--cluster` adds the cluster benchmark (bench/cluster.bench.ts: a three-node dram cluster of
// real processes against a three-member etcd, a few minutes); its figures go under `cluster`.
//   --cluster-seconds N          measuring time of each load phase (default 10)
//   --cluster-phases a,b,...     subset of ceiling,seq,shard,all,transfer,failover (default: all)
//   --cluster-systems a,b        subset of dram,etcd (default: both)
//   --cluster-cpu-prof DIR       run dram node 1 under node --cpu-prof, profiles written to DIR
//                                (on a graceful stop; use without the failover phase, which kills it)

import { cpus } from 'node:os';
import { clusterPhases, clusterSystems, clusterTable, runClusterBench, type ClusterPhase, type ClusterReport, type ClusterSystem } from './cluster.bench.ts';
import { runRaftCoreBench } from './raft-core.bench.ts';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

function subset<T extends string>(name: string, all: readonly T[]): Set<T> {
  const text = option(name);
  if (text === undefined) return new Set(all);
  const chosen = text.split(',').map((item) => item.trim());
  for (const item of chosen) if (!(all as readonly string[]).includes(item)) throw new Error(`${name}: unknown "${item}" (one of ${all.join(', ')})`);
  return new Set(chosen as T[]);
}

const timeMs = Number(option('--time-ms') ?? 3000);
const people = new console.Console(process.stderr);
const raftCore = await runRaftCoreBench(timeMs);
people.table(raftCore.map((figure) => ({ benchmark: figure.name, 'entries/s': figure.entriesPerSecond, samples: figure.samples, 'rme %': figure.rme })));

let cluster: ClusterReport | undefined;
if (process.argv.includes('--cluster')) {
  const seconds = Number(option('--cluster-seconds') ?? 10);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 120) throw new Error('--cluster-seconds: expected a number of seconds in (0, 120]');
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

const report = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
  raftCore,
  ...(cluster === undefined ? {} : { cluster }),
  targets: { 'raft-core.batch64.entriesPerSecond': 500_000 },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
