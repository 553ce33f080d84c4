// storage.ts MemoryStorage: append replaces a suffix, entries() ranges and byte limits, createSnapshot, applySnapshot, term() at the boundary.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.ts';
import { confStateOf } from '../../../src/raft/confchange.ts';
import { MemoryStorage, entryBytes } from '../../../src/raft/storage.ts';
import type { ConfEntry } from '../../../src/raft/types.ts';
import { ent, ents, idx, nids, pairs, snap } from './helpers.ts';

/** Storage holding entries 1..terms.length with the given terms. */
function storageWith(terms: readonly number[], dataBytes = 0): MemoryStorage {
  const storage = new MemoryStorage();
  storage.append(ents(1, terms, dataBytes));
  return storage;
}

function allEntries(storage: MemoryStorage): [number, number][] | undefined {
  return pairs(storage.entries(storage.firstIndex(), idx(storage.lastIndex() + 1), Infinity));
}

describe('entryBytes', () => {
  it('counts data plus a fixed header; conf entries by item count', () => {
    expect(entryBytes(ent(1, 1, 0))).toBe(16);
    expect(entryBytes(ent(1, 1, 100))).toBe(116);
    const conf: ConfEntry = {
      kind: 'conf',
      index: idx(1),
      term: 1 as never,
      change: {
        changes: [
          { type: 'add_voter', node: 2 as never },
          { type: 'remove_node', node: 3 as never },
        ],
        transition: 'auto',
      },
    };
    expect(entryBytes(conf)).toBe(64);
  });
});

describe('MemoryStorage', () => {
  it('starts empty with a sentinel at index 0', () => {
    const storage = new MemoryStorage();
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(idx(0))).toBe(0);
    expect(storage.term(idx(1))).toBeUndefined();
    expect(storage.entries(idx(1), idx(1), 0)).toEqual([]);
    expect(storage.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
  });

  it('bootstrap puts the membership in the log as a committed entry at 1/1', () => {
    const cs = confStateOf(nids(1, 2, 3), nids(4));
    const storage = MemoryStorage.bootstrap(cs);
    expect(storage.snapshot().meta.index).toBe(0);
    expect(storage.lastIndex()).toBe(1);
    expect(storage.initialState().hardState).toEqual({ term: 1, vote: 0, commit: 1 });
    const [entry] = storage.entries(idx(1), idx(2), Infinity);
    expect(entry?.kind === 'conf' ? entry.change.changes : undefined).toEqual([
      { type: 'add_voter', node: 1 },
      { type: 'add_voter', node: 2 },
      { type: 'add_voter', node: 3 },
      { type: 'add_learner', node: 4 },
    ]);
  });

  describe('append', () => {
    it('appends contiguously', () => {
      const storage = storageWith([1, 1, 2]);
      storage.append(ents(4, [2, 3]));
      expect(storage.lastIndex()).toBe(5);
      expect(allEntries(storage)).toEqual([
        [1, 1],
        [2, 1],
        [3, 2],
        [4, 2],
        [5, 3],
      ]);
    });

    it('replaces everything from the first new index on', () => {
      const storage = storageWith([1, 1, 1, 1, 1]);
      storage.append(ents(3, [2]));
      expect(storage.lastIndex()).toBe(3);
      expect(allEntries(storage)).toEqual([
        [1, 1],
        [2, 1],
        [3, 2],
      ]);
      expect(storage.term(idx(4))).toBeUndefined();
      storage.append(ents(1, [3, 3, 3, 3]));
      expect(allEntries(storage)).toEqual([
        [1, 3],
        [2, 3],
        [3, 3],
        [4, 3],
      ]);
    });

    it('ignores an empty batch', () => {
      const storage = storageWith([1, 2]);
      storage.append([]);
      expect(allEntries(storage)).toEqual([
        [1, 1],
        [2, 2],
      ]);
    });

    it('a batch entirely at or below the snapshot index changes nothing (as etcd)', () => {
      const storage = storageWith([1, 1, 1, 2, 2]);
      storage.createSnapshot(idx(3), confStateOf(nids(1)), new Uint8Array());
      storage.append(ents(2, [1, 1]));
      expect(allEntries(storage)).toEqual([
        [4, 2],
        [5, 2],
      ]);
    });

    it('refuses a gap', () => {
      const storage = storageWith([1, 2]);
      expect(() => {
        storage.append(ents(4, [2]));
      }).toThrow(AssertionError);
      expect(storage.lastIndex()).toBe(2);
    });

    it('skips entries already covered by the snapshot', () => {
      const storage = storageWith([1, 1, 1, 2, 2]);
      storage.createSnapshot(idx(3), confStateOf(nids(1)), new Uint8Array());
      storage.append(ents(2, [1, 1, 3, 3]));
      expect(storage.firstIndex()).toBe(4);
      expect(allEntries(storage)).toEqual([
        [4, 3],
        [5, 3],
      ]);
      storage.append(ents(1, [1, 1]));
      expect(allEntries(storage)).toEqual([
        [4, 3],
        [5, 3],
      ]);
    });
  });

  describe('entries', () => {
    const storage = storageWith([1, 1, 2, 2, 3], 84); // 100 bytes each

    it('returns [low, high)', () => {
      expect(pairs(storage.entries(idx(2), idx(5), Infinity))).toEqual([
        [2, 1],
        [3, 2],
        [4, 2],
      ]);
      expect(pairs(storage.entries(idx(5), idx(6), Infinity))).toEqual([[5, 3]]);
      expect(storage.entries(idx(3), idx(3), Infinity)).toEqual([]);
    });

    it('limits by bytes, but returns at least one entry', () => {
      expect(storage.entries(idx(1), idx(6), 0)).toHaveLength(1);
      expect(storage.entries(idx(1), idx(6), 99)).toHaveLength(1);
      expect(storage.entries(idx(1), idx(6), 100)).toHaveLength(1);
      expect(storage.entries(idx(1), idx(6), 199)).toHaveLength(1);
      expect(storage.entries(idx(1), idx(6), 200)).toHaveLength(2);
      expect(storage.entries(idx(1), idx(6), 499)).toHaveLength(4);
      expect(storage.entries(idx(1), idx(6), 500)).toHaveLength(5);
    });

    it('asserts the range is inside the log', () => {
      expect(() => storage.entries(idx(0), idx(2), Infinity)).toThrow(AssertionError);
      expect(() => storage.entries(idx(2), idx(7), Infinity)).toThrow(AssertionError);
      expect(() => storage.entries(idx(4), idx(3), Infinity)).toThrow(AssertionError);
      expect(storage.entries(idx(6), idx(6), Infinity)).toEqual([]);
    });

    it('asserts low is not compacted away', () => {
      const compacted = storageWith([1, 1, 2, 2, 3]);
      compacted.createSnapshot(idx(2), confStateOf(nids(1)), new Uint8Array());
      expect(() => compacted.entries(idx(2), idx(4), Infinity)).toThrow(AssertionError);
      expect(pairs(compacted.entries(idx(3), idx(4), Infinity))).toEqual([[3, 2]]);
    });
  });

  describe('createSnapshot', () => {
    it('compacts the log behind the snapshot and keeps the boundary term', () => {
      const storage = storageWith([1, 1, 2, 2, 3]);
      const cs = confStateOf(nids(1, 2));
      const data = new Uint8Array([9]);
      const taken = storage.createSnapshot(idx(3), cs, data);
      expect(taken).toEqual({ meta: { index: 3, term: 2, confState: cs }, data });
      expect(storage.snapshot()).toBe(taken);
      expect(storage.firstIndex()).toBe(4);
      expect(storage.lastIndex()).toBe(5);
      expect(storage.term(idx(3))).toBe(2);
      expect(storage.term(idx(2))).toBeUndefined();
      expect(storage.term(idx(0))).toBeUndefined();
      expect(storage.term(idx(4))).toBe(2);
      expect(storage.initialState().confState).toEqual(cs);
      expect(allEntries(storage)).toEqual([
        [4, 2],
        [5, 3],
      ]);
    });

    it('can snapshot at the last index, leaving no entries', () => {
      const storage = storageWith([1, 2]);
      storage.createSnapshot(idx(2), confStateOf(nids(1)), new Uint8Array());
      expect(storage.firstIndex()).toBe(3);
      expect(storage.lastIndex()).toBe(2);
      expect(storage.term(idx(2))).toBe(2);
      storage.append(ents(3, [4]));
      expect(allEntries(storage)).toEqual([[3, 4]]);
    });

    it('refuses an index beyond the log or behind the current snapshot', () => {
      const storage = storageWith([1, 1, 2]);
      expect(() => storage.createSnapshot(idx(4), confStateOf(nids(1)), new Uint8Array())).toThrow(AssertionError);
      storage.createSnapshot(idx(2), confStateOf(nids(1)), new Uint8Array());
      expect(() => storage.createSnapshot(idx(1), confStateOf(nids(1)), new Uint8Array())).toThrow(AssertionError);
      expect(storage.firstIndex()).toBe(3);
    });
  });

  describe('applySnapshot', () => {
    it('drops the whole log even when it matches at the snapshot index (RaftLog.restore assumes so)', () => {
      const storage = storageWith([1, 1, 2, 2, 3]);
      const s = snap(3, 2);
      storage.applySnapshot(s);
      expect(storage.snapshot()).toBe(s);
      expect(storage.firstIndex()).toBe(4);
      expect(storage.lastIndex()).toBe(3);
      expect(storage.term(idx(3))).toBe(2);
      expect(allEntries(storage)).toEqual([]);
    });

    it('drops the whole log when the term at the snapshot index differs', () => {
      const storage = storageWith([1, 1, 2, 2, 3]);
      storage.applySnapshot(snap(3, 5));
      expect(storage.firstIndex()).toBe(4);
      expect(storage.lastIndex()).toBe(3);
      expect(storage.term(idx(3))).toBe(5);
      expect(storage.term(idx(4))).toBeUndefined();
    });

    it('drops the whole log when the snapshot is beyond it', () => {
      const storage = storageWith([1, 1]);
      storage.applySnapshot(snap(10, 4));
      expect(storage.firstIndex()).toBe(11);
      expect(storage.lastIndex()).toBe(10);
      expect(storage.term(idx(10))).toBe(4);
      expect(storage.term(idx(2))).toBeUndefined();
      storage.append(ents(11, [4]));
      expect(allEntries(storage)).toEqual([[11, 4]]);
    });

    it('works on top of an earlier compaction', () => {
      const storage = storageWith([1, 1, 2, 2, 3, 3]);
      storage.createSnapshot(idx(2), confStateOf(nids(1)), new Uint8Array());
      storage.applySnapshot(snap(5, 3));
      expect(storage.firstIndex()).toBe(6);
      expect(storage.term(idx(5))).toBe(3);
      expect(allEntries(storage)).toEqual([]);
    });

    it('refuses a snapshot older than the stored one', () => {
      const storage = storageWith([1, 1, 2]);
      storage.createSnapshot(idx(2), confStateOf(nids(1)), new Uint8Array());
      expect(() => {
        storage.applySnapshot(snap(1, 1));
      }).toThrow(AssertionError);
      expect(storage.snapshot().meta.index).toBe(2);
    });
  });

  it('matches a sparse-array model under random appends and snapshots', () => {
    type Op =
      | { kind: 'append'; from: number; terms: number[] }
      | { kind: 'compact'; at: number }
      | { kind: 'install'; at: number; term: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('append' as const),
          from: fc.nat({ max: 30 }),
          terms: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), at: fc.nat({ max: 30 }) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('install' as const),
          at: fc.nat({ max: 30 }),
          term: fc.integer({ min: 1, max: 5 }),
        }),
      },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const storage = new MemoryStorage();
        // model: terms by index; index snapIndex holds the snapshot term.
        let snapIndex = 0;
        let terms = new Map<number, number>([[0, 0]]);
        let last = 0;
        for (const op of ops) {
          if (op.kind === 'append') {
            const from = Math.max(1, Math.min(op.from, last + 1));
            storage.append(ents(from, op.terms));
            // Entries at or below the snapshot are skipped; a batch entirely below it changes nothing.
            const keptFrom = Math.max(from, snapIndex + 1);
            const end = from + op.terms.length; // exclusive
            if (keptFrom >= end) continue;
            for (let i = keptFrom; i <= last; i++) terms.delete(i);
            for (let i = keptFrom; i < end; i++) terms.set(i, op.terms[i - from] ?? -1);
            last = end - 1;
          } else if (op.kind === 'compact') {
            if (op.at < snapIndex || op.at > last) continue;
            storage.createSnapshot(idx(op.at), confStateOf(nids(1)), new Uint8Array());
            for (let i = snapIndex; i < op.at; i++) terms.delete(i);
            snapIndex = op.at;
          } else {
            const at = snapIndex + op.at;
            storage.applySnapshot(snap(at, op.term));
            terms = new Map([[at, op.term]]);
            last = at;
            snapIndex = at;
          }
          expect(storage.firstIndex()).toBe(snapIndex + 1);
          expect(storage.lastIndex()).toBe(last);
          for (let i = 0; i <= last + 1; i++) expect(storage.term(idx(i))).toBe(terms.get(i));
          if (last > snapIndex)
            expect(
              pairs(storage.entries(idx(snapIndex + 1), idx(last + 1), Infinity))?.map(([, term]) => term),
            ).toEqual([...Array(last - snapIndex).keys()].map((k) => terms.get(snapIndex + 1 + k)));
        }
      }),
      { numRuns: 300 },
    );
  });
});
