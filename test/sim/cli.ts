// `npm run sim -- --seeds N --from S [--quiet]`: a long simulation campaign. Prints one line per
// failure with the command that replays it, and a JSON summary at the end. Exit code 1 on failure.

import { runSeed, scenarioFor } from './simulator.ts';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`--${name} needs a non-negative integer`);
    process.exit(2);
  }
  return value;
}

const seeds = argument('seeds', 1000);
const from = argument('from', 1);
const verbose = process.argv.includes('--verbose');
const started = process.hrtime.bigint();
let failures = 0;
let acknowledged = 0;
let readsServed = 0;
for (let seed = from; seed < from + seeds; seed++) {
  const result = runSeed(seed);
  acknowledged += result.stats.acknowledged;
  readsServed += result.stats.readsServed;
  if (verbose) console.log(JSON.stringify({ seed, scenario: scenarioFor(seed), result }));
  if (!result.ok) {
    failures++;
    console.log(`FAIL seed ${seed} at tick ${result.tick}: ${result.error}`);
    console.log(`  replay: npm run sim -- --seeds 1 --from ${seed} --verbose`);
  }
  if (!verbose && (seed - from + 1) % 1000 === 0)
    process.stderr.write(`\r${seed - from + 1}/${seeds} seeds, ${failures} failed`);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stderr.write('\n');
console.log(
  JSON.stringify({
    seeds,
    from,
    failures,
    acknowledgedWrites: acknowledged,
    readsServed,
    seconds: Math.round(seconds * 10) / 10,
  }),
);
process.exit(failures > 0 ? 1 : 0);
