// log.ts RaftLog over MemoryStorage: append/maybeAppend/conflicts, findConflictByTerm, slice limits, stable/apply cursors, restore, terms; model-checked.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.ts';
import { confStateOf } from '../../../src/raft/confchange.ts';
import { RaftLog } from '../../../src/raft/log.ts';
import { MemoryStorage, entryBytes } from '../../../src/raft/storage.ts';
import type { Entry } from '../../../src/raft/types.ts';
import { ent, ents, idx, nids, pairs, snap, trm } from './helpers.ts';

/**
 * A RaftLog whose storage holds `stable` (from index snapIndex + 1, snapshot term snapTerm) and
 * whose unstable tail holds `unstable` (continuing it).
 */
function makeLog(
  stable: readonly number[],
  unstable: readonly number[] = [],
  opts: { snapIndex?: number; snapTerm?: number; dataBytes?: number } = {},
): { log: RaftLog; storage: MemoryStorage } {
  const { snapIndex = 0, snapTerm = 0, dataBytes = 0 } = opts;
  const storage = new MemoryStorage();
  if (snapIndex > 0) storage.applySnapshot(snap(snapIndex, snapTerm, confStateOf(nids(1))));
  storage.append(ents(snapIndex + 1, stable, dataBytes));
  const log = new RaftLog(storage);
  log.appendNew(ents(snapIndex + 1 + stable.length, unstable, dataBytes));
  return { log, storage };
}

/** Host side of a Ready for the log: persist the unstable tail and tell the log. */
function persist(log: RaftLog, storage: MemoryStorage): void {
  const snapshot = log.unstableSnapshot;
  if (snapshot !== undefined) {
    storage.applySnapshot(snapshot);
    log.stableSnapshotTo(snapshot.meta.index);
  }
  const unstable = log.unstableEntries();
  const last = unstable[unstable.length - 1];
  storage.append(unstable);
  if (last !== undefined) log.stableTo(last.index, last.term);
}

function termsOf(log: RaftLog): (number | undefined)[] {
  const result: (number | undefined)[] = [];
  for (let i = 0; i <= log.lastIndex() + 1; i++) result.push(log.term(idx(i)));
  return result;
}

describe('RaftLog: construction and terms', () => {
  it('starts empty over empty storage', () => {
    const { log } = makeLog([]);
    expect(log.firstIndex()).toBe(1);
    expect(log.lastIndex()).toBe(0);
    expect(log.lastTerm()).toBe(0);
    expect(log.committed).toBe(0);
    expect(log.applied).toBe(0);
    expect(log.applying).toBe(0);
    expect(log.unstableEntries()).toEqual([]);
    expect(log.term(idx(0))).toBe(0);
    expect(log.term(idx(1))).toBeUndefined();
  });

  it('starts at the storage snapshot, with compacted terms unknown', () => {
    const { log } = makeLog([5, 5, 6], [], { snapIndex: 10, snapTerm: 4 });
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(13);
    expect(log.lastTerm()).toBe(6);
    expect(log.committed).toBe(10);
    expect(log.applied).toBe(10);
    expect(log.term(idx(10))).toBe(4);
    expect(log.term(idx(9))).toBeUndefined();
    expect(log.term(idx(0))).toBeUndefined();
    expect(log.term(idx(12))).toBe(5);
    expect(log.term(idx(14))).toBeUndefined();
    expect(log.matchTerm(idx(10), trm(4))).toBe(true);
    expect(log.matchTerm(idx(9), trm(0))).toBe(false);
  });

  it('reads terms across the stable/unstable boundary', () => {
    const { log } = makeLog([1, 1, 2], [3, 3]);
    expect(termsOf(log)).toEqual([0, 1, 1, 2, 3, 3, undefined]);
    expect(log.unstableOffsetIndex()).toBe(4);
    expect(pairs(log.unstableEntries())).toEqual([
      [4, 3],
      [5, 3],
    ]);
  });
});

describe('RaftLog.appendNew', () => {
  it('continues the log', () => {
    const { log } = makeLog([1, 1]);
    log.appendNew(ents(3, [2, 2]));
    expect(log.lastIndex()).toBe(4);
    expect(log.lastTerm()).toBe(2);
    expect(pairs(log.unstableEntries())).toEqual([
      [3, 2],
      [4, 2],
    ]);
    log.appendNew([]);
    expect(log.lastIndex()).toBe(4);
  });

  it('asserts the entries continue the log exactly', () => {
    const { log } = makeLog([1, 1]);
    expect(() => {
      log.appendNew(ents(4, [2]));
    }).toThrow(AssertionError);
    expect(() => {
      log.appendNew(ents(2, [2]));
    }).toThrow(AssertionError);
    expect(log.lastIndex()).toBe(2);
  });
});

describe('RaftLog.maybeAppend', () => {
  // etcd's TestLogMaybeAppend: log 1..3 with terms 1,2,3, committed 1.
  const setup = () => {
    const { log, storage } = makeLog([], [1, 2, 3]);
    log.commitTo(idx(1));
    return { log, storage };
  };

  it('rejects when the log does not match at prevIndex', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(3), trm(2), idx(3), ents(4, [4]))).toBeUndefined();
    expect(log.maybeAppend(idx(4), trm(3), idx(3), ents(5, [4]))).toBeUndefined();
    expect(log.lastIndex()).toBe(3);
    expect(log.committed).toBe(1);
  });

  it('accepts an empty append and commits up to the last new index', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(3), trm(3), idx(3), [])).toBe(3);
    expect(log.committed).toBe(3);
    const other = setup().log;
    expect(other.maybeAppend(idx(2), trm(2), idx(3), [])).toBe(2);
    // commit is capped by the last index this message vouches for.
    expect(other.committed).toBe(2);
  });

  it('never moves commit backwards', () => {
    const { log } = setup();
    log.commitTo(idx(3));
    expect(log.maybeAppend(idx(2), trm(2), idx(1), [])).toBe(2);
    expect(log.committed).toBe(3);
  });

  it('appends new entries after the end', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(3), trm(3), idx(4), ents(4, [4, 4]))).toBe(5);
    expect(log.committed).toBe(4);
    expect(termsOf(log)).toEqual([0, 1, 2, 3, 4, 4, undefined]);
  });

  it('keeps a longer log when every sent entry already matches', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(1), trm(1), idx(3), ents(2, [2]))).toBe(2);
    expect(log.lastIndex()).toBe(3);
    expect(log.committed).toBe(2);
    expect(termsOf(log)).toEqual([0, 1, 2, 3, undefined]);
  });

  it('truncates a conflicting unstable suffix', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(1), trm(1), idx(1), ents(2, [4, 4]))).toBe(3);
    expect(termsOf(log)).toEqual([0, 1, 4, 4, undefined]);
    expect(pairs(log.unstableEntries())).toEqual([
      [1, 1],
      [2, 4],
      [3, 4],
    ]);
  });

  it('replaces only from the first conflict on', () => {
    const { log } = setup();
    expect(log.maybeAppend(idx(1), trm(1), idx(1), ents(2, [2, 4, 4]))).toBe(4);
    expect(termsOf(log)).toEqual([0, 1, 2, 4, 4, undefined]);
    expect(log.lastIndex()).toBe(4);
  });

  it('truncates a persisted suffix: unstable moves back, storage is replaced when persisted', () => {
    const { log, storage } = makeLog([1, 1, 1, 1, 1]);
    log.commitTo(idx(2));
    expect(log.maybeAppend(idx(2), trm(1), idx(2), ents(3, [2]))).toBe(3);
    expect(log.unstableOffsetIndex()).toBe(3);
    expect(pairs(log.unstableEntries())).toEqual([[3, 2]]);
    expect(log.lastIndex()).toBe(3);
    expect(termsOf(log)).toEqual([0, 1, 1, 2, undefined]);
    // The storage still has the old suffix until the host writes the Ready.
    expect(storage.lastIndex()).toBe(5);
    persist(log, storage);
    expect(storage.lastIndex()).toBe(3);
    expect(log.unstableEntries()).toEqual([]);
    expect(termsOf(log)).toEqual([0, 1, 1, 2, undefined]);
  });

  it('asserts instead of truncating committed entries', () => {
    const { log } = setup();
    log.commitTo(idx(2));
    expect(() => log.maybeAppend(idx(1), trm(1), idx(3), ents(2, [4]))).toThrow(/conflicts with committed/);
    // Nothing changed.
    expect(termsOf(log)).toEqual([0, 1, 2, 3, undefined]);
    expect(log.committed).toBe(2);
    // A conflict just above commit is fine.
    expect(log.maybeAppend(idx(2), trm(2), idx(3), ents(3, [4]))).toBe(3);
    expect(termsOf(log)).toEqual([0, 1, 2, 4, undefined]);
  });

  it('matches against the snapshot term at the log start', () => {
    const { log } = makeLog([], [], { snapIndex: 5, snapTerm: 2 });
    expect(log.maybeAppend(idx(5), trm(1), idx(6), ents(6, [3]))).toBeUndefined();
    expect(log.maybeAppend(idx(4), trm(2), idx(6), ents(5, [2, 3]))).toBeUndefined();
    expect(log.maybeAppend(idx(5), trm(2), idx(6), ents(6, [3]))).toBe(6);
    expect(log.committed).toBe(6);
  });
});

describe('RaftLog.findConflictByTerm', () => {
  // From etcd's TestFindConflictByTerm, except that an index past the end is clamped to lastIndex here.
  it.each([
    // log 1..5 with terms 2,2,5,5,5
    [0, [2, 2, 5, 5, 5], 100, 2, 2, 2],
    [0, [2, 2, 5, 5, 5], 5, 6, 5, 5],
    [0, [2, 2, 5, 5, 5], 5, 5, 5, 5],
    [0, [2, 2, 5, 5, 5], 5, 4, 2, 2],
    [0, [2, 2, 5, 5, 5], 5, 2, 2, 2],
    [0, [2, 2, 5, 5, 5], 5, 1, 0, 0],
    [0, [2, 2, 5, 5, 5], 1, 2, 1, 2],
    [0, [2, 2, 5, 5, 5], 1, 1, 0, 0],
    [0, [2, 2, 5, 5, 5], 0, 0, 0, 0],
    // snapshot at 10 (term 3), then 11..15 with terms 3,3,4,4,4
    [10, [3, 3, 4, 4, 4], 30, 3, 12, 3],
    [10, [3, 3, 4, 4, 4], 14, 9, 14, 4],
    [10, [3, 3, 4, 4, 4], 14, 4, 14, 4],
    [10, [3, 3, 4, 4, 4], 14, 3, 12, 3],
    [10, [3, 3, 4, 4, 4], 14, 2, 9, 0],
    [10, [3, 3, 4, 4, 4], 11, 5, 11, 3],
    [10, [3, 3, 4, 4, 4], 10, 5, 10, 3],
    [10, [3, 3, 4, 4, 4], 10, 3, 10, 3],
    [10, [3, 3, 4, 4, 4], 10, 2, 9, 0],
    [10, [3, 3, 4, 4, 4], 9, 2, 9, 0],
    [10, [3, 3, 4, 4, 4], 4, 2, 4, 0],
    [10, [3, 3, 4, 4, 4], 0, 0, 0, 0],
  ])('snapshot %i, log %j: (index %i, term %i) -> (%i, %i)', (snapIndex, terms, index, term, wantIndex, wantTerm) => {
    const { log } = makeLog(terms, [], { snapIndex, snapTerm: 3 });
    expect(log.findConflictByTerm(idx(index), trm(term))).toEqual({ index: wantIndex, term: wantTerm });
  });

  it('looks into the unstable tail too', () => {
    const { log } = makeLog([1, 1], [2, 3, 3]);
    expect(log.findConflictByTerm(idx(5), trm(2))).toEqual({ index: 3, term: 2 });
    expect(log.findConflictByTerm(idx(5), trm(1))).toEqual({ index: 2, term: 1 });
  });

  it('agrees with a downward scan on random logs', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 5 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 12 }),
        fc.nat({ max: 20 }),
        fc.nat({ max: 7 }),
        (snapIndex, rawTerms, index, term) => {
          const terms = [...rawTerms].sort((a, b) => a - b);
          const { log } = makeLog(terms, [], { snapIndex, snapTerm: 1 });
          let at = Math.min(index, snapIndex + terms.length);
          const termAt = (i: number): number | undefined =>
            i === snapIndex ? (snapIndex === 0 ? 0 : 1) : i > snapIndex ? terms[i - snapIndex - 1] : undefined;
          let want: { index: number; term: number };
          for (;;) {
            const t = termAt(at);
            if (t === undefined) {
              want = { index: at, term: 0 };
              break;
            }
            if (t <= term) {
              want = { index: at, term: t };
              break;
            }
            at--;
          }
          expect(log.findConflictByTerm(idx(index), trm(term))).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RaftLog.slice', () => {
  // 100 bytes per entry; 1..3 stable, 4..6 unstable.
  const { log } = makeLog([1, 1, 2], [2, 3, 3], { dataBytes: 84 });

  it('returns [low, high) across the stable/unstable boundary', () => {
    expect(pairs(log.slice(idx(2), idx(6), Infinity))).toEqual([
      [2, 1],
      [3, 2],
      [4, 2],
      [5, 3],
    ]);
    expect(pairs(log.slice(idx(1), idx(4), Infinity))).toEqual([
      [1, 1],
      [2, 1],
      [3, 2],
    ]);
    expect(pairs(log.slice(idx(4), idx(7), Infinity))).toEqual([
      [4, 2],
      [5, 3],
      [6, 3],
    ]);
    expect(log.slice(idx(3), idx(3), Infinity)).toEqual([]);
    expect(log.slice(idx(5), idx(2), Infinity)).toEqual([]);
  });

  it('limits bytes over both parts, returning at least one entry', () => {
    expect(pairs(log.slice(idx(1), idx(7), 0))).toEqual([[1, 1]]);
    expect(pairs(log.slice(idx(5), idx(7), 0))).toEqual([[5, 3]]);
    expect(log.slice(idx(1), idx(7), 250)).toHaveLength(2);
    expect(log.slice(idx(2), idx(7), 300)).toHaveLength(3); // 2 stable + 1 unstable
    expect(log.slice(idx(3), idx(7), 399)).toHaveLength(3);
    expect(log.slice(idx(1), idx(7), 600)).toHaveLength(6);
  });

  it('asserts high is within the log', () => {
    expect(() => log.slice(idx(1), idx(8), Infinity)).toThrow(AssertionError);
  });

  it('is undefined when low is compacted away', () => {
    const compacted = makeLog([2, 2], [3], { snapIndex: 5, snapTerm: 2 }).log;
    expect(compacted.slice(idx(5), idx(7), Infinity)).toBeUndefined();
    expect(pairs(compacted.slice(idx(6), idx(9), Infinity))).toEqual([
      [6, 2],
      [7, 2],
      [8, 3],
    ]);
  });

  it('matches a byte-limited prefix for any split and range', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 60 }), { minLength: 1, maxLength: 12 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        fc.nat({ max: 400 }),
        (sizes, splitSeed, lowSeed, highSeed, bytesMax) => {
          const n = sizes.length;
          const split = splitSeed % (n + 1);
          const storage = new MemoryStorage();
          const all: Entry[] = sizes.map((size, k) => ent(k + 1, 1, size));
          storage.append(all.slice(0, split));
          const raftLog = new RaftLog(storage);
          raftLog.appendNew(all.slice(split));
          const low = 1 + (lowSeed % n);
          const high = low + (highSeed % (n + 2 - low));
          const want: Entry[] = [];
          let bytes = 0;
          for (const entry of all.slice(low - 1, high - 1)) {
            bytes += entryBytes(entry);
            if (want.length > 0 && bytes > bytesMax) break;
            want.push(entry);
          }
          expect(raftLog.slice(idx(low), idx(high), bytesMax)).toEqual(want);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('RaftLog: stableTo / unstableEntries', () => {
  it('drops persisted entries from the unstable tail', () => {
    const { log, storage } = makeLog([1], [1, 2, 2]);
    storage.append(log.unstableEntries().slice(0, 2));
    log.stableTo(idx(3), trm(2));
    expect(pairs(log.unstableEntries())).toEqual([[4, 2]]);
    expect(log.unstableOffsetIndex()).toBe(4);
    expect(termsOf(log)).toEqual([0, 1, 1, 2, 2, undefined]);
  });

  it('ignores a stale term (the entry was replaced meanwhile)', () => {
    const { log } = makeLog([1], [1, 1, 1]);
    log.maybeAppend(idx(2), trm(1), idx(0), ents(3, [2, 2]));
    log.stableTo(idx(4), trm(1));
    expect(pairs(log.unstableEntries())).toEqual([
      [2, 1],
      [3, 2],
      [4, 2],
    ]);
  });

  it('ignores indexes below the unstable offset or beyond the end', () => {
    const { log } = makeLog([1, 1], [2]);
    log.stableTo(idx(2), trm(1));
    log.stableTo(idx(4), trm(2));
    expect(pairs(log.unstableEntries())).toEqual([[3, 2]]);
  });

  it('after persisting everything, last index and terms come from storage', () => {
    const { log, storage } = makeLog([1], [2, 3]);
    persist(log, storage);
    expect(log.unstableEntries()).toEqual([]);
    expect(storage.lastIndex()).toBe(3);
    expect(log.lastIndex()).toBe(3);
    expect(log.lastTerm()).toBe(3);
    expect(log.unstableOffsetIndex()).toBe(4);
  });
});

describe('RaftLog: commit and apply cursors', () => {
  it('commitTo never goes back and asserts against the end of the log', () => {
    const { log } = makeLog([1, 1, 1]);
    log.commitTo(idx(2));
    log.commitTo(idx(1));
    expect(log.committed).toBe(2);
    expect(() => {
      log.commitTo(idx(4));
    }).toThrow(AssertionError);
    expect(log.committed).toBe(2);
  });

  it('hands out committed entries once, limited by bytes, then applies them', () => {
    const { log } = makeLog([1, 1, 1], [1], { dataBytes: 84 }); // 100 bytes each
    expect(log.hasNextCommittedEntries()).toBe(false);
    expect(log.nextCommittedEntries(Infinity)).toEqual([]);
    log.commitTo(idx(4));
    expect(log.hasNextCommittedEntries()).toBe(true);
    expect(pairs(log.nextCommittedEntries(Infinity))).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    expect(pairs(log.nextCommittedEntries(250))).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(pairs(log.nextCommittedEntries(0))).toEqual([[1, 1]]);

    log.acceptApplying(idx(2));
    expect(log.applying).toBe(2);
    expect(log.applied).toBe(0);
    expect(pairs(log.nextCommittedEntries(Infinity))).toEqual([
      [3, 1],
      [4, 1],
    ]);
    log.acceptApplying(idx(1)); // never backwards
    expect(log.applying).toBe(2);

    log.appliedTo(idx(2));
    expect(log.applied).toBe(2);
    log.acceptApplying(idx(4));
    expect(log.hasNextCommittedEntries()).toBe(false);
    expect(log.nextCommittedEntries(Infinity)).toEqual([]);
    log.appliedTo(idx(4));
    expect(log.applied).toBe(4);
    expect(log.applying).toBe(4);
    log.appliedTo(idx(3)); // never backwards
    expect(log.applied).toBe(4);
  });

  it('appliedTo moves applying forward too', () => {
    const { log } = makeLog([1, 1, 1]);
    log.commitTo(idx(3));
    log.appliedTo(idx(2));
    expect(log.applying).toBe(2);
    expect(pairs(log.nextCommittedEntries(Infinity))).toEqual([[3, 1]]);
  });

  it('asserts applying and applied stay at or below commit', () => {
    const { log } = makeLog([1, 1, 1]);
    log.commitTo(idx(2));
    expect(() => {
      log.acceptApplying(idx(3));
    }).toThrow(AssertionError);
    expect(() => {
      log.appliedTo(idx(3));
    }).toThrow(AssertionError);
    expect(log.applying).toBe(0);
    expect(log.applied).toBe(0);
  });
});

describe('RaftLog.restore', () => {
  it('replaces the log with an unstable snapshot until the host persists it', () => {
    const { log, storage } = makeLog([1, 1], [1, 2]);
    log.commitTo(idx(2));
    const s = snap(10, 3, confStateOf(nids(1, 2, 3)));
    log.restore(s);
    expect(log.unstableSnapshot).toBe(s);
    expect(log.unstableEntries()).toEqual([]);
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(10);
    expect(log.lastTerm()).toBe(3);
    expect(log.term(idx(10))).toBe(3);
    expect(log.term(idx(9))).toBeUndefined();
    expect(log.term(idx(2))).toBeUndefined();
    expect(log.term(idx(11))).toBeUndefined();
    expect(log.committed).toBe(10);
    expect(log.applied).toBe(10);
    expect(log.applying).toBe(10);
    expect(log.hasNextCommittedEntries()).toBe(false);
    expect(log.slice(idx(2), idx(3), Infinity)).toBeUndefined();
    expect(log.findConflictByTerm(idx(12), trm(3))).toEqual({ index: 10, term: 3 });

    // The leader continues after the snapshot before the host has persisted it.
    expect(log.maybeAppend(idx(10), trm(3), idx(11), ents(11, [3, 4]))).toBe(12);
    expect(log.committed).toBe(11);
    expect(log.hasNextCommittedEntries()).toBe(false); // not before the snapshot is stable
    expect(pairs(log.slice(idx(11), idx(13), Infinity))).toEqual([
      [11, 3],
      [12, 4],
    ]);

    log.stableSnapshotTo(idx(9)); // another snapshot: ignored
    expect(log.unstableSnapshot).toBe(s);
    persist(log, storage);
    expect(log.unstableSnapshot).toBeUndefined();
    expect(storage.firstIndex()).toBe(11);
    expect(storage.lastIndex()).toBe(12);
    expect(log.firstIndex()).toBe(11);
    expect(termsOf(log).slice(9)).toEqual([undefined, 3, 3, 4, undefined]);
    expect(pairs(log.nextCommittedEntries(Infinity))).toEqual([[11, 3]]);
  });
});

describe('RaftLog.isUpToDate', () => {
  const { log } = makeLog([1, 1, 2], [3, 3]); // last (5, 3)
  it.each([
    [5, 3, true],
    [6, 3, true],
    [4, 3, false],
    [1, 4, true],
    [9, 2, false],
    [0, 0, false],
  ])('(lastIndex %i, lastTerm %i) -> %s', (index, term, want) => {
    expect(log.isUpToDate(idx(index), trm(term))).toBe(want);
  });
});

describe('RaftLog: model check against a plain term array', () => {
  type Op =
    | { kind: 'appendNew'; terms: number[] }
    | {
        kind: 'maybeAppend';
        prevBack: number;
        prevTermOk: boolean;
        keep: number;
        newTerms: number[];
        commitBack: number;
      }
    | { kind: 'persist' }
    | { kind: 'apply' }
    | { kind: 'compact' };
  const termsArb = fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('appendNew' as const), terms: termsArb }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('maybeAppend' as const),
        prevBack: fc.integer({ min: -1, max: 6 }),
        prevTermOk: fc.boolean(),
        keep: fc.nat({ max: 4 }),
        newTerms: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 4 }),
        commitBack: fc.integer({ min: -2, max: 4 }),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ kind: 'persist' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'apply' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
  );

  it('keeps last index, terms, commit and slices equal to the model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const storage = new MemoryStorage();
        const log = new RaftLog(storage);
        // model: terms[i] for i in [snapIndex, last]; undefined below snapIndex.
        const terms: (number | undefined)[] = [0];
        let snapIndex = 0;
        let committed = 0;
        let applied = 0;
        let maxTerm = 0;
        const last = (): number => terms.length - 1;
        for (const op of ops) {
          if (op.kind === 'appendNew') {
            const from = last() + 1;
            const newTerms = op.terms.map((bump) => (maxTerm += bump));
            log.appendNew(ents(from, newTerms));
            terms.push(...newTerms);
          } else if (op.kind === 'maybeAppend') {
            const prev = Math.max(0, last() - op.prevBack);
            const ourPrevTerm = terms[prev];
            const prevTerm = op.prevTermOk && ourPrevTerm !== undefined ? ourPrevTerm : maxTerm + 1;
            // The leader's entries: some copied from our log after prev, then new ones with higher terms.
            const sent: number[] = [];
            for (let k = 0; k < op.keep && prev + 1 + k <= last(); k++) sent.push(terms[prev + 1 + k] ?? -1);
            let leaderTerm = maxTerm;
            for (const bump of op.newTerms) sent.push((leaderTerm += bump + 1));
            const commit = Math.max(0, prev + sent.length - op.commitBack);
            const entries = ents(prev + 1, sent);
            const matches = terms[prev] === prevTerm;
            let conflict = 0;
            if (matches) {
              conflict = entries.find((e) => terms[e.index] !== e.term)?.index ?? 0;
            }
            if (matches && conflict !== 0 && conflict <= committed) {
              expect(() => log.maybeAppend(idx(prev), trm(prevTerm), idx(commit), entries)).toThrow(
                /conflicts with committed/,
              );
            } else {
              const result = log.maybeAppend(idx(prev), trm(prevTerm), idx(commit), entries);
              if (!matches) {
                expect(result).toBeUndefined();
              } else {
                expect(result).toBe(prev + sent.length);
                if (conflict !== 0) {
                  terms.length = conflict;
                  terms.push(...sent.slice(conflict - prev - 1));
                }
                committed = Math.max(committed, Math.min(commit, prev + sent.length));
                maxTerm = Math.max(maxTerm, leaderTerm);
              }
            }
          } else if (op.kind === 'persist') {
            persist(log, storage);
            expect(storage.lastIndex()).toBe(last());
          } else if (op.kind === 'apply') {
            const handed = log.nextCommittedEntries(Infinity);
            expect(handed.map((e) => e.index)).toEqual(
              [...Array(committed - applied).keys()].map((k) => applied + 1 + k),
            );
            expect(handed.map((e) => e.term)).toEqual(terms.slice(applied + 1, committed + 1));
            const lastHanded = handed[handed.length - 1];
            if (lastHanded !== undefined) {
              log.acceptApplying(lastHanded.index);
              log.appliedTo(lastHanded.index);
            }
            applied = committed;
          } else {
            // The host snapshots at its applied index, which it has persisted.
            persist(log, storage);
            if (applied <= snapIndex) continue;
            storage.createSnapshot(idx(applied), confStateOf(nids(1)), new Uint8Array());
            for (let i = snapIndex; i < applied; i++) terms[i] = undefined;
            snapIndex = applied;
          }
          expect(log.firstIndex()).toBe(snapIndex + 1);
          expect(log.lastIndex()).toBe(last());
          expect(log.lastTerm()).toBe(terms[last()]);
          expect(log.committed).toBe(committed);
          expect(log.applied).toBe(applied);
          for (let i = 0; i <= last() + 1; i++) expect(log.term(idx(i))).toBe(terms[i]);
          expect(log.slice(idx(snapIndex + 1), idx(last() + 1), Infinity)?.map((e) => e.term)).toEqual(
            terms.slice(snapIndex + 1),
          );
          if (snapIndex > 0) expect(log.slice(idx(snapIndex), idx(last() + 1), Infinity)).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });
});
