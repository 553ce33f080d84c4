// The load side of the cluster benchmark, the same for dram and for etcd: a system under test is
// a `WriteTarget` (write one key with a per-request timeout, read it back), and the phases here
// drive it — one client writing sequentially, N clients writing for a fixed time (closed loop: each
// client waits for its answer before the next write), and a background writer that records when
// each write started and ended (for the failover and transfer phases). Every loop is bounded in
// time and in count; written values are read back and compared.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../test/support/poll.ts';

export const valueBytes = 256;

export type WriteOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface WriteTarget {
  readonly name: string;
  write(key: string, value: Uint8Array, timeoutMs: number): Promise<WriteOutcome>;
  /** The value as a linearizable read sees it now; undefined when the key is absent. */
  read(key: string): Promise<Uint8Array | undefined>;
}

/** A 256-byte value that names its writer and sequence number (so a read-back proves which write won). */
export function makeValue(tag: string, client: number, seq: number): Uint8Array {
  const value = Buffer.alloc(valueBytes, 0x2e);
  value.write(`${tag}:${client}:${seq}:`, 0, 'latin1');
  return value;
}

/** Nearest-rank percentile of an ascending array, in the array's unit. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function countError(errors: Record<string, number>, error: string): void {
  errors[error] = (errors[error] ?? 0) + 1;
}

/**
 * Reads back (up to `sampleMax` of) the keys whose last write is known and compares the bytes.
 * Keys with a write of unknown outcome (timeout, indeterminate) are left out by the callers.
 */
export async function verifyReadBack(
  target: WriteTarget,
  written: ReadonlyMap<string, Uint8Array>,
  sampleMax = 64,
): Promise<number> {
  let checked = 0;
  for (const [key, expected] of written) {
    if (checked >= sampleMax) break;
    const actual = await target.read(key);
    if (actual === undefined)
      throw new Error(`${target.name}: read-back of ${key}: key not found after a successful write`);
    if (!Buffer.from(actual).equals(Buffer.from(expected))) {
      throw new Error(
        `${target.name}: read-back of ${key}: got "${Buffer.from(actual).subarray(0, 32).toString('latin1')}...", expected "${Buffer.from(expected).subarray(0, 32).toString('latin1')}..."`,
      );
    }
    checked++;
  }
  if (checked === 0) throw new Error(`${target.name}: nothing to read back (no write succeeded)`);
  return checked;
}

export interface SequentialResult {
  readonly writes: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly verified: number;
}

/** One client, one write at a time: `warmup` writes not timed, then `count` timed ones. */
export async function runSequential(
  target: WriteTarget,
  keys: readonly string[],
  options: { readonly warmup: number; readonly count: number; readonly timeoutMs: number; readonly deadlineMs: number },
): Promise<SequentialResult> {
  const latencies: number[] = [];
  const written = new Map<string, Uint8Array>();
  const errors: Record<string, number> = {};
  let errorCount = 0;
  const deadline = performance.now() + options.deadlineMs;
  for (let k = 0; k < options.warmup + options.count && performance.now() < deadline; k++) {
    const key = keys[k % keys.length] ?? 'seq';
    const value = makeValue(`${target.name}-seq`, 0, k);
    const started = performance.now();
    const outcome = await target.write(key, value, options.timeoutMs);
    const elapsed = performance.now() - started;
    if (outcome.ok) written.set(key, value);
    else {
      written.delete(key);
      countError(errors, outcome.error);
    }
    if (k < options.warmup) continue;
    if (outcome.ok) latencies.push(elapsed);
    else errorCount++;
  }
  if (latencies.length < options.count)
    throw new Error(
      `${target.name}: sequential: only ${latencies.length} of ${options.count} timed writes succeeded before the deadline (errors: ${JSON.stringify(errors)})`,
    );
  const verified = await verifyReadBack(target, written);
  latencies.sort((a, b) => a - b);
  return {
    writes: latencies.length,
    errors: errorCount,
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
    meanMs: round(latencies.reduce((sum, x) => sum + x, 0) / latencies.length, 3),
    verified,
  };
}

export interface LoadResult {
  readonly clients: number;
  readonly seconds: number;
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly errorKinds: Record<string, number>;
  readonly verified: number;
}

/** A closed-loop load: how many clients, their keys, and how long. */
export interface LoadShape {
  readonly clients: number;
  readonly keysOf: (client: number) => readonly string[];
  readonly warmupMs: number;
  readonly durationMs: number;
}

/**
 * `clients` closed-loop writers for `warmupMs + durationMs`; the figures count the writes that
 * completed inside the last `durationMs`. Each client writes its own keys, so the last value of a
 * key is known unless a write of it failed (then the key is not read back).
 */
export async function runLoad(
  target: WriteTarget,
  options: LoadShape & { readonly timeoutMs: number },
): Promise<LoadResult> {
  const written = new Map<string, Uint8Array>();
  const uncertain = new Set<string>();
  const { latencies, errors, errorKinds } = await closedLoop(options, async (id, k) => {
    const keys = options.keysOf(id);
    const key = keys[k % keys.length] ?? `c${id}`;
    const value = makeValue(`${target.name}-load`, id, k);
    const outcome = await target.write(key, value, options.timeoutMs);
    if (!outcome.ok) {
      uncertain.add(key);
      return outcome.error;
    }
    written.set(key, value);
    return undefined;
  });
  for (const key of uncertain) written.delete(key);
  const verified = await verifyReadBack(target, written);
  return loadResultOf(options, latencies, { errors, errorKinds, verified });
}

/**
 * `clients` closed loops of `operation` (which answers an error, or undefined on success) for
 * `warmupMs + durationMs`; the latencies and errors of the operations that completed inside the
 * last `durationMs`. After an error a loop pauses 1 ms (no hot spin against a refusing server).
 */
async function closedLoop(
  options: { readonly clients: number; readonly warmupMs: number; readonly durationMs: number },
  operation: (client: number, k: number) => Promise<string | undefined>,
): Promise<{ latencies: number[]; errors: number; errorKinds: Record<string, number> }> {
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let errors = 0;
  const measureFrom = performance.now() + options.warmupMs;
  const end = measureFrom + options.durationMs;
  // A generous bound on operations per client: far above anything a closed loop reaches in this time.
  const operationsPerClientMax = Math.ceil((options.warmupMs + options.durationMs) * 50);
  const client = async (id: number): Promise<void> => {
    for (let k = 0; k < operationsPerClientMax; k++) {
      const started = performance.now();
      if (started >= end) return;
      const error = await operation(id, k);
      const finished = performance.now();
      const counted = finished >= measureFrom && finished <= end;
      if (error === undefined) {
        if (counted) latencies.push(finished - started);
        continue;
      }
      if (counted) {
        errors++;
        countError(errorKinds, error);
      }
      await sleep(1);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, id) => client(id)));
  return { latencies, errors, errorKinds };
}

/** The figures of a closed-loop load from its latencies (sorted here). */
function loadResultOf(
  options: { readonly clients: number; readonly durationMs: number },
  latencies: number[],
  counts: Pick<LoadResult, 'errors' | 'errorKinds' | 'verified'>,
): LoadResult {
  latencies.sort((a, b) => a - b);
  const seconds = options.durationMs / 1000;
  return {
    clients: options.clients,
    seconds,
    writes: latencies.length,
    writesPerSecond: Math.round(latencies.length / seconds),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
    ...counts,
  };
}

/**
 * `clients` closed-loop readers of their keys (which must hold values) for `warmupMs +
 * durationMs`, through `target.read` (linearizable); the figures count the reads that completed
 * inside the last `durationMs` (in LoadResult's `writes`, `writesPerSecond`: operations). A read
 * that fails or finds no value is an error; nothing is read back.
 */
export async function runReadLoad(target: WriteTarget, options: LoadShape): Promise<LoadResult> {
  const { latencies, errors, errorKinds } = await closedLoop(options, async (id, k) => {
    const keys = options.keysOf(id);
    try {
      return (await target.read(keys[k % keys.length] ?? `c${id}`)) === undefined ? 'absent' : undefined;
    } catch (thrown) {
      return thrown instanceof Error ? thrown.message.slice(0, 80) : 'error';
    }
  });
  return loadResultOf(options, latencies, { errors, errorKinds, verified: 0 });
}

export interface WriteSpan {
  readonly startedMs: number;
  readonly endedMs: number;
}

/** A background writer: one key, one write at a time, until stopped or `maxMs` has passed. */
export class BackgroundWriter {
  readonly successes: WriteSpan[] = [];
  /** Every write that failed, with its error, so a report can say what filled a gap. */
  readonly failures: (WriteSpan & { readonly error: string })[] = [];
  readonly errorKinds: Record<string, number> = {};
  private stopped = false;
  private readonly done: Promise<void>;
  private lastOk: { key: string; value: Uint8Array } | undefined;
  private lastUncertain = false;

  constructor(
    target: WriteTarget,
    key: string,
    options: { readonly timeoutMs: number; readonly maxMs: number; readonly pauseAfterErrorMs: number },
  ) {
    this.done = (async () => {
      const deadline = performance.now() + options.maxMs;
      const writesMax = options.maxMs * 100; // far above what one sequential client reaches
      for (let k = 0; k < writesMax && !this.stopped && performance.now() < deadline; k++) {
        const value = makeValue(`${target.name}-bg`, 0, k);
        const startedMs = performance.now();
        const outcome = await target.write(key, value, options.timeoutMs);
        const endedMs = performance.now();
        if (outcome.ok) {
          this.successes.push({ startedMs, endedMs });
          this.lastOk = { key, value };
          this.lastUncertain = false;
        } else {
          countError(this.errorKinds, outcome.error);
          this.failures.push({ startedMs, endedMs, error: outcome.error });
          this.lastUncertain = true;
          if (options.pauseAfterErrorMs > 0) await sleep(options.pauseAfterErrorMs);
        }
      }
    })();
  }

  /** The first write started at or after `ms` that succeeded, if any yet. */
  firstSuccessStartedAfter(ms: number): WriteSpan | undefined {
    return this.successes.find((span) => span.startedMs >= ms);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** The key and value of the last write, when its outcome is known to be success. */
  lastKnown(): { key: string; value: Uint8Array } | undefined {
    return this.lastUncertain ? undefined : this.lastOk;
  }
}

/** The longest time between two consecutive successful completions with the later one in [fromMs, toMs]. */
export function longestGap(successes: readonly WriteSpan[], fromMs: number, toMs: number): number {
  let longest = 0;
  for (let k = 1; k < successes.length; k++) {
    const previous = successes[k - 1];
    const current = successes[k];
    if (previous === undefined || current === undefined) continue;
    if (current.endedMs < fromMs || current.endedMs > toMs) continue;
    longest = Math.max(longest, current.endedMs - previous.endedMs);
  }
  return longest;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Polls `probe` until it returns a value, every `everyMs`, for at most `timeoutMs`. */
export function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  return eventually(what, probe, { tries: 100_000, everyMs, timeoutMs, retryErrors: true });
}

/**
 * The value of key k: pseudo-random (xorshift32 seeded by k), so LevelDB's compression does not
 * shrink the data below what real values would take, and deterministic, so a restart can check
 * every value without keeping them.
 */
export function valueOf(k: number, valueBytes: number): Uint8Array {
  const value = new Uint8Array(valueBytes);
  let state = (k + 1) * 0x9e3779b1;
  for (let i = 0; i < valueBytes; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    value[i] = state & 0xff;
  }
  return value;
}
