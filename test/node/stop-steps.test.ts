// The node's stop is bounded (src/node/stop-steps.ts): its steps run in order; one that never
// finishes (a node removed from the cluster waiting on peers that refuse it, a request that never
// ends) cuts the stop short at gracefulStopMsMax, naming the step, and the steps after it do not
// run; a step that throws is reported and the stop goes on. Fake timers: no test waits for real.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { gracefulStopMsMax, runStopSteps, type StopStep } from '../../src/node/stop-steps.ts';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function recorder(): { ran: string[]; step: (name: string, run?: () => Promise<unknown>) => StopStep } {
  const ran: string[] = [];
  return {
    ran,
    step: (name, run) => ({
      name,
      run: () => {
        ran.push(name);
        return run?.() ?? undefined;
      },
    }),
  };
}

describe('runStopSteps', () => {
  it('runs every step in order and says stopped', async () => {
    const { ran, step } = recorder();
    const outcome = runStopSteps([
      step('http api', () => new Promise((resolve) => setTimeout(resolve, 50))),
      step('multi-raft host'),
      step('store', () => Promise.resolve()),
    ]);
    await vi.advanceTimersByTimeAsync(50);
    expect(await outcome).toEqual({ kind: 'stopped' });
    expect(ran).toEqual(['http api', 'multi-raft host', 'store']);
  });

  it('cuts the stop short at gracefulStopMsMax when a step never finishes, naming it, and runs nothing after it', async () => {
    const { ran, step } = recorder();
    let settled = false;
    const outcome = runStopSteps([
      step('http api'),
      step('peer transport', () => new Promise(() => undefined)),
      step('store'),
    ]).then((result) => {
      settled = true;
      return result;
    });
    await vi.advanceTimersByTimeAsync(gracefulStopMsMax - 1);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toEqual({ kind: 'cut_short', step: 'peer transport', timeoutMs: gracefulStopMsMax });
    expect(ran).toEqual(['http api', 'peer transport']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports a step that throws and goes on with the next', async () => {
    const { ran, step } = recorder();
    const errors: string[] = [];
    const outcome = await runStopSteps(
      [step('config backup', () => Promise.reject(new Error('bucket gone'))), step('store')],
      {
        onError: (name, error) => {
          errors.push(`${name}: ${(error as Error).message}`);
        },
      },
    );
    expect(outcome).toEqual({ kind: 'stopped' });
    expect(errors).toEqual(['config backup: bucket gone']);
    expect(ran).toEqual(['config backup', 'store']);
  });
});
