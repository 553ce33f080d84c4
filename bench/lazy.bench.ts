// Time to first query on a lazy database against a full download (`npm run bench -- --data`,
// figures under `lazy`): the same generated sample database in a real S3 server (s3rver) on
// loopback, loaded by the download controller (src/data/database-downloads.ts) once with
// `lazy: false` (every file) and once with `lazy: true` (small files and Parquet footers; a query's
// shard files fetched on first use through `ensureLazy`), then the `count` example endpoint run by
// the local runner on DuckDB over one shard, and over every shard. Rounds alternate the two; the
// figures are medians, and the ratios lazy / full of the same run are what to compare.
//
// Before anything is timed as a result, each first query's answer is checked against the count of
// events the generator wrote (the same for both).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { generateSampleDatabase, sampleDefaults } from '../examples/sample-db/generate.ts';
import { asNodeId } from '../src/base/ids.ts';
import type { DatabaseRecord, ManifestFile } from '../src/codec/meta-databases.ts';
import { DatabaseDownloads, downloadLimitsDefault, versionDir } from '../src/data/database-downloads.ts';
import { listAll } from '../src/data/object-store.ts';
import { listDirectory, uploadDirectory } from '../src/data/upload-directory.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../src/engine/duckdb-engine.ts';
import { loadEndpoints } from '../src/query/endpoint-loader.ts';
import { LocalRunner, type LocalDatabase } from '../src/query/local-runner.ts';
import type { S3ObjectStore } from '../src/s3/s3-object-store.ts';
import { benchS3 } from './download.bench.ts';

export interface LazyReport {
  readonly shards: number;
  readonly files: number;
  readonly bytes: number;
  readonly rounds: number;
  /** Medians, milliseconds: from the add (the download controller's first pass) to `loaded`. */
  readonly fullLoadedMs: number;
  readonly lazyLoadedMs: number;
  /** From the add to the first query's answer, over one shard / every shard. */
  readonly fullFirstQueryOneShardMs: number;
  readonly lazyFirstQueryOneShardMs: number;
  readonly fullFirstQueryAllShardsMs: number;
  readonly lazyFirstQueryAllShardsMs: number;
  /** The lazy database's second query over every shard (all cache hits). */
  readonly lazySecondQueryAllShardsMs: number;
  /** lazy / full: time to first query over one shard and over every shard. */
  readonly ratioOneShard: number;
  readonly ratioAllShards: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const round = (value: number): number => Math.round(value * 10) / 10;

interface Setup {
  readonly store: S3ObjectStore;
  readonly manifest: readonly ManifestFile[];
  readonly runner: LocalRunner;
  readonly expected: number;
  readonly shards: readonly string[];
}

function record(manifest: readonly ManifestFile[], shards: readonly string[], lazy: boolean): DatabaseRecord {
  return {
    name: 'db',
    bucket: 'bench',
    prefix: 'db/',
    replicas: 1,
    lazy,
    metadataPattern: null,
    createdMs: 0,
    current: {
      version: 1,
      listedMs: 0,
      global: manifest.filter((file) => file.path.startsWith('global/')),
      shards: shards.map((shard) => ({
        shard,
        files: manifest.filter((file) => file.path.startsWith(`shard=${shard}/`)),
        nodes: [asNodeId(1)],
      })),
    },
    next: null,
    replicaStates: [],
  };
}

function localDatabase(root: string, database: DatabaseRecord, shards: readonly string[]): LocalDatabase {
  const dir = versionDir(root, 'db', 1);
  const global = database.current.global.map((file) => join(dir, file.path));
  return {
    name: 'db',
    version: '1',
    globalDir: join(dir, 'global'),
    globalFiles: global,
    shards: database.current.shards
      .filter((shard) => shards.includes(shard.shard))
      .map((shard) => ({
        shard: shard.shard,
        dir: join(dir, `shard=${shard.shard}`),
        files: shard.files.map((file) => join(dir, file.path)),
      })),
  };
}

/** One load and first query: `queryShards` are the shards the first query covers. */
async function once(
  setup: Setup,
  root: string,
  lazy: boolean,
  queryShards: readonly string[],
): Promise<{ loadedMs: number; firstMs: number; secondMs: number }> {
  const database = record(setup.manifest, setup.shards, lazy);
  let finished: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const downloads = new DatabaseDownloads({
    nodeId: asNodeId(1),
    root,
    store: setup.store,
    catalog: () => ({ databases: [database], active: [asNodeId(1)] }),
    catalogCurrent: () => true,
    record: (command) => {
      if (command.type === 'db.replica' && command.state === 'loaded') finished?.();
      else if (command.type === 'db.replica') throw new Error(`lazy bench: load failed: ${command.error ?? ''}`);
      return Promise.resolve(true);
    },
    nowMs: () => Date.now(),
    limits: { ...downloadLimitsDefault, pollMs: 60_000 },
  });
  try {
    const started = performance.now();
    await downloads.pass();
    await done;
    const loadedMs = performance.now() - started;
    const local = localDatabase(root, database, queryShards);
    const query = async (): Promise<unknown> => {
      const paths = [...database.current.global, ...database.current.shards.flatMap((shard) => shard.files)]
        .filter(
          (file) => file.path.startsWith('global/') || queryShards.some((s) => file.path.startsWith(`shard=${s}/`)),
        )
        .map((file) => file.path);
      const release = await downloads.ensureLazy('db', 1, paths);
      try {
        return (await setup.runner.run({ endpoint: 'count', params: {}, database: local })).result;
      } finally {
        release();
      }
    };
    const first = await query();
    const firstMs = performance.now() - started;
    const second = performance.now();
    await query();
    const secondMs = performance.now() - second;
    const expected = queryShards.length === setup.shards.length ? setup.expected * setup.shards.length : setup.expected;
    if (JSON.stringify(first) !== JSON.stringify({ count: expected }))
      throw new Error(`lazy bench: count answered ${JSON.stringify(first)}, expected ${expected}`);
    return { loadedMs, firstMs, secondMs };
  } finally {
    downloads.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function runLazyBench(
  log: (line: string) => void,
  shards = 4,
  eventsPerShard = 400_000,
  rounds = 3,
): Promise<LazyReport> {
  const root = mkdtempSync(join(tmpdir(), 'dram-bench-lazy-'));
  const { server, store } = await benchS3(root);
  const engine = await DuckDbEngine.open({ limits: duckDbEngineLimitsDefault, readableDirectories: [root] });
  try {
    const source = join(root, 'source');
    await generateSampleDatabase(source, { ...sampleDefaults, shards, eventsPerShard });
    await store.createBucket('bench');
    await uploadDirectory(store, source, listDirectory(source), { bucket: 'bench', prefix: 'db/' });
    const objects = await listAll(store, 'bench', 'db/', 10_000);
    const manifest = objects.map((object) => ({ path: object.key.slice(3), bytes: object.bytes, etag: object.etag }));
    const endpoints = await loadEndpoints(fileURLToPath(new URL('../examples/endpoints', import.meta.url)));
    const setup: Setup = {
      store,
      manifest,
      runner: new LocalRunner({ endpoints, engine }),
      expected: eventsPerShard,
      shards: Array.from({ length: shards }, (_, k) => String(k + 1)),
    };
    const one = [setup.shards[0] ?? '1'];
    const figures = { full: [] as number[][], lazy: [] as number[][] };
    for (let at = 0; at < rounds; at++) {
      for (const lazy of [false, true]) {
        const oneShard = await once(setup, join(root, `run-${at}-${lazy}-one`), lazy, one);
        const all = await once(setup, join(root, `run-${at}-${lazy}-all`), lazy, setup.shards);
        (lazy ? figures.lazy : figures.full).push([oneShard.loadedMs, oneShard.firstMs, all.firstMs, all.secondMs]);
        log(
          `lazy bench round ${at + 1}/${rounds} ${lazy ? 'lazy' : 'full'}: loaded ${oneShard.loadedMs.toFixed(0)} ms, first query one shard ${oneShard.firstMs.toFixed(0)} ms, all shards ${all.firstMs.toFixed(0)} ms`,
        );
      }
    }
    const column = (rows: number[][], k: number): number => round(median(rows.map((row) => row[k] ?? 0)));
    const report = {
      shards,
      files: manifest.length,
      bytes: manifest.reduce((sum, file) => sum + file.bytes, 0),
      rounds,
      fullLoadedMs: column(figures.full, 0),
      lazyLoadedMs: column(figures.lazy, 0),
      fullFirstQueryOneShardMs: column(figures.full, 1),
      lazyFirstQueryOneShardMs: column(figures.lazy, 1),
      fullFirstQueryAllShardsMs: column(figures.full, 2),
      lazyFirstQueryAllShardsMs: column(figures.lazy, 2),
      lazySecondQueryAllShardsMs: column(figures.lazy, 3),
    };
    return {
      ...report,
      ratioOneShard: Math.round((report.lazyFirstQueryOneShardMs / report.fullFirstQueryOneShardMs) * 100) / 100,
      ratioAllShards: Math.round((report.lazyFirstQueryAllShardsMs / report.fullFirstQueryAllShardsMs) * 100) / 100,
    };
  } finally {
    await engine.close();
    store.close();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
