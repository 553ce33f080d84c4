// The port through which the core reads what the host has persisted (etcd's Storage), and an
// in-memory implementation the tests, the simulator and the benchmarks use as their "disk".
// The core only reads storage; the host writes it while handling a Ready.
// MemoryStorage keeps a sentinel for the snapshot position at entries[0], so term(firstIndex - 1)
// is always known.

import { assert } from '../base/assert.ts';
import type { LogIndex, Term } from '../base/ids.ts';
import { emptyConfState } from './confchange.ts';
import type { ConfEntry, ConfState, Entry, HardState, Snapshot } from './types.ts';

export interface LogStorage {
  initialState(): { readonly hardState: HardState; readonly confState: ConfState };
  /** Index of the first entry still stored (snapshot index + 1). */
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** Term of the entry at `index`, for index in [firstIndex - 1, lastIndex]; undefined outside. */
  term(index: LogIndex): Term | undefined;
  /** Entries in [low, high), at most `bytesMax` of them by size but at least one. low >= firstIndex. */
  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[];
  snapshot(): Snapshot;
}

export function entryBytes(entry: Entry): number {
  return entry.kind === 'normal' ? entry.data.length + 16 : 32 + 16 * entry.change.changes.length;
}

export class MemoryStorage implements LogStorage {
  hardState: HardState = { term: 0 as Term, vote: 0 as never, commit: 0 as LogIndex };
  private snap: Snapshot = {
    meta: { index: 0 as LogIndex, term: 0 as Term, confState: emptyConfState },
    data: new Uint8Array(0),
  };
  /** log[k] has index logStart + k; logStart <= snapshot index + 1 (a tail kept behind a snapshot). */
  private log: Entry[] = [];
  private logStart = 1 as LogIndex;

  /**
   * A member of a new group: its log starts with the initial membership as a configuration entry
   * at index 1, term 1, already committed (as etcd's bootstrap does). Every later member replays
   * the membership history from the log or receives it in a snapshot, so a node that joins with
   * empty storage can never apply changes on top of an empty membership.
   */
  static bootstrap(confState: ConfState): MemoryStorage {
    const storage = new MemoryStorage();
    storage.append([bootstrapEntry(confState)]);
    storage.hardState = { term: 1 as Term, vote: 0 as never, commit: 1 as LogIndex };
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  firstIndex(): LogIndex {
    return this.logStart;
  }

  lastIndex(): LogIndex {
    return Math.max(this.snap.meta.index, this.logStart + this.log.length - 1) as LogIndex;
  }

  term(index: LogIndex): Term | undefined {
    if (index === this.snap.meta.index) return this.snap.meta.term;
    return index < this.logStart ? undefined : this.log[index - this.logStart]?.term;
  }

  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] {
    assert(
      low >= this.firstIndex() && high <= this.lastIndex() + 1 && low <= high,
      `storage: entries [${low}, ${high}) out of range`,
    );
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = this.log[index - this.logStart];
      assert(entry !== undefined, 'storage: hole in log');
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Persist entries, replacing any stored entries at or after the first one's index. Entries at or
   * below the snapshot index are already covered by it and are skipped (a batch wholly below it
   * changes nothing).
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index <= this.lastIndex() + 1,
      `storage: append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    if (first.index <= this.snap.meta.index) {
      // Entries already covered by the snapshot are skipped.
      this.append(entries.filter((entry) => entry.index > this.snap.meta.index));
      return;
    }
    this.log.length = first.index - this.logStart;
    for (const entry of entries) this.log.push(entry);
  }

  /**
   * Replace everything with a snapshot received from the leader. Every stored entry goes, as in
   * etcd: the core restores from a snapshot only when its log does not match at the snapshot's
   * position, so nothing after it can be trusted (and RaftLog.restore assumes the same).
   */
  applySnapshot(snapshot: Snapshot): void {
    assert(snapshot.meta.index >= this.snap.meta.index, 'storage: snapshot older than the stored one');
    this.snap = snapshot;
    this.log = [];
    this.logStart = (snapshot.meta.index + 1) as LogIndex;
  }

  /**
   * Record a snapshot the host took of its own state machine at `index` (<= applied), and drop the
   * log before `logFrom` (default: everything up to the snapshot). A `logFrom` at or below `index`
   * keeps a tail of entries behind the snapshot, so a follower a little behind gets entries.
   */
  createSnapshot(
    index: LogIndex,
    confState: ConfState,
    data: Uint8Array,
    logFrom: LogIndex = (index + 1) as LogIndex,
  ): Snapshot {
    const term = this.term(index);
    assert(term !== undefined && index >= this.snap.meta.index, `storage: cannot snapshot at ${index}`);
    const from = Math.min(Math.max(logFrom, this.logStart), index + 1) as LogIndex;
    this.log = this.log.slice(from - this.logStart);
    this.logStart = from;
    this.snap = { meta: { index, term, confState }, data };
    return this.snap;
  }
}

/** The configuration entry that creates a group's initial membership (index 1, term 1). */
export function bootstrapEntry(confState: ConfState): ConfEntry {
  assert(
    confState.voters.length > 0 && confState.votersOutgoing.length === 0,
    'bootstrap: need voters and no joint configuration',
  );
  const changes = [
    ...confState.voters.map((node) => ({ type: 'add_voter' as const, node })),
    ...confState.learners.map((node) => ({ type: 'add_learner' as const, node })),
  ];
  return { kind: 'conf', term: 1 as Term, index: 1 as LogIndex, change: { changes, transition: 'auto' } };
}
