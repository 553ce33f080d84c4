// Backup, restore and quorum-loss recovery with real processes (docs/deploy.md, "Backup and
// restore", "Loss of quorum"): keys written to a three-node cluster, `dram backup` to a file, the
// cluster destroyed (processes and data dirs), `dram restore` into three empty data dirs of a new
// cluster started with --init: every key is there with its value and modify index, and a key
// written after the backup is not. Then quorum loss: two of three nodes killed, `dram recover
// --force-new-cluster` on the survivor's data dir, the survivor alone serves every key and takes
// writes, and a new node joins it. Every wait is a bounded poll that fails with a message.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  dramCli,
  eventually,
  formed,
  groupStatus,
  processCluster,
  request,
  type ProcessCluster,
} from './cluster-process.ts';

const keysCount = 40;
const scratch = mkdtempSync(join(tmpdir(), 'dram-backup-'));
const clusters: ProcessCluster[] = [];

afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stopAll();
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function started(options: { readonly started?: boolean } = {}): ProcessCluster {
  const cluster = processCluster(3, options);
  clusters.push(cluster);
  return cluster;
}

/** PUTs keys k0..k{count-1} through the nodes in turn; returns each key's modify index. */
async function writeKeys(cluster: ProcessCluster, ids: readonly number[]): Promise<Map<string, string>> {
  const indexes = new Map<string, string>();
  for (let k = 0; k < keysCount; k++) {
    const id = ids[k % ids.length] ?? 1;
    const answer = await eventually(async () => {
      const put = await request(`${cluster.url(id)}/v1/kv/k${k}`, 'PUT', `value-${k}`);
      return put.status === 200 ? put : undefined;
    });
    indexes.set(`k${k}`, answer.headers.get('x-dram-index') ?? '?');
  }
  return indexes;
}

async function readKey(
  cluster: ProcessCluster,
  id: number,
  key: string,
): Promise<{ status: number; text: string; index: string }> {
  const answer = await eventually(async () => {
    const got = await request(`${cluster.url(id)}/v1/kv/${key}`);
    return got.status === 200 || got.status === 404 ? got : undefined;
  });
  return { status: answer.status, text: answer.text, index: answer.headers.get('x-dram-index') ?? '?' };
}

describe('backup and restore', () => {
  it('restores every key written before the backup into a new cluster, and none written after', async () => {
    const old = started();
    await formed(old, 4);
    const indexes = await writeKeys(old, old.ids);
    const file = join(scratch, 'cluster.drbk');
    const backup = await dramCli(['backup', file, '--url', old.url(2)]);
    expect(backup.err).toBe('');
    expect(backup.code).toBe(0);
    const summary = JSON.parse(backup.out) as {
      timeframe: { group: number; index: number; term: number; voters: number[] }[];
    };
    // The timeframe: per group its index, term and configuration (every node votes in every group here).
    expect(summary.timeframe.map(({ group, voters }) => ({ group, voters }))).toEqual(
      [0, 1, 2, 3, 4].map((group) => ({ group, voters: [1, 2, 3] })),
    );
    expect((await request(`${old.url(1)}/v1/kv/after-backup`, 'PUT', 'late')).status).toBe(200);
    await old.stopAll();
    clusters.splice(clusters.indexOf(old), 1);

    const fresh = started({ started: false });
    for (const id of fresh.ids) {
      const restored = await dramCli(['restore', file, '--data-dir', fresh.dataDir(id), '--peers', fresh.peers]);
      expect(restored.err).toBe('');
      expect(restored.code).toBe(0);
    }
    // A restored data dir is not empty: a second restore into it is refused.
    const again = await dramCli(['restore', file, '--data-dir', fresh.dataDir(1), '--peers', fresh.peers]);
    expect(again.code).not.toBe(0);
    expect(again.err).toContain('already holds groups');
    for (const id of fresh.ids) fresh.start(id);
    await formed(fresh, 4);
    for (const [key, index] of indexes) {
      const read = await readKey(fresh, 1 + (Number(key.slice(1)) % 3), key);
      expect({ key, status: read.status, text: read.text, index: read.index }).toEqual({
        key,
        status: 200,
        text: `value-${key.slice(1)}`,
        index,
      });
    }
    expect((await readKey(fresh, 1, 'after-backup')).status).toBe(404);
    // The restored cluster takes writes.
    expect((await request(`${fresh.url(3)}/v1/kv/after-restore`, 'PUT', 'new')).status).toBe(200);
  }, 240_000);

  it('recovers a one-node cluster from a survivor after quorum loss; a new node joins it', async () => {
    const cluster = started();
    await formed(cluster, 4);
    const indexes = await writeKeys(cluster, cluster.ids);
    await cluster.kill(2);
    await cluster.kill(3);
    // No quorum: a write cannot commit (it times out or is refused), then the survivor is stopped.
    expect(
      (await request(`${cluster.url(1)}/v1/kv/no-quorum`, 'PUT', 'x').catch(() => ({ status: 0 }))).status,
    ).not.toBe(200);
    await cluster.kill(1, 'SIGTERM');
    const refused = await dramCli(['recover', '--data-dir', cluster.dataDir(1), '--node-id', '1']);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain('--force-new-cluster');
    const recovered = await dramCli([
      'recover',
      '--force-new-cluster',
      '--data-dir',
      cluster.dataDir(1),
      '--node-id',
      '1',
    ]);
    expect(recovered.err).toBe('');
    expect(recovered.code).toBe(0);

    cluster.start(1, { init: false });
    await eventually(async () => {
      const groups = await groupStatus(cluster.url(1));
      return groups.length === 4 && groups.every((group) => group.leader === 1 && group.voters.join() === '1')
        ? true
        : undefined;
    }, 150);
    for (const [key, index] of indexes) {
      const read = await readKey(cluster, 1, key);
      expect({ key, status: read.status, text: read.text, index: read.index }).toEqual({
        key,
        status: 200,
        text: `value-${key.slice(1)}`,
        index,
      });
    }
    expect((await request(`${cluster.url(1)}/v1/kv/after-recover`, 'PUT', 'y')).status).toBe(200);

    // Others join the recovered node (the lost members' data dirs are not reused).
    cluster.start(4, { init: false, join: cluster.url(1) });
    await eventually(async () => {
      const groups = await groupStatus(cluster.url(4));
      return groups.length === 4 && groups.every((group) => group.voters.join() === '1,4') ? true : undefined;
    }, 300);
    expect((await readKey(cluster, 4, 'k7')).text).toBe('value-7');
    expect((await request(`${cluster.url(4)}/v1/kv/after-join`, 'PUT', 'z')).status).toBe(200);
  }, 240_000);
});
