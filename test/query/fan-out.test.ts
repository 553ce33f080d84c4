// The fan-out over fake ports: a manual clock (timers run only when the test advances time) and a
// map port whose every call the test answers, fails or leaves hanging. Checks replica choice
// (local first, least busy, never loading or lagging), per-shard timeouts and retries elsewhere,
// hedging after the latency percentile with the loser cancelled, the per-member call bound, a
// definite failure of the endpoint's code, and the reasons a skipped shard carries.

import { describe, expect, it } from 'vitest';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import { QueryError, type JsonValue } from '../../src/data/query-engine.ts';
import type { ShardReplica } from '../../src/query/database-directory.ts';
import {
  FanOut,
  type FanOutMetrics,
  fanOutLimitsDefault,
  percentile,
  ShardCallError,
  type FanOutLimits,
  type FanOutQuery,
  type ShardCall,
  type ShardOutcome,
  type ShardTarget,
} from '../../src/query/fan-out.ts';

class ManualClock {
  private now = 0;
  private next = 0;
  private readonly timers = new Map<number, { atMs: number; callback: () => void }>();

  nowMs = (): number => this.now;
  setTimer = (callback: () => void, delayMs: number): object => {
    const id = this.next++;
    this.timers.set(id, { atMs: this.now + delayMs, callback });
    return { id };
  };
  clearTimer = (handle: object): void => {
    this.timers.delete((handle as { id: number }).id);
  };

  /** Moves time forward, running each timer due on the way (in time order), settling promises between. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = [...this.timers.entries()]
        .filter(([, timer]) => timer.atMs <= end)
        .sort((a, b) => a[1].atMs - b[1].atMs || a[0] - b[0])[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.now = due[1].atMs;
      due[1].callback();
    }
    this.now = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await new Promise((resolve) => setImmediate(resolve));
}

interface Call {
  readonly node: NodeId;
  readonly shard: string;
  readonly signal: AbortSignal;
  answer(value: JsonValue): void;
  fail(error: Error): void;
}

/** A map port whose calls wait for the test (or answer at once through `auto`). */
class FakeMembers {
  readonly calls: Call[] = [];
  auto: ((node: NodeId, call: ShardCall) => JsonValue | Error | undefined) | undefined;

  map = (node: NodeId, call: ShardCall, signal: AbortSignal): Promise<JsonValue> =>
    new Promise((resolve, reject) => {
      const automatic = this.auto?.(node, call);
      if (automatic instanceof Error) {
        reject(automatic);
        return;
      }
      if (automatic !== undefined) {
        resolve(automatic);
        return;
      }
      const entry: Call = {
        node,
        shard: call.shard,
        signal,
        answer: (value) => {
          this.done.add(entry);
          resolve(value);
        },
        fail: (error) => {
          this.done.add(entry);
          reject(error);
        },
      };
      this.calls.push(entry);
    });

  private readonly done = new Set<Call>();

  /** Calls neither answered nor cancelled. */
  pending(): Call[] {
    return this.calls.filter((call) => !call.signal.aborted && !this.done.has(call));
  }

  find(node: number, shard: string): Call {
    const call = this.calls.find((candidate) => candidate.node === node && candidate.shard === shard);
    if (call === undefined) throw new Error(`no call of shard ${shard} to node ${node}`);
    return call;
  }
}

const n = (id: number): NodeId => asNodeId(id);
const loaded = (node: number, version = 'v1'): ShardReplica => ({ node: n(node), state: 'loaded', version });
const loading = (node: number): ShardReplica => ({ node: n(node), state: 'loading', version: 'v1' });

function setup(limits: Partial<FanOutLimits> = {}, self = 1) {
  const clock = new ManualClock();
  const members = new FakeMembers();
  /** What the fan-out reported to its metrics port, in order. */
  const reported: string[] = [];
  const metrics: FanOutMetrics = {
    fanOutStarted: (shards) => reported.push(`width ${shards}`),
    shardAnswered: (ms) => reported.push(`answered ${ms}`),
    shardSkipped: (reason) => reported.push(`skipped ${reason}`),
    shardRetried: () => reported.push('retry'),
    hedgeSent: () => reported.push('hedge sent'),
    hedgeWon: () => reported.push('hedge won'),
    partialAnswered: () => reported.push('partial'),
  };
  const fanOut = new FanOut({
    self: n(self),
    map: members.map,
    clock,
    limits: { ...fanOutLimitsDefault, hedgeAfterPercentile: 0, ...limits },
    metrics,
  });
  const run = (shards: ShardTarget[], options: Partial<FanOutQuery> = {}): Promise<ShardOutcome[]> =>
    fanOut.run({
      database: 'events',
      version: 'v1',
      endpoint: 'count',
      params: {},
      shards,
      signal: new AbortController().signal,
      failOnDefinite: false,
      ...options,
    });
  return { clock, members, fanOut, run, reported };
}

/** Resolves when `promise` has settled (for outcomes checked after advancing the clock). */
function track<T>(promise: Promise<T>): { readonly value: () => T | undefined; readonly error: () => unknown } {
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (result) => {
      value = result;
    },
    (reason: unknown) => {
      error = reason;
    },
  );
  return { value: () => value, error: () => error };
}

describe('fan-out', () => {
  it('maps every shard on one replica, the local one first, and answers in shard order', async () => {
    const { members, run, clock } = setup({}, 2);
    const outcome = track(
      run([
        { shard: '0', replicas: [loaded(1), loaded(2)] },
        { shard: '1', replicas: [loaded(3), loaded(1)] },
      ]),
    );
    await settle();
    expect(members.calls.map((call) => [call.shard, call.node])).toEqual([
      ['0', 2],
      ['1', 1],
    ]);
    await clock.advance(7);
    members.find(1, '1').answer(11);
    await clock.advance(5);
    members.find(2, '0').answer(10);
    await settle();
    expect(outcome.value()).toEqual([
      { shard: '0', node: 2, version: 'v1', ms: 12, result: 10, attempts: 1, hedged: false },
      { shard: '1', node: 1, version: 'v1', ms: 7, result: 11, attempts: 1, hedged: false },
    ]);
  });

  it('prefers the least busy member, then the lower id', async () => {
    const { members, run } = setup({}, 9);
    void run([{ shard: 'a', replicas: [loaded(3), loaded(2)] }]);
    await settle();
    expect(members.calls.at(-1)?.node).toBe(2);
    // Node 2 now has a call in flight: the next shard held by 2 and 3 goes to 3.
    void run([{ shard: 'b', replicas: [loaded(2), loaded(3)] }]);
    await settle();
    expect(members.calls.at(-1)?.node).toBe(3);
  });

  it('never asks a loading or lagging replica, and says why a shard without a usable one is skipped', async () => {
    const { members, run } = setup();
    members.auto = () => 1;
    const outcomes = await run([
      { shard: '0', replicas: [loading(1), loaded(2)] },
      { shard: '1', replicas: [loading(1), loaded(2, 'v0')] },
      { shard: '2', replicas: [loaded(2, 'v0'), { node: n(3), state: 'failed', version: 'v1' }] },
      { shard: '3', replicas: [{ node: n(3), state: 'failed', version: 'v1' }] },
      { shard: '4', replicas: [] },
      { shard: '5', replicas: [{ ...loaded(2), lagging: true }, loaded(3)] },
      { shard: '6', replicas: [{ ...loaded(2), lagging: true }] },
    ]);
    expect(outcomes.map((outcome) => ('skipped' in outcome ? outcome.skipped : outcome.node))).toEqual([
      2,
      'loading',
      'lagging',
      'unavailable',
      'unavailable',
      3,
      'lagging',
    ]);
    expect(members.calls).toEqual([]);
  });

  it('retries a failed shard on another replica; the coverage names who answered', async () => {
    const { members, run, fanOut, reported } = setup({}, 5);
    members.auto = (node) => (node === 1 ? new ShardCallError('unavailable', 'connection refused') : 42);
    const [outcome] = await run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]);
    expect(outcome).toMatchObject({ shard: '0', node: 2, result: 42, attempts: 2 });
    expect(fanOut.counters.retries).toBe(1);
    expect(reported).toEqual(['width 1', 'retry', 'answered 0']);
    // Both replicas refusing: the shard is skipped, and reported so.
    members.auto = () => new ShardCallError('unavailable', 'connection refused');
    await run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]);
    expect(reported.slice(3)).toEqual(['width 1', 'retry', 'skipped unavailable']);
  });

  it('times out a shard that does not answer, cancels the call and tries the next replica', async () => {
    const { members, run, clock } = setup({ shardTimeoutMs: 100 });
    const outcome = track(run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]));
    await clock.advance(99);
    expect(members.calls.map((call) => call.node)).toEqual([1]);
    await clock.advance(1);
    expect(members.find(1, '0').signal.aborted).toBe(true);
    expect(members.pending().map((call) => call.node)).toEqual([2]);
    await clock.advance(30);
    members.find(2, '0').answer('late but fine');
    await settle();
    expect(outcome.value()?.[0]).toMatchObject({ node: 2, ms: 130, result: 'late but fine', attempts: 2 });
  });

  it('skips a shard whose every replica times out, with the reason and a message', async () => {
    const { run, clock } = setup({ shardTimeoutMs: 100 });
    const outcome = track(run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]));
    await clock.advance(250);
    expect(outcome.value()).toEqual([
      { shard: '0', skipped: 'timeout', message: 'node 2 did not answer within 100 ms', attempts: 2 },
    ]);
  });

  it('stops after shardAttemptsMax attempts even with replicas left', async () => {
    const { members, run } = setup({ shardAttemptsMax: 2 });
    members.auto = () => new Error('boom');
    const [outcome] = await run([{ shard: '0', replicas: [loaded(1), loaded(2), loaded(3)] }]);
    expect(outcome).toEqual({ shard: '0', skipped: 'error', message: 'node 2: boom', attempts: 2 });
    expect(members.calls).toEqual([]);
  });

  it('asks a busy member again after a wait once no other replica is left, without spending attempts', async () => {
    const { members, run, clock } = setup({ busyRetryDelayMs: 10, busyRetriesMax: 3 }, 5);
    // Replica 1 is gone, replica 2 answers busy twice and then answers.
    let busyLeft = 2;
    members.auto = (node) =>
      node === 1
        ? new ShardCallError('unavailable', 'connection refused')
        : busyLeft-- > 0
          ? new ShardCallError('unavailable', 'DRAM_ERR_ENDPOINT_BUSY: 16 queries', true)
          : 7;
    const outcome = track(run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]));
    await clock.advance(9);
    expect(outcome.value()).toBeUndefined();
    // The first return after 10 ms, the second 20 ms later.
    await clock.advance(21);
    expect(outcome.value()).toEqual([
      { shard: '0', node: 2, version: 'v1', ms: 30, result: 7, attempts: 2, hedged: false },
    ]);
    // A member busy for longer than busyRetriesMax returns: skipped, with what it said.
    busyLeft = 100;
    const gaveUp = track(run([{ shard: '0', replicas: [loaded(2)] }]));
    await clock.advance(10 + 20 + 30);
    expect(gaveUp.value()).toEqual([
      { shard: '0', skipped: 'unavailable', message: 'node 2: DRAM_ERR_ENDPOINT_BUSY: 16 queries', attempts: 0 },
    ]);
  });

  it('skips with the member-side reason (loading, lagging) when the last replica gives one', async () => {
    const { members, run } = setup();
    members.auto = () => new ShardCallError('lagging', 'holds v0');
    const [outcome] = await run([{ shard: '0', replicas: [loaded(2)] }]);
    expect(outcome).toMatchObject({ skipped: 'lagging', message: 'node 2: holds v0' });
  });

  it("does not retry a failure of the endpoint's code; with failOnDefinite it fails the run and cancels the rest", async () => {
    const { members, run } = setup();
    const failed = new QueryError('DRAM_ERR_QUERY_FAILED', 'map on shard 0 threw: nope');
    const allowed = track(
      run([
        { shard: '0', replicas: [loaded(1), loaded(2)] },
        { shard: '1', replicas: [loaded(3)] },
      ]),
    );
    await settle();
    members.find(1, '0').fail(failed);
    members.find(3, '1').answer(1);
    await settle();
    expect(allowed.value()).toEqual([
      { shard: '0', skipped: 'error', message: 'map on shard 0 threw: nope', attempts: 1 },
      { shard: '1', node: 3, version: 'v1', ms: 0, result: 1, attempts: 1, hedged: false },
    ]);
    expect(members.calls.filter((call) => call.node === 2)).toEqual([]);

    const denied = track(
      run(
        [
          { shard: '0', replicas: [loaded(1)] },
          { shard: '1', replicas: [loaded(3)] },
        ],
        { failOnDefinite: true },
      ),
    );
    await settle();
    members.calls.at(-2)?.fail(failed);
    await settle();
    expect(denied.error()).toBe(failed);
    expect(members.calls.at(-1)?.signal.aborted).toBe(true);
  });

  it('hedges a slow call after the latency percentile; the first answer wins and the loser is cancelled', async () => {
    const { members, run, clock, fanOut, reported } = setup({ hedgeAfterPercentile: 90, hedgeSamplesMin: 10 });
    // Ten earlier calls of the endpoint took 1..10 ms: the 90th percentile is 9 ms.
    for (let ms = 1; ms <= 10; ms++) {
      const earlier = track(run([{ shard: 'x', replicas: [loaded(7)] }]));
      await clock.advance(ms);
      members.pending()[0]?.answer(ms);
      await settle();
      expect(earlier.value()).toBeDefined();
    }
    expect(fanOut.hedgeDelayMs('count')).toBe(9);
    const outcome = track(run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]));
    await clock.advance(8);
    expect(members.pending().map((call) => call.node)).toEqual([1]);
    await clock.advance(1);
    expect(members.pending().map((call) => call.node)).toEqual([1, 2]);
    await clock.advance(2);
    members.find(2, '0').answer('hedge');
    await settle();
    expect(outcome.value()?.[0]).toMatchObject({ node: 2, result: 'hedge', ms: 11, attempts: 2, hedged: true });
    expect(members.find(1, '0').signal.aborted).toBe(true);
    expect(fanOut.counters).toMatchObject({ hedgesSent: 1, hedgesWon: 1 });
    expect(reported.slice(-4)).toEqual(['width 1', 'hedge sent', 'hedge won', 'answered 11']);
  });

  it('does not hedge before hedgeSamplesMin latencies, nor without a second replica', async () => {
    const { members, run, clock, fanOut } = setup({ hedgeAfterPercentile: 50, hedgeSamplesMin: 2 });
    void run([{ shard: '0', replicas: [loaded(1), loaded(2)] }]);
    await clock.advance(1000);
    expect(members.calls.length).toBe(1);
    expect(fanOut.hedgeDelayMs('count')).toBeUndefined();
    members.find(1, '0').answer(0);
    for (let index = 0; index < 2; index++) {
      void run([{ shard: 's', replicas: [loaded(3)] }]);
      await settle();
      members.pending()[0]?.answer(0);
    }
    await settle();
    expect(fanOut.hedgeDelayMs('count')).toBeDefined();
    void run([{ shard: 'only', replicas: [loaded(4)] }]);
    await clock.advance(1000);
    expect(members.calls.filter((call) => call.shard === 'only').length).toBe(1);
  });

  it('bounds the calls in flight to one member; the others wait, and a full queue is unavailable', async () => {
    const { members, run, clock } = setup({ memberCallsMax: 2, memberQueueMax: 1 });
    const outcome = track(run(['0', '1', '2', '3'].map((shard) => ({ shard, replicas: [loaded(4)] }))));
    await settle();
    expect(members.calls.map((call) => call.shard)).toEqual(['0', '1']);
    members.find(4, '0').answer(0);
    await clock.advance(1);
    expect(members.calls.map((call) => call.shard)).toEqual(['0', '1', '2']);
    members.find(4, '1').answer(1);
    members.find(4, '2').answer(2);
    await settle();
    expect(outcome.value()?.map((shard) => ('skipped' in shard ? shard.skipped : shard.result))).toEqual([
      0,
      1,
      2,
      'unavailable',
    ]);
  });

  it('cancels every call when the query is stopped', async () => {
    const { members, run } = setup();
    const controller = new AbortController();
    const outcome = track(run([{ shard: '0', replicas: [loaded(1)] }], { signal: controller.signal }));
    await settle();
    controller.abort(new Error('caller gone'));
    await settle();
    expect(members.find(1, '0').signal.aborted).toBe(true);
    expect(outcome.value()?.[0]).toMatchObject({ skipped: 'error' });
  });

  it('takes the nearest-rank percentile', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 100)).toBe(5);
    expect(percentile([5, 1, 3, 2, 4], 1)).toBe(1);
  });
});
