// Validation of everything a KV request brings in, once, at the edge: the key (from the path), the
// query (`cas`, `consistency`) and the exactly-once client stamp headers. Past this file the routes
// handle plain typed values and never look at raw strings again.
//
// Rules: unknown query parameters are refused (a typo such as `?cass=0` must not silently turn a
// compare-and-set into a blind write); a parameter given twice is refused; numbers are plain
// decimal digits within the safe-integer range; the key is 1..kvKeyBytesMax UTF-8 bytes; the
// client id and seq come together or not at all.
//
// Called by: src/api/kv-routes.ts.

import { utf8Length } from '../base/bytes.ts';
import { kvClientIdBytesMax, kvKeyBytesMax, type KvClientStamp } from '../codec/kv.ts';
import { ApiError } from './errors.ts';
import type { ReadConsistency } from './ports.ts';
import { parseCounter } from './route-input.ts';

export const clientIdHeader = 'x-dram-client-id';
export const requestSeqHeader = 'x-dram-request-seq';

export type RawQuery = Readonly<Record<string, unknown>>;
export type RawHeaders = Readonly<Record<string, string | string[] | undefined>>;

export function parseKey(raw: string): string {
  if (raw.length === 0) throw new ApiError('DRAM_ERR_BAD_REQUEST', 'key must not be empty');
  const bytes = utf8Length(raw);
  if (bytes > kvKeyBytesMax)
    throw new ApiError('DRAM_ERR_KEY_TOO_LARGE', `key is ${bytes} bytes, more than ${kvKeyBytesMax}`, {
      bytes,
      bytesMax: kvKeyBytesMax,
    });
  return raw;
}

function onlyParameters(query: RawQuery, allowed: readonly string[]): void {
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name))
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `unknown query parameter '${name}'`, { allowed });
  }
}

function single(query: RawQuery, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `query parameter '${name}' must be given once`);
  return value;
}

/** `?cas=<modifyIndex>` for PUT and DELETE; 0 means "only if absent". */
export function parseWriteQuery(query: RawQuery): { readonly cas: number | undefined } {
  onlyParameters(query, ['cas']);
  const cas = single(query, 'cas');
  return { cas: cas === undefined ? undefined : parseCounter(cas, 'cas') };
}

const consistencies: readonly ReadConsistency[] = ['linearizable', 'lease', 'stale'];

export function parseReadQuery(query: RawQuery): { readonly consistency: ReadConsistency } {
  onlyParameters(query, ['consistency']);
  const consistency = single(query, 'consistency') ?? 'linearizable';
  const known = consistencies.find((candidate) => candidate === consistency);
  if (known === undefined)
    throw new ApiError(
      'DRAM_ERR_BAD_REQUEST',
      `consistency must be one of ${consistencies.join(', ')}, got '${consistency}'`,
    );
  return { consistency: known };
}

/**
 * One header's text. Node's HTTP parser joins a header sent twice into one comma-separated value
 * (only set-cookie stays a list), so "given twice" arrives as text the parsers below refuse.
 */
function header(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The exactly-once stamp: `X-Dram-Client-Id` and `X-Dram-Request-Seq`, both or neither. */
export function parseClientStamp(headers: RawHeaders): KvClientStamp | undefined {
  const id = header(headers, clientIdHeader);
  const seq = header(headers, requestSeqHeader);
  if (id === undefined && seq === undefined) return undefined;
  if (id === undefined || seq === undefined)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `${clientIdHeader} and ${requestSeqHeader} go together`);
  const idBytes = utf8Length(id);
  if (idBytes === 0 || idBytes > kvClientIdBytesMax)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `${clientIdHeader} must be 1..${kvClientIdBytesMax} bytes`);
  return { id, seq: parseCounter(seq, requestSeqHeader) };
}
