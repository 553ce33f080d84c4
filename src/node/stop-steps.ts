// A node's graceful stop, bounded: its steps (the API drains, the host answers what waits, the
// transport flushes, the store closes, ...) run one after another, and the whole sequence gets
// `gracefulStopMsMax`. A step that has not finished by then cuts the stop short: the caller learns
// which step held it (for the log line) and exits anyway, as after a crash; the store is
// crash-safe (every turn's batch is synced), so nothing acknowledged is lost. Without the bound a
// node that waits on something that never comes (a peer that refuses it, a request that never
// ends) lingers after SIGTERM: a node removed from the cluster once took 77 s to stop.
//
// Called by: src/node/node.ts (stopNode).

/** How long a graceful stop may take before it is cut short. */
export const gracefulStopMsMax = 10_000;

export interface StopStep {
  /** Named in the log line when the stop is cut short here. */
  readonly name: string;
  readonly run: () => Promise<unknown> | undefined;
}

export type StopOutcome =
  | { readonly kind: 'stopped' }
  /** `step` had not finished `timeoutMs` after the stop began; the steps after it did not run. */
  | { readonly kind: 'cut_short'; readonly step: string; readonly timeoutMs: number };

/** The timers the bound uses (fake ones in tests). */
export interface StopTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimers: StopTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Runs `steps` in order within `timeoutMs`; a step that throws is reported through `onError` and the next one runs. */
export async function runStopSteps(
  steps: readonly StopStep[],
  options: {
    readonly timeoutMs?: number;
    readonly timers?: StopTimers;
    readonly onError?: (step: string, error: unknown) => void;
    /** Told as each step begins (the log says where a slow stop waits). */
    readonly onStep?: (step: string) => void;
  } = {},
): Promise<StopOutcome> {
  const timeoutMs = options.timeoutMs ?? gracefulStopMsMax;
  const timers = options.timers ?? systemTimers;
  // Read by the sequence after each await: the steps after the one the deadline cut short do not run.
  const progress = { current: steps[0]?.name ?? '', expired: false };
  const sequence = (async () => {
    for (const step of steps) {
      if (progress.expired) return;
      progress.current = step.name;
      options.onStep?.(step.name);
      try {
        await step.run();
      } catch (error) {
        options.onError?.(step.name, error);
      }
    }
  })();
  let handle: unknown;
  const deadline = new Promise<'expired'>((resolve) => {
    handle = timers.setTimeout(() => {
      resolve('expired');
    }, timeoutMs);
  });
  const first = await Promise.race([sequence.then(() => 'done' as const), deadline]);
  timers.clearTimeout(handle);
  if (first === 'done') return { kind: 'stopped' };
  progress.expired = true;
  return { kind: 'cut_short', step: progress.current, timeoutMs };
}
