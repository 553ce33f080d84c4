// Configuration backup against a real S3 server process (s3rver) and real dram processes
// (docs/deploy.md, "Configuration backup"): a three-node cluster started with --backup
// s3://bucket/prefix writes the meta model as one object per version (its meta index in the key
// and its timeframe inside) after every change, keeps --backup-keep of them, and `dram restore
// s3://bucket/prefix/` rebuilds the configuration (the action history here) in a new, empty
// cluster. A whole-cluster `dram backup` to S3 is restored the same way. Every wait is bounded.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBackup } from '../../src/codec/backup.ts';
import { listAll } from '../../src/data/object-store.ts';
import type { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import { startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverNodeFlags, s3rverStore } from '../s3/support.ts';
import { dramCli, eventually, formed, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bucket = 'dram-config';
const keep = 3;
let server: S3rverProcess;
let store: S3ObjectStore;
let s3Flags: string[];
const directory = mkdtempSync(join(tmpdir(), 'dram-config-backup-'));
const clusters: ProcessCluster[] = [];

beforeAll(async () => {
  server = await startS3rver({ directory: join(directory, 's3'), stderr: 'ignore' });
  store = s3rverStore(server);
  await store.createBucket(bucket);
  // The nodes and the CLI take their S3 credentials from the AWS chain, like in production.
  s3Flags = s3rverNodeFlags(server);
  process.env['DRAM_BACKUP_DEBOUNCE_MS'] = '200';
}, 30_000);

afterAll(async () => {
  for (const cluster of clusters) await cluster.stopAll();
  store.close();
  await server.stop();
  rmSync(directory, { recursive: true, force: true });
});

async function configObjects(prefix: string): Promise<string[]> {
  return (await listAll(store, bucket, `${prefix}/`, 1000)).map((object) => object.key).sort();
}

/** The meta group's applied index on its leader, once every node agrees on it. */
async function metaApplied(cluster: ProcessCluster): Promise<number> {
  return eventually(async () => {
    const answer = await request(`${cluster.url(1)}/v1/status`);
    const meta = (
      JSON.parse(answer.text) as { groups: { group: number; applied: number; commit: number }[] }
    ).groups.find((group) => group.group === 0);
    return meta !== undefined && meta.applied === meta.commit ? meta.applied : undefined;
  });
}

async function finishedActionIds(cluster: ProcessCluster): Promise<string[]> {
  const answer = await request(`${cluster.url(1)}/v1/actions`);
  return (JSON.parse(answer.text) as { finished: { id: string }[] }).finished.map((action) => action.id).sort();
}

describe('configuration backup to S3', () => {
  it('writes a versioned object per change, keeps --backup-keep, and restores the configuration into a new cluster', async () => {
    const cluster = processCluster(3, {
      args: ['--backup', `s3://${bucket}/prod`, '--backup-keep', String(keep), ...s3Flags],
    });
    clusters.push(cluster);
    await formed(cluster, 4);
    const first = await eventually(async () => (await configObjects('prod'))[0]);
    // Configuration changes: admin failovers, each an action recorded in the meta model.
    for (let round = 0; round < keep + 1; round++) {
      const moved = await request(
        `${cluster.url(1)}/v1/admin/groups/1/transfer-leadership`,
        'POST',
        JSON.stringify({ to: 1 + (round % 3) }),
        'application/json',
      );
      expect([200, 202]).toContain(moved.status);
      // Past the debounce, so each change is its own object.
      const applied = await metaApplied(cluster);
      await eventually(
        async () =>
          (await configObjects('prod')).some((key) => key.includes(String(applied).padStart(16, '0')))
            ? true
            : undefined,
        100,
      );
    }
    const applied = await metaApplied(cluster);
    const keys = await eventually(async () => {
      const listed = await configObjects('prod');
      return listed.at(-1)?.endsWith(`configuration-${String(applied).padStart(16, '0')}.drbk`) === true &&
        listed.length <= keep
        ? listed
        : undefined;
    }, 100);
    expect(keys).not.toContain(first);
    expect(keys.every((key) => /^prod\/configuration-\d{16}\.drbk$/u.test(key))).toBe(true);
    const newest = await store.get(bucket, keys.at(-1) ?? '', { bytesMax: 1 << 24 });
    const backup = decodeBackup(newest.bytes, (bytes, previous) => crc32(bytes, previous));
    expect(backup.kind).toBe('configuration');
    expect(backup.groups.map(({ group, index }) => ({ group, index }))).toEqual([{ group: 0, index: applied }]);
    const history = await finishedActionIds(cluster);
    expect(history.length).toBeGreaterThanOrEqual(keep + 1);

    // A whole-cluster backup to S3 too, then the cluster is gone.
    expect((await request(`${cluster.url(2)}/v1/kv/kept`, 'PUT', 'yes')).status).toBe(200);
    const full = await dramCli(['backup', `s3://${bucket}/full/cluster.drbk`, '--url', cluster.url(1), ...s3Flags]);
    expect(full.code, full.err).toBe(0);
    await cluster.stopAll();
    clusters.splice(clusters.indexOf(cluster), 1);

    const fresh = processCluster(3, { started: false });
    clusters.push(fresh);
    for (const id of fresh.ids) {
      const restored = await dramCli([
        'restore',
        `s3://${bucket}/prod/`,
        '--data-dir',
        fresh.dataDir(id),
        '--peers',
        fresh.peers,
        ...s3Flags,
      ]);
      expect(restored.code, restored.err).toBe(0);
      expect(JSON.parse(restored.out)).toMatchObject({
        kind: 'configuration',
        timeframe: [{ group: 0, index: applied }],
      });
    }
    for (const id of fresh.ids) fresh.start(id);
    await formed(fresh, 4);
    // The configuration is back (the action history up to the backup); the kv groups start empty.
    const restoredHistory = await finishedActionIds(fresh);
    for (const id of history.slice(0, -1)) expect(restoredHistory).toContain(id);
    expect((await request(`${fresh.url(1)}/v1/kv/kept`)).status).toBe(404);
    await fresh.stopAll();
    clusters.splice(clusters.indexOf(fresh), 1);

    const again = processCluster(3, { started: false });
    clusters.push(again);
    for (const id of again.ids) {
      const restored = await dramCli([
        'restore',
        `s3://${bucket}/full/cluster.drbk`,
        '--data-dir',
        again.dataDir(id),
        '--peers',
        again.peers,
        ...s3Flags,
      ]);
      expect(restored.code, restored.err).toBe(0);
    }
    for (const id of again.ids) again.start(id);
    await formed(again, 4);
    expect(
      (
        await eventually(async () => {
          const got = await request(`${again.url(3)}/v1/kv/kept`);
          return got.status === 200 ? got : undefined;
        })
      ).text,
    ).toBe('yes');
  }, 300_000);
});
