// The node-wide limits on sending snapshots to followers (issue 13, catch-up): at most
// snapshotSendBytesPerSecMax bytes of InstallSnapshot chunks per second over every group (a token
// bucket holding one second's worth, and at least one chunk), and at most snapshotSendsMax
// transfers at once (a (group, follower) pair counts as one from its first chunk until it sent
// nothing for transferIdleMs). The core asks before each chunk (RaftConfig.snapshotSendGate); a
// chunk refused here is offered again later (with the next acknowledgement, or at a heartbeat
// once the transfer stalled), so catching up a follower slows down but never stops, and the
// node's other groups keep their bandwidth.
//
// Owned by the multi-Raft host, one per node; time comes from the host's clock.

import { assert } from '../base/assert.ts';
import type { GroupId, NodeId } from '../base/ids.ts';

export interface SnapshotSendLimits {
  /** Bytes of snapshot chunks sent per second over every group (0: no limit). */
  readonly snapshotSendBytesPerSecMax: number;
  /** Snapshot transfers under way at once over every group (0: no limit). */
  readonly snapshotSendsMax: number;
}

export const snapshotSendDefaults: SnapshotSendLimits = { snapshotSendBytesPerSecMax: 0, snapshotSendsMax: 0 };

/** A transfer that sent nothing for this long no longer counts against snapshotSendsMax. */
export const transferIdleMs = 2_000;

export class SnapshotSendLimiter {
  private readonly limits: SnapshotSendLimits;
  private readonly nowMs: () => number;
  private tokens: number;
  private refilledAtMs: number;
  /** When each transfer under way last sent a chunk, by `group/follower`. */
  private readonly transfers = new Map<string, number>();

  constructor(limits: SnapshotSendLimits, nowMs: () => number) {
    for (const [name, value] of Object.entries(limits))
      assert(Number.isSafeInteger(value) && value >= 0, `host: ${name} must be a non-negative integer, got ${value}`);
    this.limits = limits;
    this.nowMs = nowMs;
    this.tokens = limits.snapshotSendBytesPerSecMax;
    this.refilledAtMs = nowMs();
  }

  /** Whether a chunk of `bytes` may go to `to` for `group` now; if so, it is counted. */
  allow(group: GroupId, to: NodeId, bytes: number): boolean {
    const now = this.nowMs();
    const key = `${group}/${to}`;
    if (this.limits.snapshotSendsMax > 0 && !this.transfers.has(key)) {
      for (const [other, lastMs] of this.transfers) if (now - lastMs >= transferIdleMs) this.transfers.delete(other);
      if (this.transfers.size >= this.limits.snapshotSendsMax) return false;
    }
    const rate = this.limits.snapshotSendBytesPerSecMax;
    if (rate > 0) {
      // One second's worth at most, but always room for the chunk at hand (a chunk may be larger).
      const capacity = Math.max(rate, bytes);
      this.tokens = Math.min(capacity, this.tokens + ((now - this.refilledAtMs) * rate) / 1000);
      this.refilledAtMs = now;
      if (this.tokens < bytes) return false;
      this.tokens -= bytes;
    }
    this.transfers.set(key, now);
    assert(
      this.limits.snapshotSendsMax === 0 || this.transfers.size <= this.limits.snapshotSendsMax,
      'host: more snapshot transfers than snapshotSendsMax',
    );
    return true;
  }

  /** Transfers counted as under way (for tests and status). */
  transfersUnderWay(): number {
    return this.transfers.size;
  }
}
