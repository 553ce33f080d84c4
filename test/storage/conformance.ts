// A storage conformance suite (openraft style): the same expectations, run against every store
// the core may read through LogStorage. conformance.test.ts runs it for MemoryStorage (the
// reference the simulator trusts) and for the LevelDB-backed DiskStore. Each case acts through a
// small StorageSubject, then checks the log twice: as the running node sees it, and as a node
// restarted from the same storage sees it (for MemoryStorage that is the same object; for the
// disk store it is a close and reopen). Programmer errors (a gap, a snapshot going backwards)
// must reject with an AssertionError and leave the log as it was.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/base/assert.ts';
import type { LogIndex, Term } from '../../src/base/ids.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { LogStorage } from '../../src/raft/storage.ts';
import type { ConfEntry, ConfState, Entry, HardState, Snapshot } from '../../src/raft/types.ts';
import { ent, ents, idx, nid, nids, snap } from '../raft/unit/helpers.ts';

export interface StorageSubject {
  /** The log as the running node reads it now. */
  readonly log: LogStorage;
  append(entries: readonly Entry[]): Promise<void>;
  /** A snapshot received from a leader: replaces the whole log. */
  applySnapshot(snapshot: Snapshot): Promise<void>;
  /** A snapshot the host took of its state machine at `index`: compacts the log behind it. */
  compact(index: LogIndex, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  setHardState(hardState: HardState): Promise<void>;
  /** Simulates a restart; afterwards `log` is the restarted node's view. */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/** An entry, a snapshot or a byte array as plain data, so Buffer and Uint8Array compare equal. */
function plain(value: Entry | Snapshot): unknown {
  if ('meta' in value) return { meta: value.meta, data: Array.from(value.data) };
  return value.kind === 'normal' ? { ...value, data: Array.from(value.data) } : value;
}

function everything(log: LogStorage): unknown[] {
  return log.entries(log.firstIndex(), idx(log.lastIndex() + 1), Infinity).map(plain);
}

function pairsOf(log: LogStorage): [number, number][] {
  return log.entries(log.firstIndex(), idx(log.lastIndex() + 1), Infinity).map((entry) => [entry.index, entry.term]);
}

const conf: ConfEntry = {
  kind: 'conf',
  index: idx(3),
  term: 1 as Term,
  change: {
    changes: [
      { type: 'add_voter', node: nid(4) },
      { type: 'add_learner', node: nid(5) },
    ],
    transition: 'joint',
  },
};

export function storageConformance(name: string, create: () => Promise<StorageSubject>): void {
  describe(`${name} passes the storage conformance suite`, () => {
    let subject: StorageSubject;
    beforeEach(async () => {
      subject = await create();
    });
    afterEach(async () => {
      await subject.dispose();
    });

    /** Runs `check` on the live log, then again after a restart: both must hold. */
    async function holdsAcrossRestart(check: (log: LogStorage) => void): Promise<void> {
      check(subject.log);
      await subject.restart();
      check(subject.log);
    }

    it('starts empty with a sentinel at index 0', async () => {
      await holdsAcrossRestart((log) => {
        expect(log.firstIndex()).toBe(1);
        expect(log.lastIndex()).toBe(0);
        expect(log.term(idx(0))).toBe(0);
        expect(log.term(idx(1))).toBeUndefined();
        expect(log.entries(idx(1), idx(1), 0)).toEqual([]);
        expect(log.initialState().hardState).toEqual({ term: 0, vote: 0, commit: 0 });
        expect(log.snapshot().meta.index).toBe(0);
      });
    });

    it('appends contiguously and keeps every field of every entry', async () => {
      const first = [ent(1, 1, 5), ent(2, 1, 0), conf];
      const second = ents(4, [2, 3], 7);
      await subject.append(first);
      await subject.append(second);
      await holdsAcrossRestart((log) => {
        expect(log.lastIndex()).toBe(5);
        expect(everything(log)).toEqual([...first, ...second].map(plain));
        expect(log.term(idx(5))).toBe(3);
        expect(log.term(idx(6))).toBeUndefined();
      });
    });

    it('replaces the suffix from the first new index on', async () => {
      await subject.append(ents(1, [1, 1, 1, 1, 1]));
      await subject.append(ents(3, [2]));
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([
          [1, 1],
          [2, 1],
          [3, 2],
        ]);
        expect(log.term(idx(4))).toBeUndefined();
      });
      await subject.append(ents(1, [3, 3, 3, 3]));
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([
          [1, 3],
          [2, 3],
          [3, 3],
          [4, 3],
        ]);
      });
    });

    it('ignores an empty batch', async () => {
      await subject.append(ents(1, [1, 2]));
      await subject.append([]);
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([
          [1, 1],
          [2, 2],
        ]);
      });
    });

    it('refuses a gap and keeps the log as it was', async () => {
      await subject.append(ents(1, [1, 2]));
      await expect(subject.append(ents(4, [2]))).rejects.toThrow(AssertionError);
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([
          [1, 1],
          [2, 2],
        ]);
      });
    });

    it('serves entries() in [low, high) within a byte budget, at least one entry', async () => {
      await subject.append(ents(1, [1, 1, 2, 2, 3], 84)); // entryBytes 100 each
      await holdsAcrossRestart((log) => {
        expect(log.entries(idx(2), idx(5), Infinity).map((entry) => entry.index)).toEqual([2, 3, 4]);
        expect(log.entries(idx(3), idx(3), Infinity)).toEqual([]);
        expect(log.entries(idx(1), idx(6), 0)).toHaveLength(1);
        expect(log.entries(idx(1), idx(6), 199)).toHaveLength(1);
        expect(log.entries(idx(1), idx(6), 200)).toHaveLength(2);
        expect(log.entries(idx(1), idx(6), 499)).toHaveLength(4);
        expect(log.entries(idx(1), idx(6), 500)).toHaveLength(5);
        expect(() => log.entries(idx(0), idx(2), Infinity)).toThrow(AssertionError);
        expect(() => log.entries(idx(2), idx(7), Infinity)).toThrow(AssertionError);
        expect(() => log.entries(idx(4), idx(3), Infinity)).toThrow(AssertionError);
      });
    });

    it('compacts behind a snapshot it took, keeping the boundary term', async () => {
      await subject.append(ents(1, [1, 1, 2, 2, 3]));
      const confState = confStateOf(nids(1, 2), nids(3));
      const data = new Uint8Array([9, 8, 7]);
      const taken = await subject.compact(idx(3), confState, data);
      expect(plain(taken)).toEqual({ meta: { index: 3, term: 2, confState }, data: [9, 8, 7] });
      await holdsAcrossRestart((log) => {
        expect(plain(log.snapshot())).toEqual(plain(taken));
        expect(log.initialState().confState).toEqual(confState);
        expect(log.firstIndex()).toBe(4);
        expect(log.lastIndex()).toBe(5);
        expect(log.term(idx(2))).toBeUndefined();
        expect(log.term(idx(3))).toBe(2);
        expect(log.term(idx(4))).toBe(2);
        expect(log.term(idx(6))).toBeUndefined();
        expect(pairsOf(log)).toEqual([
          [4, 2],
          [5, 3],
        ]);
        expect(() => log.entries(idx(3), idx(5), Infinity)).toThrow(AssertionError);
      });
    });

    it('compacts at the last index, leaving no entries, and appends after it', async () => {
      await subject.append(ents(1, [1, 2]));
      await subject.compact(idx(2), confStateOf(nids(1)), new Uint8Array());
      await holdsAcrossRestart((log) => {
        expect([log.firstIndex(), log.lastIndex(), log.term(idx(2))]).toEqual([3, 2, 2]);
      });
      await subject.append(ents(3, [4]));
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([[3, 4]]);
      });
    });

    it('refuses to compact beyond the log, and skips a compaction behind the current snapshot', async () => {
      await subject.append(ents(1, [1, 1, 2]));
      await expect(subject.compact(idx(4), confStateOf(nids(1)), new Uint8Array())).rejects.toThrow(AssertionError);
      await subject.compact(idx(2), confStateOf(nids(1)), Uint8Array.of(2));
      // A snapshot installed from a leader may overtake one the host took: the older one is dropped.
      const kept = await subject.compact(idx(1), confStateOf(nids(1)), Uint8Array.of(1));
      expect([kept.meta.index, Array.from(kept.data)]).toEqual([2, [2]]);
      await holdsAcrossRestart((log) => {
        expect([log.firstIndex(), log.lastIndex()]).toEqual([3, 3]);
      });
    });

    it('skips appended entries the snapshot already covers', async () => {
      await subject.append(ents(1, [1, 1, 1, 2, 2]));
      await subject.compact(idx(3), confStateOf(nids(1)), new Uint8Array());
      await subject.append(ents(2, [1, 1, 3, 3]));
      await subject.append(ents(1, [1, 1]));
      await holdsAcrossRestart((log) => {
        expect(log.firstIndex()).toBe(4);
        expect(pairsOf(log)).toEqual([
          [4, 3],
          [5, 3],
        ]);
      });
    });

    it('replaces the whole log with a received snapshot, even one that matches the log', async () => {
      await subject.append(ents(1, [1, 1, 2, 2, 3]));
      const received = snap(3, 2, confStateOf(nids(1, 2, 3)));
      await subject.applySnapshot(received);
      await holdsAcrossRestart((log) => {
        expect(plain(log.snapshot())).toEqual(plain(received));
        expect([log.firstIndex(), log.lastIndex(), log.term(idx(3))]).toEqual([4, 3, 2]);
        expect(log.term(idx(4))).toBeUndefined();
        expect(pairsOf(log)).toEqual([]);
      });
      await subject.append(ents(4, [3, 3]));
      await holdsAcrossRestart((log) => {
        expect(pairsOf(log)).toEqual([
          [4, 3],
          [5, 3],
        ]);
      });
    });

    it('takes a snapshot beyond the log and refuses one older than the stored one', async () => {
      await subject.append(ents(1, [1, 1]));
      await subject.applySnapshot(snap(10, 4));
      await expect(subject.applySnapshot(snap(9, 4))).rejects.toThrow(AssertionError);
      await holdsAcrossRestart((log) => {
        expect([log.firstIndex(), log.lastIndex(), log.term(idx(10))]).toEqual([11, 10, 4]);
      });
    });

    it('keeps the hard state', async () => {
      const hardState: HardState = { term: 7 as Term, vote: nid(2), commit: idx(3) };
      await subject.append(ents(1, [1, 5, 7]));
      await subject.setHardState(hardState);
      await holdsAcrossRestart((log) => {
        expect(log.initialState().hardState).toEqual(hardState);
      });
    });
  });
}
