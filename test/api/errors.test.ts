// The error registry: docs/errors.md lists exactly its codes, statuses and meanings (both
// directions); ApiError is recognised across duplicate copies of the module; fastify's own errors
// map to 4xx codes and anything else to a 500 that leaks nothing.

import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/api/errors.ts';
import { ApiError, errorRegistry, installErrorHandling, isApiError, toApiError } from '../../src/api/errors.ts';

function documentedErrors(): Map<string, { status: number; meaning: string }> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, { status: number; meaning: string }>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `DRAM_ERR_')) continue;
    const match = /^\| `(DRAM_ERR_[A-Z0-9_]+)` \| (\d{3}) \| (.+) \|$/.exec(line);
    expect(match, `malformed row in docs/errors.md: ${line}`).not.toBeNull();
    const [, code = '', status = '', meaning = ''] = match ?? [];
    expect(rows.has(code), `${code} listed twice`).toBe(false);
    rows.set(code, { status: Number(status), meaning });
  }
  return rows;
}

describe('error registry', () => {
  it('matches docs/errors.md exactly, in both directions', () => {
    const documented = documentedErrors();
    const registered = new Map(
      Object.entries(errorRegistry).map(([code, entry]) => [code, { status: entry.status, meaning: entry.meaning }]),
    );
    expect([...documented.keys()].sort()).toEqual([...registered.keys()].sort());
    for (const [code, entry] of registered) expect({ code, ...documented.get(code) }).toEqual({ code, ...entry });
  });

  it('has the statuses the external contract and clients rely on', () => {
    const expected = {
      DRAM_ERR_KEY_NOT_FOUND: 404,
      DRAM_ERR_CAS_MISMATCH: 412,
      DRAM_ERR_BAD_REQUEST: 400,
      DRAM_ERR_KEY_TOO_LARGE: 413,
      DRAM_ERR_VALUE_TOO_LARGE: 413,
      DRAM_ERR_UNKNOWN_GROUP: 404,
      DRAM_ERR_NOT_LEADER: 503,
      DRAM_ERR_NO_LEADER: 503,
      DRAM_ERR_OVERLOADED: 503,
      DRAM_ERR_INDETERMINATE: 503,
      DRAM_ERR_TIMEOUT: 504,
      DRAM_ERR_TRANSFER_FAILED: 409,
      DRAM_ERR_INTERNAL: 500,
    };
    for (const [code, status] of Object.entries(expected))
      expect({ code, status: errorRegistry[code as errors.ErrorCode].status }).toEqual({ code, status });
    for (const code of Object.keys(errorRegistry)) expect(code).toMatch(/^DRAM_ERR_[A-Z][A-Z0-9_]+$/);
  });

  it('recognises an ApiError from a duplicate copy of the module by its brand, not instanceof', async () => {
    const path = new URL('../../src/api/errors.ts', import.meta.url).href;
    const copy = (await import(/* @vite-ignore */ `${path}?copy=1`)) as typeof errors;
    expect(copy.ApiError).not.toBe(ApiError);
    const foreign = new copy.ApiError('DRAM_ERR_CAS_MISMATCH', 'from the other copy', { currentIndex: 3 });
    expect(foreign instanceof ApiError).toBe(false);
    expect(isApiError(foreign)).toBe(true);
    expect(toApiError(foreign, '/v1/kv/a')).toBe(foreign);
    expect(isApiError({ code: 'DRAM_ERR_CAS_MISMATCH', message: 'no brand' })).toBe(false);
    expect(
      isApiError(
        Object.assign(new Error('brand, unknown code'), {
          [Symbol.for('dram.api.ApiError')]: true,
          code: 'DRAM_ERR_NOPE',
        }),
      ),
    ).toBe(false);
  });

  it('maps fastify errors to 4xx registry codes and anything else to DRAM_ERR_INTERNAL', () => {
    const fastifyError = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });
    expect(toApiError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), '/v1/kv/a').code).toBe(
      'DRAM_ERR_VALUE_TOO_LARGE',
    );
    expect(
      toApiError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), '/v1/admin/groups/1/transfer-leadership').code,
    ).toBe('DRAM_ERR_BODY_TOO_LARGE');
    expect(toApiError(fastifyError('FST_ERR_MAX_PARAM_LENGTH', 414), '/v1/kv/aaaa').code).toBe(
      'DRAM_ERR_KEY_TOO_LARGE',
    );
    expect(toApiError(fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), '/v1/status').code).toBe(
      'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    expect(toApiError(fastifyError('FST_ERR_CTP_INVALID_JSON_BODY', 400), '/x').code).toBe('DRAM_ERR_BAD_REQUEST');
    expect(toApiError(fastifyError('FST_ERR_BAD_URL', 400), '/x').code).toBe('DRAM_ERR_BAD_REQUEST');
    expect(
      toApiError(Object.assign(new Error('body/to must be integer'), { validation: [], statusCode: 400 }), '/x').code,
    ).toBe('DRAM_ERR_BAD_REQUEST');
    expect(toApiError(new Error('boom'), '/x').code).toBe('DRAM_ERR_INTERNAL');
    expect(toApiError('a string', '/x').code).toBe('DRAM_ERR_INTERNAL');
    expect(toApiError(fastifyError('SOMETHING', 502), '/x').code).toBe('DRAM_ERR_INTERNAL');
  });

  it('renders errors as { error, code, message } through the installed handler; a crash leaks no detail', async () => {
    const app = Fastify();
    installErrorHandling(app);
    app.get('/api-error', () => {
      throw new ApiError('DRAM_ERR_OVERLOADED', 'queue full', { queued: 5 });
    });
    app.get('/crash', () => {
      throw new Error('secret internals');
    });
    try {
      const overloaded = await app.inject({ method: 'GET', url: '/api-error' });
      expect(overloaded.statusCode).toBe(503);
      expect(overloaded.json()).toEqual({
        error: true,
        code: 'DRAM_ERR_OVERLOADED',
        message: 'queue full',
        details: { queued: 5 },
      });
      const crash = await app.inject({ method: 'GET', url: '/crash' });
      expect(crash.statusCode).toBe(500);
      expect(crash.json()).toEqual({ error: true, code: 'DRAM_ERR_INTERNAL', message: 'internal error' });
      const missing = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toEqual({
        error: true,
        code: 'DRAM_ERR_ROUTE_NOT_FOUND',
        message: 'no route for GET /nowhere',
      });
    } finally {
      await app.close();
    }
  });
});
