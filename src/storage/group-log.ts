// One group's log as the core reads it: an in-memory cache of exactly what the node's LevelDB
// holds for that group (hard state, snapshot, the entries after the snapshot, applied index).
// It implements the core's LogStorage synchronously, with MemoryStorage's semantics: a sentinel
// for the snapshot position, so term(firstIndex - 1) is known; entries are contiguous from
// snapshot index + 1.
//
// Changes come in two halves so that memory never runs ahead of the disk: plan*() checks a change
// against the cache and returns the LevelDB operations plus an `apply` closure; DiskStore writes
// the operations in one batch and only then calls `apply`. DiskStore serializes its operations,
// so the cache cannot change between planning and applying. Nothing here touches LevelDB.

import { assert } from '../base/assert.ts';
import { NO_NODE, type GroupId, type LogIndex, type Term } from '../base/ids.ts';
import { emptyConfState } from '../raft/confchange.ts';
import { entryBytes, type LogStorage } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.ts';
import { groupRecordKey, logKey } from './keys.ts';
import { appliedValue, hardStateValue, logEntryValue, snapshotDataValue, snapshotMetaValue, type RecordLimits } from './records.ts';

/** What one group persists in a turn (the storage half of one Ready), in the contract's order. */
export interface GroupWrite {
  readonly group: GroupId;
  /** Replaces the group's snapshot and its whole log. */
  readonly snapshot?: Snapshot;
  /** Replace every stored entry at or above the first one's index. */
  readonly entries: readonly Entry[];
  readonly hardState?: HardState;
  readonly applied?: LogIndex;
}

/** What the core and the host read of one group. */
export interface GroupLog extends LogStorage {
  readonly group: GroupId;
  hardState(): HardState;
  /** The applied index the host last stored (0 when never stored). */
  appliedIndex(): LogIndex;
}

export type BatchOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export interface GroupChange {
  readonly operations: readonly BatchOperation[];
  /** Brings the cache in line with the operations; called once they are written. */
  readonly apply: () => void;
}

/** A group's state as loaded from disk, already verified (see load.ts). */
export interface GroupState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  readonly entries: Entry[];
  readonly applied: LogIndex;
}

export const emptyGroupState = (): GroupState => ({
  hardState: { term: 0 as Term, vote: NO_NODE, commit: 0 as LogIndex },
  snapshot: { meta: { index: 0 as LogIndex, term: 0 as Term, confState: emptyConfState }, data: new Uint8Array(0) },
  entries: [],
  applied: 0 as LogIndex,
});

export class CachedGroupLog implements GroupLog {
  readonly group: GroupId;
  private hard: HardState;
  private snap: Snapshot;
  /** log[k] has index snap.meta.index + 1 + k. */
  private log: Entry[];
  private applied: LogIndex;
  /** Set by deleteGroup: a discarded handle must not be read any more. */
  private deleted = false;

  constructor(group: GroupId, state: GroupState) {
    this.group = group;
    this.hard = state.hardState;
    this.snap = state.snapshot;
    this.log = state.entries;
    this.applied = state.applied;
  }

  // -------------------------------------------------------------------------------------------
  // LogStorage

  initialState(): { hardState: HardState; confState: ConfState } {
    this.assertLive();
    return { hardState: this.hard, confState: this.snap.meta.confState };
  }

  hardState(): HardState {
    this.assertLive();
    return this.hard;
  }

  appliedIndex(): LogIndex {
    this.assertLive();
    return this.applied;
  }

  firstIndex(): LogIndex {
    this.assertLive();
    return (this.snap.meta.index + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    this.assertLive();
    return (this.snap.meta.index + this.log.length) as LogIndex;
  }

  term(index: LogIndex): Term | undefined {
    this.assertLive();
    if (index === this.snap.meta.index) return this.snap.meta.term;
    return this.log[index - this.snap.meta.index - 1]?.term;
  }

  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] {
    assert(low >= this.firstIndex() && high <= this.lastIndex() + 1 && low <= high, `storage: group ${this.group}: entries [${low}, ${high}) out of range`);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = this.log[index - this.snap.meta.index - 1];
      assert(entry !== undefined, `storage: group ${this.group}: hole in log at ${index}`);
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  snapshot(): Snapshot {
    this.assertLive();
    return this.snap;
  }

  // -------------------------------------------------------------------------------------------
  // Changes, planned here and applied by DiskStore after the batch is written

  /** The storage half of a Ready: snapshot, then entries (replacing a suffix), then hard state and applied. */
  planWrite(write: GroupWrite, limits: RecordLimits): GroupChange {
    this.assertLive();
    const operations: BatchOperation[] = [];
    let snapshotIndex = this.snap.meta.index;
    let lastIndex = this.lastIndex();
    const snapshot = write.snapshot;
    if (snapshot !== undefined) {
      assert(snapshot.meta.index >= snapshotIndex, `storage: group ${this.group}: snapshot at ${snapshot.meta.index} is older than the stored one at ${snapshotIndex}`);
      this.deleteLogRange(operations, this.firstIndex(), lastIndex);
      this.putSnapshot(operations, snapshot, limits);
      snapshotIndex = snapshot.meta.index;
      lastIndex = snapshotIndex;
    }
    // Entries the snapshot already covers are skipped, as MemoryStorage.append does.
    const entries = write.entries.filter((entry) => entry.index > snapshotIndex);
    const firstNew = entries[0]?.index;
    if (firstNew !== undefined) {
      assert(firstNew <= lastIndex + 1, `storage: group ${this.group}: append at ${firstNew} leaves a gap after ${lastIndex}`);
      entries.forEach((entry, k) => {
        assert(entry.index === firstNew + k, `storage: group ${this.group}: entries not contiguous at ${entry.index}`);
        assert(entry.kind !== 'normal' || entry.data.length <= limits.entryDataBytesMax, `storage: group ${this.group}: entry ${entry.index} exceeds entryDataBytesMax`);
        operations.push({ type: 'put', key: logKey(this.group, entry.index), value: logEntryValue(this.group, entry) });
      });
      this.deleteLogRange(operations, (firstNew + entries.length) as LogIndex, lastIndex);
    }
    const { hardState, applied } = write;
    if (hardState !== undefined) operations.push({ type: 'put', key: groupRecordKey(this.group, 'hard'), value: hardStateValue(this.group, hardState) });
    if (applied !== undefined) operations.push({ type: 'put', key: groupRecordKey(this.group, 'applied'), value: appliedValue(this.group, applied) });
    const apply = (): void => {
      if (snapshot !== undefined) {
        this.snap = snapshot;
        this.log = [];
      }
      if (firstNew !== undefined) {
        this.log.length = firstNew - this.snap.meta.index - 1;
        for (const entry of entries) this.log.push(entry);
      }
      if (hardState !== undefined) this.hard = hardState;
      if (applied !== undefined) this.applied = applied;
    };
    return { operations, apply };
  }

  /** The host snapshotted its state machine at `index` (<= applied): store it, drop the log up to it. */
  planCompaction(index: LogIndex, confState: ConfState, data: Uint8Array, limits: RecordLimits): GroupChange {
    const term = this.term(index);
    const snapshotIndex = this.snap.meta.index;
    assert(term !== undefined && index >= snapshotIndex, `storage: group ${this.group}: cannot snapshot at ${index} (log holds ${snapshotIndex}..${this.lastIndex()})`);
    const snapshot: Snapshot = { meta: { index, term, confState }, data };
    const operations: BatchOperation[] = [];
    this.deleteLogRange(operations, this.firstIndex(), index);
    this.putSnapshot(operations, snapshot, limits);
    const apply = (): void => {
      this.log = this.log.slice(index - snapshotIndex);
      this.snap = snapshot;
    };
    return { operations, apply };
  }

  /** Every key of the group goes; the handle is dead afterwards. */
  planDeletion(): GroupChange {
    this.assertLive();
    const operations: BatchOperation[] = [];
    for (const kind of ['applied', 'hard', 'snap-meta', 'snap-data'] as const) operations.push({ type: 'del', key: groupRecordKey(this.group, kind) });
    this.deleteLogRange(operations, this.firstIndex(), this.lastIndex());
    const apply = (): void => {
      this.deleted = true;
      this.log = [];
    };
    return { operations, apply };
  }

  private putSnapshot(operations: BatchOperation[], snapshot: Snapshot, limits: RecordLimits): void {
    assert(snapshot.data.length <= limits.snapshotDataBytesMax, `storage: group ${this.group}: snapshot of ${snapshot.data.length} bytes exceeds snapshotDataBytesMax`);
    operations.push({ type: 'put', key: groupRecordKey(this.group, 'snap-meta'), value: snapshotMetaValue(this.group, snapshot.meta) });
    operations.push({ type: 'put', key: groupRecordKey(this.group, 'snap-data'), value: snapshotDataValue(this.group, snapshot.meta.index, snapshot.data) });
  }

  /** Deletes of the log keys in [low, high]; the cache knows exactly which exist, so no scan is needed. */
  private deleteLogRange(operations: BatchOperation[], low: LogIndex, high: LogIndex): void {
    for (let index = low; index <= high; index++) operations.push({ type: 'del', key: logKey(this.group, index) });
  }

  private assertLive(): void {
    assert(!this.deleted, `storage: group ${this.group} was deleted; this handle is stale`);
  }
}
