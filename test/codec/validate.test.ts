// The codec edge: entries and configuration survive a msgpack round trip exactly, and garbage
// bytes or misshapen records are refused with a CodecError, never a crash of another kind.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../src/codec/msgpack.ts';
import { CodecError, entry, hardState, snapshotMeta } from '../../src/codec/validate.ts';
import type { Entry } from '../../src/raft/types.ts';

const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({
    kind: fc.constant('normal' as const),
    term: fc.nat(),
    index: fc.nat(),
    data: fc.uint8Array({ maxLength: 64 }),
  }),
  fc.record({
    kind: fc.constant('conf' as const),
    term: fc.nat(),
    index: fc.nat(),
    change: fc.record({
      changes: fc.array(
        fc.record({
          type: fc.constantFrom('add_voter' as const, 'add_learner' as const, 'remove_node' as const),
          node: fc.integer({ min: 1, max: 99 }),
        }),
        { maxLength: 4 },
      ),
      transition: fc.constantFrom('auto' as const, 'joint' as const),
    }),
  }),
) as fc.Arbitrary<Entry>;

function plain(value: Entry): unknown {
  return value.kind === 'normal' ? { ...value, data: Array.from(value.data) } : value;
}

describe('codec validation', () => {
  it('round-trips entries exactly', () => {
    fc.assert(
      fc.property(entryArb, (original) => {
        const decoded = entry(decode(encode(original)), 'entry', 1 << 20);
        expect(plain(decoded)).toEqual(plain(original));
      }),
    );
  });

  it('refuses garbage bytes with a CodecError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (garbage) => {
        try {
          entry(decode(garbage), 'entry', 1 << 20);
        } catch (error) {
          expect(error).toBeInstanceOf(CodecError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('names the bad field', () => {
    expect(() => entry({ kind: 'normal', term: -1, index: 1, data: new Uint8Array() }, 'e', 10)).toThrow(
      'e.term: expected a non-negative integer',
    );
    expect(() => entry({ kind: 'normal', term: 1, index: 1, data: new Uint8Array(11) }, 'e', 10)).toThrow(
      'e.data: 11 bytes exceed 10',
    );
    expect(() => entry({ kind: 'weird', term: 1, index: 1 }, 'e', 10)).toThrow('e.kind: expected one of normal, conf');
    expect(() => hardState({ term: 1, vote: 2 }, 'h')).toThrow('h.commit: expected a non-negative integer');
    expect(() => snapshotMeta({ index: 1, term: 1, confState: { voters: 'x' } }, 's')).toThrow(
      's.confState.voters: expected an array',
    );
  });
});
