// progress.ts: probe/replicate/snapshot transitions, maybeUpdate, maybeDecreaseTo (stale, hint, replicate fallback), isPaused.

import { describe, expect, it } from 'vitest';
import { Progress, type SnapshotTransfer } from '../../../src/raft/progress.ts';
import { idx, nid, trm } from './helpers.ts';

function progress(opts: {
  match?: number;
  next: number;
  state?: 'probe' | 'replicate';
  inflightMax?: number;
  bytesMax?: number;
}): Progress {
  const pr = new Progress(nid(2), idx(opts.next), false, opts.inflightMax ?? 4, opts.bytesMax ?? 0);
  pr.match = idx(opts.match ?? 0);
  if (opts.state === 'replicate') {
    pr.state = 'replicate';
  }
  return pr;
}

function transfer(index: number): SnapshotTransfer {
  return {
    index: idx(index),
    term: trm(2),
    totalBytes: 100,
    checksum: 0,
    probing: false,
    sentOffset: 0,
    ackedOffset: 0,
    ackedOffsetAtCheck: 0,
    heard: false,
    reportedOffset: 0,
  };
}

describe('Progress: construction', () => {
  it('starts probing with match 0', () => {
    const pr = new Progress(nid(3), idx(7), true, 8, 1024);
    expect(pr.id).toBe(3);
    expect(pr.learner).toBe(true);
    expect(pr.match).toBe(0);
    expect(pr.next).toBe(7);
    expect(pr.state).toBe('probe');
    expect(pr.probeSent).toBe(false);
    expect(pr.recentActive).toBe(false);
    expect(pr.snapshot).toBeUndefined();
    expect(pr.inflights.messagesMax).toBe(8);
    expect(pr.inflights.bytesMax).toBe(1024);
    expect(pr.isPaused()).toBe(false);
  });
});

describe('Progress: state transitions', () => {
  it('becomeReplicate sets next to match + 1 and clears probe and inflights', () => {
    const pr = progress({ match: 5, next: 9 });
    pr.probeSent = true;
    pr.inflights.add(8, 1);
    pr.becomeReplicate();
    expect(pr.state).toBe('replicate');
    expect(pr.next).toBe(6);
    expect(pr.probeSent).toBe(false);
    expect(pr.inflights.count).toBe(0);
  });

  it('becomeProbe from replicate sets next to match + 1 and drops the window', () => {
    const pr = progress({ match: 5, next: 12 });
    pr.becomeReplicate();
    pr.next = idx(12);
    pr.inflights.add(9, 1);
    pr.inflights.add(11, 1);
    pr.becomeProbe();
    expect(pr.state).toBe('probe');
    expect(pr.next).toBe(6);
    expect(pr.inflights.count).toBe(0);
    expect(pr.probeSent).toBe(false);
  });

  it('becomeSnapshot records the transfer, keeps next and pauses', () => {
    const pr = progress({ match: 3, next: 4 });
    pr.probeSent = true;
    const t = transfer(20);
    pr.becomeSnapshot(t);
    expect(pr.state).toBe('snapshot');
    expect(pr.snapshot).toBe(t);
    expect(pr.probeSent).toBe(false);
    expect(pr.next).toBe(4);
    expect(pr.isPaused()).toBe(true);
  });

  it('becomeProbe after a snapshot resumes after the snapshot index at the earliest', () => {
    const pr = progress({ match: 3, next: 4 });
    pr.becomeSnapshot(transfer(20));
    pr.becomeProbe();
    expect(pr.state).toBe('probe');
    expect(pr.next).toBe(21);
    expect(pr.snapshot).toBeUndefined();

    const ahead = progress({ match: 3, next: 4 });
    ahead.becomeSnapshot(transfer(20));
    ahead.maybeUpdate(idx(25)); // the follower turned out to be further along
    ahead.becomeProbe();
    expect(ahead.next).toBe(26);
  });

  it('becomeReplicate after a snapshot clears it', () => {
    const pr = progress({ match: 3, next: 4 });
    pr.becomeSnapshot(transfer(20));
    pr.maybeUpdate(idx(20));
    pr.becomeReplicate();
    expect(pr.snapshot).toBeUndefined();
    expect(pr.next).toBe(21);
    expect(pr.isPaused()).toBe(false);
  });
});

describe('Progress.maybeUpdate', () => {
  it('advances match and next, and unpauses a probe', () => {
    const pr = progress({ match: 2, next: 5 });
    pr.probeSent = true;
    expect(pr.maybeUpdate(idx(4))).toBe(true);
    expect(pr.match).toBe(4);
    expect(pr.next).toBe(5);
    expect(pr.probeSent).toBe(false);
    expect(pr.maybeUpdate(idx(7))).toBe(true);
    expect(pr.match).toBe(7);
    expect(pr.next).toBe(8);
  });

  it('ignores an old or equal index (but never lets next fall to match)', () => {
    const pr = progress({ match: 5, next: 9 });
    pr.probeSent = true;
    expect(pr.maybeUpdate(idx(5))).toBe(false);
    expect(pr.maybeUpdate(idx(3))).toBe(false);
    expect(pr.match).toBe(5);
    expect(pr.next).toBe(9);
    expect(pr.probeSent).toBe(true);
  });

  it('keeps match < next', () => {
    const pr = progress({ match: 0, next: 1 });
    for (const index of [3, 1, 8, 8, 2, 10]) {
      pr.maybeUpdate(idx(index));
      expect(pr.match).toBeLessThan(pr.next);
    }
    expect(pr.match).toBe(10);
    expect(pr.next).toBe(11);
  });
});

describe('Progress.maybeDecreaseTo', () => {
  it('replicate: a rejection at or below match is stale', () => {
    const pr = progress({ match: 5, next: 10, state: 'replicate' });
    expect(pr.maybeDecreaseTo(idx(5), idx(0))).toBe(false);
    expect(pr.maybeDecreaseTo(idx(2), idx(0))).toBe(false);
    expect(pr.next).toBe(10);
  });

  it('replicate: a fresh rejection falls back to match + 1, ignoring the hint', () => {
    const pr = progress({ match: 5, next: 10, state: 'replicate' });
    expect(pr.maybeDecreaseTo(idx(8), idx(7))).toBe(true);
    expect(pr.next).toBe(6);
  });

  it('probe: only a rejection of the last probe (next - 1) counts', () => {
    const pr = progress({ match: 0, next: 10 });
    pr.probeSent = true;
    expect(pr.maybeDecreaseTo(idx(8), idx(2))).toBe(false);
    expect(pr.maybeDecreaseTo(idx(10), idx(2))).toBe(false);
    expect(pr.next).toBe(10);
    expect(pr.probeSent).toBe(true);
  });

  it('probe: uses the hint, capped at the rejected index, and unpauses', () => {
    const pr = progress({ match: 0, next: 10 });
    pr.probeSent = true;
    expect(pr.maybeDecreaseTo(idx(9), idx(4))).toBe(true);
    expect(pr.next).toBe(5);
    expect(pr.probeSent).toBe(false);
    // A hint at or beyond the rejected index cannot move next forward.
    expect(pr.maybeDecreaseTo(idx(4), idx(20))).toBe(true);
    expect(pr.next).toBe(4);
  });

  it('probe: never goes below match + 1', () => {
    const pr = progress({ match: 6, next: 10 });
    expect(pr.maybeDecreaseTo(idx(9), idx(0))).toBe(true);
    expect(pr.next).toBe(7);
  });

  it('probe: the next probe rejected at index 1 with hint 0 goes to 1', () => {
    const pr = progress({ match: 0, next: 2 });
    expect(pr.maybeDecreaseTo(idx(1), idx(0))).toBe(true);
    expect(pr.next).toBe(1);
  });
});

describe('Progress.isPaused', () => {
  it('probe: paused while a probe is unanswered', () => {
    const pr = progress({ next: 1 });
    expect(pr.isPaused()).toBe(false);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    pr.maybeUpdate(idx(1));
    expect(pr.isPaused()).toBe(false);
  });

  it('replicate: paused while the in-flight window is full (by count or bytes)', () => {
    const pr = progress({ next: 1, inflightMax: 2, bytesMax: 100 });
    pr.becomeReplicate();
    pr.probeSent = true; // irrelevant in replicate
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(1, 10);
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(2, 10);
    expect(pr.isPaused()).toBe(true);
    pr.inflights.freeLE(1);
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(3, 90);
    expect(pr.inflights.count).toBe(2);
    pr.inflights.freeLE(2);
    expect(pr.inflights.count).toBe(1);
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(4, 10); // 100 bytes: full by bytes
    pr.inflights.freeFirstOne();
    expect(pr.inflights.bytesInFlight).toBe(10);
    pr.inflights.add(5, 95);
    expect(pr.isPaused()).toBe(true);
  });

  it('snapshot: always paused', () => {
    const pr = progress({ next: 1 });
    pr.becomeSnapshot(transfer(5));
    expect(pr.isPaused()).toBe(true);
  });
});
