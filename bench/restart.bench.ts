// The restart benchmark (docs/benchmarks.md, "Restart"; its target: a node whose shard holds 1M
// keys with 100-byte values serves again >= 10x faster from its snapshot than from a full log
// replay of the same data, and within 2 s). Builds two data dirs holding the same group (one with
// the log only, one compacted into a snapshot at its last index with a tail kept), then restarts a
// node on each, alternating the order every round so that both variants see the same load of a
// shared machine, and reports each round's ratio. Each restart is its own process
// (bench/restart-node.ts), so no variant inherits the other's heap.
//
// Then the snapshot's cost to writes (target: write p99 while a snapshot of the 1M-key shard is
// taken within 1.5x of the same run without): on the snapshot data dir, 16 closed-loop writers
// with snapshots asked for every 1,000 entries until one of the whole shard is stored, against
// the same load with snapshots off, alternating; with the longest turn and event-loop delay.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const childPath = new URL('./restart-node.ts', import.meta.url).pathname;
const childTimeoutMs = 15 * 60_000;

export interface RestartFigures {
  /** Process-internal: from opening the store to the first write applied (the node serves). */
  readonly servingMs: number;
  /** Part of it spent loading the store (every record read and verified). */
  readonly openMs: number;
  /** Part of it spent restoring the model from the snapshot (0 without one). */
  readonly restoreMs: number;
  readonly heapMb: number;
}

export interface LoadFigures {
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly turnMsMax: number;
  readonly eventLoopDelayMsMax: number;
  /** Time in storage.compact (the snapshot's storage write; writes queue behind it). */
  readonly compactMs: number;
}

export interface RestartReport {
  readonly keys: number;
  readonly valueBytes: number;
  readonly rounds: readonly {
    readonly snapshot: RestartFigures;
    readonly replay: RestartFigures;
    readonly speedup: number;
  }[];
  readonly medianServingMs: { readonly snapshot: number; readonly replay: number };
  readonly medianSpeedup: number;
  readonly buildSeconds: { readonly snapshot: number; readonly replay: number };
  readonly target: string;
  readonly met: boolean;
  readonly writesDuringSnapshot: {
    readonly rounds: readonly {
      readonly snapshot: LoadFigures;
      readonly none: LoadFigures;
      readonly p99Ratio: number;
    }[];
    readonly medianP99Ratio: number;
    readonly target: string;
    readonly met: boolean;
  };
}

async function child(args: readonly string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', childPath, ...args], {
    timeout: childTimeoutMs,
    maxBuffer: 1 << 20,
  });
  return stdout;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

interface RestartOptions {
  readonly keys: number;
  readonly valueBytes: number;
  readonly rounds: number;
  readonly log: (line: string) => void;
}

/** The two variants' time to serving, alternating which goes first, `options.rounds` times. */
async function restartRounds(
  options: RestartOptions,
  dirs: Record<'snapshot' | 'replay', string>,
  size: readonly string[],
): Promise<RestartReport['rounds'][number][]> {
  const rounds: RestartReport['rounds'][number][] = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? (['replay', 'snapshot'] as const) : (['snapshot', 'replay'] as const);
    const figures: Partial<Record<'snapshot' | 'replay', RestartFigures>> = {};
    for (const variant of order) {
      const line = await child(['restart', dirs[variant], ...size, variant === 'snapshot' ? 'snapshot' : 'log']);
      const raw = JSON.parse(line) as RestartFigures;
      figures[variant] = {
        servingMs: round1(raw.servingMs),
        openMs: round1(raw.openMs),
        restoreMs: round1(raw.restoreMs),
        heapMb: raw.heapMb,
      };
      options.log(`restart: round ${round + 1}, ${variant}: ${JSON.stringify(figures[variant])}`);
    }
    const { snapshot, replay } = figures;
    if (snapshot === undefined || replay === undefined) throw new Error('restart: a variant did not report');
    rounds.push({ snapshot, replay, speedup: Math.round((replay.servingMs / snapshot.servingMs) * 100) / 100 });
  }
  return rounds;
}

/** Write load with and without snapshots being taken, alternating which goes first, `options.rounds` times. */
async function loadRounds(
  options: RestartOptions,
  dir: string,
  size: readonly string[],
): Promise<RestartReport['writesDuringSnapshot']['rounds'][number][]> {
  const rounds: RestartReport['writesDuringSnapshot']['rounds'][number][] = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? (['none', 'snapshot'] as const) : (['snapshot', 'none'] as const);
    const figures: Partial<Record<'snapshot' | 'none', LoadFigures>> = {};
    for (const variant of order) {
      figures[variant] = JSON.parse(await child(['load', dir, ...size, variant])) as LoadFigures;
      options.log(`restart: load round ${round + 1}, ${variant}: ${JSON.stringify(figures[variant])}`);
    }
    const { snapshot, none } = figures;
    if (snapshot === undefined || none === undefined) throw new Error('restart: a load variant did not report');
    rounds.push({ snapshot, none, p99Ratio: Math.round((snapshot.p99Ms / none.p99Ms) * 100) / 100 });
  }
  return rounds;
}

export async function runRestartBench(options: RestartOptions): Promise<RestartReport> {
  const dir = mkdtempSync(join(tmpdir(), 'dram-restart-'));
  const dirs = { snapshot: join(dir, 'snapshot'), replay: join(dir, 'replay') };
  const size = [String(options.keys), String(options.valueBytes)];
  try {
    const buildSeconds = { snapshot: 0, replay: 0 };
    for (const variant of ['snapshot', 'replay'] as const) {
      options.log(`restart: building ${options.keys} keys (${variant}) under ${dirs[variant]}`);
      const started = performance.now();
      await child(['build', dirs[variant], ...size, variant === 'snapshot' ? 'snapshot' : 'log']);
      buildSeconds[variant] = round1((performance.now() - started) / 1000);
    }
    const rounds = await restartRounds(options, dirs, size);
    const medianServingMs = {
      snapshot: median(rounds.map((r) => r.snapshot.servingMs)),
      replay: median(rounds.map((r) => r.replay.servingMs)),
    };
    const medianSpeedup = median(rounds.map((r) => r.speedup));
    const writeRounds = await loadRounds(options, dirs.snapshot, size);
    const medianP99Ratio = median(writeRounds.map((r) => r.p99Ratio));
    return {
      keys: options.keys,
      valueBytes: options.valueBytes,
      rounds,
      medianServingMs,
      medianSpeedup,
      buildSeconds,
      target: 'from snapshot >= 10x faster than full replay, and <= 2000 ms to serving',
      met: medianSpeedup >= 10 && medianServingMs.snapshot <= 2000,
      writesDuringSnapshot: {
        rounds: writeRounds,
        medianP99Ratio,
        target: 'write p99 while snapshots of the 1M-key shard are taken <= 1.5x the same load without',
        met: medianP99Ratio <= 1.5,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
