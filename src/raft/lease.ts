// The leader's read lease (raft.ts asks it; nothing else does). A lease read is served without a
// round of heartbeats while a quorum acknowledged a heartbeat sent less than leaseTicks ago. It is
// measured in the host's monotonic clock (nowTicks), never in tick counts: a stalled event loop
// drops ticks, and real time would then outrun the lease. Each heartbeat carries the tick count it
// was sent in; this file remembers when each recent count began, a safe (early) bound for when a
// heartbeat of that count left. See docs/ARCHITECTURE.md for the clock assumption (followers wait
// out electionTimeoutTicks of their own ticks, which never run fast).
//
// Invariant: only the counts a lease can still rest on (the last leaseTicks) are remembered; an
// older count reads as "long ago", so an old acknowledgement never extends a lease.

import type { NodeId } from '../base/ids.ts';
import { jointValue, type VoterSets } from './quorum.ts';

export class Lease {
  private readonly leaseTicks: number;
  /** When each recent tick count began (in nowTicks). */
  private readonly tickStartedAt = new Map<number, number>();
  /** Once TimeoutNow went out, another node may lead without waiting for this lease to lapse. */
  revoked = false;

  constructor(leaseTicks: number) {
    this.leaseTicks = leaseTicks;
  }

  /** A new leadership: no acknowledgement of an earlier one counts. */
  clear(): void {
    this.tickStartedAt.clear();
  }

  /** Remembers that tick count `clockTicks` began at `nowTicks`, and forgets counts too old to matter. */
  recordTickStart(clockTicks: number, nowTicks: number): void {
    const oldest = clockTicks - this.leaseTicks;
    this.tickStartedAt.set(clockTicks, nowTicks);
    this.tickStartedAt.delete(oldest);
    if (this.tickStartedAt.size > this.leaseTicks)
      for (const count of this.tickStartedAt.keys()) if (count <= oldest) this.tickStartedAt.delete(count);
  }

  /**
   * Whether the lease holds at `nowTicks`: the voters' quorum acknowledged heartbeats sent less
   * than leaseTicks before it. `ackedTickOf` gives the tick count of the newest heartbeat each
   * member acknowledged (undefined: none).
   */
  holds(
    voters: VoterSets,
    self: NodeId,
    clockTicks: number,
    nowTicks: number,
    ackedTickOf: (id: NodeId) => number | undefined,
  ): boolean {
    if (this.revoked) return false;
    const sentAt = jointValue(voters, (id) => {
      if (id === self) return nowTicks;
      const acked = ackedTickOf(id);
      // Counted in ticks too: a quiet spell (wake) pushes old acknowledgements out of the window.
      if (acked === undefined || acked <= clockTicks - this.leaseTicks) return -Infinity;
      return this.tickStartedAt.get(acked) ?? -Infinity;
    });
    return sentAt + this.leaseTicks > nowTicks;
  }
}
