// Runs the storage conformance suite against MemoryStorage (the reference) and the disk store.

import { join } from 'node:path';
import type { GroupId, LogIndex } from '../../src/base/ids.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, HardState, Snapshot } from '../../src/raft/types.ts';
import type { GroupWrite } from '../../src/multiraft/ports.ts';
import { DiskStore } from '../../src/storage/disk-store.ts';
import { storageConformance, type StorageSubject } from './conformance.ts';
import { temporaryDirectory, testStoreOptions } from './support.ts';

/** Runs a synchronous action so that a throw becomes a rejection, as it is for the disk store. */
function settle<T>(action: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(action());
  });
}

function memorySubject(): Promise<StorageSubject> {
  const storage = new MemoryStorage();
  return Promise.resolve({
    log: storage,
    append: (entries: readonly Entry[]) =>
      settle(() => {
        storage.append(entries);
      }),
    applySnapshot: (snapshot: Snapshot) =>
      settle(() => {
        storage.applySnapshot(snapshot);
      }),
    // As the host's stores do (ports.ts): a compaction behind the stored snapshot is skipped.
    compact: (index: LogIndex, confState: ConfState, data: Uint8Array) =>
      settle(() =>
        index <= storage.snapshot().meta.index ? storage.snapshot() : storage.createSnapshot(index, confState, data),
      ),
    setHardState: (hardState: HardState) =>
      settle(() => {
        storage.hardState = hardState;
      }),
    restart: () => Promise.resolve(),
    dispose: () => Promise.resolve(),
  });
}

/** A group other than 0, so a mix-up of group prefixes would show. */
const diskGroup = 258 as GroupId;

async function diskSubject(): Promise<StorageSubject> {
  const directory = await temporaryDirectory('conformance');
  const path = join(directory.path, 'db');
  let store = await DiskStore.open(path, testStoreOptions);
  const write = (change: Omit<GroupWrite, 'group' | 'entries'> & { entries?: readonly Entry[] }): Promise<void> =>
    store.write([{ group: diskGroup, entries: [], ...change }], { sync: false });
  return {
    get log() {
      return store.group(diskGroup);
    },
    append: (entries) => write({ entries }),
    applySnapshot: (snapshot) => write({ snapshot }),
    compact: async (index, confState, data) => {
      await store.compact(diskGroup, index, confState, data);
      return store.group(diskGroup).snapshot();
    },
    setHardState: (hardState) => write({ hardState }),
    restart: async () => {
      await store.close();
      store = await DiskStore.open(path, testStoreOptions);
    },
    dispose: async () => {
      await store.close();
      await directory.cleanup();
    },
  };
}

storageConformance('MemoryStorage', memorySubject);
storageConformance('DiskStore', diskSubject);
