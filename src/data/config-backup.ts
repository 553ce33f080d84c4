// Configuration backup (`--backup s3://bucket/prefix`, docs/deploy.md, "Configuration backup"): the
// meta model (databases, aliases, replication settings, members, action history) written to S3 as
// one object per version, `<prefix>/configuration-<meta index, 16 digits>.drbk`: a backup file
// (src/codec/backup.ts, kind `configuration`) holding the meta group's snapshot and its timeframe
// (the meta group's index and term). Keys sort by index, so the newest is the last one listed.
//
//  - written by the meta group's leader only (one writer; a new leader takes over by itself);
//  - after a change, once the meta group's applied index has stood still for `debounceMs`
//    (a burst of changes is one object), and every `intervalMs` in any case (a heartbeat object
//    that shows the backup works);
//  - at most `keep` objects are kept: after each write the oldest ones beyond it are deleted;
//  - a failed write (S3 down) is reported and retried at the next poll after `retryMs`; nothing
//    else waits on it.
// `backupDue` is the pure decision; the class is the small effectful loop around it.
//
// Called by: src/node/node.ts (when --backup is given).

import { crc32 } from 'node:zlib';
import { assert } from '../base/assert.ts';
import { concatBytes } from '../base/bytes.ts';
import { metaGroupId } from '../models/meta.ts';
import { backupGroup, encodeBackup } from '../codec/backup.ts';
import type { SnapshotSlices } from '../models/model.ts';
import { listAll, type ObjectStore } from './object-store.ts';

export interface ConfigBackupLimits {
  readonly debounceMs: number;
  readonly intervalMs: number;
  /** Objects kept under the prefix; older ones are deleted. */
  readonly keep: number;
  readonly pollMs: number;
  /** After a failed write, the next attempt waits at least this long. */
  readonly retryMs: number;
}

export const configBackupDefaults: ConfigBackupLimits = {
  debounceMs: 2_000,
  intervalMs: 3_600_000,
  keep: 24,
  pollMs: 500,
  retryMs: 10_000,
};

/** Objects listed under the prefix at most when applying the retention (keep is far below). */
const listedObjectsMax = 10_000;
const objectPattern = /^configuration-\d{16}\.drbk$/u;

export interface ConfigBackupOptions extends ConfigBackupLimits {
  readonly store: ObjectStore;
  readonly bucket: string;
  /** Without a trailing slash (may be empty: the bucket's root). */
  readonly prefix: string;
  readonly clusterId: string;
  readonly version: string;
  /** Whether this node leads the meta group now. */
  readonly isLeader: () => boolean;
  /** The meta group's applied index here. */
  readonly appliedIndex: () => number;
  /** The meta group's snapshot envelope, captured now (undefined: not hosted). */
  readonly capture: () => SnapshotSlices | undefined;
  readonly nowMs: () => number;
  readonly onWritten?: (key: string, index: number, deleted: number) => void;
  readonly onFailed?: (error: unknown) => void;
}

export interface BackupState {
  /** The meta index of the last object written (-1: none yet by this node). */
  readonly writtenIndex: number;
  readonly writtenAtMs: number;
  /** The applied index last seen, and since when it stands. */
  readonly seenIndex: number;
  readonly seenSinceMs: number;
  readonly failedAtMs: number | undefined;
}

/** Whether to write now: a settled change, or the interval passed; never within retryMs of a failure. */
export function backupDue(state: BackupState, nowMs: number, limits: ConfigBackupLimits): boolean {
  if (state.failedAtMs !== undefined && nowMs - state.failedAtMs < limits.retryMs) return false;
  const changed = state.seenIndex !== state.writtenIndex && nowMs - state.seenSinceMs >= limits.debounceMs;
  return changed || nowMs - state.writtenAtMs >= limits.intervalMs;
}

/** The object key of the configuration at meta index `index`. */
export function configObjectKey(prefix: string, index: number): string {
  return `${prefix === '' ? '' : `${prefix}/`}configuration-${String(index).padStart(16, '0')}.drbk`;
}

export class ConfigBackup {
  private readonly options: ConfigBackupOptions;
  private state: BackupState;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  constructor(options: ConfigBackupOptions) {
    for (const name of ['debounceMs', 'intervalMs', 'keep', 'pollMs', 'retryMs'] as const)
      assert(Number.isSafeInteger(options[name]) && options[name] > 0, `config backup: ${name} must be positive`);
    this.options = options;
    this.state = { writtenIndex: -1, writtenAtMs: -Infinity, seenIndex: -1, seenSinceMs: 0, failedAtMs: undefined };
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.poll();
    }, this.options.pollMs);
  }

  /** Stops polling and waits for a write in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
  }

  private poll(): void {
    if (this.writing !== undefined) return;
    const nowMs = this.options.nowMs();
    if (!this.options.isLeader()) {
      // Whoever leads next writes its own first object at once (its interval starts now).
      this.state = { ...this.state, writtenIndex: -1, writtenAtMs: -Infinity };
      return;
    }
    const applied = this.options.appliedIndex();
    if (applied !== this.state.seenIndex) this.state = { ...this.state, seenIndex: applied, seenSinceMs: nowMs };
    if (!backupDue(this.state, nowMs, this.options)) return;
    this.writing = this.write(nowMs).finally(() => {
      this.writing = undefined;
    });
  }

  private async write(nowMs: number): Promise<void> {
    try {
      const slices = this.options.capture();
      if (slices === undefined) return;
      const taken: Uint8Array[] = [];
      for (let slice = slices.next(); slice.done !== true; slice = slices.next()) {
        taken.push(slice.value);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const checksum = (bytes: Uint8Array, previous: number): number => crc32(bytes, previous);
      const part = backupGroup(metaGroupId, concatBytes(taken), checksum);
      const bytes = encodeBackup(
        {
          kind: 'configuration',
          clusterId: this.options.clusterId,
          createdAtMs: Math.floor(Date.now()),
          version: this.options.version,
          groups: [part],
        },
        checksum,
      );
      const key = configObjectKey(this.options.prefix, part.index);
      await this.options.store.put(this.options.bucket, key, bytes);
      const deleted = await this.applyRetention();
      this.state = { ...this.state, writtenIndex: part.index, writtenAtMs: nowMs, failedAtMs: undefined };
      this.options.onWritten?.(key, part.index, deleted);
    } catch (error) {
      this.state = { ...this.state, failedAtMs: nowMs };
      this.options.onFailed?.(error);
    }
  }

  /** Deletes the oldest objects beyond `keep`; returns how many. */
  private async applyRetention(): Promise<number> {
    const { store, bucket, prefix, keep } = this.options;
    const listPrefix = prefix === '' ? '' : `${prefix}/`;
    const objects = (await listAll(store, bucket, listPrefix, listedObjectsMax))
      .map((object) => object.key)
      .filter((key) => objectPattern.test(key.slice(listPrefix.length)))
      .sort();
    const surplus = objects.slice(0, Math.max(0, objects.length - keep));
    for (const key of surplus) await store.delete(bucket, key);
    return surplus.length;
  }
}
