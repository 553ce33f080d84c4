// Lazy databases on a real process against a real S3 server (s3rver): `lazy: true` downloads only
// the metadata (small files whole, Parquet footers) and is `loaded` then; a query fetches the
// shard's data files into the cache (misses), the same query again finds them there (hits, no S3
// request), and a cache bound smaller than the database evicts the least recently used files (the
// replica shows `evicted`, and still answers). The statistics and the metrics count all of it.

import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleDatabase, sampleDefaults, type SampleFile } from '../../examples/sample-db/generate.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import type { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import type { S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverBucket, s3rverNodeFlags, stopS3rverTest } from '../s3/support.ts';
import {
  addDatabase,
  databaseLoaded,
  eventually,
  formed,
  processCluster,
  request,
  type ProcessCluster,
  endpointsDir,
} from './cluster-process.ts';

const bucket = 'dram-lazy';
const root = mkdtempSync(join(tmpdir(), 'dram-lazy-it-'));
const sampleDir = join(root, 'sample');
const eventsPerShard = 20_000;
let s3: S3rverProcess;
let store: S3ObjectStore;
let cluster: ProcessCluster;
let sample: SampleFile[];
let cacheBytes = 0;

interface Cache {
  files: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
  evictedFiles: number;
}
interface Replica {
  node: number;
  state: string;
  lazy: boolean;
  s3Requests: number | null;
  cache: Cache | null;
  footerRows: number | null;
}
interface Detail {
  state: string;
  stats: { cacheHits: number; cacheMisses: number; cacheHitRate: number | null; s3Requests: number; queries: number };
  current: { shards: { shard: string; replicas: Replica[] }[] };
}

async function detail(): Promise<Detail> {
  return JSON.parse((await request(`${cluster.url(1)}/v1/databases/lazy`)).text) as Detail;
}

async function replica(): Promise<Replica> {
  const found = (await detail()).current.shards[0]?.replicas[0];
  if (found === undefined) throw new Error('no replica');
  return found;
}

async function count(shards?: string): Promise<unknown> {
  const query = shards === undefined ? '' : `?shards=${shards}`;
  const answer = await request(
    `${cluster.url(1)}/v1/databases/lazy/query/count${query}`,
    'POST',
    '{}',
    'application/json',
  );
  expect(answer.status).toBe(200);
  return (JSON.parse(answer.text) as { result: unknown }).result;
}

function onDisk(path: string): boolean {
  return existsSync(join(cluster.dataDir(1), 'databases', 'lazy', '1', path));
}

const parquetOf = (shard: string): SampleFile[] =>
  sample.filter((file) => file.path.startsWith(`shard=${shard}/`) && file.path.endsWith('.parquet'));

beforeAll(async () => {
  ({ s3, store } = await s3rverBucket(root, bucket));
  sample = await generateSampleDatabase(sampleDir, {
    ...sampleDefaults,
    seed: 7,
    shards: 2,
    eventsPerShard,
    users: 200,
    products: 30,
  });
  await uploadDirectory(store, sampleDir, listDirectory(sampleDir), { bucket, prefix: 'lazy/' });
  // Room for one shard's Parquet files, not two.
  const shardBytes = parquetOf('1').reduce((sum, file) => sum + file.bytes, 0);
  cacheBytes = shardBytes + 1024;
  expect(parquetOf('1').every((file) => file.bytes > 64 * 1024)).toBe(true); // data, not metadata
  cluster = processCluster(1, {
    args: [...s3rverNodeFlags(s3), '--endpoints', endpointsDir, '--lazy-cache-bytes', String(cacheBytes)],
  });
  await formed(cluster, 4).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${cluster.logs(1)}`);
  });
}, 120_000);

afterAll(async () => {
  await stopS3rverTest(cluster, store, s3, root);
});

describe('a lazy database against s3rver', () => {
  it('loads the metadata only, fetches on first use, hits the cache after, evicts under its bound', async () => {
    await addDatabase(cluster, { name: 'lazy', source: `s3://${bucket}/lazy/`, lazy: true });
    await databaseLoaded(cluster, 'lazy');

    // Loaded: small files whole, the Parquet data files only as footers (their rows counted).
    const loaded = await replica();
    expect(loaded).toMatchObject({ state: 'loaded', lazy: true, footerRows: 2 * eventsPerShard });
    expect(loaded.cache).toMatchObject({ files: 0, hits: 0, misses: 0, evictions: 0 });
    for (const file of sample)
      expect({ file: file.path, local: onDisk(file.path) }).toEqual({
        file: file.path,
        local: !(file.path.endsWith('.parquet') && file.bytes > 64 * 1024),
      });
    const requestsLoaded = loaded.s3Requests ?? 0;

    // First query of shard 1: its two Parquet files are fetched (misses), then read by DuckDB.
    expect(await count('1')).toEqual({ count: eventsPerShard });
    const first = await replica();
    expect(first.cache).toMatchObject({ files: 2, hits: 0, misses: 2, evictions: 0 });
    expect(first.s3Requests).toBe(requestsLoaded + 2);
    for (const file of parquetOf('1')) expect(onDisk(file.path)).toBe(true);

    // The same query again: both files are hits, no S3 request.
    expect(await count('1')).toEqual({ count: eventsPerShard });
    const second = await replica();
    expect(second.cache).toMatchObject({ files: 2, hits: 2, misses: 2, evictions: 0 });
    expect(second.s3Requests).toBe(requestsLoaded + 2);

    // Shard 2 does not fit beside shard 1: shard 1's files are evicted, and the replica says so.
    expect(await count('2')).toEqual({ count: eventsPerShard });
    const third = await replica();
    expect(third.cache).toMatchObject({ files: 2, hits: 2, misses: 4, evictions: 2, evictedFiles: 2 });
    expect(third.state).toBe('evicted');
    for (const file of parquetOf('1')) expect(onDisk(file.path)).toBe(false);
    expect((await detail()).state).toBe('loaded'); // the database still serves

    // A query over both shards needs more than the bound: served (its files pinned), then trimmed.
    expect(await count()).toEqual({ count: 2 * eventsPerShard });
    const after = await replica();
    expect(after.cache?.bytes).toBeLessThanOrEqual(cacheBytes);

    const stats = (await detail()).stats;
    expect(stats).toMatchObject({ cacheHits: after.cache?.hits, cacheMisses: after.cache?.misses, queries: 4 });
    const metrics = (await request(`${cluster.url(1)}/metrics`)).text;
    expect(metrics).toContain(`dram_database_cache_requests_total{database="lazy",outcome="hit"} ${after.cache?.hits}`);
    expect(metrics).toContain(
      `dram_database_cache_requests_total{database="lazy",outcome="miss"} ${after.cache?.misses}`,
    );
    expect(metrics).toContain('dram_database_queries_total{database="lazy",outcome="ok"} 4');
    expect(metrics).toContain('dram_database_versions{database="lazy",state="evicted"} 1');

    // After a restart the files on disk are the cache again (hits, no fetch) and the footers count.
    await cluster.kill(1, 'SIGTERM');
    cluster.start(1, { init: false });
    await eventually(async () => {
      const restarted = await request(`${cluster.url(1)}/v1/databases/lazy`).catch(() => undefined);
      return restarted?.status === 200 && (await replica()).cache !== null ? true : undefined;
    }, 300);
    const back = await replica();
    expect(back).toMatchObject({ state: 'loaded', footerRows: 2 * eventsPerShard });
    expect(back.cache).toMatchObject({ files: after.cache?.files, bytes: after.cache?.bytes, hits: 0, misses: 0 });
  });
});
