// Database faults on a real process against a real S3 server (s3rver), issue 14's "Tests":
//  - a full disk: the node's database folder is a small tmpfs (mounted here: CI runs as root; the
//    test is skipped with a loud warning only where mounting is not permitted). A database larger
//    than it fails on that replica with a clear error, `dram db add` fails with that error, the
//    database loaded before keeps serving, nothing of the failed version is left on disk or
//    served, and the space is free for the next database;
//  - alias swaps under query load: clients query through an alias while it is swapped back and
//    forth between two databases; no query fails and each answer is one database's or the other's.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleDatabase, sampleDefaults } from '../../examples/sample-db/generate.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import type { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import type { S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverBucket, s3rverNodeFlags, stopS3rverTest } from '../s3/support.ts';
import {
  addDatabase,
  databaseLoaded,
  dramCli,
  formed,
  processCluster,
  request,
  type ProcessCluster,
  endpointsDir,
} from './cluster-process.ts';

const bucket = 'dram-faults';
const root = mkdtempSync(join(tmpdir(), 'dram-faults-it-'));
const tmpfsBytes = 2 * 1024 * 1024;
/** Events per shard of databases a and b (two shards each): different, so an answer says whose it is. */
const events = { a: 2_000, b: 3_000 } as const;
let s3: S3rverProcess;
let store: S3ObjectStore;
let cluster: ProcessCluster;
let databasesDir = '';
let mounted = false;

/** Mounts a tmpfs of `bytes` at `dir`; false (and a loud warning) where mounting is not permitted. */
function mountTmpfs(dir: string, bytes: number): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (error) {
    console.warn(
      `\n!!! SKIPPING the full-disk test: cannot mount a tmpfs (${String(error).split('\n')[0]}); run as root (CI does)\n`,
    );
    return false;
  }
}

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await request(`${cluster.url(1)}${path}`, 'POST', JSON.stringify(body), 'application/json');
  return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
}

interface Detail {
  state: string;
  current: { shards: { replicas: { state: string; error: string | null }[] }[] };
}

async function detail(name: string): Promise<Detail> {
  return JSON.parse((await request(`${cluster.url(1)}/v1/databases/${name}`)).text) as Detail;
}

async function count(name: string): Promise<{ status: number; count: unknown }> {
  const answer = await post(`/v1/databases/${name}/query/count`, {});
  return { status: answer.status, count: (answer.body['result'] as { count?: unknown } | undefined)?.count };
}

/** Every file under `dir` (relative paths). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

beforeAll(async () => {
  ({ s3, store } = await s3rverBucket(root, bucket));
  for (const [name, seed] of [
    ['a', 1],
    ['b', 2],
  ] as const) {
    const dir = join(root, name);
    const eventsPerShard = events[name];
    await generateSampleDatabase(dir, { ...sampleDefaults, seed, shards: 2, eventsPerShard, users: 50, products: 10 });
    await uploadDirectory(store, dir, listDirectory(dir), { bucket, prefix: `${name}/` });
  }
  // Larger than the tmpfs: three incompressible 1 MiB files.
  const big = join(root, 'big');
  mkdirSync(join(big, 'shard=0'), { recursive: true });
  for (let k = 0; k < 3; k++) {
    const bytes = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < bytes.length; at++) bytes[at] = (at * 7919 + k * 31) % 251;
    writeFileSync(join(big, 'shard=0', `part-${k}.bin`), bytes);
  }
  await uploadDirectory(store, big, listDirectory(big), { bucket, prefix: 'big/' });
  cluster = processCluster(1, {
    started: false,
    args: [...s3rverNodeFlags(s3), '--endpoints', endpointsDir],
  });
  // Only the database folder is the small file system: the node's log stays on the real disk
  // (a full log disk stops a node by design; a full database volume must not).
  databasesDir = join(cluster.dataDir(1), 'databases');
  mounted = mountTmpfs(databasesDir, tmpfsBytes);
  cluster.start(1);
  await formed(cluster, 4);
}, 120_000);

afterAll(async () => {
  await cluster.kill(1, 'SIGTERM');
  if (mounted) execFileSync('umount', [databasesDir]);
  await stopS3rverTest(cluster, store, s3, root);
});

describe('database faults on a real process', () => {
  it('a full disk fails that replica with a clear error; the other database serves on', async () => {
    if (!mounted) return;
    await addDatabase(cluster, { name: 'a', source: `s3://${bucket}/a/` });
    await databaseLoaded(cluster, 'a');
    expect(await count('a')).toEqual({ status: 200, count: 2 * events.a });

    const added = await dramCli(['db', 'add', 'big', `s3://${bucket}/big/`, '--url', cluster.url(1)]);
    expect(added.code).not.toBe(0);
    expect(added.err).toMatch(
      /big v1 failed to load:\n {2}shard 0 on node 1: s3:\/\/dram-faults\/big\/shard=0\/part-\d\.bin: disk full: ENOSPC/u,
    );
    const big = await detail('big');
    expect(big.state).toBe('failed');
    expect(big.current.shards[0]?.replicas[0]?.error).toMatch(/disk full: ENOSPC/u);

    // Nothing of the failed version is on disk (complete or partial), so nothing of it can be served.
    expect(filesUnder(databasesDir).filter((path) => path.startsWith('big/'))).toEqual([]);
    expect(await count('a')).toEqual({ status: 200, count: 2 * events.a });
    // Its space is back: another database loads.
    await addDatabase(cluster, { name: 'b', source: `s3://${bucket}/b/` });
    await databaseLoaded(cluster, 'b');
    expect(await count('b')).toEqual({ status: 200, count: 2 * events.b });
  });

  it('swaps an alias back and forth under query load with no failed query', async () => {
    for (const name of ['a', 'b']) {
      const known = await request(`${cluster.url(1)}/v1/databases/${name}`);
      if (known.status === 404) await addDatabase(cluster, { name, source: `s3://${bucket}/${name}/` });
      await databaseLoaded(cluster, name);
    }
    const put = await request(
      `${cluster.url(1)}/v1/aliases/live`,
      'PUT',
      JSON.stringify({ database: 'a' }),
      'application/json',
    );
    expect(put.status).toBe(200);

    const swapsMax = 8;
    let swapping = true;
    const answers: { status: number; count: unknown }[] = [];
    const client = async (): Promise<void> => {
      // Bounded: at most 200 queries per client, and it stops once the swaps are done.
      for (let k = 0; k < 200 && swapping; k++) answers.push(await count('live'));
    };
    const swaps = async (): Promise<void> => {
      try {
        for (let k = 0; k < swapsMax; k++) {
          const [from, to] = k % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
          const swapped = await post('/v1/aliases/_swap', {
            actions: [{ remove: { alias: 'live', database: from } }, { add: { alias: 'live', database: to } }],
          });
          expect(swapped.status).toBe(200);
        }
      } finally {
        swapping = false;
      }
    };
    await Promise.all([client(), client(), client(), swaps()]);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    // Every answer is all of one database or all of the other, never a mix or a short one.
    const whole = [2 * events.a, 2 * events.b];
    expect(answers.filter((answer) => !whole.includes(answer.count as number))).toEqual([]);
  });
});
