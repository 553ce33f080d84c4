// How the adapter maps what the AWS SDK throws to the port's codes: S3's error names first, then
// the HTTP status class, and no status at all (a refused or reset connection) as unavailable.

import { describe, expect, it } from 'vitest';
import { ObjectStoreError } from '../../src/data/object-store.ts';
import { objectStoreFailure } from '../../src/s3/s3-errors.ts';

const sdkError = (name: string, status?: number): unknown =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
  });

describe('objectStoreFailure', () => {
  it.each([
    ['NoSuchKey', 404, 'DRAM_ERR_S3_NOT_FOUND'],
    ['NotFound', 404, 'DRAM_ERR_S3_NOT_FOUND'],
    ['NoSuchBucket', 404, 'DRAM_ERR_S3_NO_BUCKET'],
    ['AccessDenied', 403, 'DRAM_ERR_S3_ACCESS_DENIED'],
    ['InvalidAccessKeyId', 403, 'DRAM_ERR_S3_ACCESS_DENIED'],
    ['CredentialsProviderError', undefined, 'DRAM_ERR_S3_ACCESS_DENIED'],
    ['InvalidRange', 416, 'DRAM_ERR_S3_INVALID_RANGE'],
    ['SlowDown', 503, 'DRAM_ERR_S3_UNAVAILABLE'],
    ['InternalError', 500, 'DRAM_ERR_S3_UNAVAILABLE'],
    ['Whatever', 502, 'DRAM_ERR_S3_UNAVAILABLE'],
    ['Whatever', 429, 'DRAM_ERR_S3_UNAVAILABLE'],
    ['Whatever', 401, 'DRAM_ERR_S3_ACCESS_DENIED'],
    ['Whatever', 404, 'DRAM_ERR_S3_NOT_FOUND'],
    ['InvalidBucketName', 400, 'DRAM_ERR_S3_FAILED'],
    ['Error', undefined, 'DRAM_ERR_S3_UNAVAILABLE'],
  ] as const)('%s (HTTP %s) is %s', (name, status, code) => {
    const failure = objectStoreFailure('get s3://b/k', sdkError(name, status));
    expect(failure.code).toBe(code);
    expect(failure.message).toContain('get s3://b/k');
  });

  it('keeps an ObjectStoreError as it is, and reads a thrown non-object', () => {
    const own = new ObjectStoreError('DRAM_ERR_S3_TOO_LARGE', 'mine');
    expect(objectStoreFailure('x', own)).toBe(own);
    expect(objectStoreFailure('x', 'boom').code).toBe('DRAM_ERR_S3_UNAVAILABLE');
  });
});
