// The query port's error codes are codes of the HTTP error registry, so the query route can answer
// a QueryError with its code's status as it is; and a QueryError is recognised by its name and
// code across duplicate copies of the port module.

import { describe, expect, it } from 'vitest';
import { errorRegistry, isErrorCode } from '../../src/api/errors.ts';
import * as port from '../../src/data/query-engine.ts';
import { isQueryError, QueryError, queryErrorCodes } from '../../src/data/query-engine.ts';

describe('query errors', () => {
  it('use only codes of the HTTP error registry, with the statuses the query route relies on', () => {
    for (const code of queryErrorCodes)
      expect({ code, registered: isErrorCode(code) }).toEqual({ code, registered: true });
    expect(Object.fromEntries(queryErrorCodes.map((code) => [code, errorRegistry[code].status]))).toEqual({
      DRAM_ERR_UNKNOWN_ENDPOINT: 404,
      DRAM_ERR_INVALID_PARAMS: 400,
      DRAM_ERR_ENDPOINT_BUSY: 429,
      DRAM_ERR_QUERY_FAILED: 422,
      DRAM_ERR_QUERY_MEMORY: 422,
      DRAM_ERR_ANSWER_TOO_LARGE: 422,
      DRAM_ERR_QUERY_TIMEOUT: 504,
      DRAM_ERR_OVERLOADED: 503,
      DRAM_ERR_SHUTTING_DOWN: 503,
      DRAM_ERR_DATABASE_NOT_FOUND: 404,
      DRAM_ERR_UNKNOWN_SHARD: 404,
      DRAM_ERR_NO_LOCAL_SHARDS: 409,
      DRAM_ERR_PARTIAL: 503,
    });
  });

  it('are recognised across a duplicate copy of the port module, and nothing else is', async () => {
    const path = new URL('../../src/data/query-engine.ts', import.meta.url).href;
    const copy = (await import(/* @vite-ignore */ `${path}?copy=1`)) as typeof port;
    expect(copy.QueryError).not.toBe(QueryError);
    expect(isQueryError(new copy.QueryError('DRAM_ERR_QUERY_FAILED', 'from the copy'))).toBe(true);
    expect(isQueryError(new Error('plain'))).toBe(false);
    expect(isQueryError({ name: 'QueryError', code: 'DRAM_ERR_NOT_A_CODE' })).toBe(false);
    expect(isQueryError(null)).toBe(false);
  });
});
