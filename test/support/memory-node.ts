// A Raft node with an in-memory "disk" and state machine, handling its Ready the way a real host
// must (persist, send, apply, advance). Shared by the golden transcripts, the simulator and the
// benchmarks so they all exercise the same host contract.

import type { LogIndex, NodeId } from '../../src/base/ids.ts';
import type { Rng } from '../../src/base/rng.ts';
import type { RaftConfigInput } from '../../src/raft/config.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, Message, Ready } from '../../src/raft/types.ts';

export interface AppliedEntry {
  readonly index: LogIndex;
  readonly term: number;
  readonly entry: Entry;
}

export class MemoryNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  raft: RaftNode;
  /** Entries applied to the state machine, in order (rebuilt from snapshot + log on restart). */
  applied: Entry[] = [];
  /** Index of the last applied entry (a snapshot counts as applying up to its index). */
  appliedIndex = 0;
  private readonly options: Omit<RaftConfigInput, 'id' | 'rng'>;

  constructor(id: NodeId, confState: ConfState, rng: Rng, options: Omit<RaftConfigInput, 'id' | 'rng'> = {}) {
    this.id = id;
    this.options = options;
    // A node outside the initial membership joins later with empty storage.
    this.storage = confState.voters.length > 0 ? MemoryStorage.bootstrap(confState) : new MemoryStorage();
    this.raft = new RaftNode({ ...options, id, rng }, this.storage);
  }

  /** Restart from what was persisted (volatile state lost). */
  restart(rng: Rng): void {
    this.raft = new RaftNode({ ...this.options, id: this.id, rng }, this.storage);
    const snapshot = this.storage.snapshot();
    this.appliedIndex = snapshot.meta.index;
    this.applied = decodeApplied(snapshot.data);
  }

  /** Handle one Ready completely; returns it (with the messages to deliver). */
  handleReady(): { ready: Ready; messages: Message[] } | undefined {
    if (!this.raft.hasReady()) return undefined;
    const ready = this.raft.ready();
    this.persist(ready);
    this.storeSnapshot(this.apply(ready));
    this.raft.advance(ready);
    return { ready, messages: [...ready.messages, ...ready.messagesAfterPersist] };
  }

  persist(ready: Ready): void {
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    this.storage.append(ready.entries);
    if (ready.hardState !== undefined) this.storage.hardState = ready.hardState;
  }

  /**
   * Restores the Ready's snapshot and applies its committed entries; returns the snapshot the core
   * asked for, taken before the entries were applied, for the caller to store once the Ready's
   * writes are durable (storeSnapshot).
   */
  apply(ready: Ready): ModelSnapshot | undefined {
    if (ready.snapshot !== undefined) {
      this.applied = decodeApplied(ready.snapshot.data);
      this.appliedIndex = ready.snapshot.meta.index;
    }
    // The core asked for a snapshot at the index applied so far (before this Ready's entries).
    let requested: ModelSnapshot | undefined;
    if (ready.snapshotRequest !== undefined) {
      if (ready.snapshotRequest !== this.appliedIndex)
        throw new Error(`snapshot requested at ${ready.snapshotRequest}, applied ${this.appliedIndex}`);
      requested = this.takeSnapshot();
    }
    this.applyEntries(ready.committedEntries);
    return requested;
  }

  applyEntries(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index <= this.appliedIndex) continue;
      this.applied.push(entry);
      this.appliedIndex = entry.index;
    }
  }

  /** The state machine at the applied index, when that is past the stored snapshot. */
  takeSnapshot(): ModelSnapshot | undefined {
    if (this.appliedIndex <= this.storage.snapshot().meta.index) return undefined;
    return {
      index: this.appliedIndex as LogIndex,
      confState: this.raft.currentConfState(),
      data: encodeApplied(this.applied),
    };
  }

  /** Stores a snapshot and compacts the log behind it (its index must be in the stored log). */
  storeSnapshot(snapshot: ModelSnapshot | undefined): void {
    if (snapshot === undefined || snapshot.index <= this.storage.snapshot().meta.index) return;
    this.storage.createSnapshot(snapshot.index, snapshot.confState, snapshot.data);
  }

  /** Take a snapshot of the state machine at the applied index and compact the log behind it. */
  compact(): void {
    this.storeSnapshot(this.takeSnapshot());
  }
}

export interface ModelSnapshot {
  readonly index: LogIndex;
  readonly confState: ConfState;
  readonly data: Uint8Array;
}

// The test state machine is the list of applied entries itself; a snapshot is its JSON form, so an
// installed snapshot can be compared entry by entry with every other node's history.
function encodeApplied(applied: readonly Entry[]): Uint8Array {
  const plain = applied.map((entry) =>
    entry.kind === 'normal'
      ? { t: entry.term, i: entry.index, d: Array.from(entry.data) }
      : { t: entry.term, i: entry.index, c: entry.change },
  );
  return new TextEncoder().encode(JSON.stringify(plain));
}

function decodeApplied(data: Uint8Array): Entry[] {
  if (data.length === 0) return [];
  const plain = JSON.parse(new TextDecoder().decode(data)) as { t: number; i: number; d?: number[]; c?: unknown }[];
  return plain.map(
    (item) =>
      (item.d !== undefined
        ? { kind: 'normal', term: item.t, index: item.i, data: Uint8Array.from(item.d) }
        : { kind: 'conf', term: item.t, index: item.i, change: item.c }) as Entry,
  );
}
