// assembleBackup (src/node/cluster-backup.ts): a cluster backup holds the meta group and every kv
// group the meta group's snapshot records, or it is refused with a message naming what is missing;
// the timeframe it writes is each group's index, term and configuration, and restoreDataDir puts
// every group exactly at that point.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, NodeId, Term } from '../../src/base/ids.ts';
import { decodeBackup } from '../../src/codec/backup.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { ModelStack } from '../../src/models/model-stack.ts';
import type { Model } from '../../src/models/model.ts';
import { assembleBackup, backupChecksum, BackupError, restoreDataDir } from '../../src/node/cluster-backup.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { DiskStore } from '../../src/storage/disk-store.ts';

const scratch = mkdtempSync(join(tmpdir(), 'dram-cluster-backup-'));
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const voters = [1, 2, 3] as NodeId[];

function envelope(model: Model, group: number, index: number, term: number): Uint8Array {
  const slices = new ModelStack(model, backupChecksum).capture([
    { group: group as GroupId, index: index as LogIndex, term: term as Term, confState: confStateOf(voters) },
  ]);
  return Buffer.concat([...{ [Symbol.iterator]: () => slices }]);
}

/** The meta group's snapshot, recording kv groups `kvGroups`. */
function metaSnapshot(kvGroups: readonly number[]): Uint8Array {
  const meta = new MetaModel();
  for (const id of kvGroups)
    meta.apply({ type: 'group.set', group: { id: id as GroupId, kind: 'kv', replicas: voters } });
  return envelope(meta, 0, 30, 2);
}

function kvSnapshot(group: number, index: number): Uint8Array {
  const kv = new KvModel();
  kv.apply(index as LogIndex, { op: 'put', key: `key-${group}`, value: new TextEncoder().encode('v') });
  return envelope(kv, group, index, 3);
}

function assemble(snapshots: [number, Uint8Array][], kind: 'cluster' | 'configuration' = 'cluster'): Uint8Array {
  return assembleBackup(kind, 'prod', '0.12.0', 1, new Map(snapshots.map(([g, bytes]) => [g as GroupId, bytes])));
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BackupError);
    return (error as Error).message;
  }
  throw new Error('not refused');
}

describe('a cluster backup', () => {
  it('is refused when it lacks a kv group the meta group records, or the meta group', () => {
    const meta = metaSnapshot([1, 2, 3]);
    expect(
      refusal(() =>
        assemble([
          [0, meta],
          [1, kvSnapshot(1, 10)],
          [3, kvSnapshot(3, 12)],
        ]),
      ),
    ).toContain('no snapshot of group 2, which the meta group records');
    expect(refusal(() => assemble([[1, kvSnapshot(1, 10)]]))).toContain('no snapshot of group 0');
    // A configuration backup is the meta group alone.
    expect(decodeBackup(assemble([[0, meta]], 'configuration'), backupChecksum).groups).toHaveLength(1);
  });

  it('holds every group at its index, term and configuration, and restores each exactly there', async () => {
    const bytes = assemble([
      [0, metaSnapshot([1, 2])],
      [1, kvSnapshot(1, 10)],
      [2, kvSnapshot(2, 17)],
    ]);
    const backup = decodeBackup(bytes, backupChecksum);
    expect(backup.groups.map(({ group, index, term, confState }) => [group, index, term, confState.voters])).toEqual([
      [0, 30, 2, voters],
      [1, 10, 3, voters],
      [2, 17, 3, voters],
    ]);
    const dataDir = join(scratch, 'restored');
    await restoreDataDir(backup, { dataDir, members: [4, 5, 6] as NodeId[] });
    const store = await DiskStore.open(join(dataDir, 'raft'), {
      entryDataBytesMax: 1 << 20,
      snapshotDataBytesMax: 1 << 30,
    });
    try {
      const points = store.groupIds().map((group) => {
        const log = store.group(group);
        const { meta } = log.snapshot();
        return [group, meta.index, meta.term, meta.confState.voters, log.hardState().commit, log.lastIndex()];
      });
      // Each group at exactly its recorded point (commit and last index there too), the new members voting.
      expect(points).toEqual([
        [0, 30, 2, [4, 5, 6], 30, 30],
        [1, 10, 3, [4, 5, 6], 10, 10],
        [2, 17, 3, [4, 5, 6], 17, 17],
      ]);
    } finally {
      await store.close();
    }
  });
});
