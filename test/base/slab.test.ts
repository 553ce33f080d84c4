// Byte arrays from slabs (src/base/slab.ts): zero-filled, never sharing a byte with another, and
// arrays over the pooled size get an allocation of their own.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { slabBytesOf } from '../../src/base/slab.ts';

describe('slab byte arrays', () => {
  it('hands out zero-filled arrays of the asked length that never overlap, across slab boundaries', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 200 }), (lengths) => {
        const arrays = lengths.map((length) => slabBytesOf(length));
        arrays.forEach((array, k) => {
          expect(array.length).toBe(lengths[k]);
          expect(array.every((byte) => byte === 0)).toBe(true);
          array.fill((k % 251) + 1);
        });
        arrays.forEach((array, k) => {
          expect(array.every((byte) => byte === (k % 251) + 1)).toBe(true);
        });
      }),
      { numRuns: 50 },
    );
  });

  it('gives a large array a buffer of its own', () => {
    const large = slabBytesOf(5000);
    expect(large.byteOffset).toBe(0);
    expect(large.buffer.byteLength).toBe(5000);
  });
});
