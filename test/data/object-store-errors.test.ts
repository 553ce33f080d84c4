// The object store's error codes: each is a code of the HTTP error registry (docs/errors.md); an error is
// recognised across duplicate copies of the module; ranges resolve and refuse as the port states.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorRegistry } from '../../src/api/errors.ts';
import * as port from '../../src/data/object-store.ts';
import {
  isObjectStoreError,
  ObjectStoreError,
  objectStoreErrorCodes,
  resolveRange,
} from '../../src/data/object-store.ts';

describe('object store errors', () => {
  it('are codes of the HTTP error registry (so listed in docs/errors.md), each with its status', () => {
    expect(Object.fromEntries(objectStoreErrorCodes.map((code) => [code, errorRegistry[code].status]))).toEqual({
      DRAM_ERR_S3_NOT_FOUND: 404,
      DRAM_ERR_S3_NO_BUCKET: 404,
      DRAM_ERR_S3_ACCESS_DENIED: 502,
      DRAM_ERR_S3_INVALID_RANGE: 502,
      DRAM_ERR_S3_TOO_LARGE: 502,
      DRAM_ERR_S3_UNAVAILABLE: 503,
      DRAM_ERR_S3_FAILED: 502,
    });
    const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const code of objectStoreErrorCodes)
      expect({ code, listed: text.includes(`| \`${code}\` |`) }).toEqual({ code, listed: true });
  });

  it('are recognised from a duplicate copy of the module, and only the unavailable one is retryable', async () => {
    const path = new URL('../../src/data/object-store.ts', import.meta.url).href;
    const copy = (await import(/* @vite-ignore */ `${path}?copy=1`)) as typeof port;
    expect(copy.ObjectStoreError).not.toBe(ObjectStoreError);
    expect(isObjectStoreError(new copy.ObjectStoreError('DRAM_ERR_S3_NOT_FOUND', 'x'))).toBe(true);
    expect(isObjectStoreError(new Error('x'))).toBe(false);
    expect(isObjectStoreError({ code: 'DRAM_ERR_S3_NOT_FOUND' })).toBe(false);
    const retryable = objectStoreErrorCodes.filter((code) => new ObjectStoreError(code, 'x').retryable);
    expect(retryable).toEqual(['DRAM_ERR_S3_UNAVAILABLE']);
  });

  it('resolves ranges clipped at the end and refuses those past it', () => {
    expect(resolveRange({ offset: 2, length: 3 }, 10, 'o')).toEqual({ start: 2, end: 5 });
    expect(resolveRange({ offset: 8, length: 30 }, 10, 'o')).toEqual({ start: 8, end: 10 });
    for (const [range, size] of [
      [{ offset: 10, length: 1 }, 10],
      [{ offset: 0, length: 1 }, 0],
      [{ offset: 0, length: 0 }, 10],
      [{ offset: -1, length: 1 }, 10],
      [{ offset: 0, length: Number.NaN }, 10],
    ] as const) {
      let code: string | undefined;
      try {
        resolveRange(range, size, 'o');
      } catch (error) {
        code = isObjectStoreError(error) ? error.code : 'foreign';
      }
      expect({ range, code }).toEqual({ range, code: 'DRAM_ERR_S3_INVALID_RANGE' });
    }
  });
});
