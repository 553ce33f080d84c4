// Rebuilds every group's cache from the node's LevelDB at start, verifying as it goes. The keys
// arrive in key order (keys.ts), so a group's records come together: applied, hard state, the log
// (runs of entries, records.ts) in index order, snapshot metadata (with the file holding the
// snapshot's bytes, read and checked against the size and checksum it records, snapshot-files.ts),
// and, in data directories of the earlier layouts, snapshot bytes as records. Each value is checked by records.ts; then, per
// group: the log is contiguous and its terms never decrease, it starts right after the snapshot
// (snapshot index + 1, or 1 without a snapshot) with a term not below the snapshot's, or at or
// below it when a compaction kept a tail, which then holds the snapshot's index and term; the
// snapshot's metadata and bytes (chunks numbered from 0 without a gap in the slot the metadata
// names, or one record as written before chunks) come as a pair at the same index. Chunks in the
// other slot are what a snapshot being written when the node stopped left (keys.ts): not loaded,
// only counted, so the next snapshot written there deletes them. Any violation is a
// StorageCorruptionError naming the group and the key or index, and the node does not start,
// except damage to the snapshot's bytes (a missing file, one of another size or checksum; in the
// earlier layouts a chunk or snap-data record that fails its checks, a missing chunk, chunks of
// another snapshot): that group loads with the snapshot's metadata, no
// bytes, and the damage described (GroupState.snapshotDamage), so the host can rebuild the state
// from the log or fetch it from the leader instead; the bytes are never used.
// Called only by DiskStore.open, with a reader that pages through LevelDB.

import { concatBytes } from '../base/bytes.ts';
import type { GroupId, LogIndex, Term } from '../base/ids.ts';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.ts';
import { StorageCorruptionError } from './errors.ts';
import { CachedGroupLog, emptyGroupState } from './group-log.ts';
import { describeKey, groupRecordKey, logKey, parseKey, snapshotChunkKey, type SnapshotSlot } from './keys.ts';
import { readRecord, type RecordLimits, type StoredRecord } from './records.ts';
import type { SnapshotFileRef, SnapshotFiles } from './snapshot-files.ts';

/** Returns the next page of [key, value] pairs in key order; an empty page ends the scan. */
export type PageReader = () => Promise<ReadonlyArray<readonly [Uint8Array, Uint8Array]>>;

/** How the snapshot files snap-meta records name are read (snapshot-files.ts). */
export type SnapshotFileReader = Pick<SnapshotFiles, 'read' | 'describe'>;

interface PendingGroup {
  readonly group: GroupId;
  hardState: HardState | undefined;
  applied: LogIndex | undefined;
  meta: SnapshotMeta | undefined;
  /** The chunk count snap-meta names (undefined: written before chunks, or no snapshot). */
  metaChunks: number | undefined;
  metaSlot: SnapshotSlot;
  /** The file snap-meta names, and what reading it gave. */
  file: { readonly ref: SnapshotFileRef; readonly read: { data: Uint8Array } | { damage: string } } | undefined;
  data: { readonly index: LogIndex; readonly data: Uint8Array } | undefined;
  /** Per slot, in chunk order (keys.ts). */
  readonly chunks: [StoredChunk[], StoredChunk[]];
  /** Per slot, the first chunk record that failed its checks; and the snap-data record's failure. */
  readonly damagedChunks: [string | undefined, string | undefined];
  dataDamage: string | undefined;
  /** Per slot, one past the highest chunk number found (damaged ones included), so all are deleted. */
  readonly chunkKeys: [number, number];
  readonly entries: Entry[];
  readonly runStarts: LogIndex[];
}

interface StoredChunk {
  readonly chunk: number;
  readonly index: LogIndex;
  readonly data: Uint8Array;
}

export async function loadGroups(
  readPage: PageReader,
  limits: RecordLimits,
  files: SnapshotFileReader,
): Promise<Map<GroupId, CachedGroupLog>> {
  const groups = new Map<GroupId, CachedGroupLog>();
  let pending: PendingGroup | undefined;
  for (let page = await readPage(); page.length > 0; page = await readPage()) {
    for (const [key, value] of page) {
      const parsed = parseKey(key);
      if (parsed === undefined)
        throw new StorageCorruptionError({ key: describeKey(key) }, 'not a key of the storage layout');
      if (pending?.group !== parsed.group) {
        if (pending !== undefined) groups.set(pending.group, finish(pending, files));
        pending = {
          group: parsed.group,
          hardState: undefined,
          applied: undefined,
          meta: undefined,
          metaChunks: undefined,
          metaSlot: 0,
          file: undefined,
          data: undefined,
          chunks: [[], []],
          damagedChunks: [undefined, undefined],
          dataDamage: undefined,
          chunkKeys: [0, 0],
          entries: [],
          runStarts: [],
        };
      }
      if (parsed.kind === 'snap-chunk') {
        const slot = parsed.slot;
        pending.chunkKeys[slot] = Math.max(pending.chunkKeys[slot], parsed.chunk + 1);
      }
      let stored: StoredRecord;
      try {
        stored = readRecord(key, parsed, value, limits);
      } catch (error) {
        // Damage to the snapshot's bytes is the host's to handle (see the header); nothing else.
        if (!(error instanceof StorageCorruptionError)) throw error;
        if (parsed.kind === 'snap-chunk') pending.damagedChunks[parsed.slot] ??= error.message;
        else if (parsed.kind === 'snap-data') pending.dataDamage ??= error.message;
        else throw error;
        continue;
      }
      add(pending, stored);
      if (stored.kind === 'snap-meta' && stored.file !== undefined)
        pending.file = { ref: stored.file, read: await files.read(stored.group, stored.file) };
    }
  }
  if (pending !== undefined) groups.set(pending.group, finish(pending, files));
  return groups;
}

function add(pending: PendingGroup, stored: StoredRecord): void {
  switch (stored.kind) {
    case 'log': {
      const first = stored.entries[0];
      if (first !== undefined) pending.runStarts.push(first.index);
      for (const entry of stored.entries) {
        checkNext(pending, entry);
        pending.entries.push(entry);
      }
      return;
    }
    case 'hard':
      pending.hardState = stored.hardState;
      return;
    case 'applied':
      pending.applied = stored.applied;
      return;
    case 'snap-meta':
      pending.meta = stored.meta;
      pending.metaChunks = stored.chunks;
      pending.metaSlot = stored.slot;
      return;
    case 'snap-data':
      pending.data = { index: stored.index, data: stored.data };
      return;
    case 'snap-chunk':
      // Which slot is in use is known only once snap-meta (after the chunks in key order) is read.
      pending.chunks[stored.slot].push({ chunk: stored.chunk, index: stored.index, data: stored.data });
      return;
  }
}

/** Runs arrive in index order and entries are in order within each, so a jump means entries are missing in between. */
function checkNext(pending: PendingGroup, entry: Entry): void {
  const previous = pending.entries.at(-1);
  if (previous === undefined) return;
  const { group } = pending;
  if (entry.index !== previous.index + 1) {
    const missing = (previous.index + 1) as LogIndex;
    throw new StorageCorruptionError(
      { key: describeKey(logKey(group, missing)), group, index: missing },
      `log hole: no entry between ${previous.index} and ${entry.index}`,
    );
  }
  if (entry.term < previous.term) {
    throw new StorageCorruptionError(
      { key: describeKey(logKey(group, entry.index)), group, index: entry.index },
      `term ${entry.term} is below term ${previous.term} of the entry before it`,
    );
  }
}

function finish(pending: PendingGroup, files: SnapshotFileReader): CachedGroupLog {
  const { group, entries } = pending;
  const meta = pending.meta;
  const { data, damage } = pending.file === undefined ? chunkedBytes(pending) : fileBytes(pending, files);
  const empty = emptyGroupState();
  if ((meta === undefined) !== (data === undefined)) {
    const present = meta === undefined ? 'snap-data' : 'snap-meta';
    throw new StorageCorruptionError(
      { key: describeKey(groupRecordKey(group, present)), group },
      `${present} is stored without its other half`,
    );
  }
  if (meta !== undefined && data !== undefined && data.index !== meta.index) {
    throw new StorageCorruptionError(
      { key: describeKey(groupRecordKey(group, 'snap-data')), group, index: data.index },
      `snapshot bytes are for index ${data.index}, metadata for ${meta.index}`,
    );
  }
  const snapshot = meta !== undefined && data !== undefined ? { meta, data: data.data } : empty.snapshot;
  checkLogStart(group, snapshot.meta.index, snapshot.meta.term, entries);
  return new CachedGroupLog(group, {
    hardState: pending.hardState ?? empty.hardState,
    snapshot,
    entries,
    runStarts: pending.runStarts,
    applied: pending.applied ?? empty.applied,
    ...(pending.file === undefined ? {} : { snapshotFile: pending.file.ref.name }),
    // Chunk records are the earlier layout's bytes, or leftovers: the next snapshot deletes them all.
    legacyChunkKeys: [pending.chunkKeys[0], pending.chunkKeys[1]],
    snapshotRecord: pending.data !== undefined || pending.dataDamage !== undefined,
    ...(damage === undefined || meta === undefined ? {} : { snapshotDamage: damage }),
  });
}

type SnapshotBytes = { readonly index: LogIndex; readonly data: Uint8Array } | undefined;

/** The bytes of the file snap-meta names, or empty ones and why they cannot be used. */
function fileBytes(pending: PendingGroup, files: SnapshotFileReader): { data: SnapshotBytes; damage?: string } {
  const { group, meta, file } = pending;
  if (meta === undefined || file === undefined) return { data: undefined };
  if ('data' in file.read) return { data: { index: meta.index, data: file.read.data } };
  return {
    data: { index: meta.index, data: new Uint8Array(0) },
    damage: `${files.describe(group, file.ref.name)} (group ${group}, snapshot index ${meta.index}): ${file.read.damage}`,
  };
}

/** The bytes as the earlier layouts stored them: chunk records in the slot snap-meta names, or one snap-data record. */
function chunkedBytes(pending: PendingGroup): { data: SnapshotBytes; damage?: string } {
  const { group, metaSlot, meta } = pending;
  const chunks = pending.chunks[metaSlot];
  const damage = snapshotDamage(pending);
  if (damage !== undefined && meta !== undefined)
    return { data: { index: meta.index, data: new Uint8Array(0) }, damage };
  return { data: chunks.length > 0 ? joinChunks(group, chunks, metaSlot) : pending.data };
}

/**
 * What is wrong with the bytes of the snapshot snap-meta names (undefined: nothing): a record
 * that failed its checks, a missing chunk (chunks arrive in chunk order, keys.ts, so a missing
 * one shows as a number out of place), a chunk count other than the metadata's, a chunk of
 * another snapshot. The message names the key, the group and the index.
 */
function snapshotDamage(pending: PendingGroup): string | undefined {
  const { group, metaSlot } = pending;
  const chunks = pending.chunks[metaSlot];
  const where = (key: Uint8Array): string =>
    `${describeKey(key)} (group ${group}, snapshot index ${pending.meta?.index ?? 0})`;
  const damaged = pending.damagedChunks[metaSlot] ?? (chunks.length === 0 ? pending.dataDamage : undefined);
  if (damaged !== undefined) return damaged;
  const missing = chunks.findIndex((stored, k) => stored.chunk !== k);
  if (missing !== -1)
    return `${where(snapshotChunkKey(group, missing, metaSlot))}: snapshot chunk ${missing} is missing`;
  if (pending.metaChunks !== undefined && chunks.length > 0 && pending.metaChunks !== chunks.length)
    return `${where(snapshotChunkKey(group, chunks.length, metaSlot))}: the snapshot has ${chunks.length} chunks stored, its metadata says ${pending.metaChunks}`;
  const stray = chunks.findIndex((chunk) => chunk.index !== pending.meta?.index);
  if (stray !== -1 && pending.meta !== undefined)
    return `${where(snapshotChunkKey(group, stray, metaSlot))}: snapshot chunk ${stray} is of the snapshot at ${chunks[stray]?.index}`;
  return undefined;
}

/** The stored chunks as one snapshot's bytes; every chunk must be of the same snapshot. */
function joinChunks(
  group: GroupId,
  chunks: readonly StoredChunk[],
  slot: SnapshotSlot,
): { readonly index: LogIndex; readonly data: Uint8Array } {
  const index = chunks[0]?.index ?? (0 as LogIndex);
  chunks.forEach((chunk, k) => {
    if (chunk.index !== index)
      throw new StorageCorruptionError(
        { key: describeKey(snapshotChunkKey(group, k, slot)), group, index: chunk.index },
        `snapshot chunk ${k} is of the snapshot at ${chunk.index}, chunk 0 of the one at ${index}`,
      );
  });
  return { index, data: concatBytes(chunks.map((chunk) => chunk.data)) };
}

/**
 * The log starts right after the snapshot, or at or below it when a compaction kept a tail behind
 * the snapshot: the tail then reaches the snapshot's index with the snapshot's term there.
 */
function checkLogStart(group: GroupId, snapshotIndex: LogIndex, snapshotTerm: Term, entries: readonly Entry[]): void {
  const first = entries[0];
  if (first === undefined) return;
  const expected = (snapshotIndex + 1) as LogIndex;
  if (first.index < expected) {
    const atSnapshot = entries[snapshotIndex - first.index];
    if (atSnapshot?.term !== snapshotTerm) {
      throw new StorageCorruptionError(
        { key: describeKey(logKey(group, first.index)), group, index: first.index },
        `the log kept behind the snapshot at ${snapshotIndex} does not hold it (term ${snapshotTerm} there)`,
      );
    }
    return;
  }
  if (first.index > expected) {
    throw new StorageCorruptionError(
      { key: describeKey(logKey(group, expected)), group, index: expected },
      `log hole: the log starts at ${first.index}, after the snapshot at ${snapshotIndex}`,
    );
  }
  if (first.term < snapshotTerm) {
    throw new StorageCorruptionError(
      { key: describeKey(logKey(group, first.index)), group, index: first.index },
      `term ${first.term} is below the snapshot's term ${snapshotTerm}`,
    );
  }
}
