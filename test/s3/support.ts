// Shared by the S3 tests: an S3ObjectStore pointed at an s3rver process (path-style, its access key).

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
