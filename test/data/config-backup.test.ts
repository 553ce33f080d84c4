// The configuration backup's decision (src/data/config-backup.ts, backupDue) and its loop against
// the in-memory object store: written when a change has settled for debounceMs or the interval
// passed, never within retryMs of a failure; only on the meta leader; the oldest objects beyond
// `keep` deleted; a failed write retried.

import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import type { GroupId, LogIndex, Term } from '../../src/base/ids.ts';
import {
  backupDue,
  ConfigBackup,
  configBackupDefaults,
  configObjectKey,
  type BackupState,
} from '../../src/data/config-backup.ts';
import { MemoryObjectStore } from '../../src/data/memory-object-store.ts';
import { listAll } from '../../src/data/object-store.ts';
import { decodeBackup } from '../../src/codec/backup.ts';
import { ModelStack } from '../../src/models/model-stack.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { emptyConfState } from '../../src/raft/confchange.ts';

const limits = { ...configBackupDefaults, debounceMs: 100, intervalMs: 10_000, retryMs: 1_000 };
const written: BackupState = { writtenIndex: 5, writtenAtMs: 0, seenIndex: 5, seenSinceMs: 0, failedAtMs: undefined };

describe('backupDue', () => {
  it('waits for a change to settle, then writes; writes on the interval without a change', () => {
    const changed = { ...written, seenIndex: 6, seenSinceMs: 1_000 };
    expect(backupDue(changed, 1_050, limits)).toBe(false);
    expect(backupDue(changed, 1_100, limits)).toBe(true);
    expect(backupDue(written, 9_999, limits)).toBe(false);
    expect(backupDue(written, 10_000, limits)).toBe(true);
  });

  it('does not retry within retryMs of a failure', () => {
    const failed = { ...written, seenIndex: 6, seenSinceMs: 0, failedAtMs: 500 };
    expect(backupDue(failed, 1_499, limits)).toBe(false);
    expect(backupDue(failed, 1_500, limits)).toBe(true);
  });
});

describe('ConfigBackup', () => {
  it("writes the leader's meta snapshot per version, keeps `keep` objects, and retries a failed write", async () => {
    const store = new MemoryObjectStore();
    await store.createBucket('bkt');
    let nowMs = 0;
    let index = 1;
    let leader = true;
    let failPuts = 0;
    const put = store.put.bind(store);
    store.put = (bucket, key, bytes) =>
      failPuts-- > 0 ? Promise.reject(new Error('S3 down')) : put(bucket, key, bytes);
    const failures: unknown[] = [];
    const backup = new ConfigBackup({
      ...limits,
      keep: 2,
      pollMs: 1_000_000,
      store,
      bucket: 'bkt',
      prefix: 'p',
      clusterId: 'c',
      version: '0.1.0',
      isLeader: () => leader,
      appliedIndex: () => index,
      capture: () =>
        new ModelStack(new MetaModel(), (bytes, previous) => crc32(bytes, previous)).capture([
          { group: 0 as GroupId, index: index as LogIndex, term: 2 as Term, confState: emptyConfState },
        ]),
      nowMs: () => nowMs,
      onFailed: (error) => failures.push(error),
    });
    const poll = async (): Promise<void> => {
      (backup as unknown as { poll(): void }).poll();
      await (backup as unknown as { writing: Promise<void> | undefined }).writing;
    };
    const keys = async (): Promise<string[]> =>
      (await listAll(store, 'bkt', 'p/', 100)).map((object) => object.key).sort();
    await poll(); // the first poll as leader writes at once
    expect(await keys()).toEqual([configObjectKey('p', 1)]);
    for (index = 2; index <= 4; index++) {
      nowMs += 10;
      await poll(); // the change is seen
      nowMs += limits.debounceMs;
      await poll(); // and settled
    }
    expect(await keys()).toEqual([configObjectKey('p', 3), configObjectKey('p', 4)]);
    const newest = await store.get('bkt', configObjectKey('p', 4), { bytesMax: 1 << 20 });
    expect(decodeBackup(newest.bytes, (bytes, previous) => crc32(bytes, previous)).groups[0]?.index).toBe(4);
    // Not the leader: nothing written.
    leader = false;
    index = 5;
    nowMs += limits.intervalMs;
    await poll();
    expect(await keys()).toEqual([configObjectKey('p', 3), configObjectKey('p', 4)]);
    // Leader again, S3 down once: reported, retried after retryMs.
    leader = true;
    failPuts = 1;
    await poll();
    expect(failures).toHaveLength(1);
    nowMs += limits.retryMs;
    await poll();
    expect(await keys()).toEqual([configObjectKey('p', 4), configObjectKey('p', 5)]);
  });
});
