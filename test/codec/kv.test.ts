// The KV command's binary layout (src/codec/kv.ts): every command round-trips exactly, and
// anything else (each truncation, trailing bytes, unknown op or flags, over-limit or invalid
// strings) is refused with a CodecError; a string UTF-8 cannot carry is never encoded.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeKvCommand,
  encodeKvCommand,
  kvClientIdBytesMax,
  kvKeyBytesMax,
  kvRequestKey,
  kvRequestKeyOf,
  type KvCommand,
} from '../../src/codec/kv.ts';
import { CodecError } from '../../src/codec/validate.ts';
import { encode } from '../../src/codec/msgpack.ts';

const text = (bytesMax: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength, maxLength: bytesMax / 4 });
const stamp = fc.record({ id: text(kvClientIdBytesMax, 1), seq: fc.maxSafeNat() });
const extras = fc.record({ cas: fc.maxSafeNat(), client: stamp }, { requiredKeys: [] });
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc
    .tuple(text(kvKeyBytesMax), fc.uint8Array({ maxLength: 300 }), extras)
    .map(([key, value, extra]): KvCommand => ({ op: 'put', key, value, ...extra })),
  fc.tuple(text(kvKeyBytesMax), extras).map(([key, extra]): KvCommand => ({ op: 'delete', key, ...extra })),
);

function refused(data: Uint8Array): string {
  try {
    decodeKvCommand(data);
  } catch (error) {
    if (error instanceof CodecError) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('KV command layout', () => {
  it('round-trips every command exactly', () => {
    fc.assert(
      fc.property(command, (original) => {
        expect(decodeKvCommand(encodeKvCommand(original))).toEqual(original);
      }),
      { numRuns: 1000 },
    );
  });

  it('reads the request key of a stamped command without decoding it, and none from anything else', () => {
    fc.assert(
      fc.property(command, fc.uint8Array({ maxLength: 64 }), (original, garbage) => {
        const data = encodeKvCommand(original);
        expect(kvRequestKeyOf(data)).toBe(original.client === undefined ? undefined : kvRequestKey(original.client));
        // Garbage never throws.
        expect(() => kvRequestKeyOf(garbage)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
    expect(kvRequestKeyOf(new Uint8Array(0))).toBeUndefined();
  });

  it('refuses every truncation of a delete, and of a put up to its value', () => {
    fc.assert(
      fc.property(command, (original) => {
        const data = encodeKvCommand(original);
        const valueBytes = original.op === 'put' ? original.value.length : 0;
        for (let length = 0; length < data.length - valueBytes; length++)
          expect(refused(data.subarray(0, length))).not.toBe('accepted');
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an unknown op or flag, bytes after a delete, a key over the limit, invalid UTF-8, and the old msgpack maps', () => {
    const del = encodeKvCommand({ op: 'delete', key: 'k' });
    expect(refused(Uint8Array.from([9, ...del.subarray(1)]))).toBe('kv.op: unknown op 9');
    expect(refused(Uint8Array.from([del[0] ?? 0, 4, ...del.subarray(2)]))).toBe('kv.flags: unknown flags 0x4');
    expect(refused(Uint8Array.from([...del, 0]))).toBe('kv: 1 bytes after a delete');
    expect(refused(Uint8Array.of(2, 0, 0x04, 0x01))).toBe('kv.key: longer than 1024 bytes');
    expect(refused(Uint8Array.of(2, 0, 0, 1, 0xff))).toBe('kv.key: not valid UTF-8');
    expect(refused(encode({ op: 'put', key: 'k', value: new Uint8Array(1) }))).toMatch(/^kv\.op: unknown op/);
  });

  it('copies a put value out of the entry bytes', () => {
    const data = encodeKvCommand({ op: 'put', key: 'k', value: Uint8Array.of(1, 2, 3) });
    const decoded = decodeKvCommand(data);
    if (decoded.op !== 'put') throw new Error('not a put');
    data.fill(0);
    expect(Array.from(decoded.value)).toEqual([1, 2, 3]);
  });

  it('asserts rather than encode a key with a lone surrogate (UTF-8 would carry another key)', () => {
    expect(() => encodeKvCommand({ op: 'delete', key: 'k\ud800' })).toThrow(/lone surrogate/);
    expect(() => encodeKvCommand({ op: 'delete', key: 'k', client: { id: '\udc00x', seq: 1 } })).toThrow(
      /lone surrogate/,
    );
  });
});
