// Feeds dram_storage_write_duration_seconds without the storage adapter knowing about metrics: a
// HostStorage that times each batch write of the storage it wraps (synced writes include the
// fsync) and otherwise passes everything through unchanged. The timing is recorded only for
// writes that succeed; a failed write is fatal for the host anyway (docs/ARCHITECTURE.md, key decision 5).
//
// Called by: src/node/ when it wires the host (`host storage = timedHostStorage(disk, metrics)`).

import { performance } from 'node:perf_hooks';
import type { HostStorage } from '../multiraft/ports.ts';

export interface StorageWriteObserver {
  observeStorageWrite(seconds: number, sync: boolean): void;
}

export function timedHostStorage(storage: HostStorage, observer: StorageWriteObserver): HostStorage {
  return {
    group: (id) => storage.group(id),
    compact: (group, index, confState, data, logFrom, replace) =>
      storage.compact(group, index, confState, data, logFrom, replace),
    deleteGroup: (group) => storage.deleteGroup?.(group) ?? Promise.resolve(),
    ...(storage.stageSnapshot === undefined
      ? {}
      : { stageSnapshot: (group, snapshot) => storage.stageSnapshot?.(group, snapshot) ?? Promise.resolve() }),
    snapshotDamage: (group) => storage.snapshotDamage?.(group),
    async write(batch, writeOptions) {
      const startedMs = performance.now();
      await storage.write(batch, writeOptions);
      observer.observeStorageWrite((performance.now() - startedMs) / 1000, writeOptions.sync);
    },
  };
}
