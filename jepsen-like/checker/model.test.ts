// The register model on its own: steps, partitioning, pruning and descriptions.

import { describe, expect, it } from 'vitest';
import { registerModel } from './model.ts';
import { ops } from './test-support.ts';

describe('register model', () => {
  const [write, read, cas, infoWrite] = ops(
    { f: 'write', input: 1, call: 0, ret: 1 },
    { f: 'read', output: 1, call: 0, ret: 1 },
    { f: 'cas', input: [1, 2], call: 0, ret: 1 },
    { f: 'write', input: 9, call: 0, status: 'info' },
  );
  if (write === undefined || read === undefined || cas === undefined || infoWrite === undefined)
    throw new Error('unreachable');

  it('steps read, write and cas without mutating the state', () => {
    const initial = registerModel.init();
    expect(initial).toBe('null');
    expect(registerModel.step(initial, read)).toEqual({ ok: false, next: 'null' });
    const afterWrite = registerModel.step(initial, write);
    expect(afterWrite).toEqual({ ok: true, next: '1' });
    expect(registerModel.step(afterWrite.next, read)).toEqual({ ok: true, next: '1' });
    expect(registerModel.step(afterWrite.next, cas)).toEqual({ ok: true, next: '2' });
    expect(registerModel.step(initial, cas)).toEqual({ ok: false, next: 'null' });
    expect(registerModel.hash('1')).toBe(registerModel.hash('1'));
  });

  it('drops info reads and info writes nobody observed, keeping observed ones', () => {
    const history = ops(
      { f: 'write', key: 'k', input: 'seen', call: 0, status: 'info' },
      { f: 'write', key: 'k', input: 'unseen', call: 0, status: 'info' },
      { f: 'cas', key: 'k', input: ['seen', 'cas-unseen'], call: 0, status: 'info' },
      { f: 'cas', key: 'k', input: [null, 'expected-later'], call: 0, status: 'info' },
      { f: 'cas', key: 'k', input: ['expected-later', 'x'], call: 5, ret: 6 },
      { f: 'read', key: 'k', call: 1, status: 'info' },
      { f: 'read', key: 'k', output: 'seen', call: 1, ret: 2 },
    );
    const partitions = registerModel.partition(history);
    expect(partitions.map((p) => [p.key, p.ops.map((op) => op.index)])).toEqual([['k', [0, 3, 4, 6]]]);
  });

  it('refuses ops that are not register ops', () => {
    expect(() => registerModel.partition(ops({ f: 'add', input: 1, call: 0, ret: 1 }))).toThrow(
      'only read, write and cas',
    );
    expect(() => registerModel.partition(ops({ f: 'cas', input: 1, call: 0, ret: 1 }))).toThrow('[expected, new]');
  });

  it('describes ops and states for reports', () => {
    expect(registerModel.describeOperation(read)).toBe('read() → 1');
    expect(registerModel.describeOperation(cas)).toBe('cas(1, 2)');
    expect(registerModel.describeOperation(infoWrite)).toBe('write(9) ?');
    expect(registerModel.describeState('"abc"')).toBe('"abc"');
    expect(registerModel.describeState('x'.repeat(100))).toHaveLength(60);
  });
});
