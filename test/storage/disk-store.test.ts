// DiskStore beyond the conformance suite: everything written comes back identical after a
// reopen; one write covering several groups is one batch; groups are isolated from each other;
// writes are serialized; snapshots are files the metadata points at (a crash at any step keeps
// the old or the new one whole; the chunk layout before them is read and replaced); corrupt, torn, misplaced or missing records stop the open with a
// StorageCorruptionError naming group and index; LevelDB failures are fatal StorageErrors.

import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GroupId, Term } from '../../src/base/ids.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { concatBytes } from '../../src/base/bytes.ts';
import type { Entry, HardState } from '../../src/raft/types.ts';
import type { GroupWrite } from '../../src/multiraft/ports.ts';
import { DiskStore, snapshotFilesDir, type GroupLog } from '../../src/storage/disk-store.ts';
import { StorageCorruptionError, StorageError } from '../../src/storage/errors.ts';
import { allGroupsRange, describeKey, groupRecordKey, logKey, snapshotChunkKey } from '../../src/storage/keys.ts';
import {
  chunkedSnapshotMetaValue,
  logRunValue,
  snapshotChunkBytes,
  snapshotChunkRecord,
  snapshotDataValue,
} from '../../src/storage/records.ts';
import { snapshotFilePieceBytes } from '../../src/storage/snapshot-files.ts';
import { ent, ents, idx, nid, nids, snap } from '../raft/unit/helpers.ts';
import { temporaryDirectory, testStoreOptions } from './support.ts';

const gid = (value: number): GroupId => value as GroupId;

function hard(term: number, vote: number, commit: number): HardState {
  return { term: term as Term, vote: nid(vote), commit: idx(commit) };
}

/** Everything a group holds, as plain data for deep equality. */
function contents(log: GroupLog): unknown {
  const entries = log.entries(log.firstIndex(), idx(log.lastIndex() + 1), Infinity);
  const snapshot = log.snapshot();
  return {
    hardState: log.hardState(),
    applied: log.appliedIndex(),
    snapshot: { meta: snapshot.meta, data: Array.from(snapshot.data) },
    entries: entries.map((entry: Entry) =>
      entry.kind === 'normal' ? { ...entry, data: Array.from(entry.data) } : entry,
    ),
  };
}

function everyGroup(store: DiskStore): Record<number, unknown> {
  return Object.fromEntries(store.groupIds().map((group) => [group, contents(store.group(group))]));
}

/** Opens the raw LevelDB (the store must be closed), lets `edit` change it, closes it. */
async function tamper(path: string, edit: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    await edit(db);
  } finally {
    await db.close();
  }
}

/** A store whose snapshot files wait before their fsync until `releaseSync` is called. */
async function openWithFileSyncHeld(path: string): Promise<{ store: DiskStore; releaseSync: () => void }> {
  let releaseSync = (): void => {};
  const syncHeld = new Promise<void>((resolve) => {
    releaseSync = resolve;
  });
  const store = await DiskStore.open(path, {
    ...testStoreOptions,
    snapshotFileFault: (step) => (step === 'sync' ? syncHeld : undefined),
  });
  return { store, releaseSync };
}

/** The names of the group's snapshot files, sorted. */
async function snapshotFileNames(path: string, group: GroupId): Promise<string[]> {
  return (await readdir(join(snapshotFilesDir(path), String(group)))).sort();
}

/** The readable keys of every snapshot record in the store at `path`. */
async function snapshotKeys(path: string): Promise<string[]> {
  const found: string[] = [];
  await tamper(path, async (db) => {
    for await (const key of db.keys(allGroupsRange())) found.push(describeKey(key));
  });
  return found.filter((key) => key.includes('snap'));
}

async function storedValue(db: Level<Uint8Array, Uint8Array>, key: Uint8Array): Promise<Uint8Array> {
  const [value] = await db.getMany([key]);
  if (value === undefined) throw new Error('test setup: key not stored');
  return value;
}

describe('DiskStore', () => {
  let directory: Awaited<ReturnType<typeof temporaryDirectory>>;
  let path: string;
  beforeEach(async () => {
    directory = await temporaryDirectory('disk-store');
    path = join(directory.path, 'db');
  });
  afterEach(async () => {
    await directory.cleanup();
  });

  it('opens an empty directory as a fresh node', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    expect(store.groupIds()).toEqual([]);
    expect(store.group(gid(5)).lastIndex()).toBe(0);
    await store.close();
  });

  it('gives back everything written, identical, after close and reopen', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const confEntry: Entry = {
      kind: 'conf',
      term: 1 as Term,
      index: idx(1),
      change: { changes: [{ type: 'add_voter', node: nid(1) }], transition: 'auto' },
    };
    await store.write(
      [
        {
          group: gid(0),
          entries: [confEntry, ent(2, 1, 300), ent(3, 2, 0)],
          hardState: hard(2, 1, 3),
          applied: idx(2),
        },
        {
          group: gid(1),
          snapshot: snap(40, 3, confStateOf(nids(1, 2, 3), nids(4))),
          entries: ents(41, [3, 4], 17),
          hardState: hard(4, 0, 41),
        },
        { group: gid(0xffff_ffff), entries: ents(1, [1]) },
      ],
      { sync: true },
    );
    await store.compact(gid(0), idx(2), confStateOf(nids(1)), new Uint8Array([5, 6]));
    const before = everyGroup(store);
    await store.close();

    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(reopened.groupIds()).toEqual([0, 1, 0xffff_ffff]);
    expect(everyGroup(reopened)).toEqual(before);
    expect(contents(reopened.group(gid(0)))).toMatchObject({
      applied: 2,
      snapshot: { meta: { index: 2, term: 1 }, data: [5, 6] },
    });
    await reopened.close();
  });

  it('writes a turn of eight groups as one batch, all of which a reopen shows', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const turn: GroupWrite[] = Array.from({ length: 8 }, (_, group) => ({
      group: gid(group),
      entries: ents(1, Array<number>(8).fill(1), 64),
      hardState: hard(1, 1, 8),
    }));
    await store.write(turn, { sync: true });
    await store.close();
    // A second writer would see the batch whole or not at all; LevelDB guarantees it for one batch,
    // and crash.test.ts checks it under SIGKILL. Here: all of it is there.
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(reopened.groupIds()).toHaveLength(8);
    for (const group of reopened.groupIds()) {
      expect(reopened.group(group).lastIndex()).toBe(8);
      expect(reopened.group(group).hardState()).toEqual(hard(1, 1, 8));
    }
    await reopened.close();
  });

  it('keeps groups apart: suffix replacement, snapshot and deletion touch one group only', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write(
      [1, 2, 3].map((group) => ({ group: gid(group), entries: ents(1, [1, 1, 1, 1]) })),
      { sync: false },
    );
    await store.write(
      [
        { group: gid(1), entries: ents(2, [2]) },
        { group: gid(2), snapshot: snap(9, 3), entries: [] },
      ],
      { sync: false },
    );
    await store.deleteGroup(gid(3));
    expect(() => store.group(gid(3)).lastIndex()).not.toThrow(); // a fresh, empty handle
    expect(store.group(gid(3)).lastIndex()).toBe(0);
    await store.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(reopened.groupIds()).toEqual([1, 2]);
    expect([reopened.group(gid(1)).lastIndex(), reopened.group(gid(1)).term(idx(2))]).toEqual([2, 2]);
    expect([reopened.group(gid(2)).firstIndex(), reopened.group(gid(2)).lastIndex()]).toEqual([10, 9]);
    await reopened.close();
  });

  it('refuses reads through a handle of a deleted group', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const stale = store.group(gid(4));
    await store.write([{ group: gid(4), entries: ents(1, [1]) }], { sync: false });
    await store.deleteGroup(gid(4));
    expect(() => stale.lastIndex()).toThrow(/deleted/);
    await store.close();
  });

  it('serializes writes: a second write is planned against the state the first left', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const group = gid(7);
    // Not awaited in between: the second append at 3 would be a gap if planned before the first landed.
    const first = store.write([{ group, entries: ents(1, [1, 1]) }], { sync: true });
    const second = store.write([{ group, entries: ents(3, [1]) }], { sync: true });
    const third = store.compact(group, idx(2), confStateOf(nids(1)), new Uint8Array());
    await Promise.all([first, second, third]);
    expect([store.group(group).firstIndex(), store.group(group).lastIndex()]).toEqual([3, 3]);
    await store.close();
  });

  it('finishes operations queued before close, then refuses new ones', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const write = store.write([{ group: gid(2), entries: ents(1, [1, 1]) }], { sync: false });
    const compaction = store.compact(gid(2), idx(1), confStateOf(nids(1)), new Uint8Array([1]));
    const closed = store.close();
    await Promise.all([write, compaction, closed]);
    expect(() => store.group(gid(2))).toThrow(/after close/);
    expect(() => store.write([], { sync: false })).toThrow(/after close/);
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect([reopened.group(gid(2)).firstIndex(), reopened.group(gid(2)).lastIndex()]).toEqual([2, 2]);
    await reopened.close();
  });

  it('shows a write only once it resolved', async () => {
    const store = await DiskStore.open(path, testStoreOptions);
    const pending = store.write([{ group: gid(1), entries: ents(1, [1]) }], { sync: true });
    expect(store.group(gid(1)).lastIndex()).toBe(0);
    await pending;
    expect(store.group(gid(1)).lastIndex()).toBe(1);
    await store.close();
  });

  it('refuses a group twice in one write, and an entry above the data limit', async () => {
    const store = await DiskStore.open(path, { ...testStoreOptions, entryDataBytesMax: 8 });
    await expect(
      store.write(
        [
          { group: gid(1), entries: ents(1, [1]) },
          { group: gid(1), entries: [] },
        ],
        { sync: false },
      ),
    ).rejects.toThrow(/twice/);
    await expect(store.write([{ group: gid(1), entries: [ent(1, 1, 9)] }], { sync: false })).rejects.toThrow(
      /entryDataBytesMax/,
    );
    expect(store.group(gid(1)).lastIndex()).toBe(0);
    await store.close();
  });

  it('keeps a tail of entries behind a snapshot, across a reopen', async () => {
    const group = gid(7);
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: ents(1, [1, 1, 1], 4) }], { sync: true });
    await store.write([{ group, entries: ents(4, [2, 2, 2], 4) }], { sync: true });
    // Snapshot at 5, entries from 3 on kept: the run at 1 is cut to start at 3.
    await store.compact(group, idx(5), confStateOf(nids(1)), new Uint8Array([9]), idx(3));
    const expected = contents(store.group(group));
    expect(store.group(group).firstIndex()).toBe(3);
    expect(store.group(group).term(idx(4))).toBe(2);
    expect(store.group(group).term(idx(2))).toBeUndefined();
    await store.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(contents(reopened.group(group))).toEqual(expected);
    expect(reopened.group(group).snapshot().meta.index).toBe(5);
    // Appending after the snapshot replaces a suffix as usual; the tail stays.
    await reopened.write([{ group, entries: ents(6, [3]) }], { sync: true });
    expect(reopened.group(group).firstIndex()).toBe(3);
    expect(reopened.group(group).lastIndex()).toBe(6);
    await reopened.close();
  });

  it('stores a snapshot as a file the metadata points at: a large one comes back whole, the next replaces it, and files nothing points at are deleted at open', async () => {
    const group = gid(4);
    const large = Uint8Array.from({ length: 2 * snapshotFilePieceBytes + 5 }, (_, k) => (k * 13) & 0xff);
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: ents(1, [1, 1, 1, 1]) }], { sync: true });
    await store.compact(group, idx(2), confStateOf(nids(1)), large);
    await store.close();
    expect(await snapshotKeys(path)).toEqual(['g/4/snap-meta']);
    const [first] = await snapshotFileNames(path, group);
    expect(first).toMatch(/^2-1-[0-9a-f]{8}\.snap$/);
    // What a crash can leave: a file being written, and one written but never pointed at.
    await writeFile(join(snapshotFilesDir(path), '4', '3-1-00000000.snap.tmp'), Uint8Array.of(9));
    await writeFile(join(snapshotFilesDir(path), '4', '3-1-00000001.snap'), Uint8Array.of(9));
    await mkdir(join(snapshotFilesDir(path), '8'));
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(await snapshotFileNames(path, group)).toEqual([first]);
    expect(await readdir(snapshotFilesDir(path))).toEqual(['4']);
    expect(reopened.group(group).snapshot().meta.index).toBe(2);
    expect(reopened.group(group).snapshot().data).toEqual(large);
    await reopened.compact(group, idx(3), confStateOf(nids(1)), Uint8Array.of(7));
    await reopened.close();
    const files = await snapshotFileNames(path, group);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^3-1-/);
    const again = await DiskStore.open(path, testStoreOptions);
    expect(Array.from(again.group(group).snapshot().data)).toEqual([7]);
    await again.close();
  });

  it("writes a compaction's file outside the write queue: a write made meanwhile is not held up until the snapshot is stored", async () => {
    const group = gid(4);
    const { store, releaseSync } = await openWithFileSyncHeld(path);
    await store.write([{ group, entries: ents(1, [1, 1, 1]) }], { sync: true });
    const slices = [
      new Uint8Array(snapshotFilePieceBytes + 3).fill(1),
      new Uint8Array(2 * snapshotFilePieceBytes).fill(2),
    ];
    const compaction = store.compact(group, idx(2), confStateOf(nids(1)), slices);
    // The file's fsync is held: a write goes through all the same.
    await store.write([{ group: gid(5), entries: ents(1, [1]) }], { sync: true });
    expect(store.group(gid(5)).lastIndex()).toBe(1);
    expect(store.group(group).snapshot().meta.index).toBe(0);
    releaseSync();
    await compaction;
    expect(store.group(group).snapshot().meta.index).toBe(2);
    await store.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    const data = reopened.group(group).snapshot().data;
    expect([data.length, data[snapshotFilePieceBytes + 2], data[snapshotFilePieceBytes + 3], data.at(-1)]).toEqual([
      3 * snapshotFilePieceBytes + 3,
      1,
      2,
      2,
    ]);
    await reopened.close();
  });

  it('a received snapshot staged ahead: its file is written outside the write queue, and the write that stores it only points at it', async () => {
    const group = gid(4);
    const { store, releaseSync } = await openWithFileSyncHeld(path);
    await store.write([{ group, entries: ents(1, [1, 1, 1]) }], { sync: true });
    const snapshot = {
      meta: { index: idx(9), term: 2 as Term, confState: confStateOf(nids(1)) },
      data: Uint8Array.of(4, 2),
    };
    const staging = store.stageSnapshot(group, snapshot);
    await store.write([{ group: gid(5), entries: ents(1, [1]) }], { sync: true });
    expect(store.group(gid(5)).lastIndex()).toBe(1);
    releaseSync();
    await staging;
    await store.write([{ group, snapshot, entries: [] }], { sync: true });
    expect(store.group(group).snapshot().meta.index).toBe(9);
    expect(await snapshotFileNames(path, group)).toHaveLength(1);
    await store.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(Array.from(reopened.group(group).snapshot().data)).toEqual([4, 2]);
    expect(reopened.group(group).lastIndex()).toBe(9);
    await reopened.close();
  });

  // A crash at each step of storing a snapshot (a throw there, then a reopen) leaves the old
  // snapshot or the new one, whole, and no file nothing points at.
  it.each([
    { step: 'write', kept: 'old' },
    { step: 'sync', kept: 'old' },
    { step: 'rename', kept: 'old' },
    { step: 'pointer', kept: 'old' },
    { step: 'unlink', kept: 'new' },
  ] as const)('a crash at $step keeps the $kept snapshot whole', async ({ step, kept }) => {
    const group = gid(4);
    const old = new Uint8Array(snapshotFilePieceBytes + 1).fill(3);
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: ents(1, [1, 1, 1, 1, 1, 1]) }], { sync: true });
    await store.compact(group, idx(2), confStateOf(nids(1)), old);
    await store.close();
    const crashing = await DiskStore.open(path, {
      ...testStoreOptions,
      snapshotFileFault: (at) => {
        if (at === step) throw new Error(`crash at ${at}`);
      },
    });
    const fresh = [new Uint8Array(snapshotFilePieceBytes).fill(5), new Uint8Array(7).fill(6)];
    await expect(crashing.compact(group, idx(5), confStateOf(nids(1)), fresh)).rejects.toThrow(/crash at/);
    await crashing.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    const snapshot = reopened.group(group).snapshot();
    expect(reopened.snapshotDamage(group)).toBeUndefined();
    if (kept === 'old') {
      expect(snapshot.meta.index).toBe(2);
      expect(snapshot.data).toEqual(old);
      expect(reopened.group(group).firstIndex()).toBe(3);
    } else {
      expect(snapshot.meta.index).toBe(5);
      expect(snapshot.data).toEqual(concatBytes(fresh));
    }
    expect(await snapshotFileNames(path, group)).toHaveLength(1);
    await reopened.close();
  });

  it('a staged snapshot no write stored is deleted at the next open', async () => {
    const group = gid(4);
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: ents(1, [1, 1]) }], { sync: true });
    await store.compact(group, idx(1), confStateOf(nids(1)), Uint8Array.of(1));
    const snapshot = {
      meta: { index: idx(9), term: 2 as Term, confState: confStateOf(nids(1)) },
      data: Uint8Array.of(2),
    };
    await store.stageSnapshot(group, snapshot);
    expect(await snapshotFileNames(path, group)).toHaveLength(2);
    await store.close();
    const reopened = await DiskStore.open(path, testStoreOptions);
    expect(reopened.group(group).snapshot().meta.index).toBe(1);
    expect(await snapshotFileNames(path, group)).toHaveLength(1);
    await reopened.close();
  });

  describe('a data directory of the chunk layout (snapshot bytes as LevelDB records)', () => {
    /** Stores a snapshot at 2 and rewrites it in the chunk layout: chunk records in slot 1, as that layout's first compaction left them. */
    async function chunkLayout(group: GroupId, data: Uint8Array): Promise<void> {
      const store = await DiskStore.open(path, testStoreOptions);
      await store.write([{ group, entries: ents(1, [1, 1, 1, 1]) }], { sync: true });
      await store.compact(group, idx(2), confStateOf(nids(1)), data);
      const meta = store.group(group).snapshot().meta;
      await store.close();
      const chunks = Math.max(1, Math.ceil(data.length / snapshotChunkBytes));
      await tamper(path, async (db) => {
        for (let chunk = 0; chunk < chunks; chunk++) {
          const bytes = data.subarray(chunk * snapshotChunkBytes, (chunk + 1) * snapshotChunkBytes);
          await db.put(snapshotChunkKey(group, chunk, 1), snapshotChunkRecord(group, idx(2), chunk, bytes));
        }
        await db.put(groupRecordKey(group, 'snap-meta'), chunkedSnapshotMetaValue(group, meta, chunks, 1));
      });
      await rm(join(snapshotFilesDir(path), String(group)), { recursive: true });
    }

    it('is read, and the next snapshot moves to a file and deletes every chunk, the unfinished ones too', async () => {
      const group = gid(4);
      const large = Uint8Array.from({ length: 2 * snapshotChunkBytes + 5 }, (_, k) => (k * 13) & 0xff);
      await chunkLayout(group, large);
      // What a crash while a snapshot at 3 was written into slot 0 could leave: some chunks, with gaps.
      await tamper(path, async (db) => {
        for (const chunk of [0, 1, 4])
          await db.put(snapshotChunkKey(group, chunk, 0), snapshotChunkRecord(group, idx(3), chunk, Uint8Array.of(9)));
      });
      const reopened = await DiskStore.open(path, testStoreOptions);
      expect(reopened.group(group).snapshot().meta.index).toBe(2);
      expect(reopened.group(group).snapshot().data).toEqual(large);
      await reopened.compact(group, idx(3), confStateOf(nids(1)), Uint8Array.of(7));
      await reopened.close();
      expect(await snapshotKeys(path)).toEqual(['g/4/snap-meta']);
      const again = await DiskStore.open(path, testStoreOptions);
      expect(Array.from(again.group(group).snapshot().data)).toEqual([7]);
      await again.close();
    });

    it('one snap-data record (the layout before chunks) is read, and a snapshot from a leader replaces it', async () => {
      const group = gid(4);
      await chunkLayout(group, Uint8Array.of(1));
      await tamper(path, async (db) => {
        await db.del(snapshotChunkKey(group, 0, 1));
        const meta = { index: idx(2), term: 1 as Term, confState: confStateOf(nids(1)) };
        await db.put(groupRecordKey(group, 'snap-meta'), chunkedSnapshotMetaValue(group, meta, 1, 0));
        await db.put(groupRecordKey(group, 'snap-data'), snapshotDataValue(group, idx(2), Uint8Array.of(5, 6)));
      });
      const reopened = await DiskStore.open(path, testStoreOptions);
      expect(Array.from(reopened.group(group).snapshot().data)).toEqual([5, 6]);
      await reopened.write([{ group, snapshot: snap(8, 2), entries: [] }], { sync: true });
      await reopened.close();
      expect(await snapshotKeys(path)).toEqual(['g/4/snap-meta']);
      const again = await DiskStore.open(path, testStoreOptions);
      expect(again.group(group).snapshot().meta.index).toBe(8);
      await again.close();
    });

    it('a missing chunk: the snapshot loads as damaged, never its bytes', async () => {
      const group = gid(4);
      await chunkLayout(group, new Uint8Array(2 * snapshotChunkBytes + 1));
      await tamper(path, (db) => db.del(snapshotChunkKey(group, 1, 1)));
      const store = await DiskStore.open(path, testStoreOptions);
      expect(store.snapshotDamage(group)).toMatch(
        /g\/4\/snap-chunk\/1\/1 \(group 4, snapshot index 2\): snapshot chunk 1 is missing/,
      );
      expect(store.group(group).snapshot().data).toHaveLength(0);
      await store.close();
    });

    it('snapshot metadata without its bytes stops the open', async () => {
      const group = gid(4);
      await chunkLayout(group, Uint8Array.of(1));
      await tamper(path, (db) => db.del(snapshotChunkKey(group, 0, 1)));
      const error: unknown = await DiskStore.open(path, testStoreOptions).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StorageCorruptionError);
      expect((error as Error).message).toMatch(
        /g\/4\/snap-meta \(group 4\): snap-meta is stored without its other half/,
      );
    });
  });

  describe('corruption stops the open with the group and index named', () => {
    const group = gid(3);
    /** Entries 1..6 in three turns, so three runs: at 1 (1-2), at 3 (3) and at 4 (4-6). */
    async function writeLog(): Promise<void> {
      const store = await DiskStore.open(path, testStoreOptions);
      const log = ents(1, [1, 1, 1, 2, 2, 2], 20);
      await store.write([{ group, entries: log.slice(0, 2) }], { sync: true });
      await store.write([{ group, entries: log.slice(2, 3) }], { sync: true });
      await store.write([{ group, entries: log.slice(3), hardState: hard(2, 1, 4) }], { sync: true });
      await store.close();
    }
    async function openFails(): Promise<StorageCorruptionError> {
      const error: unknown = await DiskStore.open(path, testStoreOptions).then(
        async (store) => {
          await store.close();
          return undefined;
        },
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(StorageCorruptionError);
      return error as StorageCorruptionError;
    }

    it('a flipped byte in a log value', async () => {
      await writeLog();
      await tamper(path, async (db) => {
        const value = await storedValue(db, logKey(group, idx(4)));
        const flipped = Uint8Array.from(value);
        flipped[flipped.length - 3] = (flipped[flipped.length - 3] ?? 0) ^ 0x10;
        await db.put(logKey(group, idx(4)), flipped);
      });
      const error = await openFails();
      expect(error.code).toBe('DRAM_ERR_STORAGE_CORRUPT');
      expect([error.group, error.index, error.key]).toEqual([3, 4, 'g/3/log/4']);
      expect(error.message).toMatch(/g\/3\/log\/4 \(group 3, index 4\): checksum mismatch/);
    });

    it('a truncated (torn) value', async () => {
      await writeLog();
      await tamper(path, async (db) => {
        const value = await storedValue(db, logKey(group, idx(1)));
        await db.put(logKey(group, idx(1)), value.subarray(0, value.length - 5));
      });
      expect((await openFails()).message).toMatch(/group 3, index 1\): checksum mismatch/);
      await tamper(path, (db) => db.put(logKey(group, idx(1)), Uint8Array.of(1, 2)));
      expect((await openFails()).message).toMatch(/group 3, index 1\): value of 2 bytes is shorter/);
    });

    it("a record under another index's key", async () => {
      await writeLog();
      await tamper(path, async (db) => {
        await db.put(logKey(group, idx(4)), await storedValue(db, logKey(group, idx(3))));
      });
      const error = await openFails();
      expect([error.group, error.index]).toEqual([3, 4]);
      expect(error.message).toMatch(/holds a run that starts at index 3/);
    });

    it("a record under another group's key", async () => {
      await writeLog();
      await tamper(path, async (db) => {
        await db.put(groupRecordKey(gid(9), 'hard'), await storedValue(db, groupRecordKey(group, 'hard')));
      });
      expect((await openFails()).message).toMatch(/g\/9\/hard \(group 9\): the record belongs to group 3/);
    });

    it('a gap in the log', async () => {
      await writeLog();
      await tamper(path, (db) => db.del(logKey(group, idx(3))));
      const error = await openFails();
      expect([error.group, error.index]).toEqual([3, 3]);
      expect(error.message).toMatch(/log hole: no entry between 2 and 4/);
    });

    /** Runs at 1 (1-3) and 4 (4-5), compacted at 2: the first run's tail is rewritten as a run at 3. */
    async function writeCompactedLog(): Promise<void> {
      const store = await DiskStore.open(path, testStoreOptions);
      const log = ents(1, [1, 1, 1, 2, 2]);
      await store.write([{ group, entries: log.slice(0, 3) }], { sync: true });
      await store.write([{ group, entries: log.slice(3) }], { sync: true });
      await store.compact(group, idx(2), confStateOf(nids(1)), new Uint8Array());
      await store.close();
    }

    it('a gap right after the snapshot', async () => {
      await writeCompactedLog();
      await tamper(path, (db) => db.del(logKey(group, idx(3))));
      const error = await openFails();
      expect([error.group, error.index]).toEqual([3, 3]);
      expect(error.message).toMatch(/the log starts at 4, after the snapshot at 2/);
    });

    it('a tail kept behind the snapshot that does not hold it', async () => {
      const store = await DiskStore.open(path, testStoreOptions);
      await store.write([{ group, entries: ents(1, [1, 1, 1, 2, 2]) }], { sync: true });
      await store.compact(group, idx(3), confStateOf(nids(1)), new Uint8Array(), idx(2));
      await store.close();
      // The tail's entry at the snapshot's index 3 gets another term than the snapshot's.
      await tamper(path, (db) => db.put(logKey(group, idx(2)), logRunValue(group, [ent(2, 1), ent(3, 2)])));
      const error = await openFails();
      expect([error.group, error.index]).toEqual([3, 2]);
      expect(error.message).toMatch(/kept behind the snapshot at 3 does not hold it/);
    });

    // Damage to the snapshot's bytes alone is not fatal: the group loads with the snapshot's
    // metadata, no bytes, and the damage named, for the host to rebuild or fetch the state; a
    // compaction at the same index then replaces it, and the store is whole again.
    it.each([
      {
        damage: 'a missing file',
        tamperWith: (file: string) => rm(file),
        message: /snapshots\/3\/3-1-[0-9a-f]{8}\.snap \(group 3, snapshot index 3\): the snapshot file is missing/,
      },
      {
        damage: 'a truncated file',
        tamperWith: (file: string) => truncate(file, 5),
        message: /\(group 3, snapshot index 3\): the snapshot file holds 5 bytes, its metadata says 2097153/,
      },
      {
        damage: 'a flipped byte',
        tamperWith: async (file: string) => {
          const bytes = await readFile(file);
          bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
          await writeFile(file, bytes);
        },
        message: /\(group 3, snapshot index 3\): checksum mismatch/,
      },
    ])('$damage: the snapshot loads as damaged, never its bytes', async ({ tamperWith, message }) => {
      const confState = confStateOf(nids(1));
      const first = await DiskStore.open(path, testStoreOptions);
      await first.write([{ group, entries: ents(1, [1, 1, 1, 1]) }], { sync: true });
      await first.compact(group, idx(3), confState, new Uint8Array(2 * snapshotFilePieceBytes + 1), idx(1));
      await first.close();
      const [name] = await snapshotFileNames(path, group);
      await tamperWith(join(snapshotFilesDir(path), String(group), name ?? ''));
      const store = await DiskStore.open(path, testStoreOptions);
      expect(store.snapshotDamage(group)).toMatch(message);
      const damaged = store.group(group).snapshot();
      expect(damaged.meta).toEqual({ index: 3, term: 1, confState });
      expect(damaged.data).toHaveLength(0);
      expect(store.group(group).lastIndex()).toBe(4);
      await store.compact(group, idx(3), confState, Uint8Array.of(5, 6, 7), idx(1));
      expect(store.snapshotDamage(group)).toBeUndefined();
      await store.close();
      const reopened = await DiskStore.open(path, testStoreOptions);
      expect(reopened.snapshotDamage(group)).toBeUndefined();
      expect([...reopened.group(group).snapshot().data]).toEqual([5, 6, 7]);
      expect(reopened.group(group).firstIndex()).toBe(1);
      await reopened.close();
    });

    it('a key outside the layout', async () => {
      await writeLog();
      await tamper(path, (db) => db.put(Uint8Array.of(0x67, 0, 0, 0, 3, 0x7a), Uint8Array.of(0, 0, 0, 0, 0x80)));
      expect((await openFails()).message).toMatch(/0x67000000037a: not a key of the storage layout/);
    });
  });

  describe('LevelDB failures are fatal StorageErrors', () => {
    it('a database locked by another open store', async () => {
      const store = await DiskStore.open(path, testStoreOptions);
      const error: unknown = await DiskStore.open(path, testStoreOptions).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('DRAM_ERR_STORAGE');
      await store.close();
    });

    it('a failed batch kills the store: memory unchanged, every later operation rejects with the same error', async () => {
      const store = await DiskStore.open(path, testStoreOptions);
      await store.write([{ group: gid(1), entries: ents(1, [1]) }], { sync: false });
      // Reach under the store to make LevelDB fail the next batch (there is no public way to break a disk).
      const db = Reflect.get(store, 'db') as Level<Uint8Array, Uint8Array>;
      await db.close();
      const first: unknown = await store
        .write([{ group: gid(1), entries: ents(2, [1]) }], { sync: true })
        .catch((thrown: unknown) => thrown);
      expect(first).toBeInstanceOf(StorageError);
      expect(store.group(gid(1)).lastIndex()).toBe(1);
      await expect(store.write([], { sync: true })).rejects.toBe(first);
      await expect(store.compact(gid(1), idx(1), confStateOf(nids(1)), new Uint8Array())).rejects.toBe(first);
    });
  });
});
