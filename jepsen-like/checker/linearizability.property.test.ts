// Property tests of the linearizability search. Correct executions simulated from a sequential
// register must be valid; mutations that provably break them must be invalid; and on small random
// histories the search must agree with a brute-force enumeration of orders.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadOperations, type Operation } from './history.ts';
import { checkLinearizable } from './linearizability.ts';
import { registerModel } from './model.ts';
import { executeRegisterPlan, ops, toJsonl, type OpSpec, type PlannedOp, type RegisterPlan } from './test-support.ts';

const plannedOp: fc.Arbitrary<PlannedOp> = fc.record({
  kind: fc.integer({ min: 0, max: 2 }),
  keyChoice: fc.nat(),
  gapNs: fc.integer({ min: 0, max: 4 }),
  durationNs: fc.integer({ min: 0, max: 12 }),
  pointFraction: fc.integer({ min: 0, max: 4 }).map((quarter) => quarter / 4),
  outcome: fc.integer({ min: 0, max: 9 }),
  tookEffect: fc.boolean(),
  casChoice: fc.nat(),
});

const registerPlan: fc.Arbitrary<RegisterPlan> = fc.record({
  keyCount: fc.integer({ min: 1, max: 3 }),
  processes: fc.array(fc.array(plannedOp, { minLength: 1, maxLength: 20 }), { minLength: 2, maxLength: 6 }),
});

/** Runs the size of a short harness run: about a thousand ops over two keys. */
const longRegisterPlan: fc.Arbitrary<RegisterPlan> = fc.record({
  keyCount: fc.constant(2),
  processes: fc.array(fc.array(plannedOp, { minLength: 100, maxLength: 150 }), { minLength: 8, maxLength: 8 }),
});

/** A correct run, through the recorder's JSONL form and back, as the harness will see it. */
function simulate(plan: RegisterPlan): Operation[] {
  return loadOperations(toJsonl(executeRegisterPlan(plan)));
}

describe('simulated correct executions', () => {
  it('are valid', () => {
    fc.assert(
      fc.property(registerPlan, (plan) => {
        const result = checkLinearizable(simulate(plan), registerModel);
        expect(result.verdict).toBe('valid');
      }),
      { numRuns: 300 },
    );
  });

  it('become invalid when a read returns a value overwritten before it began', () => {
    fc.assert(
      fc.property(registerPlan, fc.nat(), (plan, choice) => {
        const history = simulate(plan);
        const mutation = staleReadMutation(history, choice);
        fc.pre(mutation !== null);
        const result = checkLinearizable(mutation.history, registerModel);
        expect(result.verdict).toBe('invalid');
        expect(result.partitions.find((p) => p.key === mutation.key)?.verdict).toBe('invalid');
      }),
      { numRuns: 300 },
    );
  });

  it('stay valid, and become invalid when mutated, at the size of a real run', () => {
    fc.assert(
      fc.property(longRegisterPlan, fc.nat(), (plan, choice) => {
        const history = simulate(plan);
        expect(checkLinearizable(history, registerModel).verdict).toBe('valid');
        const mutation = staleReadMutation(history, choice);
        if (mutation === null) throw new Error('a long run always offers a stale-read mutation');
        expect(checkLinearizable(mutation.history, registerModel).verdict).toBe('invalid');
      }),
      { numRuns: 15 },
    );
  });

  it('become invalid when a read returns a value never written', () => {
    fc.assert(
      fc.property(registerPlan, fc.nat(), (plan, choice) => {
        const history = simulate(plan);
        const reads = history.filter((op) => op.f === 'read' && op.status === 'ok');
        fc.pre(reads.length > 0);
        const target = reads[choice % reads.length];
        if (target === undefined) throw new Error('unreachable');
        const mutated = history.map((op) => (op === target ? { ...op, output: 'never-written' } : op));
        expect(checkLinearizable(mutated, registerModel).verdict).toBe('invalid');
      }),
      { numRuns: 150 },
    );
  });
});

/**
 * Makes an ok read R return v1 where an ok write or cas W2 with a different value returned before R
 * was called, and v1 is null (never written: written values are unique, non-null) or the value of
 * an ok write or cas W1 that returned before W2 was called. W1 < W2 < R in real time and only W1
 * writes v1, so no linearization lets R see v1: the mutation is illegal by construction. W2 is
 * the overwrite called last, which admits the most W1.
 */
function staleReadMutation(
  history: readonly Operation[],
  choice: number,
): { history: Operation[]; key: string } | null {
  const writes = history.filter((op) => op.status === 'ok' && (op.f === 'write' || op.f === 'cas'));
  const written = (op: Operation): unknown => (op.f === 'cas' ? (op.input as unknown[])[1] : op.input);
  const targets: { read: Operation; staleValues: unknown[] }[] = [];
  for (const read of history) {
    if (read.f !== 'read' || read.status !== 'ok') continue;
    const sameKey = writes.filter((op) => op.key === read.key);
    const lastOverwriteCall = Math.max(...sameKey.filter((op) => op.ret < read.call).map((op) => op.call));
    if (lastOverwriteCall === -Infinity) continue;
    const earlier = sameKey.filter((op) => op.ret < lastOverwriteCall).map(written);
    targets.push({ read, staleValues: [null, ...earlier] });
  }
  const target = targets[choice % Math.max(1, targets.length)];
  if (target === undefined) return null;
  const staleValue = target.staleValues[Math.floor(choice / targets.length) % target.staleValues.length];
  const mutated = history.map((op) => (op === target.read ? { ...op, output: staleValue } : op));
  return { history: mutated, key: target.read.key ?? '' };
}

describe('agreement with brute force', () => {
  const smallOp: fc.Arbitrary<OpSpec> = fc
    .record({
      f: fc.constantFrom('read' as const, 'write' as const, 'cas' as const),
      key: fc.constantFrom('a', 'b'),
      value: fc.constantFrom(null, 1, 2),
      other: fc.constantFrom(1, 2),
      call: fc.integer({ min: 0, max: 10 }),
      durationNs: fc.integer({ min: 0, max: 6 }),
      info: fc.integer({ min: 0, max: 5 }).map((roll) => roll === 0),
    })
    .map(({ f, key, value, other, call, durationNs, info }): OpSpec => {
      const status = info ? 'info' : 'ok';
      const timing = info ? { call } : { call, ret: call + durationNs };
      if (f === 'read') return { f, key, output: value, status, ...timing };
      if (f === 'write') return { f, key, input: other, status, ...timing };
      return { f, key, input: [value, other], status, ...timing };
    });

  it('gives the same verdict as trying every order', () => {
    let invalidCount = 0;
    fc.assert(
      fc.property(fc.array(smallOp, { minLength: 1, maxLength: 7 }), (specs) => {
        const history = ops(...specs);
        const expected = bruteForceLinearizable(history);
        if (!expected) invalidCount++;
        expect(checkLinearizable(history, registerModel).verdict).toBe(expected ? 'valid' : 'invalid');
      }),
      { numRuns: 600 },
    );
    // The oracle comparison is only meaningful if both answers occur.
    expect(invalidCount).toBeGreaterThan(50);
  });
});

/**
 * Depth-first over every order respecting real time (an op may go next only if no unplaced ok op
 * returned strictly before its call). Info ops may be placed or left out; success once all ok ops
 * are placed. Keys are checked one at a time.
 */
function bruteForceLinearizable(history: readonly Operation[]): boolean {
  const keys = new Set(history.map((op) => op.key));
  return [...keys].every((key) => {
    const keyOps = history.filter((op) => op.key === key && !(op.f === 'read' && op.status === 'info'));
    return search(keyOps, new Set(), registerModel.init());
  });
}

function search(keyOps: readonly Operation[], placed: ReadonlySet<Operation>, state: string): boolean {
  const unplaced = keyOps.filter((op) => !placed.has(op));
  if (unplaced.every((op) => op.status === 'info')) return true;
  return unplaced.some((op) => {
    if (unplaced.some((other) => other.status === 'ok' && other.ret < op.call)) return false;
    const { ok, next } = registerModel.step(state, op);
    return ok && search(keyOps, new Set([...placed, op]), next);
  });
}
