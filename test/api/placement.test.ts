// KV placement by hash: FNV-1a matches the published test vectors over UTF-8 bytes, the group a key
// lands on depends only on the key and the set of groups (stable across calls, instances and the
// order groups are listed in), and keys spread evenly.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asGroupId } from '../../src/base/ids.ts';
import { createKvPlacement, fnv1a32 } from '../../src/models/kv-placement.ts';

const groups = [1, 2, 3, 4].map(asGroupId);

describe('kv placement', () => {
  it('hashes with 32-bit FNV-1a over UTF-8 bytes (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    // 'é' is the two bytes C3 A9 in UTF-8, not one UTF-16 unit.
    let manual = 0x811c9dc5;
    for (const byte of [0xc3, 0xa9]) manual = Math.imul(manual ^ byte, 0x01000193) >>> 0;
    expect(fnv1a32('é')).toBe(manual);
  });

  it('hashes any string as FNV-1a over its TextEncoder bytes, lone surrogates included', () => {
    const reference = (key: string): number => {
      let hash = 0x811c9dc5;
      for (const byte of new TextEncoder().encode(key)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
      return hash;
    };
    const anyUnits = fc
      .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
      .map((units) => String.fromCharCode(...units));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), anyUnits), (key) => {
        expect(fnv1a32(key)).toBe(reference(key));
      }),
      { numRuns: 2000 },
    );
  });

  it('pins the placement of a few keys (changing these moves data between shards)', () => {
    const placement = createKvPlacement(groups);
    expect(['a', 'foobar', 'user/42', 'ключ'].map((key) => placement.groupOf(key))).toEqual(
      ['a', 'foobar', 'user/42', 'ключ'].map((key) => groups[fnv1a32(key) % 4]),
    );
    expect(placement.groupOf('a')).toBe(asGroupId(1)); // 0xe40c292c % 4 = 0
  });

  it('depends only on the key and the set of groups', () => {
    const one = createKvPlacement(groups);
    const two = createKvPlacement([...groups].reverse());
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), (key) => {
        const group = one.groupOf(key);
        expect(groups).toContain(group);
        expect(one.groupOf(key)).toBe(group);
        expect(two.groupOf(key)).toBe(group);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('spreads keys evenly over the groups', () => {
    const placement = createKvPlacement(groups);
    const counts = new Map(groups.map((g) => [g, 0]));
    const keys = 20_000;
    for (let k = 0; k < keys; k++) {
      const group = placement.groupOf(`key-${k}`);
      counts.set(group, (counts.get(group) ?? 0) + 1);
    }
    for (const count of counts.values())
      expect(Math.abs(count - keys / groups.length)).toBeLessThan(0.05 * (keys / groups.length));
  });

  it('refuses an empty or duplicated group list', () => {
    expect(() => createKvPlacement([])).toThrow(/at least one/);
    expect(() => createKvPlacement([asGroupId(1), asGroupId(1)])).toThrow(/distinct/);
  });
});
