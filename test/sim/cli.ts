// `npm run sim -- --seeds N --from S [--verbose] [--core | --control | --placement] [--any-node]`: a long simulation
// campaign. By default the host simulator (the production MultiRaftHost on virtual time,
// ./host-simulator.ts); with --control the same with the control plane (the meta group, its
// executor and clients scheduling actions, ./host-control.ts); with --placement the control plane
// and the placement controller making the kv groups' membership changes (./host-placement.ts); with --core the core-only simulator
// of MemoryNodes (./simulator.ts); --any-node sends the host simulator's writes to any node
// (forwarded to the leader inside Raft); --mutant NAME (with --placement) runs a broken placement
// planner (./placement-mutants.ts), to see the checks fail. Prints one line per failure
// with the command that replays it, and a JSON summary at the end. Exit code 1 on failure.

import { hostScenarioFor, runHostSeed } from './host-simulator.ts';
import { placementMutants } from './placement-mutants.ts';
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

interface Outcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly where: string;
  readonly writes: number;
  readonly reads: number;
  /** With --control: the control plane's figures. */
  readonly actions?: Record<string, number>;
  readonly detail: unknown;
}

async function runOne(seed: number, core: boolean, control: boolean, placement: boolean): Promise<Outcome> {
  if (core) {
    const result = runSeed(seed);
    return {
      ok: result.ok,
      ...(result.error === undefined ? {} : { error: result.error }),
      where: `tick ${result.tick}`,
      writes: result.stats.acknowledged,
      reads: result.stats.readsServed,
      detail: { scenario: scenarioFor(seed), result },
    };
  }
  const result = await runHostSeed(seed, {
    writesToAnyNode: anyNode,
    controlPlane: control,
    placement,
    ...(mutant === undefined ? {} : { placementPlanner: mutant }),
  });
  return {
    ok: result.ok,
    ...(result.error === undefined ? {} : { error: result.error }),
    where: `${result.atMs} ms`,
    writes: result.stats.writesOk,
    reads: result.stats.readsOk,
    ...(control ? { actions: { ...result.stats.actions } } : {}),
    ...(placement ? { actions: { ...result.stats.placement } } : {}),
    detail: { scenario: hostScenarioFor(seed, control, placement), result },
  };
}

const seeds = argument('seeds', 1000);
const from = argument('from', 1);
const verbose = process.argv.includes('--verbose');
const core = process.argv.includes('--core');
const control = process.argv.includes('--control');
const anyNode = process.argv.includes('--any-node');
const placement = process.argv.includes('--placement');
const mutantName = process.argv.includes('--mutant') ? process.argv[process.argv.indexOf('--mutant') + 1] : undefined;
const mutant = mutantName === undefined ? undefined : placementMutants[mutantName];
if (mutantName !== undefined && (mutant === undefined || !placement)) {
  console.error(`--mutant needs --placement and one of: ${Object.keys(placementMutants).join(', ')}`);
  process.exit(2);
}
const started = process.hrtime.bigint();
let failures = 0;
let acknowledged = 0;
let readsServed = 0;
const actions: Record<string, number> = {};
for (let seed = from; seed < from + seeds; seed++) {
  const outcome = await runOne(seed, core, control, placement);
  acknowledged += outcome.writes;
  readsServed += outcome.reads;
  for (const [name, count] of Object.entries(outcome.actions ?? {})) actions[name] = (actions[name] ?? 0) + count;
  if (verbose) console.log(JSON.stringify({ seed, ...(outcome.detail as object) }));
  if (!outcome.ok) {
    failures++;
    console.log(`FAIL seed ${seed} at ${outcome.where}: ${outcome.error}`);
    console.log(
      `  replay: npm run sim -- --seeds 1 --from ${seed} --verbose${core ? ' --core' : ''}${control ? ' --control' : ''}${placement ? ' --placement' : ''}${mutantName === undefined ? '' : ` --mutant ${mutantName}`}${anyNode ? ' --any-node' : ''}`,
    );
  }
  if (!verbose && (seed - from + 1) % 100 === 0)
    process.stderr.write(`\r${seed - from + 1}/${seeds} seeds, ${failures} failed`);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stderr.write('\n');
console.log(
  JSON.stringify({
    simulator: core
      ? 'core'
      : placement
        ? `host with placement${mutantName === undefined ? '' : `, planner mutant ${mutantName}`}`
        : control
          ? 'host with the control plane'
          : 'host',
    seeds,
    from,
    failures,
    acknowledgedWrites: acknowledged,
    readsServed,
    ...(control || placement ? { actions } : {}),
    seconds: Math.round(seconds * 10) / 10,
  }),
);
process.exit(failures > 0 ? 1 : 0);
