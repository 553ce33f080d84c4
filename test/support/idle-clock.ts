// A host clock whose timers never fire: for tests that drive a controller's tick() by hand.

import type { HostClock } from '../../src/multiraft/ports.ts';

export const idleClock: HostClock = {
  nowMs: () => 0,
  setTimer: () => ({}),
  setRepeating: () => ({}),
  clearTimer: () => undefined,
  defer: () => undefined,
};
