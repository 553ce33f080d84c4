// Liveness after healing: which ops are judged, and what counts as a violation.

import { describe, expect, it } from 'vitest';
import { checkLiveness, livenessViolationsMax } from './liveness.ts';
import { recordedOps, type OpSpec } from './test-support.ts';

const options = { healTimeNs: 1000, graceNs: 500, boundNs: 100 };
const write = (call: number, ret: number | undefined, status: OpSpec['status'] = 'ok'): OpSpec =>
  ret === undefined ? { f: 'write', input: call, call, status } : { f: 'write', input: call, call, ret, status };

describe('liveness checker', () => {
  it('judges only ops invoked from heal + grace on', () => {
    const result = checkLiveness(
      recordedOps(write(0, 900, 'fail'), write(1499, 1700), write(1500, 1600), write(1550, 1650)),
      options,
    );
    expect(result).toMatchObject({
      verdict: 'valid',
      checkedCount: 2,
      unjudgedCount: 0,
      windowStartNs: 1500,
      violations: [],
    });
  });

  it('reports fails, unknown outcomes and slow oks', () => {
    const result = checkLiveness(
      recordedOps(write(1500, 1510, 'fail'), write(1600, 1650, 'info'), write(1700, 1801), write(1900, 2000)),
      options,
    );
    expect(result.verdict).toBe('invalid');
    expect(result.violations.map((v) => [v.op.index, v.reason, v.latencyNs])).toEqual([
      [0, 'failed', 10],
      [1, 'indeterminate', 50],
      [2, 'slow', 101],
    ]);
    expect(result.violations[2]?.message).toContain('more than the bound of 100 ns');
  });

  it('reports an op that never completed only if the history lasted the bound after its call', () => {
    const ops = recordedOps(write(1500, undefined, 'info'), write(1550, undefined, 'info'), write(1590, 1600));
    const result = checkLiveness(ops, options);
    expect(result.violations.map((v) => [v.op.index, v.reason])).toEqual([[0, 'no-completion']]);
    expect(result.unjudgedCount).toBe(1);
    expect(checkLiveness(ops, { ...options, historyEndNs: 1700 }).violations).toHaveLength(2);
  });

  it('counts every violation but keeps only the first livenessViolationsMax', () => {
    const specs = Array.from({ length: livenessViolationsMax + 5 }, (_, i) => write(1500 + i, 1500 + i, 'fail'));
    const result = checkLiveness(recordedOps(...specs), options);
    expect(result.violationCount).toBe(livenessViolationsMax + 5);
    expect(result.violations).toHaveLength(livenessViolationsMax);
    expect(result.violations[0]?.op.index).toBe(0);
  });

  it('is unknown when nothing was invoked after healing', () => {
    expect(checkLiveness(recordedOps(write(0, 10)), options).verdict).toBe('unknown');
  });

  it('refuses nonsense options', () => {
    expect(() => checkLiveness([], { ...options, boundNs: -1 })).toThrow('boundNs');
    expect(() => checkLiveness([], { ...options, healTimeNs: Number.NaN })).toThrow('healTimeNs');
  });
});
