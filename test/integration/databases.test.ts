// Databases from S3 on real processes: a real S3 server (s3rver, its own process) holding a
// generated sample database, and a three-node dram cluster pointed at it. Adding with replicas 2
// and "all" (placement, states, the bytes on each member's disk), bad input refused with a code and
// nothing recorded, delete and reload; and the download faults, made deterministic by keeping node
// 3 down while the database is added and arranging S3 (or node 3's disk) before it starts: a
// partial file left by a crash is continued, not fetched again; an object deleted or replaced after
// listing, and the S3 server stopped, end in a failed replica with a clear error while the other
// replicas and databases stay loaded.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleDatabase, sampleDefaults, type SampleFile } from '../../examples/sample-db/generate.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import { startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverNodeFlags, s3rverStore, stopS3rverTest } from '../s3/support.ts';
import { endpointsDir, eventually, formed, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bucket = 'dram-it';
const root = mkdtempSync(join(tmpdir(), 'dram-db-it-'));
const sampleDir = join(root, 'sample');
let s3: S3rverProcess;
let store: S3ObjectStore;
let cluster: ProcessCluster;
let sample: SampleFile[];
const faultsDir = join(root, 'faults');
const big = Buffer.alloc(3 * 1024 * 1024, 0);
for (let k = 0; k < big.length; k++) big[k] = (k * 7919) % 251;

interface Replica {
  node: number;
  state: string;
  error: string | null;
  bytes: number | null;
  bytesTotal: number | null;
  files: number | null;
  filesTotal: number | null;
}
interface Detail {
  name: string;
  state: string;
  version: number;
  current: { version: number; state: string; shards: { shard: string; replicas: Replica[] }[] };
  next: { version: number } | null;
}

async function startS3(port = 0): Promise<S3rverProcess> {
  return startS3rver({ directory: join(root, 's3'), port, stderr: 'ignore' });
}

async function post(path: string, body: unknown, id = 1): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await request(`${cluster.url(id)}${path}`, 'POST', JSON.stringify(body), 'application/json');
  return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
}

async function detail(name: string, id = 1): Promise<Detail | undefined> {
  const answer = await request(`${cluster.url(id)}/v1/databases/${name}`);
  return answer.status === 200 ? (JSON.parse(answer.text) as Detail) : undefined;
}

async function listed(id = 1): Promise<string[]> {
  const answer = await request(`${cluster.url(id)}/v1/databases`);
  return (JSON.parse(answer.text) as { databases: { name: string }[] }).databases.map((d) => d.name);
}

/** Waits until every replica of the current version has a recorded state, and answers the database. */
async function settled(name: string, tries = 300): Promise<Detail> {
  return eventually(async () => {
    const found = await detail(name);
    const replicas = found?.current.shards.flatMap((shard) => shard.replicas) ?? [];
    return found !== undefined && replicas.length > 0 && replicas.every((r) => r.state !== 'loading')
      ? found
      : undefined;
  }, tries);
}

function digest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The node's copy of a file of the database's version, or undefined when it has none. */
function copyOn(node: number, name: string, version: number, path: string): string | undefined {
  const file = join(cluster.dataDir(node), 'databases', name, String(version), path);
  return existsSync(file) ? digest(file) : undefined;
}

/** Kills node 3 and waits until the meta group is led by another node (so changes can be scheduled). */
async function stopNode3(): Promise<void> {
  await cluster.kill(3);
  await eventually(async () => {
    const status = JSON.parse((await request(`${cluster.url(1)}/v1/status`)).text) as {
      groups: { group: number; leader: number }[];
    };
    const leader = status.groups.find((group) => group.group === 0)?.leader ?? 0;
    return leader !== 0 && leader !== 3 ? true : undefined;
  }, 200);
}

async function upload(dir: string, prefix: string): Promise<void> {
  await uploadDirectory(store, dir, listDirectory(dir), { bucket, prefix });
}

beforeAll(async () => {
  s3 = await startS3();
  store = s3rverStore(s3);
  await store.createBucket(bucket);
  sample = await generateSampleDatabase(sampleDir, {
    ...sampleDefaults,
    seed: 5,
    shards: 3,
    eventsPerShard: 3_000,
    users: 200,
    products: 30,
  });
  await upload(sampleDir, 'sample/shop/');
  // A prefix of two files, one large enough to be left half-written, under three names.
  mkdirSync(join(faultsDir, 'shard=0'), { recursive: true });
  writeFileSync(join(faultsDir, 'shard=0', 'big.bin'), big);
  writeFileSync(join(faultsDir, 'shard=0', 'small.ndjson'), '{"a":1}\n');
  for (const name of ['resume', 'gone', 'changed', 'outage']) await upload(faultsDir, `faults/${name}/`);
  cluster = processCluster(3, {
    args: [...s3rverNodeFlags(s3), '--endpoints', endpointsDir],
  });
  await formed(cluster, 4);
}, 120_000);

afterAll(async () => {
  await stopS3rverTest(cluster, store, s3, root);
});

describe('databases from S3 on a three-node cluster', () => {
  it('refuses bad input with a code and records nothing', async () => {
    const cases: [unknown, number, string][] = [
      [{ name: 'a/b', source: `s3://${bucket}/sample/shop` }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: '..', source: `s3://${bucket}/sample/shop` }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: 'http://example.com/shop' }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: `s3://${bucket}/../shop` }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: `s3://${bucket}/sample/shop`, replicas: 4 }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: `s3://${bucket}/sample/shop`, replicas: 0 }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: `s3://${bucket}/sample/shop`, extra: 1 }, 400, 'DRAM_ERR_INVALID_DATABASE'],
      [{ name: 'x', source: 's3://no-such-bucket/shop' }, 404, 'DRAM_ERR_SOURCE_NOT_FOUND'],
      [{ name: 'x', source: `s3://${bucket}/nothing/here` }, 404, 'DRAM_ERR_SOURCE_NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await post('/v1/databases', body);
      expect({ body, status: answer.status, code: answer.body['code'] }).toEqual({ body, status, code });
    }
    expect(await listed()).toEqual([]);
    const actions = JSON.parse((await request(`${cluster.url(1)}/v1/actions`)).text) as {
      queue: unknown[];
      finished: { kind: string }[];
    };
    expect(actions.queue).toEqual([]);
    expect(actions.finished.filter((action) => action.kind.startsWith('dram.io/db.'))).toEqual([]);
  });

  it('adds a database with replicas 2: each shard on two members, verified on their disks', async () => {
    const added = await post('/v1/databases', { name: 'shop', source: `s3://${bucket}/sample/shop/`, replicas: 2 }, 2);
    expect(added.status).toBe(202);
    expect(typeof added.body['action']).toBe('string');
    const shop = await settled('shop');
    expect(shop.state).toBe('loaded');
    const shards = shop.current.shards;
    expect(shards.map((shard) => shard.shard)).toEqual(['1', '2', '3']);
    for (const shard of shards) {
      expect(shard.replicas.map((r) => r.state)).toEqual(['loaded', 'loaded']);
      const holders = shard.replicas.map((r) => r.node);
      for (const replica of shard.replicas) expect(replica.bytes).toBe(replica.bytesTotal);
      for (const file of sample.filter((f) => f.path.startsWith(`shard=${shard.shard}/`)))
        for (const node of cluster.ids)
          expect({ node, file: file.path, copy: copyOn(node, 'shop', 1, file.path) }).toEqual({
            node,
            file: file.path,
            copy: holders.includes(node) ? digest(join(sampleDir, file.path)) : undefined,
          });
    }
    // Every member answers the same states (the log), whichever is asked.
    expect((await detail('shop', 3))?.current.shards.map((s) => s.replicas.map((r) => [r.node, r.state]))).toEqual(
      shards.map((s) => s.replicas.map((r) => [r.node, r.state])),
    );
    // Queried from every member: each holds two of the three shards, so each answer needs another
    // member's map (the catalog's replicas and states are what the fan-out chooses from).
    for (const node of cluster.ids) {
      const query = await post('/v1/databases/shop/query/count', {}, node);
      const coverage = query.body['coverage'] as { complete: boolean; shards: { shard: string; node?: number }[] };
      expect({ node, status: query.status, result: query.body['result'], complete: coverage.complete }).toEqual({
        node,
        status: 200,
        result: { count: 3 * 3_000 },
        complete: true,
      });
      for (const answered of coverage.shards)
        expect(shards.find((shard) => shard.shard === answered.shard)?.replicas.map((r) => r.node)).toContain(
          answered.node,
        );
    }
    const again = await post('/v1/databases', { name: 'shop', source: `s3://${bucket}/sample/shop` });
    expect([again.status, again.body['code']]).toEqual([409, 'DRAM_ERR_DATABASE_EXISTS']);
  });

  it('adds with replicas "all", deletes it from every disk, and reloads a changed prefix as a new version', async () => {
    expect(
      (await post('/v1/databases', { name: 'everywhere', source: `s3://${bucket}/sample/shop`, replicas: 'all' }))
        .status,
    ).toBe(202);
    const everywhere = await settled('everywhere');
    expect(everywhere.state).toBe('loaded');
    for (const node of cluster.ids)
      for (const file of sample)
        expect(copyOn(node, 'everywhere', 1, file.path)).toBe(digest(join(sampleDir, file.path)));

    const removed = await request(`${cluster.url(3)}/v1/databases/everywhere`, 'DELETE');
    expect(removed.status).toBe(202);
    await eventually(async () => ((await listed()).includes('everywhere') ? undefined : true));
    for (const node of cluster.ids)
      await eventually(() =>
        Promise.resolve(existsSync(join(cluster.dataDir(node), 'databases', 'everywhere')) ? undefined : true),
      );
    expect((await request(`${cluster.url(1)}/v1/databases/everywhere`)).status).toBe(404);

    // A changed object under the prefix: reload makes version 2, which replaces version 1 once loaded.
    const changed = sample.find((file) => file.path.startsWith('shard=2/'));
    if (changed === undefined) throw new Error('the sample has no shard 1');
    const bytes = Buffer.concat([readFileSync(join(sampleDir, changed.path))]);
    await store.put(bucket, `sample/shop/${changed.path}`, new Uint8Array([...bytes.subarray(0, bytes.length - 1)]));
    const reloaded = await post('/v1/databases/shop/reload', {});
    expect(reloaded.status).toBe(202);
    const shop = await eventually(async () => {
      const found = await detail('shop');
      return found?.version === 2 && found.next === null ? found : undefined;
    }, 300);
    expect(shop.state).toBe('loaded');
    const holders = shop.current.shards.find((s) => s.shard === '2')?.replicas.map((r) => r.node) ?? [];
    for (const node of holders) {
      expect(copyOn(node, 'shop', 2, changed.path)).toBe(
        createHash('sha256').update(bytes.subarray(0, -1)).digest('hex'),
      );
      await eventually(() =>
        Promise.resolve(existsSync(join(cluster.dataDir(node), 'databases', 'shop', '1')) ? undefined : true),
      );
    }
    await store.put(bucket, `sample/shop/${changed.path}`, new Uint8Array(bytes));
  });

  it('continues a partial file after a restart, and fails a replica whose object is gone or replaced', async () => {
    const dir = faultsDir;

    await stopNode3();
    for (const name of ['resume', 'gone', 'changed'])
      expect(
        (await post('/v1/databases', { name, source: `s3://${bucket}/faults/${name}`, replicas: 'all' })).status,
      ).toBe(202);
    for (const name of ['resume', 'gone', 'changed'])
      await eventually(async () => {
        const found = await detail(name);
        const states = found?.current.shards[0]?.replicas.map((r) => `${r.node}:${r.state}`);
        return states?.join(' ') === '1:loaded 2:loaded 3:loading' ? true : undefined;
      }, 300);
    // Node 3 "crashed" half way through big.bin of `resume` (its first half is in the partial file).
    const partial = join(cluster.dataDir(3), 'databases', 'resume', '1.partial', 'shard=0', 'big.bin');
    mkdirSync(dirname(partial), { recursive: true });
    writeFileSync(partial, big.subarray(0, big.length / 2));
    await store.delete(bucket, 'faults/gone/shard=0/big.bin');
    await store.put(bucket, 'faults/changed/shard=0/small.ndjson', new TextEncoder().encode('{"a":2}\n'));
    cluster.start(3, { init: false });

    const resume = await settled('resume');
    expect(resume.current.shards[0]?.replicas.map((r) => r.state)).toEqual(['loaded', 'loaded', 'loaded']);
    expect(copyOn(3, 'resume', 1, 'shard=0/big.bin')).toBe(digest(join(dir, 'shard=0', 'big.bin')));
    const jobs = JSON.parse((await request(`${cluster.url(3)}/v1/databases/resume/progress`)).text) as {
      jobs: { bytesFetched: number; bytesTotal: number }[];
    };
    // Only the second half of big.bin and small.ndjson came over the network.
    expect(jobs.jobs.map((job) => job.bytesFetched)).toEqual([big.length / 2 + 8]);

    const gone = await settled('gone');
    const goneReplica = gone.current.shards[0]?.replicas.find((r) => r.node === 3);
    expect(goneReplica?.state).toBe('failed');
    expect(goneReplica?.error).toMatch(/faults\/gone\/shard=0\/big\.bin: DRAM_ERR_S3_NOT_FOUND/u);
    const changed = await settled('changed');
    const changedReplica = changed.current.shards[0]?.replicas.find((r) => r.node === 3);
    expect(changedReplica?.state).toBe('failed');
    expect(changedReplica?.error).toMatch(/small\.ndjson: the object changed since it was listed/u);
    // Nothing half-written is left where a loaded file would be; the others are unaffected.
    expect(copyOn(3, 'changed', 1, 'shard=0/small.ndjson')).toBeUndefined();
    expect(gone.current.shards[0]?.replicas.filter((r) => r.state === 'loaded').map((r) => r.node)).toEqual([1, 2]);
    expect((await detail('shop'))?.state).toBe('loaded');
  });

  it('retries while the S3 server is down, then fails the replica with the reason', async () => {
    await stopNode3();
    expect(
      (await post('/v1/databases', { name: 'outage', source: `s3://${bucket}/faults/outage`, replicas: 'all' })).status,
    ).toBe(202);
    await eventually(async () => {
      const states = (await detail('outage'))?.current.shards[0]?.replicas.map((r) => r.state);
      return states?.join(' ') === 'loaded loaded loading' ? true : undefined;
    }, 300);
    const port = s3.port;
    await s3.stop();
    try {
      cluster.start(3, { init: false });
      const outage = await settled('outage', 600).catch((error: unknown) => {
        console.log(
          cluster
            .logs(3)
            .split('\n')
            .filter((l) => /database|warn/u.test(l))
            .slice(-30)
            .join('\n'),
        );
        throw error;
      });
      const replica = outage.current.shards[0]?.replicas.find((r) => r.node === 3);
      expect(replica?.state).toBe('failed');
      expect(replica?.error).toMatch(/faults\/outage\/shard=0\/.*DRAM_ERR_S3_UNAVAILABLE.*gave up after 5 attempts/su);
      expect(outage.state).toBe('failed');
    } finally {
      s3 = await startS3(port);
    }
    // A reload retries the failed replica with a new version.
    expect((await post('/v1/databases/outage/reload', {})).status).toBe(202);
    const retried = await eventually(async () => {
      const found = await detail('outage');
      return found?.version === 2 && found.state === 'loaded' ? found : undefined;
    }, 300);
    expect(retried.current.shards[0]?.replicas.map((r) => r.state)).toEqual(['loaded', 'loaded', 'loaded']);
  });

  it('points aliases at loaded databases only, swaps all or nothing, rolls back', async () => {
    const aliases = async (): Promise<unknown> =>
      (JSON.parse((await request(`${cluster.url(2)}/v1/aliases`)).text) as { aliases: unknown }).aliases;
    const put = async (alias: string, database: string) =>
      request(`${cluster.url(1)}/v1/aliases/${alias}`, 'PUT', JSON.stringify({ database }), 'application/json');
    expect((await put('live', 'shop')).status).toBe(200);
    await eventually(async () =>
      JSON.stringify(await aliases()) === '[{"alias":"live","database":"shop"}]' ? true : undefined,
    );
    // `gone` has a failed replica: not loaded on its three copies, so the whole swap is refused.
    const refused = await post('/v1/aliases/_swap', {
      actions: [{ add: { alias: 'live', database: 'resume' } }, { add: { alias: 'broken', database: 'gone' } }],
    });
    expect([refused.status, refused.body['code']]).toEqual([409, 'DRAM_ERR_NOT_LOADED']);
    expect(await aliases()).toEqual([{ alias: 'live', database: 'shop' }]);
    expect(
      (await post('/v1/aliases/_swap', { actions: [{ add: { alias: 'live', database: 'resume' } }] })).status,
    ).toBe(200);
    await eventually(async () =>
      JSON.stringify(await aliases()) === '[{"alias":"live","database":"resume"}]' ? true : undefined,
    );
    expect((await post('/v1/aliases/_swap', { rollback: true })).status).toBe(200);
    await eventually(async () =>
      JSON.stringify(await aliases()) === '[{"alias":"live","database":"shop"}]' ? true : undefined,
    );
    const named = await put('shop', 'resume');
    expect([named.status, (JSON.parse(named.text) as { code: string }).code]).toEqual([
      409,
      'DRAM_ERR_DATABASE_EXISTS',
    ]);
    expect((await request(`${cluster.url(3)}/v1/aliases/live`, 'DELETE')).status).toBe(200);
    expect((await request(`${cluster.url(1)}/v1/aliases/live`, 'DELETE')).status).toBe(404);
  });
});
