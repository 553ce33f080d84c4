// Shared by the S3 tests: an S3ObjectStore pointed at an s3rver process (path-style, its access key),
// and the flags (and credentials) that point a dram process at it.

import { S3ObjectStore, s3SettingsDefault, type S3Settings } from '../../src/s3/s3-object-store.ts';
import { s3rverCredentials, type S3rverProcess } from '../../src/s3/s3rver-process.ts';

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
