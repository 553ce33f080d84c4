// A simulated disk for the host simulator: one per node, outliving the node's processes. It is
// the HostStorage of each life of the node (open()), and it models what a crash keeps.
//
// Owns three layers of every group's Raft state, each a MemoryStorage per group:
//  - synced: what survives a power loss;
//  - written: synced plus the operations written but not synced (in the OS's page cache; they
//    survive a process kill, not a power loss), kept as a list replayed on top of `synced`;
//  - the cache: what the core reads (as the production DiskStore's cache, it shows an operation
//    only once the operation completed, so it equals `written`).
// Operations run one at a time in call order, each completing after a seeded latency as an event
// of the process that issued it (so a paused process sees its completions on resume, and a dead
// one never). A synced operation makes every earlier written one synced too (one log, as LevelDB's).
// An operation in flight when the process dies may have reached the OS or not (a seeded prefix of
// them did). A failed write (failNextOperation) rejects, changes nothing, and fails every later
// operation of that process, as DiskStore does; the next life starts with a working disk.
// Compaction is synced, as in DiskStore, and written as DiskStore writes it: its chunks first,
// each an operation of its own (synced, changing nothing a restart reads: they go to the spare
// slot), then the operation that switches to the snapshot; a crash in between loses the
// compaction and leaves the stored snapshot as it was.
// deleteGroup (a node removed from a group: src/node/group-hosting.ts) is a synced operation
// dropping every record of the group, as DiskStore's; a compaction of the group begun before it
// submits nothing after it (DiskStore skips a deleted group's compaction), so it cannot bring the
// group back.
// A snapshot from a leader is staged first (stageSnapshot: a synced operation that changes
// nothing a restart reads, as DiskStore's file nothing points at yet), then stored by a write as before.

import { assert } from '../../src/base/assert.ts';
import { concatBytes } from '../../src/base/bytes.ts';
import type { GroupId, LogIndex } from '../../src/base/ids.ts';
import type { Rng } from '../../src/base/rng.ts';
import type { GroupWrite, HostStorage } from '../../src/multiraft/ports.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, Snapshot } from '../../src/raft/types.ts';
import type { SimProcess } from './sim-time.ts';

/** Bytes per snapshot chunk operation here (small, so a compaction takes a few operations). */
const simChunkBytes = 256;
/** At most this many chunk operations per compaction, whatever its size. */
const simChunksMax = 4;

type DiskOperation =
  | { readonly kind: 'write'; readonly batch: readonly GroupWrite[]; readonly sync: boolean }
  | { readonly kind: 'snapshot-chunk'; readonly group: GroupId }
  /** A snapshot from a leader made durable ahead of the write that stores it: changes nothing a restart reads. */
  | { readonly kind: 'stage'; readonly group: GroupId }
  | {
      readonly kind: 'compact';
      readonly group: GroupId;
      readonly index: LogIndex;
      readonly confState: ConfState;
      readonly data: Uint8Array;
      readonly replace: boolean;
    }
  | { readonly kind: 'delete'; readonly group: GroupId };

export interface DiskLatency {
  /** Milliseconds for an unsynced write, and for a synced one (both uniform in [min, 2·min)). */
  readonly writeMs: number;
  readonly syncMs: number;
}

export interface SimDiskObserver {
  /** Entries that reached the cache (the core can read them): for the log-matching check. */
  onEntriesWritten(group: GroupId, entries: readonly Entry[]): void;
}

export class SimDiskFailure extends Error {
  override readonly name = 'SimDiskFailure';
}

export class SimDisk {
  private synced = new Map<GroupId, MemoryStorage>();
  private unsynced: DiskOperation[] = [];
  private cache = new Map<GroupId, MemoryStorage>();
  private inFlight: DiskOperation[] = [];
  private busyUntil = 0;
  private failure: Error | undefined;
  private process: SimProcess | undefined;
  /** The next operation to complete fails (a disk error); the process's later ones fail too. */
  failNextOperation = false;
  readonly stats = {
    writes: 0,
    syncs: 0,
    compactions: 0,
    /** Crashes of the process while it was writing a compaction's chunks or switching to them. */
    compactionsCutShort: 0,
    failures: 0,
    lostUnsynced: 0,
    lostInFlight: 0,
    /** Stored snapshots found damaged at a start (bit rot: HostStorage.snapshotDamage). */
    snapshotsDamaged: 0,
  };
  /**
   * Snapshots damaged on this disk, by group: the very snapshot object stored (copies share it),
   * so the damage lasts across lives until a new snapshot replaces it.
   */
  private readonly damaged = new Map<GroupId, Snapshot>();
  /** Bumped when a deletion of the group is submitted: a compaction begun before submits no more. */
  private readonly generations = new Map<GroupId, number>();
  /** Compactions of the live process not finished yet. */
  private compactionsWriting = 0;
  private readonly rng: Rng;
  private readonly latency: DiskLatency;
  private readonly observer: SimDiskObserver;

  constructor(rng: Rng, latency: DiskLatency, observer: SimDiskObserver) {
    this.rng = rng;
    this.latency = latency;
    this.observer = observer;
  }

  /** A group created by its first members (the bootstrap entry, synced before the node starts). */
  bootstrap(group: GroupId, confState: ConfState): void {
    this.synced.set(group, MemoryStorage.bootstrap(confState));
  }

  /** The groups this disk holds anything of, ascending. */
  groups(): GroupId[] {
    return [...new Set([...this.synced.keys(), ...this.cache.keys()])].sort((a, b) => a - b);
  }

  /**
   * The storage of a new life of the node: the cache is rebuilt from what the disk holds. With
   * `rot`, every stored snapshot is found damaged (its bytes must not be used; the host rebuilds
   * or fetches the state, and a new snapshot replaces it).
   */
  open(process: SimProcess, rot = false): HostStorage {
    assert(this.process === undefined || !this.process.alive, 'sim disk: opened by two live processes');
    this.process = process;
    this.failure = undefined;
    this.failNextOperation = false;
    this.inFlight = [];
    this.busyUntil = process.now;
    this.cache = new Map();
    for (const [group, storage] of this.synced) this.cache.set(group, copyStorage(storage));
    for (const operation of this.unsynced) applyOperation(this.cache, operation);
    if (rot)
      for (const [group, storage] of this.cache) {
        const snapshot = storage.snapshot();
        if (snapshot.meta.index === 0 || this.damaged.get(group) === snapshot) continue;
        this.damaged.set(group, snapshot);
        this.stats.snapshotsDamaged++;
      }
    return {
      group: (id) => this.group(id),
      snapshotDamage: (id) => {
        const damaged = this.damaged.get(id);
        return damaged !== undefined && this.cache.get(id)?.snapshot() === damaged
          ? `sim disk: bit rot in the snapshot at index ${damaged.meta.index}`
          : undefined;
      },
      write: (batch, options) => this.submit(process, { kind: 'write', batch, sync: options.sync }),
      stageSnapshot: (group) => this.submit(process, { kind: 'stage', group }),
      compact: async (group, index, confState, slices, _logFrom, replace = false) => {
        const data = slices instanceof Uint8Array ? slices : concatBytes(slices);
        const chunks = Math.min(simChunksMax, Math.max(1, Math.ceil(data.length / simChunkBytes)));
        const generation = this.generations.get(group) ?? 0;
        const deleted = (): boolean => (this.generations.get(group) ?? 0) !== generation;
        this.compactionsWriting++;
        try {
          for (let chunk = 0; chunk < chunks; chunk++) {
            if (deleted()) return;
            await this.submit(process, { kind: 'snapshot-chunk', group });
          }
          if (deleted()) return;
          await this.submit(process, { kind: 'compact', group, index, confState, data, replace });
        } finally {
          if (this.process === process) this.compactionsWriting--;
        }
      },
      deleteGroup: (group) => {
        this.generations.set(group, (this.generations.get(group) ?? 0) + 1);
        return this.submit(process, { kind: 'delete', group });
      },
    };
  }

  /** The last log index the group's storage holds (its snapshot's when the log is empty); 0: nothing (an empty replica). */
  heldIndex(group: GroupId): number {
    const storage = this.cache.get(group);
    return storage === undefined ? 0 : Math.max(storage.lastIndex(), storage.snapshot().meta.index);
  }

  /** Whether the disk (what a restart would read) holds any record of the group. */
  holds(group: GroupId): boolean {
    return this.synced.has(group) || this.cache.has(group);
  }

  /**
   * The process died. `power`: the machine lost power too, so what was written but not synced is
   * lost as well. Operations in flight: a seeded prefix of them reached the OS (written, unsynced).
   */
  crash(power: boolean): void {
    if (this.compactionsWriting > 0) this.stats.compactionsCutShort++;
    this.compactionsWriting = 0;
    const reached = power ? 0 : this.rng.int(this.inFlight.length + 1);
    this.stats.lostInFlight += this.inFlight.length - reached;
    for (const operation of this.inFlight.slice(0, reached)) this.unsynced.push(operation);
    this.inFlight = [];
    if (power) {
      this.stats.lostUnsynced += this.unsynced.length;
      this.unsynced = [];
    }
  }

  private group(id: GroupId): MemoryStorage {
    let storage = this.cache.get(id);
    if (storage === undefined) this.cache.set(id, (storage = new MemoryStorage()));
    return storage;
  }

  private submit(process: SimProcess, operation: DiskOperation): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined || !process.alive || this.process !== process) {
        reject(this.failure ?? new SimDiskFailure('sim disk: operation from a dead process'));
        return;
      }
      const sync = operation.kind !== 'write' || operation.sync;
      const baseMs = sync ? this.latency.syncMs : this.latency.writeMs;
      const at = Math.max(process.now, this.busyUntil) + baseMs * (1 + this.rng.next());
      this.busyUntil = at;
      this.inFlight.push(operation);
      process.schedule(
        at,
        () => {
          const done = this.inFlight.shift();
          assert(done === operation, 'sim disk: operations complete out of order');
          if (this.failure !== undefined) {
            reject(this.failure);
            return;
          }
          if (this.failNextOperation) {
            this.failNextOperation = false;
            this.stats.failures++;
            this.failure = new SimDiskFailure('sim disk: injected write failure');
            reject(this.failure);
            return;
          }
          this.complete(operation, sync);
          resolve();
        },
        'disk',
      );
    });
  }

  private complete(operation: DiskOperation, sync: boolean): void {
    applyOperation(this.cache, operation);
    if (operation.kind === 'write') {
      this.stats.writes++;
      for (const write of operation.batch) this.observer.onEntriesWritten(write.group, write.entries);
    } else if (operation.kind === 'compact') this.stats.compactions++;
    else if (operation.kind === 'delete') this.damaged.delete(operation.group);
    this.unsynced.push(operation);
    if (!sync) return;
    this.stats.syncs++;
    for (const pending of this.unsynced) applyOperation(this.synced, pending);
    this.unsynced = [];
  }
}

function applyOperation(layer: Map<GroupId, MemoryStorage>, operation: DiskOperation): void {
  const storageOf = (group: GroupId): MemoryStorage => {
    let storage = layer.get(group);
    if (storage === undefined) layer.set(group, (storage = new MemoryStorage()));
    return storage;
  };
  if (operation.kind === 'snapshot-chunk' || operation.kind === 'stage') return;
  if (operation.kind === 'delete') {
    layer.delete(operation.group);
    return;
  }
  if (operation.kind === 'compact') {
    const storage = storageOf(operation.group);
    // Skipped as DiskStore skips it: a snapshot at or after the index is stored (installed from a
    // leader since the host asked), or the log no longer holds the index.
    const stored = storage.snapshot().meta.index;
    if (
      (operation.index > stored || (operation.replace && operation.index === stored)) &&
      storage.term(operation.index) !== undefined
    )
      storage.createSnapshot(operation.index, operation.confState, operation.data);
    return;
  }
  for (const write of operation.batch) {
    const storage = storageOf(write.group);
    if (write.snapshot !== undefined) storage.applySnapshot(write.snapshot);
    storage.append(write.entries);
    if (write.hardState !== undefined) storage.hardState = write.hardState;
  }
}

function copyStorage(source: MemoryStorage): MemoryStorage {
  const copy = new MemoryStorage();
  copy.applySnapshot(source.snapshot());
  const first = source.firstIndex();
  const last = source.lastIndex();
  if (last >= first) copy.append(source.entries(first, (last + 1) as LogIndex, Infinity));
  copy.hardState = source.hardState;
  return copy;
}
