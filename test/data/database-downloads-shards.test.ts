// The download controller when placement moves a shard (src/data/database-downloads.ts): a node
// that already holds a version gets another shard of it (a move adds the node to that shard's
// group), downloads the new shard's files and records it loaded; a shard moved away from a node
// that keeps other shards of the version has its files deleted, the others stay. The catalog is
// the real meta model, the object store the in-memory one.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import type { ManifestFile } from '../../src/codec/meta-databases.ts';
import { DatabaseDownloads } from '../../src/data/database-downloads.ts';
import { MemoryObjectStore } from '../../src/data/memory-object-store.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { replicaView } from '../../src/models/meta-databases.ts';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

async function setUp(): Promise<{
  meta: MetaModel;
  downloads: DatabaseDownloads;
  root: string;
  store: MemoryObjectStore;
}> {
  const store = new MemoryObjectStore();
  await store.createBucket('shop-bucket');
  const file = async (path: string, text: string): Promise<ManifestFile> => {
    const info = await store.put('shop-bucket', `p/${path}`, new TextEncoder().encode(text));
    return { path, bytes: info.bytes, etag: info.etag };
  };
  const shard0 = await file('shard=0/a.ndjson', '{"a":1}\n');
  const shard1 = await file('shard=1/b.ndjson', '{"b":2}\n{"b":3}\n');
  const meta = new MetaModel();
  for (const id of [1, 2])
    meta.apply({
      type: 'node.upsert',
      node: {
        id: asNodeId(id),
        address: { member: null, client: null, raft: null },
        agentVersion: '',
        storeVersion: '',
        attributes: {},
        status: 'ACTIVE',
      },
    });
  meta.apply({
    type: 'databases',
    command: {
      type: 'db.create',
      spec: { name: 'shop', bucket: 'shop-bucket', prefix: 'p/', replicas: 1, lazy: false, metadataPattern: null },
      version: {
        version: 1,
        listedMs: 0,
        global: [],
        shards: [
          { shard: '0', files: [shard0], nodes: [asNodeId(1)] },
          { shard: '1', files: [shard1], nodes: [asNodeId(2)] },
        ],
      },
      atMs: 0,
    },
  });
  const root = mkdtempSync(join(tmpdir(), 'dram-downloads-shards-'));
  roots.push(root);
  const downloads = new DatabaseDownloads({
    nodeId: asNodeId(1),
    root,
    store,
    catalog: () => ({ databases: meta.databases.databases(), active: meta.activeNodes() }),
    catalogCurrent: () => true,
    record: (command) => Promise.resolve(meta.apply({ type: 'databases', command }).ok),
    nowMs: () => 0,
  });
  return { meta, downloads, root, store };
}

/** Passes of the controller until `done` (bounded). */
async function passUntil(downloads: DatabaseDownloads, done: () => boolean): Promise<void> {
  for (let pass = 0; pass < 200 && !done(); pass++) {
    await downloads.pass();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(done()).toBe(true);
}

function stateOf(meta: MetaModel, shard: string, node: NodeId): string | undefined {
  const record = meta.databases.database('shop');
  return record === undefined ? undefined : replicaView(record, 1, shard, node).state;
}

function loaded(meta: MetaModel, shard: string, node: NodeId): boolean {
  return stateOf(meta, shard, node) === 'loaded';
}

describe('downloads when placement moves shards', () => {
  it('downloads a shard a move adds to a version the node holds, and deletes one moved away', async () => {
    const { meta, downloads, root } = await setUp();
    const dir = join(root, 'shop', '1');
    await passUntil(downloads, () => loaded(meta, '0', asNodeId(1)));
    expect(existsSync(join(dir, 'shard=1', 'b.ndjson'))).toBe(false);

    // A move adds node 1 to shard 1's group: from its start node 1 downloads shard 1 too.
    const group1 = meta.shardGroup('shop', '1')?.id as GroupId;
    meta.apply({
      type: 'placement.move.start',
      move: { group: group1, add: asNodeId(1), remove: asNodeId(2), reason: 'balance', startedMs: 0 },
    });
    await passUntil(downloads, () => loaded(meta, '1', asNodeId(1)));
    expect(existsSync(join(dir, 'shard=1', 'b.ndjson'))).toBe(true);

    // Shard 0 moves to node 2 (its group's record no longer lists node 1): its files go, shard 1's stay.
    const group0 = meta.shardGroup('shop', '0')?.id as GroupId;
    meta.apply({ type: 'group.set', group: { id: group0, kind: 'db', replicas: [asNodeId(2)], confIndex: 7 } });
    await passUntil(downloads, () => !existsSync(join(dir, 'shard=0', 'a.ndjson')));
    expect(existsSync(join(dir, 'shard=1', 'b.ndjson'))).toBe(true);
    expect(loaded(meta, '1', asNodeId(1))).toBe(true);
    downloads.stop();
  });

  it('keeps the shards it had loaded when the one a move adds fails to download', async () => {
    const { meta, downloads, root, store } = await setUp();
    const dir = join(root, 'shop', '1');
    await passUntil(downloads, () => loaded(meta, '0', asNodeId(1)));
    // Shard 1's object is gone from the store: its download fails for good (not retryable).
    await store.delete('shop-bucket', 'p/shard=1/b.ndjson');
    const group1 = meta.shardGroup('shop', '1')?.id as GroupId;
    meta.apply({
      type: 'placement.move.start',
      move: { group: group1, add: asNodeId(1), remove: asNodeId(2), reason: 'balance', startedMs: 0 },
    });
    await passUntil(downloads, () => stateOf(meta, '1', asNodeId(1)) === 'failed');
    // Before, the version's job failed as a whole: shard 0 was recorded failed too and its files,
    // served a moment earlier, deleted with the version directory.
    expect(stateOf(meta, '0', asNodeId(1))).toBe('loaded');
    expect(existsSync(join(dir, 'shard=0', 'a.ndjson'))).toBe(true);
    expect(existsSync(join(dir, 'shard=1', 'b.ndjson'))).toBe(false);
    downloads.stop();
  });
});
