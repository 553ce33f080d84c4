// One group's log as the core reads it: an in-memory cache of exactly what the node's LevelDB
// holds for that group (hard state, snapshot, the entries after the snapshot, applied index).
// It implements the core's LogStorage synchronously, with MemoryStorage's semantics: the
// snapshot's position has a known term; entries are contiguous from the log's start, which is the
// snapshot index + 1 or, when a compaction kept a tail behind the snapshot, at or below it (the
// tail then reaches past the snapshot index).
//
// The log is stored as runs: one record per run of consecutive entries, under the run's first
// index (records.ts). A turn's entries for the group become one run (more when it appended more
// than a run holds), so a turn costs the group one put, not one per entry, and a compaction one
// delete per run. The cache knows where every run starts, so it can plan any change without
// reading: a suffix replaced from inside a run rewrites that run's kept head, and a compaction
// that ends inside a run rewrites its tail under a new key.
//
// Changes come in two halves so that memory never runs ahead of the disk: plan*() checks a change
// against the cache and returns the LevelDB operations plus an `apply` closure; DiskStore writes
// the operations in one batch and only then calls `apply`. DiskStore serializes its operations,
// so the cache cannot change between planning and applying. Nothing here touches LevelDB.
//
// A snapshot's bytes are a file of their own (snapshot-files.ts), written and made durable before
// anything here names it; snap-meta is the pointer to it (name, size, checksum). Storing a
// snapshot is then one small batch: the pointer, and the compacted log's deletions (planCompaction)
// or the replaced log's (a snapshot received from a leader, planWrite). The change reports the
// file it replaced, which DiskStore deletes once the batch is written. Data directories of the
// earlier layouts hold the bytes as chunk records (in two slots) or one snap-data record: those
// are read at load (load.ts), and the next snapshot stored deletes every one of them.

import { assert } from '../base/assert.ts';
import { concatBytes } from '../base/bytes.ts';
import { NO_NODE, type GroupId, type LogIndex, type Term } from '../base/ids.ts';
import type { GroupWrite } from '../multiraft/ports.ts';
import { emptyConfState } from '../raft/confchange.ts';
import { entryBytes, type LogStorage } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMeta } from '../raft/types.ts';
import { groupRecordKey, logKey, snapshotChunkKey } from './keys.ts';
import { appliedValue, hardStateValue, logRunValue, snapshotMetaValue, type RecordLimits } from './records.ts';
import type { SnapshotFileRef } from './snapshot-files.ts';

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
  /** The snapshot file the change stops naming: deleted once the operations are written. */
  readonly replacedFile?: { readonly group: GroupId; readonly name: string };
}

/** A group's state as loaded from disk, already verified (see load.ts). */
export interface GroupState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  readonly entries: Entry[];
  /** Where each stored run of `entries` starts, ascending; the first at the log's start. */
  readonly runStarts: LogIndex[];
  readonly applied: LogIndex;
  /** The file holding the snapshot's bytes (snapshot-files.ts); undefined: none, or an earlier layout. */
  readonly snapshotFile?: string;
  /** Per chunk slot, chunk keys 0 .. n - 1 may hold chunk records of the earlier layout: the next snapshot deletes them. */
  readonly legacyChunkKeys: readonly [number, number];
  /** A `snap-data` record (the layout before chunks) is stored; the next snapshot deletes it. */
  readonly snapshotRecord: boolean;
  /** The snapshot's bytes failed their checks at load (load.ts): only its metadata is kept. */
  readonly snapshotDamage?: string;
}

/** A run holds at most this many entries, and at most runBytesMax of them unless it is one entry. */
export const runEntriesMax = 1024;
export const runBytesMax = 1 << 20;

export const emptyGroupState = (): GroupState => ({
  hardState: { term: 0 as Term, vote: NO_NODE, commit: 0 as LogIndex },
  snapshot: { meta: { index: 0 as LogIndex, term: 0 as Term, confState: emptyConfState }, data: new Uint8Array(0) },
  entries: [],
  runStarts: [],
  applied: 0 as LogIndex,
  legacyChunkKeys: [0, 0],
  snapshotRecord: false,
});

export class CachedGroupLog implements GroupLog {
  readonly group: GroupId;
  private hard: HardState;
  private snap: Snapshot;
  /** log[k] has index logStart + k. */
  private log: Entry[];
  /** snapshot index + 1, or lower when a compaction kept a tail behind the snapshot. */
  private logStart: LogIndex;
  /** Where each stored run starts, ascending; together they hold exactly `log`. */
  private runStarts: LogIndex[];
  private applied: LogIndex;
  /** How the snapshot's bytes are stored (GroupState). */
  private snapshotFile: string | undefined;
  private legacyChunkKeys: readonly [number, number];
  private snapshotRecord: boolean;
  /** Why the stored snapshot's bytes cannot be used (undefined: they can); cleared by the next snapshot stored. */
  private damage: string | undefined;
  /** Set by deleteGroup: a discarded handle must not be read any more. */
  private deleted = false;

  constructor(group: GroupId, state: GroupState) {
    this.group = group;
    this.hard = state.hardState;
    this.snap = state.snapshot;
    this.log = state.entries;
    this.logStart = state.entries[0]?.index ?? ((state.snapshot.meta.index + 1) as LogIndex);
    this.runStarts = state.runStarts;
    this.applied = state.applied;
    this.snapshotFile = state.snapshotFile;
    this.legacyChunkKeys = state.legacyChunkKeys;
    this.snapshotRecord = state.snapshotRecord;
    this.damage = state.snapshotDamage;
  }

  /** Why the stored snapshot's bytes failed their checks at load (undefined: they did not). */
  snapshotDamage(): string | undefined {
    return this.damage;
  }

  /** The file holding the stored snapshot's bytes (undefined: no snapshot, or one of an earlier layout). */
  storedSnapshotFile(): string | undefined {
    return this.snapshotFile;
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
    return this.logStart;
  }

  lastIndex(): LogIndex {
    this.assertLive();
    return Math.max(this.snap.meta.index, this.logStart + this.log.length - 1) as LogIndex;
  }

  term(index: LogIndex): Term | undefined {
    this.assertLive();
    if (index === this.snap.meta.index) return this.snap.meta.term;
    return index < this.logStart ? undefined : this.log[index - this.logStart]?.term;
  }

  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[] {
    assert(
      low >= this.firstIndex() && high <= this.lastIndex() + 1 && low <= high,
      `storage: group ${this.group}: entries [${low}, ${high}) out of range`,
    );
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = low; index < high; index++) {
      const entry = this.log[index - this.logStart];
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

  /**
   * The storage half of a Ready: snapshot, then entries (replacing a suffix), then hard state and
   * applied. A snapshot's bytes are in `file` already (written by DiskStore before the batch).
   */
  planWrite(write: GroupWrite, limits: RecordLimits, file?: SnapshotFileRef): GroupChange {
    this.assertLive();
    const operations: BatchOperation[] = [];
    let snapshotIndex = this.snap.meta.index;
    let lastIndex = this.lastIndex();
    let runStarts = this.runStarts;
    const snapshot = write.snapshot;
    if (snapshot !== undefined) {
      assert(
        snapshot.meta.index >= snapshotIndex,
        `storage: group ${this.group}: snapshot at ${snapshot.meta.index} is older than the stored one at ${snapshotIndex}`,
      );
      assert(file !== undefined, `storage: group ${this.group}: a snapshot to store without its file`);
      assert(
        snapshot.data.length <= limits.snapshotDataBytesMax,
        `storage: group ${this.group}: snapshot of ${snapshot.data.length} bytes exceeds snapshotDataBytesMax`,
      );
      this.deleteRuns(operations, runStarts);
      runStarts = [];
      this.putSnapshotPointer(operations, snapshot.meta, file);
      snapshotIndex = snapshot.meta.index;
      lastIndex = snapshotIndex;
    }
    // Entries the snapshot already covers are skipped, as MemoryStorage.append does.
    const entries = write.entries.filter((entry) => entry.index > snapshotIndex);
    const firstNew = entries[0]?.index;
    if (firstNew !== undefined)
      runStarts = this.planEntries(operations, entries, firstNew, runStarts, lastIndex, limits);
    const { hardState, applied } = write;
    if (hardState !== undefined)
      operations.push({
        type: 'put',
        key: groupRecordKey(this.group, 'hard'),
        value: hardStateValue(this.group, hardState),
      });
    if (applied !== undefined)
      operations.push({
        type: 'put',
        key: groupRecordKey(this.group, 'applied'),
        value: appliedValue(this.group, applied),
      });
    const apply = (): void => {
      if (snapshot !== undefined && file !== undefined) {
        this.storedSnapshotIn(file);
        this.damage = undefined;
        this.snap = snapshot;
        this.log = [];
        this.logStart = (snapshot.meta.index + 1) as LogIndex;
      }
      if (firstNew !== undefined) {
        this.log.length = firstNew - this.logStart;
        for (const entry of entries) this.log.push(entry);
      }
      this.runStarts = runStarts;
      if (hardState !== undefined) this.hard = hardState;
      if (applied !== undefined) this.applied = applied;
    };
    return { operations, apply, ...this.replacing(snapshot !== undefined) };
  }

  /**
   * Puts `entries` (contiguous from `firstNew`, at most one past `lastIndex`) as runs, replacing
   * the runs from `firstNew` on; a run that starts before it and reaches it keeps its head.
   * Answers the run starts after the write.
   */
  private planEntries(
    operations: BatchOperation[],
    entries: readonly Entry[],
    firstNew: LogIndex,
    runStartsBefore: readonly LogIndex[],
    lastIndex: LogIndex,
    limits: RecordLimits,
  ): LogIndex[] {
    assert(
      firstNew <= lastIndex + 1,
      `storage: group ${this.group}: append at ${firstNew} leaves a gap after ${lastIndex}`,
    );
    entries.forEach((entry, k) => {
      assert(entry.index === firstNew + k, `storage: group ${this.group}: entries not contiguous at ${entry.index}`);
      assert(
        entry.kind !== 'normal' || entry.data.length <= limits.entryDataBytesMax,
        `storage: group ${this.group}: entry ${entry.index} exceeds entryDataBytesMax`,
      );
    });
    let kept = runStartsBefore.length;
    while (kept > 0 && (runStartsBefore[kept - 1] ?? 0) >= firstNew) kept--;
    const straddling = runStartsBefore[kept - 1];
    const straddlingEnd = (runStartsBefore[kept] ?? lastIndex + 1) - 1;
    if (straddling !== undefined && straddlingEnd >= firstNew)
      this.putRun(operations, this.cachedEntries(straddling, firstNew));
    this.deleteRuns(operations, runStartsBefore.slice(kept));
    const runStarts = runStartsBefore.slice(0, kept);
    for (let at = 0; at < entries.length; ) {
      const run = takeRun(entries, at);
      this.putRun(operations, run);
      runStarts.push((firstNew + at) as LogIndex);
      at += run.length;
    }
    return runStarts;
  }

  /**
   * Whether a snapshot at `index` would still be news: the group is not deleted and no snapshot
   * at or after it is stored (one installed from a leader since may have replaced the log). An
   * index beyond the log is a caller's bug: the host snapshots only what it applied.
   */
  snapshotWanted(index: LogIndex, replace = false): boolean {
    // A damaged snapshot, or one the host could not load (`replace`), is replaced even by one at
    // its own index (the state rebuilt from the log).
    if (
      this.deleted ||
      index < this.snap.meta.index ||
      (index === this.snap.meta.index && this.damage === undefined && !replace)
    )
      return false;
    assert(
      this.term(index) !== undefined,
      `storage: group ${this.group}: cannot snapshot at ${index} (log holds ${this.snap.meta.index}..${this.lastIndex()})`,
    );
    return true;
  }

  /**
   * The host snapshotted its state machine at `index` (<= applied, snapshotWanted(index)) and its
   * bytes (`data`, in slices, joined only when the core first reads them) are in `file`: point at
   * it and drop the log before `logFrom` (clamped to [log start, index + 1]; below index + 1 a tail
   * stays behind the snapshot). Runs that end before `logFrom` are deleted; one that reaches it is
   * rewritten as its tail, under the key of `logFrom`, so the stored log starts exactly there.
   */
  planCompaction(
    index: LogIndex,
    confState: ConfState,
    data: readonly Uint8Array[],
    file: SnapshotFileRef,
    logFrom: LogIndex,
    replace = false,
  ): GroupChange {
    const term = this.term(index);
    const snapshotIndex = this.snap.meta.index;
    const lastIndex = this.lastIndex();
    assert(
      term !== undefined &&
        (index > snapshotIndex || (index === snapshotIndex && (this.damage !== undefined || replace))),
      `storage: group ${this.group}: cannot snapshot at ${index} (log holds ${snapshotIndex}..${lastIndex})`,
    );
    const from = Math.min(Math.max(logFrom, this.logStart), index + 1) as LogIndex;
    const snapshot = lazySnapshot({ index, term, confState }, data);
    const operations: BatchOperation[] = [];
    const runStarts: LogIndex[] = [];
    this.runStarts.forEach((start, k) => {
      if (start >= from) {
        runStarts.push(start);
        return;
      }
      operations.push({ type: 'del', key: logKey(this.group, start) });
      const end = ((this.runStarts[k + 1] ?? lastIndex + 1) - 1) as LogIndex;
      if (end >= from) {
        this.putRun(operations, this.cachedEntries(from, (end + 1) as LogIndex));
        runStarts.push(from);
      }
    });
    this.putSnapshotPointer(operations, snapshot.meta, file);
    const apply = (): void => {
      this.log = this.log.slice(from - this.logStart);
      this.logStart = from;
      this.runStarts = runStarts;
      this.storedSnapshotIn(file);
      this.snap = snapshot;
      this.damage = undefined;
    };
    return { operations, apply, ...this.replacing(true) };
  }

  /** Every key of the group goes (its snapshot file is DiskStore's to delete); the handle is dead afterwards. */
  planDeletion(): GroupChange {
    this.assertLive();
    const operations: BatchOperation[] = [];
    for (const kind of ['applied', 'hard', 'snap-meta', 'snap-data'] as const)
      operations.push({ type: 'del', key: groupRecordKey(this.group, kind) });
    this.deleteLegacyChunks(operations);
    this.deleteRuns(operations, this.runStarts);
    const apply = (): void => {
      this.deleted = true;
      this.log = [];
      this.runStarts = [];
    };
    return { operations, apply };
  }

  /** Cached entries [low, high), which exist. */
  private cachedEntries(low: LogIndex, high: LogIndex): Entry[] {
    return this.log.slice(low - this.logStart, high - this.logStart);
  }

  private putRun(operations: BatchOperation[], run: readonly Entry[]): void {
    const first = run[0];
    assert(first !== undefined, `storage: group ${this.group}: an empty run`);
    operations.push({ type: 'put', key: logKey(this.group, first.index), value: logRunValue(this.group, run) });
  }

  private deleteRuns(operations: BatchOperation[], starts: readonly LogIndex[]): void {
    for (const start of starts) operations.push({ type: 'del', key: logKey(this.group, start) });
  }

  /** snap-meta naming `file`, and the deletion of every record of the earlier layouts' bytes. */
  private putSnapshotPointer(operations: BatchOperation[], meta: SnapshotMeta, file: SnapshotFileRef): void {
    operations.push({
      type: 'put',
      key: groupRecordKey(this.group, 'snap-meta'),
      value: snapshotMetaValue(this.group, meta, file),
    });
    this.deleteLegacyChunks(operations);
    if (this.snapshotRecord) operations.push({ type: 'del', key: groupRecordKey(this.group, 'snap-data') });
  }

  private deleteLegacyChunks(operations: BatchOperation[]): void {
    for (const slot of [0, 1] as const)
      for (let chunk = 0; chunk < this.legacyChunkKeys[slot]; chunk++)
        operations.push({ type: 'del', key: snapshotChunkKey(this.group, chunk, slot) });
  }

  /** Once a snapshot's pointer is written: its bytes are in `file`, and no record of an earlier layout is left. */
  private storedSnapshotIn(file: SnapshotFileRef): void {
    this.snapshotFile = file.name;
    this.legacyChunkKeys = [0, 0];
    this.snapshotRecord = false;
  }

  /** The file a change that stores a snapshot stops naming. */
  private replacing(storesSnapshot: boolean): Pick<GroupChange, 'replacedFile'> {
    return storesSnapshot && this.snapshotFile !== undefined
      ? { replacedFile: { group: this.group, name: this.snapshotFile } }
      : {};
  }

  private assertLive(): void {
    assert(!this.deleted, `storage: group ${this.group} was deleted; this handle is stale`);
  }
}

/** A snapshot whose bytes are joined from `slices` when first read (the core reads them only to send them). */
function lazySnapshot(meta: SnapshotMeta, slices: readonly Uint8Array[]): Snapshot {
  let parts: readonly Uint8Array[] | undefined = slices;
  let data: Uint8Array | undefined;
  return {
    meta,
    get data(): Uint8Array {
      if (data === undefined) {
        data = concatBytes(parts ?? []);
        parts = undefined;
      }
      return data;
    },
  };
}

/** The longest run of `entries` from `at` within runEntriesMax and runBytesMax (at least one entry). */
function takeRun(entries: readonly Entry[], at: number): readonly Entry[] {
  let end = at;
  let bytes = 0;
  while (end < entries.length && end - at < runEntriesMax) {
    bytes += entryBytes(entries[end] as Entry);
    if (end > at && bytes > runBytesMax) break;
    end++;
  }
  return entries.slice(at, end);
}
