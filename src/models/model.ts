// The model API (docs/models.md is the page for a model author): a replicated state machine that
// the multi-Raft host applies a group's committed entries to, and whose snapshots are the group's
// Raft snapshots. Only `type`, `version` and `applyEntry` are required: a model without
// `snapshot`/`restore` is still snapshot-safe, because the stack around it (model-stack.ts) keeps
// its mutations since its creation in the snapshot and replays them on restore.
//
// The contract, for every model:
//  - pure and deterministic: the same entries in the same order give the same state on every
//    replica (no time, randomness or I/O; times travel in the entries);
//  - `applyEntry` sees each committed entry at most once, in index order, never one a restored
//    snapshot already includes;
//  - `snapshot()` captures the state between two entries and returns its bytes at once (the
//    group waits while it runs: fine for a small model). A large model also implements
//    `snapshotSlices()`, which the stack then uses instead: an iterator that yields the bytes in
//    slices while later entries are applied; what it yields must be the state at the moment it
//    was called (copy-on-write or immutable data). The stack drains it between turns and stops it
//    early (`return()`) when abandoned;
//  - `restore(data, version)` replaces the whole state with a snapshot written by version
//    `version` of this model (at most its own): a model restores older versions it knows
//    (migration) and throws for others.

import type { LogIndex } from '../base/ids.ts';

/** Bytes in slices: each `next()` does a bounded amount of work (about a megabyte of output). */
export type SnapshotSlices = Iterator<Uint8Array, void>;

export interface Model {
  /** The kind of state machine, e.g. 'kv' or 'meta'; a snapshot of another type is refused. */
  readonly type: string;
  /** The version of the snapshot format the model writes; raised with every change of it. */
  readonly version: number;
  /** Applies one committed entry's data (index: its log index) and returns the caller's outcome. */
  applyEntry(index: LogIndex, data: Uint8Array): unknown;
  /**
   * The request key an entry's data carries (a client's request id), if the model has such keys:
   * how the host recognizes, among the entries it applies, a proposal it forwarded to the leader
   * (MultiRaftHost.propose with a key). A model without it cannot be proposed to with a key.
   */
  requestKey?(data: Uint8Array): string | undefined;
  snapshot?(): Uint8Array;
  /** The same bytes as snapshot(), in slices, without pausing the group (see above). */
  snapshotSlices?(): SnapshotSlices;
  restore?(data: Uint8Array, version: number): void;
}
