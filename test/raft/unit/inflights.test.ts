// inflights.ts: add/freeLE/freeFirstOne/full by count and by bytes, reset, and internal compaction checked against an array model.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.ts';
import { Inflights } from '../../../src/raft/inflights.ts';

/** Reads the private arrays, to check compaction actually happens. */
function internals(inflights: Inflights): { lastIndexes: number[]; sizes: number[]; head: number } {
  return inflights as unknown as { lastIndexes: number[]; sizes: number[]; head: number };
}

describe('Inflights', () => {
  it('starts empty and not full', () => {
    const inflights = new Inflights(3, 0);
    expect(inflights.count).toBe(0);
    expect(inflights.bytesInFlight).toBe(0);
    expect(inflights.full()).toBe(false);
    expect(inflights.messagesMax).toBe(3);
    expect(inflights.bytesMax).toBe(0);
  });

  it('is full at messagesMax messages', () => {
    const inflights = new Inflights(3, 0);
    inflights.add(1, 10);
    inflights.add(2, 10);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 10);
    expect(inflights.count).toBe(3);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(1);
    expect(inflights.count).toBe(2);
    expect(inflights.full()).toBe(false);
  });

  it('is full once the bytes in flight reach bytesMax', () => {
    const inflights = new Inflights(100, 50);
    inflights.add(1, 20);
    inflights.add(2, 29);
    expect(inflights.bytesInFlight).toBe(49);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 1);
    expect(inflights.bytesInFlight).toBe(50);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(1);
    expect(inflights.bytesInFlight).toBe(30);
    expect(inflights.full()).toBe(false);
  });

  it('a single message larger than bytesMax makes it full', () => {
    const inflights = new Inflights(100, 50);
    inflights.add(7, 500);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(7);
    expect(inflights.full()).toBe(false);
    expect(inflights.bytesInFlight).toBe(0);
  });

  it('bytesMax 0 means no byte limit', () => {
    const inflights = new Inflights(2, 0);
    inflights.add(1, 1_000_000_000);
    expect(inflights.full()).toBe(false);
  });

  it('freeLE frees every message ending at or below the index, in FIFO order', () => {
    const inflights = new Inflights(10, 0);
    for (const [last, bytes] of [
      [2, 1],
      [5, 2],
      [7, 4],
      [9, 8],
    ] as const)
      inflights.add(last, bytes);
    inflights.freeLE(1);
    expect(inflights.count).toBe(4);
    inflights.freeLE(6);
    expect(inflights.count).toBe(2);
    expect(inflights.bytesInFlight).toBe(12);
    inflights.freeLE(7);
    expect(inflights.count).toBe(1);
    expect(inflights.bytesInFlight).toBe(8);
    inflights.freeLE(3); // stale ack: nothing
    expect(inflights.count).toBe(1);
    inflights.freeLE(100);
    expect(inflights.count).toBe(0);
    expect(inflights.bytesInFlight).toBe(0);
  });

  it('freeFirstOne frees only the oldest message', () => {
    const inflights = new Inflights(3, 0);
    inflights.freeFirstOne(); // empty: nothing to do
    expect(inflights.count).toBe(0);
    inflights.add(4, 10);
    inflights.add(6, 20);
    inflights.add(9, 40);
    expect(inflights.full()).toBe(true);
    inflights.freeFirstOne();
    expect(inflights.count).toBe(2);
    expect(inflights.bytesInFlight).toBe(60);
    expect(inflights.full()).toBe(false);
    inflights.freeLE(5); // already freed
    expect(inflights.count).toBe(2);
    inflights.freeFirstOne();
    expect(inflights.count).toBe(1);
    expect(inflights.bytesInFlight).toBe(40);
  });

  it('reset empties it', () => {
    const inflights = new Inflights(2, 10);
    inflights.add(1, 5);
    inflights.add(2, 5);
    expect(inflights.full()).toBe(true);
    inflights.reset();
    expect(inflights.count).toBe(0);
    expect(inflights.bytesInFlight).toBe(0);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 4);
    inflights.freeLE(2);
    expect(inflights.count).toBe(1);
    inflights.freeLE(3);
    expect(inflights.count).toBe(0);
  });

  it('compacts its arrays when most of them is freed', () => {
    const inflights = new Inflights(1000, 0);
    for (let i = 1; i <= 200; i++) inflights.add(i, 1);
    inflights.freeLE(150);
    expect(inflights.count).toBe(50);
    const state = internals(inflights);
    expect(state.head).toBe(0);
    expect(state.lastIndexes).toHaveLength(50);
    expect(state.lastIndexes[0]).toBe(151);
    expect(state.sizes).toHaveLength(50);
    expect(inflights.bytesInFlight).toBe(50);
  });

  it('stays bounded over a long pipelined run', () => {
    const inflights = new Inflights(16, 0);
    let last = 0;
    const counts = new Set<number>();
    for (let round = 0; round < 10_000; round++) {
      while (!inflights.full()) inflights.add(++last, 3);
      inflights.freeLE(last - 8);
      counts.add(inflights.count);
    }
    expect([...counts]).toEqual([8]);
    expect(last).toBe(16 + 9_999 * 8);
    const state = internals(inflights);
    expect(state.lastIndexes.length).toBeLessThanOrEqual(2 * 64 + 16);
    expect(state.sizes.length).toBe(state.lastIndexes.length);
    expect(inflights.bytesInFlight).toBe(24);
  });

  it('matches a plain array model under random operations', () => {
    type Op =
      | { kind: 'add'; gap: number; bytes: number }
      | { kind: 'free'; back: number }
      | { kind: 'freeFirst' }
      | { kind: 'reset' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('add' as const),
          gap: fc.integer({ min: 1, max: 3 }),
          bytes: fc.nat({ max: 40 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('free' as const), back: fc.integer({ min: -2, max: 30 }) }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'freeFirst' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.nat({ max: 200 }),
        fc.array(opArb, { maxLength: 400 }),
        (messagesMax, bytesMax, ops) => {
          const inflights = new Inflights(messagesMax, bytesMax);
          let model: { last: number; bytes: number }[] = [];
          let last = 0;
          for (const op of ops) {
            if (op.kind === 'add') {
              if (model.length >= messagesMax) {
                expect(() => {
                  inflights.add(last + op.gap, op.bytes);
                }).toThrow(AssertionError);
                continue;
              }
              last += op.gap;
              inflights.add(last, op.bytes);
              model.push({ last, bytes: op.bytes });
            } else if (op.kind === 'free') {
              const upTo = last - op.back;
              inflights.freeLE(upTo);
              model = model.filter((m) => m.last > upTo);
            } else if (op.kind === 'freeFirst') {
              inflights.freeFirstOne();
              model = model.slice(1);
            } else {
              inflights.reset();
              model = [];
            }
            const bytes = model.reduce((sum, m) => sum + m.bytes, 0);
            expect(inflights.count).toBe(model.length);
            expect(inflights.bytesInFlight).toBe(bytes);
            expect(inflights.full()).toBe(model.length >= messagesMax || (bytesMax > 0 && bytes >= bytesMax));
            const state = internals(inflights);
            expect(state.lastIndexes.slice(state.head)).toEqual(model.map((m) => m.last));
            expect(state.sizes.slice(state.head)).toEqual(model.map((m) => m.bytes));
            // Compaction keeps the freed prefix from growing without bound.
            expect(state.head).toBeLessThanOrEqual(Math.max(64, state.lastIndexes.length - state.head));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
