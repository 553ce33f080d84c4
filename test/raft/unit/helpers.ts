// Shared builders for the Raft unit tests: branded ids, entries of a chosen size, snapshots.

import type { LogIndex, NodeId, Term } from '../../../src/base/ids.ts';
import type { ConfState, Entry, NormalEntry, Snapshot } from '../../../src/raft/types.ts';
import { emptyConfState } from '../../../src/raft/confchange.ts';

export const nid = (value: number): NodeId => value as NodeId;
export const idx = (value: number): LogIndex => value as LogIndex;
export const trm = (value: number): Term => value as Term;
export const nids = (...values: number[]): NodeId[] => values.map(nid);

/** A normal entry whose entryBytes() is `dataBytes + 16`. */
export function ent(index: number, term: number, dataBytes = 0): NormalEntry {
  return { kind: 'normal', index: idx(index), term: trm(term), data: new Uint8Array(dataBytes) };
}

/** Contiguous entries [from, from + terms.length) with the given terms. */
export function ents(from: number, terms: readonly number[], dataBytes = 0): Entry[] {
  return terms.map((term, k) => ent(from + k, term, dataBytes));
}

export function snap(index: number, term: number, confState: ConfState = emptyConfState): Snapshot {
  return { meta: { index: idx(index), term: trm(term), confState }, data: new Uint8Array([1, 2, 3]) };
}

/** [index, term] pairs, for compact equality checks. */
export function pairs(entries: readonly Entry[] | undefined): [number, number][] | undefined {
  return entries?.map((entry) => [entry.index, entry.term]);
}
