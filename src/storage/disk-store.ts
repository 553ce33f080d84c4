// The node's durable store: one LevelDB holding the Raft state of every group this node hosts
// (layout in keys.ts, value format in records.ts). The only importer of `level` in the project.
//
// Owns: the database handle and, per group, a CachedGroupLog that mirrors what is on disk, so the
// core reads its log synchronously (LogStorage) while all writes go through here. Invariants:
//  - the caches equal the disk: open() loads and verifies everything; every change is written in
//    one LevelDB batch first and applied to the cache only after the batch resolved;
//  - one operation at a time: write / compact / deleteGroup queue behind each other (at most
//    queuedOperationsMax waiting), so each is planned against the state its predecessor left;
//  - a turn's writes for every group are ONE batch (group commit, docs/ARCHITECTURE.md key decision 3), synced
//    when the caller asks (the turn loop does when any Ready has mustSync), so either all of a
//    turn is on disk after a crash or none of it is;
//  - storage errors are fatal: after LevelDB fails once, every later operation rejects with the
//    same StorageError and the host must stop the node (see errors.ts for why).
// Called by the multi-Raft host's turn loop (write, compact) and by node wiring (open, close).

import { Level } from 'level';
import { assert } from '../base/assert.ts';
import type { GroupId, LogIndex } from '../base/ids.ts';
import type { ConfState } from '../raft/types.ts';
import { storageFailure, type StorageError } from './errors.ts';
import type { GroupWrite } from '../multiraft/ports.ts';
import { CachedGroupLog, emptyGroupState, type GroupChange, type GroupLog } from './group-log.ts';
import { allGroupsRange, groupIdMax } from './keys.ts';
import { loadGroups } from './load.ts';
import type { RecordLimits } from './records.ts';

export type { GroupLog } from './group-log.ts';

export interface DiskStoreOptions extends RecordLimits {
  /** Operations allowed to wait behind the one in progress; more is a host bug (an unbounded backlog). */
  readonly queuedOperationsMax?: number;
}

export const diskStoreDefaults = { queuedOperationsMax: 64 } as const;

/** Entries per page when loading at open: large enough to amortize the native calls, small enough to bound memory in flight. */
const loadPageEntriesMax = 1024;

type Database = Level<Uint8Array, Uint8Array>;

export class DiskStore {
  private readonly db: Database;
  private readonly limits: RecordLimits;
  private readonly queuedOperationsMax: number;
  private readonly groups: Map<GroupId, CachedGroupLog>;
  /** Settles when the last queued operation is done; never rejects. */
  private tail: Promise<void> = Promise.resolve();
  private queuedOperations = 0;
  private failure: StorageError | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    db: Database,
    limits: RecordLimits,
    queuedOperationsMax: number,
    groups: Map<GroupId, CachedGroupLog>,
  ) {
    this.db = db;
    this.limits = limits;
    this.queuedOperationsMax = queuedOperationsMax;
    this.groups = groups;
  }

  /**
   * Opens (creating if missing) the LevelDB at `path` and loads every group, verifying checksums,
   * keys and contiguity. Throws StorageCorruptionError on a bad record, StorageError when LevelDB
   * fails; the database is closed again in both cases.
   */
  static async open(path: string, options: DiskStoreOptions): Promise<DiskStore> {
    const limits: RecordLimits = {
      entryDataBytesMax: options.entryDataBytesMax,
      snapshotDataBytesMax: options.snapshotDataBytesMax,
    };
    const queuedOperationsMax = options.queuedOperationsMax ?? diskStoreDefaults.queuedOperationsMax;
    for (const [name, value] of Object.entries({ ...limits, queuedOperationsMax })) {
      assert(Number.isSafeInteger(value) && value > 0, `storage: ${name} must be a positive integer, got ${value}`);
    }
    const db: Database = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (error) {
      throw storageFailure(`open ${path}`, error);
    }
    try {
      const groups = await DiskStore.load(db, limits);
      return new DiskStore(db, limits, queuedOperationsMax, groups);
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  private static async load(db: Database, limits: RecordLimits): Promise<Map<GroupId, CachedGroupLog>> {
    const iterator = db.iterator({ ...allGroupsRange(), keys: true, values: true });
    try {
      return await loadGroups(async () => {
        try {
          return await iterator.nextv(loadPageEntriesMax);
        } catch (error) {
          throw storageFailure('read at open', error);
        }
      }, limits);
    } finally {
      await iterator.close().catch(() => undefined);
    }
  }

  /** The group's log (created empty if this node holds nothing of it yet). Reads are synchronous. */
  group(id: GroupId): GroupLog {
    assert(this.closing === undefined, 'storage: group() after close');
    return this.cached(id);
  }

  /** Every group this node holds state for (or asked for with group()), ascending. */
  groupIds(): GroupId[] {
    return [...this.groups.keys()].sort((a, b) => a - b);
  }

  /**
   * Persists one turn: every group's snapshot, entries, hard state and applied index in ONE batch,
   * fsynced when `sync`. A group may appear once per batch. When the promise resolves the caches
   * show the new state; when it rejects with a StorageError nothing changed in memory and the
   * store is dead.
   */
  write(batch: readonly GroupWrite[], options: { readonly sync: boolean }): Promise<void> {
    return this.serialize('write', async () => {
      const seen = new Set<GroupId>();
      const changes = batch.map((write) => {
        assert(!seen.has(write.group), `storage: group ${write.group} appears twice in one write`);
        seen.add(write.group);
        return this.cached(write.group).planWrite(write, this.limits);
      });
      await this.commit(changes, options.sync);
    });
  }

  /**
   * The host took a snapshot of the group's state machine at `index` (<= applied): store it and
   * drop the log before `logFrom` (a tail from it on stays behind the snapshot), in one synced batch. Rare (every N entries), so the fsync is cheap
   * and keeps the reasoning simple. The new snapshot is group(group).snapshot() once it resolves.
   */
  compact(group: GroupId, index: LogIndex, confState: ConfState, data: Uint8Array, logFrom?: LogIndex): Promise<void> {
    return this.serialize('compact', async () => {
      await this.commit([this.cached(group).planCompaction(index, confState, data, this.limits, logFrom)], true);
    });
  }

  /** Removes every record of the group; handles to it from group() must not be used again. */
  deleteGroup(group: GroupId): Promise<void> {
    return this.serialize('deleteGroup', async () => {
      const cached = this.groups.get(group);
      if (cached === undefined) return;
      await this.commit([cached.planDeletion()], true);
      this.groups.delete(group);
    });
  }

  /** Waits for queued operations, then closes LevelDB. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.tail.then(async () => {
      try {
        await this.db.close();
      } catch (error) {
        throw storageFailure('close', error);
      }
    });
    return this.closing;
  }

  /** Also used by operations queued before close() and running after it, so no closed check here. */
  private cached(id: GroupId): CachedGroupLog {
    assert(Number.isSafeInteger(id) && id >= 0 && id <= groupIdMax, `storage: group id ${id} does not fit in u32`);
    let cached = this.groups.get(id);
    if (cached === undefined) {
      cached = new CachedGroupLog(id, emptyGroupState());
      this.groups.set(id, cached);
    }
    return cached;
  }

  private async commit(changes: readonly GroupChange[], sync: boolean): Promise<void> {
    const operationCount = changes.reduce((sum, change) => sum + change.operations.length, 0);
    if (operationCount > 0) {
      try {
        await this.writeBatch(changes, sync);
      } catch (error) {
        this.failure = storageFailure(`write of ${operationCount} operations`, error);
        throw this.failure;
      }
    }
    for (const change of changes) change.apply();
  }

  /**
   * A chained batch rather than db.batch(array): measured here, a synced batch of 72 puts took
   * 0.36 ms chained against 0.84 ms as an array (the array form pays per-operation bookkeeping).
   */
  private async writeBatch(changes: readonly GroupChange[], sync: boolean): Promise<void> {
    const batch = this.db.batch();
    try {
      for (const change of changes) {
        for (const operation of change.operations) {
          if (operation.type === 'put') batch.put(operation.key, operation.value);
          else batch.del(operation.key);
        }
      }
      await batch.write({ sync });
    } catch (error) {
      // write() closes the batch itself; a failure while filling it leaves it open.
      await batch.close().catch(() => undefined);
      throw error;
    }
  }

  /** Runs operations one at a time, in call order; a dead store rejects everything with its first failure. */
  private serialize<T>(name: string, operation: () => Promise<T>): Promise<T> {
    assert(this.closing === undefined, `storage: ${name} after close`);
    assert(
      this.queuedOperations < this.queuedOperationsMax,
      `storage: more than ${this.queuedOperationsMax} operations queued`,
    );
    this.queuedOperations += 1;
    const run = async (): Promise<T> => {
      try {
        if (this.failure !== undefined) throw this.failure;
        return await operation();
      } finally {
        this.queuedOperations -= 1;
      }
    };
    const result = this.tail.then(run);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
