// The one bounded poll of the tests, benchmarks and fault harness: ask `probe` again and again
// until it answers a value, at most `tries` times (and, with `timeoutMs`, for at most that long),
// `everyMs` apart; then fail with what was awaited (and the probe's last error, when errors are
// retried). A probe answers `undefined` or `false` for "not yet". Every wait on a cluster, a host
// or a socket goes through here, so none can hang a run.

import { setTimeout as sleep } from 'node:timers/promises';

export type Probe<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface PollBounds {
  /** Probes at most (default 500). */
  readonly tries?: number;
  /** Pause between probes, ms (default 10). */
  readonly everyMs?: number;
  /** Also stop once this long has passed since the first probe, ms. */
  readonly timeoutMs?: number;
  /** A probe that throws counts as "not yet" (its last error is reported); by default it fails the poll at once. */
  readonly retryErrors?: boolean;
}

export async function eventually<T>(what: string, probe: Probe<T>, bounds: PollBounds = {}): Promise<T> {
  const { tries = 500, everyMs = 10, timeoutMs, retryErrors = false } = bounds;
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; attempt < tries && performance.now() <= deadline; attempt++) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (!retryErrors) throw error;
      lastError = error;
    }
    await sleep(everyMs);
  }
  const limit = timeoutMs === undefined ? `${tries} tries` : `${tries} tries or ${timeoutMs} ms`;
  const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`gave up after ${limit} waiting for ${what}${last}`);
}
