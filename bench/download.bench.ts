// Download throughput (`npm run bench -- --data`, figures under `download`): the database download
// controller (src/data/database-downloads.ts: bounded parallelism, temp file, fsync, ETag and MD5
// checks, rename) against a plain parallel GetObject loop over the same files in the same run (the
// same S3 adapter, the same number in flight, each body written to a file), both from a real S3
// server (s3rver) on loopback. Each side runs `rounds` times, alternating; the figure is the ratio
// of the medians (target >= 0.9). Both sides' files are checked (sizes) before anything is timed
// as a result.

import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { asNodeId } from '../src/base/ids.ts';
import type { DatabaseRecord, ManifestFile } from '../src/codec/meta-databases.ts';
import { DatabaseDownloads, downloadLimitsDefault } from '../src/data/database-downloads.ts';
import { listAll, type ObjectInfo } from '../src/data/object-store.ts';
import { listDirectory, uploadDirectory } from '../src/data/upload-directory.ts';
import { S3ObjectStore, s3SettingsDefault } from '../src/s3/s3-object-store.ts';
import { s3rverCredentials, startS3rver, type S3rverProcess } from '../src/s3/s3rver-process.ts';

export interface DownloadReport {
  readonly files: number;
  readonly bytes: number;
  readonly filesInFlight: number;
  readonly rounds: number;
  readonly plainMBps: number;
  readonly controllerMBps: number;
  /** controller / plain, medians: the target is >= 0.9. */
  readonly ratio: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** `files` random files of `fileBytes` uploaded as database "db" (one shard) to bucket "bench": their listing. */
async function uploadBenchFiles(
  store: S3ObjectStore,
  root: string,
  files: number,
  fileBytes: number,
): Promise<ObjectInfo[]> {
  const source = join(root, 'source', 'shard=0');
  mkdirSync(source, { recursive: true });
  for (let k = 0; k < files; k++) writeFileSync(join(source, `part-${k}.bin`), randomBytes(fileBytes));
  await store.createBucket('bench');
  await uploadDirectory(store, join(root, 'source'), listDirectory(join(root, 'source')), {
    bucket: 'bench',
    prefix: 'db/',
  });
  return listAll(store, 'bench', 'db/', 10_000);
}

/** The plain side: `inFlight` loops of GetObject, each body piped to a file in `dir`, sizes checked. */
async function downloadPlain(
  store: S3ObjectStore,
  objects: readonly ObjectInfo[],
  dir: string,
  inFlight: number,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let k = next++; k < objects.length; k = next++) {
      const object = objects[k];
      if (object === undefined) return;
      const stream = await store.stream('bench', object.key);
      await pipeline(Readable.from(stream.chunks), createWriteStream(join(dir, `${k}.bin`)));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  for (let k = 0; k < objects.length; k++)
    if (statSync(join(dir, `${k}.bin`)).size !== objects[k]?.bytes) throw new Error('plain loop: wrong size');
}

/** Database "db" at version `round` + 1, its one shard of `manifest` on node 1. */
function benchRecord(manifest: readonly ManifestFile[], round: number): DatabaseRecord {
  return {
    name: 'db',
    bucket: 'bench',
    prefix: 'db/',
    replicas: 1,
    lazy: false,
    metadataPattern: null,
    createdMs: 0,
    current: {
      version: round + 1,
      listedMs: 0,
      global: [],
      shards: [{ shard: '0', files: manifest, nodes: [asNodeId(1)] }],
    },
    next: null,
    replicaStates: [],
  };
}

/** The controller side: one DatabaseDownloads pass loads the database into `dir`, sizes checked. */
async function downloadWithController(
  store: S3ObjectStore,
  manifest: readonly ManifestFile[],
  dir: string,
  round: number,
): Promise<void> {
  const record = benchRecord(manifest, round);
  let finished: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const downloads = new DatabaseDownloads({
    nodeId: asNodeId(1),
    root: dir,
    store,
    catalog: () => ({ databases: [record], active: [asNodeId(1)] }),
    catalogCurrent: () => true,
    record: (command) => {
      if (command.type === 'db.replica' && command.state === 'loaded') finished?.();
      else if (command.type === 'db.replica') throw new Error(`download failed: ${command.error ?? ''}`);
      return Promise.resolve(true);
    },
    nowMs: () => Date.now(),
    limits: { ...downloadLimitsDefault, pollMs: 60_000 },
  });
  await downloads.pass();
  await done;
  downloads.stop();
  for (const file of manifest)
    if (statSync(join(dir, 'db', String(round + 1), file.path)).size !== file.bytes)
      throw new Error('controller: wrong size');
}

export async function runDownloadBench(
  log: (line: string) => void,
  files = 24,
  fileBytes = 4 << 20,
  rounds = 3,
): Promise<DownloadReport> {
  const root = mkdtempSync(join(tmpdir(), 'dram-bench-download-'));
  const { server, store } = await benchS3(root);
  const inFlight = downloadLimitsDefault.filesInFlightMax;
  try {
    const objects = await uploadBenchFiles(store, root, files, fileBytes);
    const bytes = objects.reduce((sum, object) => sum + object.bytes, 0);
    const manifest = objects.map((object) => ({
      path: object.key.slice('db/'.length),
      bytes: object.bytes,
      etag: object.etag,
    }));
    const plainSeconds: number[] = [];
    const controllerSeconds: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let started = performance.now();
      await downloadPlain(store, objects, join(root, `plain-${round}`), inFlight);
      plainSeconds.push((performance.now() - started) / 1000);
      started = performance.now();
      await downloadWithController(store, manifest, join(root, `controller-${round}`), round);
      controllerSeconds.push((performance.now() - started) / 1000);
      log(
        `download round ${round + 1}/${rounds}: plain ${plainSeconds.at(-1)?.toFixed(2)} s, controller ${controllerSeconds.at(-1)?.toFixed(2)} s`,
      );
      rmSync(join(root, `plain-${round}`), { recursive: true, force: true });
      rmSync(join(root, `controller-${round}`), { recursive: true, force: true });
    }
    const plainMBps = bytes / 1e6 / median(plainSeconds);
    const controllerMBps = bytes / 1e6 / median(controllerSeconds);
    return {
      files: objects.length,
      bytes,
      filesInFlight: inFlight,
      rounds,
      plainMBps: Math.round(plainMBps * 10) / 10,
      controllerMBps: Math.round(controllerMBps * 10) / 10,
      ratio: Math.round((controllerMBps / plainMBps) * 100) / 100,
    };
  } finally {
    store.close();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** A real S3 server (s3rver) under `root`/s3 and a path-style client of it: the data-plane benches' S3. */
export async function benchS3(root: string): Promise<{ server: S3rverProcess; store: S3ObjectStore }> {
  const server = await startS3rver({ directory: join(root, 's3'), stderr: 'ignore' });
  const store = new S3ObjectStore({
    ...s3SettingsDefault,
    endpoint: server.endpoint,
    pathStyle: true,
    credentials: s3rverCredentials,
  });
  return { server, store };
}
