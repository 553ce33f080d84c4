// The actions checker on hand-made histories: schedules of test actions, reads of the records,
// a final read. Each illegal history breaks one rule and must be invalid for that rule alone.

import { describe, expect, it } from 'vitest';
import {
  checkActions,
  testFailKind,
  testFailMessage,
  testLoopKind,
  testSuccessKind,
  type ActionPhase,
  type ActionSeen,
  type ActionsSnapshot,
} from './actions.ts';
import { recordedOps, type OpSpec } from './test-support.ts';

const idOf = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A test.loop of target 2 unless told otherwise. */
const schedule = (
  n: number,
  call: number,
  ret: number,
  status: OpSpec['status'] = 'ok',
  kind = testLoopKind,
  args: unknown = kind === testLoopKind ? { target: 2 } : null,
): OpSpec => ({ f: 'schedule', key: 'actions', input: { id: idOf(n), kind, args }, call, ret, status });

interface RecordOptions {
  kind?: string;
  args?: unknown;
  payload?: unknown;
  error?: string | null;
  scheduledMs?: number;
  finishedMs?: number | null;
}

/** A record in the phase given; a finished test.loop of target 2 counted to 2 unless told otherwise. */
function record(n: number, phase: ActionPhase, options: RecordOptions = {}): ActionSeen {
  const kind = options.kind ?? testLoopKind;
  const finished = phase === 'DONE' || phase === 'FAILED';
  const defaultPayload = kind === testLoopKind && phase !== 'NEW' ? { count: finished ? 2 : 1, target: 2 } : null;
  return {
    id: idOf(n),
    kind,
    args: options.args ?? (kind === testLoopKind ? { target: 2 } : null),
    phase,
    payload: options.payload === undefined ? defaultPayload : options.payload,
    error: options.error ?? (kind === testFailKind && finished ? testFailMessage : null),
    scheduledMs: options.scheduledMs ?? 1000 + n,
    finishedMs: options.finishedMs === undefined ? (finished ? 2000 + 10 * n : null) : options.finishedMs,
  };
}

const read = (snapshot: ActionsSnapshot, call: number, ret: number, final = false): OpSpec => ({
  f: 'read',
  key: 'actions',
  input: final ? { final: true } : null,
  output: snapshot,
  call,
  ret,
});

/** Finished in the order given, at increasing times. */
const done = (...ns: number[]): ActionSeen[] =>
  ns.map((n, position) => record(n, 'DONE', { finishedMs: 2000 + 10 * position }));

/** Three loops scheduled one after the other, read while the second runs, then drained. */
const legal: OpSpec[] = [
  schedule(1, 0, 5),
  schedule(2, 6, 10),
  schedule(3, 11, 15),
  read({ queue: [record(2, 'RUNNING'), record(3, 'NEW')], finished: done(1) }, 16, 17),
  read({ queue: [], finished: done(1, 2, 3) }, 30, 31, true),
];

describe('actions checker', () => {
  it('accepts actions run one at a time in schedule order, each once', () => {
    const result = checkActions(recordedOps(...legal));
    expect(result).toMatchObject({
      verdict: 'valid',
      attempted: 3,
      acknowledged: 3,
      reads: 2,
      finalRead: { finished: 3, queued: 0 },
      done: 3,
      anomalies: [],
    });
  });

  it('accepts concurrent schedules finishing in either order', () => {
    const result = checkActions(
      recordedOps(schedule(1, 0, 10), schedule(2, 5, 12), read({ queue: [], finished: done(2, 1) }, 20, 21, true)),
    );
    expect(result.verdict).toBe('valid');
  });

  it('accepts each test kind finishing as it should, and a test.loop failed by its timeout', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 1, 'ok', testSuccessKind),
        schedule(2, 2, 3, 'ok', testFailKind),
        schedule(3, 4, 5),
        read(
          {
            queue: [],
            finished: [
              record(1, 'DONE', { kind: testSuccessKind }),
              record(2, 'FAILED', { kind: testFailKind }),
              record(3, 'FAILED', {
                payload: { count: 1, target: 2 },
                error: 'timed out: still running 60000 ms after it started',
              }),
            ],
          },
          10,
          11,
          true,
        ),
      ),
    );
    expect(result).toMatchObject({ verdict: 'valid', done: 1, failedRecords: 2, timedOut: 1 });
  });

  it('lets an indeterminate schedule be there or not, and ignores failed reads', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5, 'info'),
        schedule(2, 1, 6, 'info'),
        schedule(3, 7, 8),
        { f: 'read', key: 'actions', call: 9, ret: 10, status: 'fail' },
        read({ queue: [], finished: done(2, 3) }, 20, 21, true),
      ),
    );
    expect(result).toMatchObject({ verdict: 'valid', indeterminate: 2, acknowledged: 1 });
  });

  it('reports two actions RUNNING at once', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 10),
        schedule(2, 5, 12),
        read({ queue: [record(1, 'RUNNING'), record(2, 'RUNNING')], finished: [] }, 13, 14),
        read({ queue: [], finished: done(1, 2) }, 20, 21, true),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ concurrent: 1 });
  });

  it('reports a RUNNING action that skipped an older NEW one', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 10),
        schedule(2, 5, 12),
        read({ queue: [record(1, 'NEW'), record(2, 'RUNNING')], finished: [] }, 13, 14),
        read({ queue: [], finished: done(2, 1) }, 20, 21, true),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ 'out-of-order': 1 });
  });

  it('reports an action finishing before one acknowledged before it was scheduled', () => {
    const result = checkActions(
      recordedOps(schedule(1, 0, 5), schedule(2, 6, 10), read({ queue: [], finished: done(2, 1) }, 20, 21, true)),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ 'out-of-order': 1 });
    expect(result.anomalies[0]?.message).toContain(`but ${idOf(1)}`);
  });

  it('reports an action RUNNING while one acknowledged before it was scheduled has not started', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5),
        schedule(2, 6, 10),
        // A node whose queue lists 2 alone: 1 is neither finished nor queued there.
        read({ queue: [record(2, 'RUNNING')], finished: [] }, 11, 12),
        read({ queue: [], finished: done(1, 2) }, 20, 21, true),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ 'out-of-order': 1 });
  });

  it('reports a test.loop whose steps were applied more than once', () => {
    const twice = record(1, 'DONE', { payload: { count: 3, target: 2 } });
    const result = checkActions(recordedOps(schedule(1, 0, 5), read({ queue: [], finished: [twice] }, 20, 21, true)));
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ 'wrong-effect': 1 });
  });

  it('reports a test.loop DONE short of its target, and a test.fail that succeeded', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5),
        schedule(2, 6, 7, 'ok', testFailKind),
        read(
          {
            queue: [],
            finished: [
              record(1, 'DONE', { payload: { count: 1, target: 2 } }),
              record(2, 'DONE', { kind: testFailKind, error: null }),
            ],
          },
          20,
          21,
          true,
        ),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ 'wrong-effect': 2 });
  });

  it('reports an id listed twice', () => {
    const result = checkActions(
      recordedOps(schedule(1, 0, 5), read({ queue: [record(1, 'NEW')], finished: done(1) }, 20, 21, true)),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ duplicate: 1 });
  });

  it('reports an acknowledged action missing from the final read as lost', () => {
    const result = checkActions(
      recordedOps(schedule(1, 0, 5), schedule(2, 6, 10), read({ queue: [], finished: done(1) }, 20, 21, true)),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ lost: 1 });
  });

  it('reports actions never scheduled, or whose schedule definitely failed', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5),
        schedule(2, 6, 7, 'fail'),
        read({ queue: [], finished: done(1, 2, 3) }, 20, 21, true),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ unexpected: 2 });
  });

  it('reports a record whose kind or args differ from what was scheduled', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5),
        read(
          { queue: [], finished: [record(1, 'DONE', { args: { target: 3 }, payload: { count: 3, target: 3 } })] },
          20,
          21,
          true,
        ),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ mismatched: 1 });
  });

  it('reports a finished record that changed', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 5),
        read({ queue: [], finished: [record(1, 'DONE', { finishedMs: 3000 })] }, 10, 11),
        read({ queue: [], finished: [record(1, 'DONE', { finishedMs: 3001 })] }, 20, 21, true),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ changed: 1 });
  });

  it('reports finished times against the finish order, and a finish before the schedule', () => {
    const result = checkActions(
      recordedOps(
        schedule(1, 0, 10),
        schedule(2, 5, 12),
        read(
          {
            queue: [],
            finished: [
              record(1, 'DONE', { finishedMs: 5000 }),
              record(2, 'DONE', { finishedMs: 4000, scheduledMs: 4500 }),
            ],
          },
          20,
          21,
          true,
        ),
      ),
    );
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ times: 2 });
  });

  it('is unknown without a final read, or when an acknowledged action never finished', () => {
    const unread = checkActions(
      recordedOps(schedule(1, 0, 5), read({ queue: [record(1, 'NEW')], finished: [] }, 6, 7)),
    );
    expect(unread.verdict).toBe('unknown');
    const unfinished = checkActions(
      recordedOps(schedule(1, 0, 5), read({ queue: [record(1, 'RUNNING')], finished: [] }, 6, 7, true)),
    );
    expect(unfinished).toMatchObject({ verdict: 'unknown', unfinished: [idOf(1)] });
  });

  it('reports a read that is not a list of records', () => {
    const result = checkActions(recordedOps(...legal, read({ queue: 'x' } as unknown as ActionsSnapshot, 40, 41)));
    expect(result.verdict).toBe('invalid');
    expect(result.anomalyCounts).toEqual({ malformed: 1 });
  });
});
