// The production HostClock: Node's monotonic clock (performance.now) and timers. The simulator
// has its own (test/sim/), which is why the host never calls these directly.

import { performance } from 'node:perf_hooks';
import type { HostClock, TimerHandle } from './ports.ts';

export const systemClock: HostClock = {
  nowMs: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  setRepeating: (callback, intervalMs) => setInterval(callback, intervalMs),
  clearTimer: (handle: TimerHandle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
  defer: (callback) => {
    setImmediate(callback);
  },
};
