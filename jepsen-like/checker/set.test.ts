// The set checker on hand-made histories: adds during the run, one final read at the end.

import { describe, expect, it } from 'vitest';
import { checkSet } from './set.ts';
import { recordedOps, type OpSpec } from './test-support.ts';

const add = (element: number, call: number, ret: number, status: OpSpec['status'] = 'ok'): OpSpec => ({
  f: 'add',
  key: 's',
  input: element,
  call,
  ret,
  status,
});
const read = (elements: unknown[], call: number, ret: number, key = 's'): OpSpec => ({
  f: 'read',
  key,
  output: elements,
  call,
  ret,
});

describe('set checker', () => {
  it('accepts a run where every acknowledged add is read back', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), add(2, 1, 6), read([2, 1], 10, 11)));
    expect(result.verdict).toBe('valid');
    expect(result.keys[0]).toMatchObject({
      key: 's',
      attemptedCount: 2,
      acknowledgedCount: 2,
      finalReadSize: 2,
      lost: [],
    });
  });

  it('reports an acknowledged add missing from the final read as lost', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), add(2, 1, 6), read([1], 3, 4), read([1], 10, 11)));
    expect(result.verdict).toBe('invalid');
    expect(result.keys[0]?.lost).toEqual([2]);
  });

  it('uses the read invoked last as the final read', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), read([1], 10, 30), read([], 20, 21)));
    expect(result.keys[0]?.lost).toEqual([1]);
  });

  it('does not call an add lost if it was still in flight when the final read began', () => {
    const result = checkSet(recordedOps(add(1, 0, 10), read([], 10, 11)));
    expect(result.verdict).toBe('valid');
    expect(result.keys[0]).toMatchObject({ lost: [], unresolvedCount: 1 });
  });

  it('reports elements never added, and elements whose add failed', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), add(2, 0, 5, 'fail'), read([1, 2, 3], 10, 11)));
    expect(result.verdict).toBe('invalid');
    expect(result.keys[0]).toMatchObject({ unexpected: [3], failedPresent: [2], failedCount: 1 });
  });

  it('checks every read for unexpected elements, not only the final one', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), read([1, 4], 6, 7), read([1], 10, 11)));
    expect(result.keys[0]?.unexpected).toEqual([4]);
  });

  it('lets info adds be present or absent', () => {
    const result = checkSet(recordedOps(add(1, 0, 5, 'info'), add(2, 0, 5, 'info'), read([1], 10, 11)));
    expect(result.verdict).toBe('valid');
    expect(result.keys[0]).toMatchObject({ indeterminateCount: 2, recoveredCount: 1 });
  });

  it('reports a read that returns an element twice', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), read([1, 1], 10, 11)));
    expect(result.verdict).toBe('invalid');
    expect(result.keys[0]?.duplicated).toEqual([1]);
  });

  it('is unknown without any successful read', () => {
    expect(checkSet(recordedOps(add(1, 0, 5))).verdict).toBe('unknown');
  });

  it('checks sets under different keys separately', () => {
    const result = checkSet(recordedOps(add(1, 0, 5), read([1], 10, 11), read([1], 10, 11, 't')));
    expect(result.keys.map((k) => [k.key, k.verdict])).toEqual([
      ['s', 'valid'],
      ['t', 'invalid'],
    ]);
    expect(result.verdict).toBe('invalid');
  });

  it('refuses a workload that added the same element twice', () => {
    expect(() => checkSet(recordedOps(add(1, 0, 5), add(1, 6, 7)))).toThrow('both add 1');
    expect(() => checkSet(recordedOps({ f: 'read', key: 's', output: 3, call: 0, ret: 1 }))).toThrow('not a list');
  });
});
