// Shared by the S3 tests: an S3ObjectStore pointed at an s3rver process (path-style, its access key),
// and the flags (and credentials) that point a dram process at it.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { S3ObjectStore, s3SettingsDefault, type S3Settings } from '../../src/s3/s3-object-store.ts';
import { s3rverCredentials, startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';

export function s3rverStore(server: S3rverProcess, overrides: Partial<S3Settings> = {}): S3ObjectStore {
  return new S3ObjectStore({
    ...s3SettingsDefault,
    endpoint: server.endpoint,
    pathStyle: true,
    credentials: s3rverCredentials,
    ...overrides,
  });
}

/**
 * The `dram start` flags that point a node at an s3rver process (`--s3-endpoint <url> --s3-path-style`).
 * Sets the s3rver credentials in this process's environment: the nodes and the CLI it starts take
 * them from the AWS chain, as in production.
 */
export function s3rverNodeFlags(server: S3rverProcess): string[] {
  process.env['AWS_ACCESS_KEY_ID'] = s3rverCredentials.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = s3rverCredentials.secretAccessKey;
  return ['--s3-endpoint', server.endpoint, '--s3-path-style'];
}

/** s3rver with its data under `<root>/s3`, `bucket` created, and a store pointed at it. */
export async function s3rverBucket(root: string, bucket: string): Promise<{ s3: S3rverProcess; store: S3ObjectStore }> {
  const s3 = await startS3rver({ directory: join(root, 's3'), port: 0, stderr: 'ignore' });
  const store = s3rverStore(s3);
  await store.createBucket(bucket);
  return { s3, store };
}

/** The end of an s3rver integration test: its cluster stopped, then the store closed, s3rver stopped, `root` removed. */
export async function stopS3rverTest(
  cluster: { stopAll(): Promise<void> },
  store: S3ObjectStore,
  s3: S3rverProcess,
  root: string,
): Promise<void> {
  await cluster.stopAll();
  store.close();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}
