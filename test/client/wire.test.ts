// The binary client protocol's frames: requests and responses survive a round trip exactly, and
// garbage, misshapen or oversized frames are refused with a CodecError, never another exception.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
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
