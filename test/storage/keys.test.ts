// Storage keys: every key parses back to what made it, a group's log keys sort in index order
// (LevelDB compares bytes), and the big-endian helpers they are built with round-trip any u32.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readUint32BE, utf8Length, writeUint32BE } from '../../src/base/bytes.ts';
import { asGroupId, type LogIndex } from '../../src/base/ids.ts';
import { groupIdMax, groupRecordKey, logKey, parseKey } from '../../src/storage/keys.ts';

const group = fc.integer({ min: 0, max: groupIdMax }).map(asGroupId);
const index = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }).map((value) => value as LogIndex);

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) return (a[k] ?? 0) - (b[k] ?? 0);
  return a.length - b.length;
}

describe('storage keys', () => {
  it('round-trips u32 values big-endian, matching DataView', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 4 }), (value, offset) => {
        const bytes = new Uint8Array(8);
        writeUint32BE(bytes, offset, value);
        expect(readUint32BE(bytes, offset)).toBe(value);
        expect(new DataView(bytes.buffer).getUint32(offset, false)).toBe(value);
      }),
    );
  });

  it('counts UTF-8 bytes exactly as TextEncoder writes them, lone surrogates included', () => {
    const anyUnits = fc
      .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
      .map((units) => String.fromCharCode(...units));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), anyUnits), (text) => {
        expect(utf8Length(text)).toBe(new TextEncoder().encode(text).length);
      }),
      { numRuns: 3000 },
    );
  });

  it('parses every log key and record key back to its group, kind and index', () => {
    fc.assert(
      fc.property(group, index, (g, i) => {
        expect(parseKey(logKey(g, i))).toEqual({ kind: 'log', group: g, index: i });
        expect(parseKey(groupRecordKey(g, 'hard'))).toEqual({ kind: 'hard', group: g });
      }),
    );
  });

  it("sorts a group's log keys in index order, and groups apart", () => {
    fc.assert(
      fc.property(group, index, index, (g, a, b) => {
        expect(Math.sign(compareBytes(logKey(g, a), logKey(g, b)))).toBe(Math.sign(a - b));
      }),
    );
    fc.assert(
      fc.property(group, group, index, index, (g, h, a, b) => {
        fc.pre(g !== h);
        expect(Math.sign(compareBytes(logKey(g, a), logKey(h, b)))).toBe(Math.sign(g - h));
      }),
    );
  });
});
