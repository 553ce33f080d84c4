// The core's view of its log: what storage holds (stable) plus what the core appended but the host
// has not yet persisted (unstable: entries, or a snapshot received from the leader). Also the commit
// and apply cursors. Invariants: applied <= applying <= committed <= lastIndex;
// unstable.entries are contiguous from unstable.offset; an unstable snapshot, if any, sits at
// unstable.offset - 1. The cursors' order is asserted after every change of a cursor or of the
// log's end (checkCursors), kept on in production: a log that broke it would apply or acknowledge
// entries it must not.

import { assert } from '../base/assert.ts';
import type { LogIndex, Term } from '../base/ids.ts';
import { entryBytes, type LogStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';

export class RaftLog {
  /** Entries not yet persisted, starting at `unstableOffset`. */
  private unstable: Entry[] = [];
  private unstableOffset: LogIndex;
  unstableSnapshot: Snapshot | undefined = undefined;
  committed: LogIndex;
  /** Highest index handed out to the host for applying (in a Ready not yet advanced). */
  applying: LogIndex;
  applied: LogIndex;

  readonly storage: LogStorage;

  constructor(storage: LogStorage) {
    this.storage = storage;
    // The snapshot's index, not firstIndex - 1: storage may keep a tail of entries behind it.
    const snapshotIndex = storage.snapshot().meta.index;
    this.unstableOffset = (storage.lastIndex() + 1) as LogIndex;
    this.committed = snapshotIndex;
    this.applied = snapshotIndex;
    this.applying = this.applied;
    this.checkCursors();
  }

  /** applied <= applying <= committed <= lastIndex. */
  private checkCursors(): void {
    const last = this.lastIndex();
    assert(
      this.applied <= this.applying && this.applying <= this.committed && this.committed <= last,
      `log: cursors out of order: applied ${this.applied}, applying ${this.applying}, committed ${this.committed}, last ${last}`,
    );
  }

  /** The index of the latest snapshot, stored or still unstable. */
  snapshotIndex(): LogIndex {
    return this.unstableSnapshot?.meta.index ?? this.storage.snapshot().meta.index;
  }

  firstIndex(): LogIndex {
    if (this.unstableSnapshot !== undefined) return (this.unstableSnapshot.meta.index + 1) as LogIndex;
    return this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    if (this.unstable.length > 0) return (this.unstableOffset + this.unstable.length - 1) as LogIndex;
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  lastTerm(): Term {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, 'log: last term unknown');
    return term;
  }

  /** Term at `index`, or undefined if compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index >= this.unstableOffset) return this.unstable[index - this.unstableOffset]?.term;
    if (this.unstableSnapshot !== undefined) {
      if (index === this.unstableSnapshot.meta.index) return this.unstableSnapshot.meta.term;
      return undefined;
    }
    return this.storage.term(index);
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [low, high), limited by bytes (at least one). undefined if low is compacted away. */
  slice(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] | undefined {
    if (low >= high) return [];
    if (low < this.firstIndex()) return undefined;
    assert(high <= this.lastIndex() + 1, `log: slice [${low}, ${high}) beyond last ${this.lastIndex()}`);
    const result: Entry[] = [];
    let bytes = 0;
    if (low < this.unstableOffset) {
      const stable = this.storage.entries(low, Math.min(high, this.unstableOffset) as LogIndex, bytesMax);
      for (const entry of stable) {
        bytes += entryBytes(entry);
        result.push(entry);
      }
      if (result.length < Math.min(high, this.unstableOffset) - low) return result;
    }
    for (let index = Math.max(low, this.unstableOffset); index < high; index++) {
      const entry = this.unstable[index - this.unstableOffset];
      assert(entry !== undefined, 'log: unstable hole');
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** Append entries the leader created; they are contiguous after lastIndex. */
  appendNew(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index === this.lastIndex() + 1, 'log: appendNew must continue the log');
    this.truncateAndAppend(entries);
    this.checkCursors();
  }

  /**
   * Follower side of AppendEntries: if the log matches at (prevIndex, prevTerm), append the new
   * entries (dropping a conflicting suffix), advance commit, and return the last new index.
   */
  maybeAppend(prevIndex: LogIndex, prevTerm: Term, commit: LogIndex, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = (prevIndex + entries.length) as LogIndex;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `log: entry ${conflict} conflicts with committed ${this.committed}`);
      this.truncateAndAppend(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew) as LogIndex);
    this.checkCursors();
    return lastNew;
  }

  /** The first index whose term differs from ours or that we lack; 0 if all match. */
  private findConflict(entries: readonly Entry[]): LogIndex {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0 as LogIndex;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`. A leader's rejected
   * probe at (index, term) skips every index in between, one round trip per term instead of per entry.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    let at = Math.min(index, this.lastIndex()) as LogIndex;
    for (;;) {
      const ourTerm = this.term(at);
      if (ourTerm === undefined) return { index: at, term: 0 as Term };
      if (ourTerm <= term) return { index: at, term: ourTerm };
      at = (at - 1) as LogIndex;
    }
  }

  private truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.unstableOffset + this.unstable.length) {
      for (const entry of entries) this.unstable.push(entry);
    } else if (after <= this.unstableOffset) {
      // Replaces everything unstable (and persisted entries from `after` on, when the host writes it).
      this.unstableOffset = after;
      this.unstable = [...entries];
    } else {
      this.unstable = this.unstable.slice(0, after - this.unstableOffset);
      for (const entry of entries) this.unstable.push(entry);
    }
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
    this.checkCursors();
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable;
  }

  /** The host persisted entries through (index, term): drop them from unstable. */
  stableTo(index: LogIndex, term: Term): void {
    if (index < this.unstableOffset || this.term(index) !== term) return;
    this.unstable = this.unstable.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = (index + 1) as LogIndex;
    this.checkCursors();
  }

  stableSnapshotTo(index: LogIndex): void {
    if (this.unstableSnapshot?.meta.index === index) this.unstableSnapshot = undefined;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying && this.unstableSnapshot === undefined;
  }

  /** Committed entries not yet handed out, up to bytesMax (at least one). */
  nextCommittedEntries(bytesMax: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice((this.applying + 1) as LogIndex, (this.committed + 1) as LogIndex, bytesMax) ?? [];
  }

  acceptApplying(index: LogIndex): void {
    assert(index <= this.committed, 'log: applying beyond commit');
    if (index > this.applying) this.applying = index;
    this.checkCursors();
  }

  appliedTo(index: LogIndex): void {
    assert(index <= this.committed, `log: applied ${index} beyond commit ${this.committed}`);
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
    this.checkCursors();
  }

  /** Replace the log with a snapshot (follower install). */
  restore(snapshot: Snapshot): void {
    this.unstableSnapshot = snapshot;
    this.unstable = [];
    this.unstableOffset = (snapshot.meta.index + 1) as LogIndex;
    this.committed = snapshot.meta.index;
    this.applied = snapshot.meta.index;
    this.applying = snapshot.meta.index;
    this.checkCursors();
  }

  /** Lowest index an unstable snapshot is not pending for (for Ready building). */
  unstableOffsetIndex(): LogIndex {
    return this.unstableOffset;
  }
}
