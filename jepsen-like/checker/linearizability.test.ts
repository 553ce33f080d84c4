// Hand-made register histories with known answers, the step budget, and per-key partitioning.

import { describe, expect, it } from 'vitest';
import { loadOperations } from './history.ts';
import { checkLinearizable } from './linearizability.ts';
import { registerModel } from './model.ts';
import { ops, toJsonl } from './test-support.ts';

const check = (history: Parameters<typeof checkLinearizable>[0], stepsMax?: number) =>
  checkLinearizable(history, registerModel, stepsMax === undefined ? {} : { stepsMax });

describe('register histories', () => {
  it('accepts the empty history', () => {
    expect(check([])).toEqual({ verdict: 'valid', steps: 0, partitions: [] });
  });

  it('accepts a sequential write then read, and a read of the initial null', () => {
    const history = ops(
      { f: 'read', output: null, call: 0, ret: 1 },
      { f: 'write', input: 1, call: 2, ret: 3 },
      { f: 'read', output: 1, call: 4, ret: 5 },
    );
    expect(check(history).verdict).toBe('valid');
  });

  it('rejects a read of a value nobody wrote', () => {
    const history = ops({ f: 'write', input: 1, call: 0, ret: 1 }, { f: 'read', output: 7, call: 2, ret: 3 });
    expect(check(history).verdict).toBe('invalid');
  });

  it('accepts either outcome of a read concurrent with a write', () => {
    for (const seen of [null, 1]) {
      const history = ops({ f: 'write', input: 1, call: 0, ret: 10 }, { f: 'read', output: seen, call: 2, ret: 5 });
      expect(check(history).verdict, `read saw ${String(seen)}`).toBe('valid');
    }
  });

  it('rejects two overlapping reads that see new then old once the write is done (no flip-flop)', () => {
    const history = ops(
      { f: 'write', input: 1, call: 0, ret: 100 },
      { f: 'read', output: 1, call: 10, ret: 20 },
      { f: 'read', output: null, call: 30, ret: 40 },
    );
    expect(check(history).verdict).toBe('invalid');
  });

  it('rejects a stale read after an acknowledged overwrite, and reports where it got stuck', () => {
    const history = ops(
      { process: 0, f: 'write', input: 1, call: 0, ret: 10 },
      { process: 0, f: 'write', input: 2, call: 11, ret: 20 },
      { process: 1, f: 'read', output: 1, call: 21, ret: 30 },
    );
    const result = check(history);
    expect(result.verdict).toBe('invalid');
    const failure = result.partitions[0]?.failure;
    expect(failure?.blockedOp.index).toBe(2);
    expect(failure?.prefix.map((step) => [step.op.index, step.stateAfter])).toEqual([
      [0, '1'],
      [1, '2'],
    ]);
    expect(failure?.stateAtBlock).toBe('2');
    expect(failure?.message).toContain('read() → 1');
  });

  it('treats ops that touch at an instant as concurrent (closed intervals)', () => {
    const touching = ops({ f: 'write', input: 1, call: 0, ret: 10 }, { f: 'read', output: null, call: 10, ret: 20 });
    expect(check(touching).verdict).toBe('valid');
    const after = ops({ f: 'write', input: 1, call: 0, ret: 10 }, { f: 'read', output: null, call: 11, ret: 20 });
    expect(check(after).verdict).toBe('invalid');
  });
});

describe('unknown outcomes', () => {
  it('accepts an info write that later shows up, or never does', () => {
    for (const seen of [1, null]) {
      const history = ops(
        { f: 'write', input: 1, call: 0, status: 'info' },
        { f: 'read', output: seen, call: 50, ret: 60 },
      );
      expect(check(history).verdict, `read saw ${String(seen)}`).toBe('valid');
    }
  });

  it('rejects an info write that shows up and then vanishes', () => {
    const history = ops(
      { f: 'write', input: 1, call: 0, status: 'info' },
      { f: 'read', output: 1, call: 50, ret: 60 },
      { f: 'read', output: null, call: 70, ret: 80 },
    );
    expect(check(history).verdict).toBe('invalid');
  });

  it('does not let an info write take effect before it was invoked', () => {
    const history = ops({ f: 'read', output: 1, call: 0, ret: 5 }, { f: 'write', input: 1, call: 6, status: 'info' });
    expect(check(history).verdict).toBe('invalid');
  });

  it('never lets an info read make a history invalid', () => {
    const history = ops(
      { f: 'write', input: 1, call: 0, ret: 10 },
      { f: 'read', call: 20, status: 'info' },
      { f: 'read', output: 1, call: 30, ret: 40 },
    );
    expect(check(history).verdict).toBe('valid');
  });

  it('applies an info write at most once, between the writes around it', () => {
    const history = ops(
      { process: 0, f: 'write', input: 1, call: 0, status: 'info' },
      { process: 1, f: 'write', input: 2, call: 5, ret: 10 },
      { process: 1, f: 'read', output: 1, call: 20, ret: 30 },
      { process: 1, f: 'read', output: 2, call: 40, ret: 50 },
    );
    expect(check(history).verdict).toBe('invalid');
  });
});

describe('cas', () => {
  it('accepts a cas that found its expected value', () => {
    const history = ops(
      { f: 'write', input: 1, call: 0, ret: 1 },
      { f: 'cas', input: [1, 2], call: 2, ret: 3 },
      { f: 'read', output: 2, call: 4, ret: 5 },
    );
    expect(check(history).verdict).toBe('valid');
  });

  it('rejects an ok cas whose expected value was not there', () => {
    const history = ops({ f: 'write', input: 1, call: 0, ret: 1 }, { f: 'cas', input: [3, 4], call: 2, ret: 3 });
    expect(check(history).verdict).toBe('invalid');
  });

  it('compares values structurally', () => {
    const history = ops(
      { f: 'write', input: { a: 1, b: [2] }, call: 0, ret: 1 },
      { f: 'cas', input: [{ b: [2], a: 1 }, 'next'], call: 2, ret: 3 },
      { f: 'read', output: 'next', call: 4, ret: 5 },
    );
    expect(check(history).verdict).toBe('valid');
  });

  it('ignores a failed cas, and lets an info cas apply only where it could', () => {
    const text = toJsonl([
      { process: 0, type: 'invoke', f: 'cas', value: [null, 5], time: 0 },
      { process: 0, type: 'fail', f: 'cas', value: [null, 5], time: 1 },
      { process: 0, type: 'invoke', f: 'read', value: null, time: 2 },
      { process: 0, type: 'ok', f: 'read', value: null, time: 3 },
      { process: 1, type: 'invoke', f: 'cas', value: [null, 6], time: 4 },
      { process: 1, type: 'info', f: 'cas', value: [null, 6], time: 5 },
      { process: 0, type: 'invoke', f: 'read', value: null, time: 6 },
      { process: 0, type: 'ok', f: 'read', value: 6, time: 7 },
    ]);
    expect(check(loadOperations(text)).verdict).toBe('valid');
    const wrongExpectation = ops(
      { f: 'write', input: 1, call: 0, ret: 1 },
      { f: 'cas', input: [null, 6], call: 2, status: 'info' },
      { f: 'read', output: 6, call: 4, ret: 5 },
    );
    expect(check(wrongExpectation).verdict).toBe('invalid');
  });
});

describe('partitions and budget', () => {
  it('checks keys independently and names the broken one', () => {
    const history = ops(
      { f: 'write', key: 'x', input: 1, call: 0, ret: 10 },
      { f: 'write', key: 'y', input: 1, call: 0, ret: 10 },
      { f: 'read', key: 'x', output: 1, call: 20, ret: 30 },
      // Linearizable only if keys were mixed up: y never held 2.
      { f: 'read', key: 'y', output: 2, call: 20, ret: 30 },
      { f: 'write', key: 'x', input: 2, call: 0, ret: 15 },
    );
    const result = check(history);
    expect(result.verdict).toBe('invalid');
    expect(result.partitions.map((p) => [p.key, p.verdict, p.opCount])).toEqual([
      ['x', 'valid', 3],
      ['y', 'invalid', 2],
    ]);
    expect(result.partitions[1]?.failure?.blockedOp.index).toBe(3);
  });

  it('puts keyless ops in one partition', () => {
    const history = ops({ f: 'write', input: 1, call: 0, ret: 1 }, { f: 'read', output: 1, call: 2, ret: 3 });
    expect(check(history).partitions.map((p) => p.key)).toEqual(['']);
  });

  it('gives unknown when the budget runs out, and spends no more than it', () => {
    const history = hardInvalidKey('k', 12);
    const limited = check(history, 100);
    expect(limited.verdict).toBe('unknown');
    expect(limited.steps).toBe(100);
    expect(limited.partitions[0]?.verdict).toBe('unknown');
    expect(limited.partitions[0]?.failure).toBeUndefined();
    expect(check(history, 0).verdict).toBe('unknown');
    expect(check(history).verdict).toBe('invalid');
  });

  it('shares the budget round-robin, so one hard key does not starve an easy one', () => {
    const easy = ops(
      { f: 'write', key: 'b-easy', input: 1, call: 1000, ret: 1001 },
      { f: 'read', key: 'b-easy', output: 1, call: 1002, ret: 1003 },
    );
    const history = [...hardInvalidKey('a-hard', 14), ...easy.map((op, i) => ({ ...op, index: 100 + i }))];
    const result = check(history, 50_000);
    expect(result.partitions.map((p) => [p.key, p.verdict])).toEqual([
      ['a-hard', 'unknown'],
      ['b-easy', 'valid'],
    ]);
    expect(result.verdict).toBe('unknown');
  });
});

/** Many fully concurrent writes, then a read of a value none wrote: the search must try every subset. */
function hardInvalidKey(key: string, writeCount: number) {
  const writes = Array.from({ length: writeCount }, (_, i) => ({
    process: i,
    f: 'write' as const,
    key,
    input: i + 1,
    call: 0,
    ret: 100,
  }));
  return ops(...writes, { process: writeCount, f: 'read', key, output: -1, call: 50, ret: 150 });
}
