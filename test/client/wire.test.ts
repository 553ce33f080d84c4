// The binary client protocol's frames: requests and responses survive a round trip exactly, and
// garbage, misshapen or oversized frames are refused with a CodecError, never another exception.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClientRequestRefused,
  clientRequestBytesMax,
  decodeClientRequest,
  decodeClientResponse,
  encodeClientRequest,
  encodeClientResponse,
  type ClientRequest,
  type ClientResponse,
} from '../../src/codec/client-wire.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../../src/codec/kv.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { CodecError } from '../../src/codec/validate.ts';

const keyArb = fc.string({ minLength: 1, maxLength: 64 });
const requestArb: fc.Arbitrary<ClientRequest> = fc.oneof(
  fc.record(
    {
      id: fc.nat(),
      op: fc.constant('get' as const),
      key: keyArb,
      consistency: fc.constantFrom('linearizable' as const, 'lease' as const, 'stale' as const),
    },
    { requiredKeys: ['id', 'op', 'key'] },
  ),
  fc.record(
    {
      id: fc.nat(),
      op: fc.constant('put' as const),
      key: keyArb,
      value: fc.uint8Array({ maxLength: 64 }),
      cas: fc.nat(),
      client: fc.record({ id: fc.string({ minLength: 1, maxLength: 16 }), seq: fc.nat() }),
    },
    { requiredKeys: ['id', 'op', 'key', 'value'] },
  ),
  fc.record(
    { id: fc.nat(), op: fc.constant('delete' as const), key: keyArb, cas: fc.nat() },
    { requiredKeys: ['id', 'op', 'key'] },
  ),
);
const responseArb: fc.Arbitrary<ClientResponse> = fc.oneof(
  fc.record(
    {
      id: fc.nat(),
      ok: fc.constant(true),
      index: fc.nat(),
      shard: fc.nat(),
      leader: fc.nat(),
      groups: fc.nat(),
      value: fc.uint8Array({ maxLength: 64 }),
    },
    { requiredKeys: ['id', 'ok', 'index', 'shard', 'leader'] },
  ),
  fc.record(
    {
      id: fc.nat(),
      ok: fc.constant(false),
      index: fc.nat(),
      shard: fc.nat(),
      leader: fc.nat(),
      code: fc.constantFrom('DRAM_ERR_NOT_LEADER', 'DRAM_ERR_CAS_MISMATCH'),
      message: fc.string({ maxLength: 100 }),
    },
    { requiredKeys: ['id', 'ok', 'index', 'shard', 'leader', 'code'] },
  ),
);

function plain(value: object): unknown {
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [name, field instanceof Uint8Array ? Array.from(field) : field]),
  );
}

function refused(decodeIt: () => unknown): void {
  expect(decodeIt).toThrow(CodecError);
}

describe('client wire', () => {
  it('round-trips requests and responses exactly', () => {
    fc.assert(
      fc.property(requestArb, (request) => {
        expect(plain(decodeClientRequest(encodeClientRequest(request)))).toEqual(plain(request));
      }),
    );
    fc.assert(
      fc.property(responseArb, (response) => {
        expect(plain(decodeClientResponse(encodeClientResponse(response)))).toEqual(plain(response));
      }),
    );
  });

  it('refuses garbage bytes with a CodecError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decodeIt of [decodeClientRequest, decodeClientResponse]) {
          try {
            decodeIt(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(CodecError);
          }
        }
      }),
    );
  });

  it('refuses misshapen and oversized requests', () => {
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get', key: '' })));
    refused(() => decodeClientRequest(encode({ id: -1, op: 'get', key: 'a' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'scan', key: 'a' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'put', key: 'a' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get', key: 'a', value: new Uint8Array(1) })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'delete', key: 'a', consistency: 'stale' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get', key: 'a', consistency: 'eventual' })));
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get', key: 'a', extra: 1 })));
    refused(() =>
      decodeClientRequest(encode({ id: 1, op: 'put', key: 'a', value: new Uint8Array(1), client: { id: 'c' } })),
    );
    refused(() => decodeClientRequest(encode({ id: 1, op: 'get', key: 'é'.repeat(kvKeyBytesMax) })));
    refused(() =>
      decodeClientRequest(encode({ id: 1, op: 'put', key: 'a', value: new Uint8Array(kvValueBytesMax + 1) })),
    );
    refused(() => decodeClientRequest(new Uint8Array(clientRequestBytesMax + 1)));
    refused(() => decodeClientRequest(encode([1, 'get', 'a'])));
  });

  it('refuses misshapen responses', () => {
    refused(() => decodeClientResponse(encode({ id: 1, ok: false, index: 0, shard: 1, leader: 0 })));
    refused(() =>
      decodeClientResponse(encode({ id: 1, ok: true, index: 0, shard: 1, leader: 0, code: 'DRAM_ERR_NOT_LEADER' })),
    );
    refused(() => decodeClientResponse(encode({ id: 1, ok: false, index: 0, shard: 1, leader: 0, code: 'oops' })));
    refused(() => decodeClientResponse(encode({ id: 1, ok: 'yes', index: 0, shard: 1, leader: 0 })));
  });
});

describe('keys that are not valid UTF-8', () => {
  /** Decoded bytes are Buffer views: compare them as plain Uint8Arrays. */
  function plain(request: ClientRequest): ClientRequest {
    return request.value === undefined ? request : { ...request, value: new Uint8Array(request.value) };
  }

  /** A request whose key (or client id) bytes `good` are replaced by the same number of `bad` bytes. */
  function withBytes(request: ClientRequest, good: string, bad: readonly number[]): Uint8Array {
    const data = encodeClientRequest(request);
    const needle = new TextEncoder().encode(good);
    expect(needle.length).toBe(bad.length);
    const at = Buffer.from(data).indexOf(Buffer.from(needle));
    expect(at).toBeGreaterThan(0);
    data.set(bad, at);
    return data;
  }

  function refusal(data: Uint8Array): { id: number; message: string } {
    try {
      decodeClientRequest(data);
    } catch (error) {
      if (error instanceof ClientRequestRefused) return { id: error.id, message: error.message };
      throw error;
    }
    throw new Error('expected the request to be refused');
  }

  it('refuses the request by id instead of storing replacement characters (short, long and client-id strings)', () => {
    const short = withBytes({ id: 7, op: 'get', key: 'ab\u00e9' }, '\u00e9', [0xff, 0xfe]);
    expect(refusal(short)).toMatchObject({ id: 7, message: expect.stringContaining('UTF-8') as string });
    // Over 64 bytes msgpackr decodes through TextDecoder instead of its own loop: same answer.
    const long = withBytes({ id: 8, op: 'delete', key: `${'k'.repeat(100)}\u00e9` }, '\u00e9', [0xc3, 0x28]);
    expect(refusal(long).id).toBe(8);
    const stamp = withBytes(
      { id: 9, op: 'put', key: 'fine', value: new Uint8Array([1]), client: { id: 'cl\u00e9', seq: 1 } },
      'cl\u00e9',
      [0x63, 0x6c, 0xed, 0xa0],
    );
    expect(refusal(stamp).id).toBe(9);
  });

  it('accepts a key that really holds U+FFFD, and garbage bytes in a value', () => {
    const request: ClientRequest = {
      id: 1,
      op: 'put',
      key: 'a\uFFFDb',
      value: new Uint8Array([0xff, 0xfe, 0xc3, 0x28]),
      cas: 2 ** 40,
      client: { id: 'c\uFFFD', seq: 3 },
    };
    expect(plain(decodeClientRequest(encodeClientRequest(request)))).toEqual(request);
  });

  it('any request with U+FFFD in its strings round-trips (the raw-byte walk reads every msgpack type it meets)', () => {
    const text = fc.string({ minLength: 1, maxLength: 80 }).map((s) => `${s}\uFFFD`);
    fc.assert(
      fc.property(text, fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (key, value, cas, seq) => {
        const request: ClientRequest = { id: seq, op: 'put', key, value, cas, client: { id: 'x\uFFFD', seq } };
        expect(plain(decodeClientRequest(encodeClientRequest(request)))).toEqual(request);
      }),
      { numRuns: 200 },
    );
  });
});
