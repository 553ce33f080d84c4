// The S3 side of `dram dev`: a real S3 server (s3rver, its own process on loopback, objects under
// <data dir>/s3/) beside the three nodes, and the sample database (examples/sample-db/) generated
// once into <data dir>/sample-db/ and uploaded to s3://dram-dev/sample/shop/, so the tour works
// offline. The nodes get the server through --s3-endpoint/--s3-path-style and s3rver's access key in
// the usual AWS_* variables. The generator runs as a child process: it is example code with DuckDB in
// it, not part of the CLI.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3ObjectStore, s3SettingsDefault } from '../s3/s3-object-store.ts';
import { s3rverCredentials, startS3rver, type S3rverProcess } from '../s3/s3rver-process.ts';
import { listDirectory, uploadDirectory } from '../data/upload-directory.ts';

export const devBucket = 'dram-dev';
export const devSamplePrefix = 'sample/shop';
export const devS3PortDefault = 4568;
/** Bump when the generator's output changes, so a cached copy is made again. */
const sampleVersion = 1;
/** Generating takes seconds; a generator still running after this is broken. */
const generateMsMax = 300_000;

export interface DevSample {
  readonly url: string;
  readonly files: number;
  readonly bytes: number;
  readonly uploaded: number;
}

export function startDevS3(dataDir: string, port: number): Promise<S3rverProcess> {
  return startS3rver({ directory: join(dataDir, 's3'), port });
}

/** What a node started by `dram dev` needs to reach the dev S3 server: flags and environment. */
export function nodeS3Settings(endpoint: string): { args: string[]; env: Record<string, string> } {
  return {
    args: ['--s3-endpoint', endpoint, '--s3-path-style'],
    env: { AWS_ACCESS_KEY_ID: s3rverCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3rverCredentials.secretAccessKey },
  };
}

/** Generates the sample database unless cached, and uploads what the bucket lacks. */
export async function prepareSample(dataDir: string, endpoint: string): Promise<DevSample> {
  const dir = join(dataDir, 'sample-db');
  const marker = join(dataDir, 'sample-db.json');
  if (!isCached(dir, marker)) {
    await generate(dir);
    writeFileSync(marker, JSON.stringify({ sampleVersion }));
  }
  const files = listDirectory(dir);
  const store = new S3ObjectStore({ ...s3SettingsDefault, endpoint, pathStyle: true, credentials: s3rverCredentials });
  try {
    await store.createBucket(devBucket);
    const outcome = await uploadDirectory(store, dir, files, { bucket: devBucket, prefix: devSamplePrefix });
    return {
      url: `s3://${devBucket}/${devSamplePrefix}/`,
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.bytes, 0),
      uploaded: outcome.uploaded,
    };
  } finally {
    store.close();
  }
}

function isCached(dir: string, marker: string): boolean {
  if (!existsSync(dir) || !existsSync(marker)) return false;
  try {
    return (JSON.parse(readFileSync(marker, 'utf8')) as { sampleVersion?: unknown }).sampleVersion === sampleVersion;
  } catch {
    return false;
  }
}

function generate(dir: string): Promise<void> {
  const generator = fileURLToPath(new URL('../../examples/sample-db/generate.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', generator, '--out', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, generateMsMax);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`sample database generator failed (code ${String(code)}, signal ${String(signal)})`));
    });
  });
}
