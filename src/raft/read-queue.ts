// Linearizable reads waiting on the leader (ReadIndex). Reads are batched into rounds: every read
// queued before the leader's next flush joins one round and shares one heartbeat broadcast. A member
// acknowledging round R also confirms every earlier round (it answered after all of them were sent),
// so the releasable round is the one a quorum has reached, computed with the same quorum math as
// the commit index. Invariant: rounds of queued reads never decrease along the queue.

import type { LogIndex, NodeId } from '../base/ids.ts';

export interface PendingRead {
  readonly requestId: number;
  /** The member whose client asked: the leader itself, or a follower that forwarded it. */
  readonly from: NodeId;
  /** Read index, set when the read joins a round (the leader's commit index then). */
  index: LogIndex;
  /** 0 until the read joins a round. */
  round: number;
}

export class ReadQueue {
  private queue: PendingRead[] = [];
  private lastRound = 0;
  private readonly ackedRound = new Map<NodeId, number>();

  get size(): number {
    return this.queue.length;
  }

  get latestRound(): number {
    return this.lastRound;
  }

  push(requestId: number, from: NodeId): void {
    this.queue.push({ requestId, from, index: 0 as LogIndex, round: 0 });
  }

  hasUnassigned(): boolean {
    const last = this.queue[this.queue.length - 1];
    return last !== undefined && last.round === 0;
  }

  /** Open a new round for every read not yet in one; returns the round number. */
  startRound(commit: LogIndex): number {
    this.lastRound++;
    for (const read of this.queue) {
      if (read.round === 0) {
        read.round = this.lastRound;
        read.index = commit;
      }
    }
    return this.lastRound;
  }

  acknowledge(from: NodeId, round: number): void {
    if (round > (this.ackedRound.get(from) ?? 0)) this.ackedRound.set(from, round);
  }

  ackedRoundOf(from: NodeId): number {
    return this.ackedRound.get(from) ?? 0;
  }

  /** Remove and return every read whose round is at or below `round`. */
  release(round: number): PendingRead[] {
    let count = 0;
    while (count < this.queue.length) {
      const read = this.queue[count];
      if (read === undefined || read.round === 0 || read.round > round) break;
      count++;
    }
    return count === 0 ? [] : this.queue.splice(0, count);
  }

  /** Remove and return everything (the leader stepped down). */
  drain(): PendingRead[] {
    const all = this.queue;
    this.queue = [];
    this.ackedRound.clear();
    return all;
  }
}
