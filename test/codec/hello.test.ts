// The hello's advertisement (a dialer's raft and HTTP addresses): it round-trips exactly, is
// optional (and its http half too), anything malformed is a CodecError naming the field, and the
// largest possible hello still fits the transport's pre-authentication frame limit.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/base/ids.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { CodecError } from '../../src/codec/validate.ts';
import {
  clusterIdBytesMax,
  decodeFrame,
  encodeHello,
  hostBytesMax,
  hostValid,
  nonceBytes,
  proofBytes,
  protocolVersion,
  type Advertisement,
} from '../../src/codec/wire.ts';
import { decodeHello } from '../../src/transport/handshake.ts';
import { helloFrameBytesMax } from '../../src/transport/peer-options.ts';

const limits = { messagesPerFrameMax: 4, entriesPerMessageMax: 4, entryBytesMax: 64, snapshotChunkBytesMax: 64 };
const base = {
  version: protocolVersion,
  clusterId: 'prod-eu-1',
  nodeId: 4 as NodeId,
  nonce: new Uint8Array(nonceBytes).fill(7),
  proof: new Uint8Array(proofBytes).fill(9),
};

/** Byte arrays as plain arrays, so a decoded Buffer view compares equal to the Uint8Array encoded. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

describe('hello advertisement', () => {
  it('round-trips with and without an advertisement, and with raft only', () => {
    const advertisements: (Advertisement | undefined)[] = [
      undefined,
      { raft: { host: '10.0.0.4', port: 9080 } },
      { raft: { host: 'node-4.dram.internal', port: 9080 }, http: { host: 'fe80::1%eth0', port: 8080 } },
    ];
    for (const advertised of advertisements) {
      const hello = { ...base, ...(advertised === undefined ? {} : { advertised }) };
      expect(plain(decodeFrame(encodeHello(hello), limits))).toEqual(plain({ kind: 'hello', ...hello }));
    }
  });

  it('refuses a malformed advertisement, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ http: { host: 'a', port: 1 } }, /frame\.advertised\.raft: expected a map/],
      [{ raft: { host: '', port: 1 } }, /frame\.advertised\.raft\.host/],
      [{ raft: { host: 'two words', port: 1 } }, /frame\.advertised\.raft\.host/],
      [{ raft: { host: 'a'.repeat(hostBytesMax + 1), port: 1 } }, /frame\.advertised\.raft\.host/],
      [{ raft: { host: 'a', port: 0 } }, /frame\.advertised\.raft\.port/],
      [{ raft: { host: 'a', port: 65536 } }, /frame\.advertised\.raft\.port/],
      [{ raft: { host: 'a', port: '80' } }, /frame\.advertised\.raft\.port/],
      [{ raft: { host: 'a', port: 80 }, http: 'a:80' }, /frame\.advertised\.http: expected a map/],
      ['10.0.0.4:9080', /frame\.advertised: expected a map/],
    ];
    for (const [advertised, message] of bad) {
      const payload = encode({ kind: 'hello', ...base, advertised });
      expect(() => decodeFrame(payload, limits)).toThrow(CodecError);
      expect(() => decodeFrame(payload, limits)).toThrow(message);
    }
  });

  it('the largest hello fits the pre-authentication frame limit', () => {
    const host = 'h'.repeat(hostBytesMax);
    const largest = encodeHello({
      ...base,
      nodeId: Number.MAX_SAFE_INTEGER as NodeId,
      clusterId: 'c'.repeat(clusterIdBytesMax),
      advertised: { raft: { host, port: 65535 }, http: { host, port: 65535 } },
    });
    expect(largest.length).toBeLessThanOrEqual(helloFrameBytesMax);
  });

  it('hostValid accepts exactly names and IP literals within the bound', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const valid = hostValid(text);
        expect(valid).toBe(text.length > 0 && text.length <= hostBytesMax && /^[A-Za-z0-9._:%-]+$/u.test(text));
      }),
    );
  });
});

describe('a hello of another protocol version', () => {
  it('is refused for its version, whatever the rest of it looks like', () => {
    // A later version may lay its hello out differently: the refusal must name the versions, not a field.
    const later = encode({ kind: 'hello', version: protocolVersion + 1, clusterId: 7, node: 'n4', nonce: 'x' });
    expect(decodeHello(later, limits)).toBe(`protocol version ${protocolVersion + 1}, expected ${protocolVersion}`);
    // Of this version, a malformed hello is refused for its field.
    const malformed = encode({ kind: 'hello', version: protocolVersion, clusterId: 7 });
    expect(decodeHello(malformed, limits)).toMatch(/^undecodable hello: frame\.clusterId/u);
    expect(decodeHello(encode({ kind: 'hello' }), limits)).toMatch(/^undecodable hello/u);
    expect(decodeHello(Uint8Array.of(0xc1), limits)).toMatch(/^undecodable hello/u);
  });
});
