// `npm run bench`: runs the benchmarks and prints their figures as JSON on stdout (one object),
// with a table for people on stderr. `--time-ms N` sets each benchmark's measuring time.

import { cpus } from 'node:os';
import { runRaftCoreBench } from './raft-core.bench.ts';

const at = process.argv.indexOf('--time-ms');
const timeMs = at >= 0 ? Number(process.argv[at + 1]) : 3000;
const raftCore = await runRaftCoreBench(timeMs);
const people = new console.Console(process.stderr);
people.table(raftCore.map((figure) => ({ benchmark: figure.name, 'entries/s': figure.entriesPerSecond, samples: figure.samples, 'rme %': figure.rme })));
const report = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
  raftCore,
  targets: { 'raft-core.batch64.entriesPerSecond': 500_000 },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
