// The node-wide snapshot send limits: a byte rate over every group (a token bucket of one
// second's worth, refilled with time) and a bound on transfers under way at once.

import { describe, expect, it } from 'vitest';
import { asGroupId, asNodeId } from '../../src/base/ids.ts';
import { SnapshotSendLimiter, transferIdleMs } from '../../src/multiraft/snapshot-send-limiter.ts';

const [g1, g2] = [asGroupId(1), asGroupId(2)];
const [n2, n3] = [asNodeId(2), asNodeId(3)];

describe('snapshot send limits', () => {
  it('lets one second of bytes through, then as many as time refills', () => {
    let now = 0;
    const limiter = new SnapshotSendLimiter({ snapshotSendBytesPerSecMax: 1000, snapshotSendsMax: 0 }, () => now);
    expect(limiter.allow(g1, n2, 600)).toBe(true);
    expect(limiter.allow(g2, n3, 600)).toBe(false);
    now += 200;
    expect(limiter.allow(g2, n3, 600)).toBe(true);
    expect(limiter.allow(g1, n2, 1)).toBe(false);
    // A chunk larger than a second's worth still goes once the bucket is full.
    now += 5000;
    expect(limiter.allow(g1, n2, 3000)).toBe(true);
  });

  it('bounds the transfers under way; one that went idle gives its place up', () => {
    let now = 0;
    const limiter = new SnapshotSendLimiter({ snapshotSendBytesPerSecMax: 0, snapshotSendsMax: 1 }, () => now);
    expect(limiter.allow(g1, n2, 10)).toBe(true);
    expect(limiter.allow(g1, n3, 10)).toBe(false);
    now += transferIdleMs - 1;
    expect(limiter.allow(g1, n2, 10)).toBe(true);
    expect(limiter.allow(g2, n2, 10)).toBe(false);
    now += transferIdleMs;
    expect(limiter.allow(g2, n2, 10)).toBe(true);
    expect(limiter.transfersUnderWay()).toBe(1);
  });
});
