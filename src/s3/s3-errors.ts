// Maps what the AWS SDK throws to the object store port's codes (src/data/object-store.ts). S3 names
// its errors (`NoSuchKey`, `NoSuchBucket`, `AccessDenied`, `InvalidRange`, ...) and the SDK puts the
// name on the error with the HTTP status in `$metadata`; a network failure has no status at all.
// The rule: the server's name when we know it, then the status class, and anything without a
// status (refused connection, reset, timeout) is DRAM_ERR_S3_UNAVAILABLE, the one retryable code.

import { isObjectStoreError, ObjectStoreError, type ObjectStoreErrorCode } from '../data/object-store.ts';

const codesByName: Readonly<Record<string, ObjectStoreErrorCode>> = {
  NoSuchKey: 'DRAM_ERR_S3_NOT_FOUND',
  NotFound: 'DRAM_ERR_S3_NOT_FOUND',
  NoSuchBucket: 'DRAM_ERR_S3_NO_BUCKET',
  AccessDenied: 'DRAM_ERR_S3_ACCESS_DENIED',
  InvalidAccessKeyId: 'DRAM_ERR_S3_ACCESS_DENIED',
  SignatureDoesNotMatch: 'DRAM_ERR_S3_ACCESS_DENIED',
  ExpiredToken: 'DRAM_ERR_S3_ACCESS_DENIED',
  CredentialsProviderError: 'DRAM_ERR_S3_ACCESS_DENIED',
  InvalidRange: 'DRAM_ERR_S3_INVALID_RANGE',
  SlowDown: 'DRAM_ERR_S3_UNAVAILABLE',
  ServiceUnavailable: 'DRAM_ERR_S3_UNAVAILABLE',
  InternalError: 'DRAM_ERR_S3_UNAVAILABLE',
  RequestTimeout: 'DRAM_ERR_S3_UNAVAILABLE',
  TimeoutError: 'DRAM_ERR_S3_UNAVAILABLE',
};

function codeFor(name: string, status: number | undefined): ObjectStoreErrorCode {
  const named = codesByName[name];
  if (named !== undefined) return named;
  if (status === undefined || status >= 500 || status === 429) return 'DRAM_ERR_S3_UNAVAILABLE';
  if (status === 403 || status === 401) return 'DRAM_ERR_S3_ACCESS_DENIED';
  if (status === 416) return 'DRAM_ERR_S3_INVALID_RANGE';
  if (status === 404) return 'DRAM_ERR_S3_NOT_FOUND';
  return 'DRAM_ERR_S3_FAILED';
}

/** The port's error for whatever the SDK (or the network under it) threw while doing `what`. */
export function objectStoreFailure(what: string, error: unknown): ObjectStoreError {
  if (isObjectStoreError(error)) return error;
  const candidate = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const name = typeof candidate.name === 'string' ? candidate.name : '';
  const rawStatus = candidate.$metadata?.httpStatusCode;
  const status = typeof rawStatus === 'number' ? rawStatus : undefined;
  const message = typeof candidate.message === 'string' && candidate.message !== '' ? candidate.message : name;
  const detail = [name, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
  return new ObjectStoreError(codeFor(name, status), `${what}: ${message}${detail === '' ? '' : ` (${detail})`}`, {
    cause: error,
  });
}
