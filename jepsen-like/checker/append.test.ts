// The list-append checker: one hand-made history per anomaly, and simulated correct executions
// (valid) with an acknowledged append removed from the final read (invalid).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkAppend, type AppendAnomalyKind } from './append.ts';
import type { RecordedOperation } from './history.ts';
import { recordedOps, type OpSpec } from './test-support.ts';

const append = (element: number, call: number, ret: number, status: OpSpec['status'] = 'ok'): OpSpec => ({
  f: 'append',
  key: 'l',
  input: element,
  call,
  ret,
  status,
});
const read = (elements: unknown[], call: number, ret: number): OpSpec => ({
  f: 'read',
  key: 'l',
  output: elements,
  call,
  ret,
});

function kinds(...specs: OpSpec[]): AppendAnomalyKind[] {
  return checkAppend(recordedOps(...specs)).keys.flatMap((k) => k.anomalies.map((a) => a.kind));
}

describe('list-append checker', () => {
  it('accepts reads that are prefixes of one order, consistent with real time', () => {
    const result = checkAppend(
      recordedOps(
        append(1, 0, 5),
        read([1], 6, 7),
        append(2, 6, 15),
        append(3, 8, 12),
        read([1, 3, 2], 20, 21),
        read([1, 3], 10, 11),
      ),
    );
    expect(result.verdict).toBe('valid');
    expect(result.keys[0]).toMatchObject({
      key: 'l',
      appendCount: 3,
      acknowledgedCount: 3,
      readCount: 3,
      finalLength: 3,
      anomalies: [],
    });
  });

  it('lets info appends appear or not', () => {
    expect(kinds(append(1, 0, 5, 'info'), append(2, 0, 5, 'info'), read([2], 10, 11))).toEqual([]);
  });

  it('finds duplicates, garbage and elements of failed appends', () => {
    expect(kinds(append(1, 0, 5), read([1, 1], 10, 11))).toEqual(['duplicate-element']);
    expect(kinds(append(1, 0, 5), read([1, 7], 10, 11))).toEqual(['garbage-read']);
    expect(kinds(append(1, 0, 5), append(2, 0, 5, 'fail'), read([1, 2], 10, 11))).toEqual(['aborted-read']);
  });

  it('finds reads that no single order explains', () => {
    expect(kinds(append(1, 0, 5), append(2, 0, 5), read([1], 3, 4), read([2, 1], 10, 11))).toEqual([
      'incompatible-order',
    ]);
  });

  it('finds an acknowledged append that no later read contains', () => {
    expect(kinds(append(1, 0, 5), append(2, 0, 5), read([1], 10, 11))).toEqual(['lost-append']);
    // Still in flight when the only read began: not provably lost.
    expect(kinds(append(1, 0, 5), append(2, 0, 10), read([1], 10, 11))).toEqual([]);
  });

  it('finds a read missing an append acknowledged before it began', () => {
    expect(kinds(append(1, 0, 1), append(2, 2, 3), read([1], 4, 5), read([1, 2], 6, 7))).toEqual(['stale-read']);
  });

  it('finds a read shorter than one that finished before it began', () => {
    expect(kinds(append(1, 0, 100, 'info'), read([1], 10, 11), read([], 12, 13))).toEqual(['stale-read']);
  });

  it('finds a read of an append invoked after the read returned', () => {
    expect(kinds(read([1], 0, 5), append(1, 6, 8), read([1], 10, 11))).toEqual(['future-read']);
  });

  it('finds appends ordered against real time', () => {
    expect(kinds(append(1, 0, 5), append(2, 6, 8), read([2, 1], 10, 11))).toEqual(['realtime-order']);
    // Touching intervals are concurrent, so either order is fine.
    expect(kinds(append(1, 0, 5), append(2, 5, 8), read([2, 1], 10, 11))).toEqual([]);
  });

  it('is unknown without reads, and refuses repeated elements', () => {
    expect(checkAppend(recordedOps(append(1, 0, 5))).verdict).toBe('unknown');
    expect(() => checkAppend(recordedOps(append(1, 0, 5), append(1, 6, 7)))).toThrow('both append 1');
  });
});

// ---- Simulated executions -------------------------------------------------------------------

interface PlannedListOp {
  isRead: boolean;
  keyChoice: number;
  gapNs: number;
  durationNs: number;
  pointFraction: number;
  /** 0 info, 1 fail (appends only), otherwise ok. */
  outcome: number;
  tookEffect: boolean;
}

const plannedListOp: fc.Arbitrary<PlannedListOp> = fc.record({
  isRead: fc.boolean(),
  keyChoice: fc.nat(),
  gapNs: fc.integer({ min: 0, max: 4 }),
  durationNs: fc.integer({ min: 0, max: 12 }),
  pointFraction: fc.integer({ min: 0, max: 4 }).map((quarter) => quarter / 4),
  outcome: fc.integer({ min: 0, max: 9 }),
  tookEffect: fc.boolean(),
});

const listPlan = fc.record({
  keyCount: fc.integer({ min: 1, max: 2 }),
  processes: fc.array(fc.array(plannedListOp, { minLength: 1, maxLength: 20 }), { minLength: 2, maxLength: 6 }),
});

interface SimulatedListOp extends RecordedOperation {
  point: number;
  tookEffect: boolean;
}

/** A correct execution of per-key lists, ending with one final read per key after everything. */
function simulateLists(plan: { keyCount: number; processes: PlannedListOp[][] }): RecordedOperation[] {
  const simulated: SimulatedListOp[] = [];
  let endNs = 0;
  for (const [process, planned] of plan.processes.entries()) {
    let timeNs = 0;
    for (const step of planned) {
      const call = timeNs + step.gapNs;
      timeNs = call + step.durationNs;
      endNs = Math.max(endNs, timeNs);
      const status = step.outcome === 0 ? 'info' : step.outcome === 1 && !step.isRead ? 'fail' : 'ok';
      simulated.push({
        index: simulated.length,
        process,
        f: step.isRead ? 'read' : 'append',
        key: `k${step.keyChoice % plan.keyCount}`,
        input: step.isRead ? null : simulated.length,
        output: undefined,
        call,
        ret: status === 'info' ? Infinity : timeNs,
        completionTime: timeNs,
        status,
        point: call + step.pointFraction * step.durationNs,
        tookEffect: status === 'ok' || (status === 'info' && step.tookEffect),
      });
    }
  }
  for (let k = 0; k < plan.keyCount; k++) {
    const at = endNs + 1 + k;
    simulated.push({
      index: simulated.length,
      process: plan.processes.length,
      f: 'read',
      key: `k${k}`,
      input: null,
      output: undefined,
      call: at,
      ret: at,
      completionTime: at,
      status: 'ok',
      point: at,
      tookEffect: true,
    });
  }
  const lists = new Map<string | undefined, unknown[]>();
  for (const op of [...simulated].sort((a, b) => a.point - b.point || a.index - b.index)) {
    const list = lists.get(op.key) ?? [];
    lists.set(op.key, list);
    if (op.f === 'read') op.output = op.status === 'ok' ? [...list] : undefined;
    else if (op.tookEffect) list.push(op.input);
    if (op.f === 'append') op.output = op.status === 'ok' ? op.input : undefined;
  }
  return simulated;
}

describe('list-append checker on simulated executions', () => {
  it('finds nothing wrong with correct executions', () => {
    fc.assert(
      fc.property(listPlan, (plan) => {
        const result = checkAppend(simulateLists(plan));
        expect(result.keys.flatMap((k) => k.anomalies)).toEqual([]);
        expect(result.verdict).toBe('valid');
      }),
      { numRuns: 300 },
    );
  });

  it('flags a final read missing an append acknowledged before it began', () => {
    fc.assert(
      fc.property(listPlan, fc.nat(), (plan, choice) => {
        const history = simulateLists(plan);
        const finalRead = history.at(-1);
        if (finalRead === undefined) throw new Error('unreachable');
        const finalList = finalRead.output as unknown[];
        const acknowledged = history.filter(
          (op) => op.f === 'append' && op.status === 'ok' && op.key === finalRead.key,
        );
        fc.pre(acknowledged.length > 0);
        const dropped = acknowledged[choice % acknowledged.length]?.input;
        const mutated = history.map((op) =>
          op === finalRead ? { ...op, output: finalList.filter((e) => e !== dropped) } : op,
        );
        expect(checkAppend(mutated).verdict).toBe('invalid');
      }),
      { numRuns: 300 },
    );
  });
});
