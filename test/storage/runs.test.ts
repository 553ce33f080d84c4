// The log stored as runs of entries (src/storage/group-log.ts, records.ts, src/codec/entry-run.ts):
// a turn's entries are one record; a suffix replaced from inside a run, a compaction that ends
// inside one and snapshots all leave a store that reopens to exactly MemoryStorage's log, over
// random sequences of operations; and the run codec refuses anything it did not write.

import fc from 'fast-check';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import { decodeEntryRun, encodeEntryRun } from '../../src/codec/entry-run.ts';
import { CodecError } from '../../src/codec/validate.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { MemoryStorage, type LogStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry } from '../../src/raft/types.ts';
import { DiskStore } from '../../src/storage/disk-store.ts';
import { StorageCorruptionError } from '../../src/storage/errors.ts';
import { runEntriesMax } from '../../src/storage/group-log.ts';
import { allGroupsRange, logKey, parseKey } from '../../src/storage/keys.ts';
import { idx, nids, trm } from '../raft/unit/helpers.ts';
import { temporaryDirectory, testStoreOptions } from './support.ts';

const group = 7 as GroupId;
const confState: ConfState = {
  voters: nids(1, 2, 3),
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
};

/** An entry whose bytes name its index and term, so a misplaced one shows; every seventh is a configuration change. */
function entry(index: number, term: number): Entry {
  if (index % 7 === 0)
    return {
      kind: 'conf',
      index: idx(index),
      term: trm(term),
      change: { changes: [{ type: 'add_learner', node: (index % 5) as NodeId }], transition: 'auto' },
    };
  return { kind: 'normal', index: idx(index), term: trm(term), data: Uint8Array.of(index & 0xff, term & 0xff, 42) };
}

function view(log: LogStorage): unknown {
  const first = log.firstIndex();
  const entries = log.entries(first, idx(log.lastIndex() + 1), Infinity);
  const snapshot = log.snapshot();
  return {
    first,
    last: log.lastIndex(),
    boundary: log.term(idx(first - 1)),
    snapshot: { meta: snapshot.meta, data: Array.from(snapshot.data) },
    entries: entries.map((one) => (one.kind === 'normal' ? { ...one, data: Array.from(one.data) } : one)),
  };
}

async function logKeys(path: string): Promise<number[]> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const keys = await db.keys(allGroupsRange()).all();
    return keys.flatMap((key) => {
      const parsed = parseKey(key);
      return parsed?.kind === 'log' ? [parsed.index] : [];
    });
  } finally {
    await db.close();
  }
}

type Operation =
  | { readonly kind: 'append'; readonly back: number; readonly count: number; readonly bump: boolean }
  | { readonly kind: 'compact'; readonly at: number }
  | { readonly kind: 'snapshot'; readonly at: number }
  | { readonly kind: 'restart' };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      back: fc.nat(6),
      count: fc.integer({ min: 1, max: 9 }),
      bump: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('compact' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('snapshot' as const), at: fc.double({ min: 0, max: 1.5, noNaN: true }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('restart' as const) }) },
);

describe('the log stored as runs', () => {
  let directory: Awaited<ReturnType<typeof temporaryDirectory>>;
  beforeEach(async () => {
    directory = await temporaryDirectory('runs');
  });
  afterEach(async () => {
    await directory.cleanup();
  });

  it('stores a turn of entries as one record, and a turn above the run limit as several', async () => {
    const path = join(directory.path, 'db');
    const store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: [1, 2, 3, 4, 5].map((index) => entry(index, 1)) }], { sync: false });
    const many = Array.from({ length: runEntriesMax + 10 }, (_, k) => entry(6 + k, 1));
    await store.write([{ group, entries: many }], { sync: false });
    await store.close();
    expect(await logKeys(path)).toEqual([1, 6, 6 + runEntriesMax]);
  });

  it('rewrites the kept head of a run a new suffix cuts into, and the tail of a run a compaction cuts into', async () => {
    const path = join(directory.path, 'db');
    let store = await DiskStore.open(path, testStoreOptions);
    await store.write([{ group, entries: [1, 2, 3, 4, 5, 6].map((index) => entry(index, 1)) }], { sync: false });
    await store.write([{ group, entries: [7, 8].map((index) => entry(index, 1)) }], { sync: false });
    await store.write([{ group, entries: [4, 5].map((index) => entry(index, 2)) }], { sync: false });
    await store.close();
    expect(await logKeys(path)).toEqual([1, 4]);
    store = await DiskStore.open(path, testStoreOptions);
    expect(
      store
        .group(group)
        .entries(idx(1), idx(6), Infinity)
        .map((one) => [one.index, one.term]),
    ).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 2],
      [5, 2],
    ]);
    await store.compact(group, idx(2), confState, new Uint8Array(0));
    await store.close();
    expect(await logKeys(path)).toEqual([3, 4]);
    store = await DiskStore.open(path, testStoreOptions);
    expect(store.group(group).firstIndex()).toBe(3);
    expect(store.group(group).lastIndex()).toBe(5);
    await store.close();
  });

  it('matches MemoryStorage after every operation and every reopen, over random sequences', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 30 }), async (operations) => {
        const path = join(directory.path, `db-${run++}`);
        const memory = new MemoryStorage();
        let store = await DiskStore.open(path, testStoreOptions);
        let term = 1;
        try {
          for (const op of operations) {
            const first = memory.firstIndex();
            const last = memory.lastIndex();
            switch (op.kind) {
              case 'append': {
                if (op.bump) term++;
                const from = Math.max(first, last + 1 - op.back);
                const entries = Array.from({ length: op.count }, (_, k) => entry(from + k, term));
                memory.append(entries);
                await store.write([{ group, entries }], { sync: false });
                break;
              }
              case 'compact': {
                if (last < first) break;
                const at = idx(first + Math.min(last - first, Math.floor(op.at * (last - first + 1))));
                memory.createSnapshot(at, confState, Uint8Array.of(at & 0xff));
                await store.compact(group, at, confState, Uint8Array.of(at & 0xff));
                break;
              }
              case 'snapshot': {
                term++;
                const at = first + Math.floor(op.at * (last - first + 2));
                const snapshot = { meta: { index: idx(at), term: trm(term), confState }, data: Uint8Array.of(9) };
                memory.applySnapshot(snapshot);
                await store.write([{ group, snapshot, entries: [] }], { sync: false });
                break;
              }
              case 'restart':
                await store.close();
                store = await DiskStore.open(path, testStoreOptions);
                break;
            }
            expect(view(store.group(group))).toEqual(view(memory));
          }
          await store.close();
          store = await DiskStore.open(path, testStoreOptions);
          expect(view(store.group(group))).toEqual(view(memory));
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60, seed: 20261204 },
    );
  });

  it('refuses a log record of the earlier one-entry-per-record layout with a clear message', async () => {
    const path = join(directory.path, 'db');
    const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    const body = encode({ group, entry: { kind: 'normal', term: 1, index: 1, data: new Uint8Array(0) } });
    const value = new Uint8Array(4 + body.length);
    new DataView(value.buffer).setUint32(0, crc32(body));
    value.set(body, 4);
    await db.put(logKey(group, idx(1)), value);
    await db.close();
    const error: unknown = await DiskStore.open(path, testStoreOptions).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(StorageCorruptionError);
    expect((error as Error).message).toMatch(
      /g\/7\/log\/1 \(group 7, index 1\): a log record of another layout \(first byte 0xde.*older dram\? This version cannot read it/,
    );
  });
});

describe('the entry run codec', () => {
  const limits = { entryDataBytesMax: 64 };
  const entries = [8, 9, 10, 11, 12, 13, 14].map((index) => entry(index, 3));

  it('gives back every field of every entry, after the prefix it was asked to leave', () => {
    const bytes = encodeEntryRun(entries, 5);
    expect(decodeEntryRun(bytes, 5, limits, 'run')).toEqual(
      entries.map((one) => (one.kind === 'normal' ? { ...one, data: Uint8Array.from(one.data) } : one)),
    );
  });

  it('refuses every truncation, trailing bytes, an unknown kind and data over the limit', () => {
    const bytes = encodeEntryRun(entries, 0);
    for (let length = 0; length < bytes.length; length++)
      expect(() => decodeEntryRun(bytes.subarray(0, length), 0, limits, 'run')).toThrow(CodecError);
    expect(() => decodeEntryRun(Uint8Array.from([...bytes, 0]), 0, limits, 'run')).toThrow(
      /1 bytes after the last entry/,
    );
    const unknownKind = Uint8Array.from(bytes);
    unknownKind[12] = 9;
    expect(() => decodeEntryRun(unknownKind, 0, limits, 'run')).toThrow(/run entry 8: unknown entry kind 9/);
    const big = encodeEntryRun([{ kind: 'normal', index: idx(1), term: trm(1), data: new Uint8Array(65) }], 0);
    expect(() => decodeEntryRun(big, 0, limits, 'run')).toThrow(/65 bytes exceed 64/);
  });

  it('refuses a run of no entries and a first index of 0', () => {
    expect(() => decodeEntryRun(new Uint8Array(12), 0, limits, 'run')).toThrow(/not a log index/);
    const none = new Uint8Array(12);
    none[7] = 1;
    expect(() => decodeEntryRun(none, 0, limits, 'run')).toThrow(/a run of no entries/);
  });
});
