// The leader's view of one member's replication: match and next indexes and the flow-control state.
//   probe:     one AppendEntries at a time until the follower's log position is found;
//   replicate: pipelined AppendEntries, bounded by the in-flight window;
//   snapshot:  the follower needs entries compacted away, so snapshot chunks go instead.
// Invariant: match < next, asserted after every transition and acknowledgement (kept on in
// production: a leader that lost track of a follower's log must stop, not send it wrong entries).

import { assert } from '../base/assert.ts';
import type { LogIndex, NodeId, Term } from '../base/ids.ts';
import { Inflights } from './inflights.ts';
import type { ProgressState } from './types.ts';

export interface SnapshotTransfer {
  readonly index: LogIndex;
  readonly term: Term;
  readonly totalBytes: number;
  /** RaftConfig.checksum of the snapshot's bytes, sent with every chunk (InstallSnapshot.snapshotChecksum). */
  readonly checksum: number;
  /** Nothing heard from the follower yet: one chunk at a time (it may hold part of these bytes already). */
  probing: boolean;
  /** Bytes sent (possibly not yet acknowledged) and acknowledged by the follower. */
  sentOffset: number;
  ackedOffset: number;
  /** ackedOffset when the leader last checked for a stalled transfer (at a heartbeat). */
  ackedOffsetAtCheck: number;
  /** The follower answered something since the last check. */
  heard: boolean;
  /** nextOffset of the newest InstallSnapshotResponse, in arrival order. */
  reportedOffset: number;
}

export class Progress {
  match: LogIndex = 0 as LogIndex;
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an AppendEntries is out and unanswered, so wait (until the next heartbeat). */
  probeSent = false;
  /** The highest commit index sent to this member (in AppendEntries or Heartbeat). */
  sentCommit: LogIndex = 0 as LogIndex;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The leader's tick at which it sent the newest heartbeat this member acknowledged (for the lease). */
  ackedTick = -Infinity;
  snapshot: SnapshotTransfer | undefined = undefined;
  /** The member has no state machine and needs a snapshot at or after this index (0: no). */
  snapshotNeededFrom: LogIndex = 0 as LogIndex;
  readonly inflights: Inflights;
  readonly id: NodeId;
  learner: boolean;

  constructor(id: NodeId, next: LogIndex, learner: boolean, inflightMessagesMax: number, inflightBytesMax: number) {
    this.id = id;
    this.learner = learner;
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
    this.checkIndexes();
  }

  private checkIndexes(): void {
    assert(
      this.match < this.next,
      `progress of ${this.id}: match ${this.match} not below next ${this.next} in ${this.state}`,
    );
  }

  becomeProbe(): void {
    if (this.state === 'snapshot' && this.snapshot !== undefined) {
      // The follower has (or is about to have) the snapshot: resume after it at the earliest.
      this.next = Math.max(this.match + 1, this.snapshot.index + 1) as LogIndex;
    } else {
      this.next = (this.match + 1) as LogIndex;
    }
    this.reset('probe');
    this.checkIndexes();
  }

  becomeReplicate(): void {
    this.next = (this.match + 1) as LogIndex;
    this.reset('replicate');
    this.checkIndexes();
  }

  becomeSnapshot(transfer: SnapshotTransfer): void {
    assert(
      transfer.ackedOffset <= transfer.sentOffset && transfer.sentOffset <= transfer.totalBytes,
      `progress of ${this.id}: snapshot transfer at acked ${transfer.ackedOffset}, sent ${transfer.sentOffset} of ${transfer.totalBytes}`,
    );
    this.reset('snapshot');
    this.snapshot = transfer;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  /** The follower acknowledged entries up to `index`; returns whether match advanced. */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = (index + 1) as LogIndex;
    this.checkIndexes();
    return updated;
  }

  /** The follower rejected an append at `rejected`; move next back using its hint. Returns false for a stale rejection. */
  maybeDecreaseTo(rejected: LogIndex, hintIndex: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = (this.match + 1) as LogIndex;
      this.checkIndexes();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hintIndex + 1), this.match + 1) as LogIndex;
    this.probeSent = false;
    this.checkIndexes();
    return true;
  }

  /** Whether the leader should hold back new AppendEntries to this member. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
