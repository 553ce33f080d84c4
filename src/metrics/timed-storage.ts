// Feeds dram_storage_write_duration_seconds without the storage adapter knowing about metrics: a
// HostStorage that times each batch write of the storage it wraps (synced writes include the
// fsync) and otherwise passes everything through unchanged (a Proxy, so a member added to HostStorage
// later passes through too). The timing is recorded only for
// writes that succeed; a failed write is fatal for the host anyway (docs/ARCHITECTURE.md, key decision 5).
//
// Called by: src/node/ when it wires the host (`host storage = timedHostStorage(disk, metrics)`).

import { performance } from 'node:perf_hooks';
import type { HostStorage } from '../multiraft/ports.ts';

export interface StorageWriteObserver {
  observeStorageWrite(seconds: number, sync: boolean): void;
}

export function timedHostStorage(storage: HostStorage, observer: StorageWriteObserver): HostStorage {
  const write: HostStorage['write'] = async (batch, writeOptions) => {
    const startedMs = performance.now();
    await storage.write(batch, writeOptions);
    observer.observeStorageWrite((performance.now() - startedMs) / 1000, writeOptions.sync);
  };
  // Every other member passes through as the wrapped store has it, an optional one absent when it
  // is absent there: a wrapper listing the members by hand once dropped compact's `replace` and
  // snapshotDamage, so a damaged snapshot was never replaced in production.
  return new Proxy(storage, {
    get(target, key) {
      if (key === 'write') return write;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
