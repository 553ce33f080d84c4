// Reconnect delays: exponential in the number of consecutive failed attempts, capped, with jitter
// so that nodes restarted together do not dial in lockstep. The random source is passed in so tests
// (and seeded runs) can pin it. Called by src/transport/peer-transport.ts.

import { assert } from '../base/assert.ts';

/** Beyond this, doubling cannot raise the delay above any sane cap; it also keeps 2^n finite. */
const doublingsMax = 30;

/**
 * The delay before attempt number `failedAttempts + 1`: the ceiling doubles from `delayMsMin` per
 * failure up to `delayMsMax`, and the delay is drawn uniformly from the upper half of the ceiling
 * ("equal jitter"), never below `delayMsMin`.
 */
export function reconnectDelayMs(
  failedAttempts: number,
  delayMsMin: number,
  delayMsMax: number,
  random: () => number,
): number {
  assert(failedAttempts >= 1, 'a reconnect follows at least one failure');
  const ceilingMs = Math.min(delayMsMax, delayMsMin * 2 ** Math.min(failedAttempts - 1, doublingsMax));
  const draw = Math.min(Math.max(random(), 0), 1);
  return Math.max(delayMsMin, Math.round(ceilingMs * (0.5 + 0.5 * draw)));
}
