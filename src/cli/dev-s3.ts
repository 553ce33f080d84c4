// The S3 side of `dram dev`: a real S3 server (s3rver, its own process on loopback, objects under
// <data dir>/s3/) beside the three nodes, and the sample database (examples/sample-db/) generated
// once into <data dir>/sample-db/, uploaded to s3://dram-dev/sample/shop/ and added to the cluster
// as database `shop` on every member (POST /v1/databases, then waiting for loaded), so the tour
// works offline. The nodes get the server through --s3-endpoint/--s3-path-style and s3rver's access key in
// the usual AWS_* variables. The generator runs as a child process: it is example code with DuckDB in
// it, not part of the CLI.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3ObjectStore, s3SettingsDefault } from '../s3/s3-object-store.ts';
import { s3rverCredentials, startS3rver, type S3rverProcess } from '../s3/s3rver-process.ts';
import { listDirectory, uploadDirectory } from '../data/upload-directory.ts';
import { call, describeError } from './http-client.ts';

export const devBucket = 'dram-dev';
export const devSamplePrefix = 'sample/shop';
export const devS3PortDefault = 4568;
export const devSampleName = 'shop';
/** Adding waits this long for the cluster to take the request (it may still be electing leaders). */
const addWaitMs = 60_000;
/** Loading a few MB from loopback takes seconds; longer means something is wrong (the message says so). */
const loadWaitMs = 300_000;
const devPollMs = 500;
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

/**
 * Adds the sample database to the cluster through `memberUrl` (on every member), or finds it added
 * by an earlier run, then waits until it is loaded; answers the line to print.
 */
export async function addSample(memberUrl: string, source: string, stopped: () => boolean): Promise<string> {
  const body = JSON.stringify({ name: devSampleName, source, replicas: 'all' });
  let added = false;
  let last = 'no answer';
  for (const deadline = Date.now() + addWaitMs; !added && Date.now() < deadline && !stopped(); ) {
    const answer = await call(memberUrl, 'POST', '/v1/databases', body).catch((error: unknown) => error as Error);
    if (!(answer instanceof Error) && (answer.status === 202 || answer.status === 409)) added = true;
    else {
      last = answer instanceof Error ? answer.message : describeError(answer);
      await new Promise((resolve) => setTimeout(resolve, devPollMs));
    }
  }
  if (!added)
    return `  sample database not added (${last}): try \`dram db add ${devSampleName} ${source} --replicas all\``;
  for (const deadline = Date.now() + loadWaitMs; Date.now() < deadline && !stopped(); ) {
    const answer = await call(memberUrl, 'GET', `/v1/databases/${devSampleName}`).catch(() => undefined);
    const state =
      answer?.status === 200
        ? (JSON.parse(new TextDecoder().decode(answer.body)) as { state?: unknown }).state
        : undefined;
    if (state === 'loaded')
      return [
        `  added as database "${devSampleName}", loaded on every member (dram db show ${devSampleName})`,
        `  query it (examples/endpoints): dram query ${devSampleName} count '{"kind": "purchase"}'`,
      ].join('\n');
    if (state === 'failed')
      return `  database "${devSampleName}" failed to load: see \`dram db show ${devSampleName}\``;
    await new Promise((resolve) => setTimeout(resolve, devPollMs));
  }
  return `  database "${devSampleName}" is still loading: follow it with \`dram db show ${devSampleName}\``;
}
