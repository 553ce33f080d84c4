// Scatter and gather of one query's maps over the cluster: for every shard asked for, `map` runs on
// one replica, and each shard ends either answered (by which member, at which version, in how many
// ms, with its answer) or skipped with the reason (`unavailable`, `timeout`, `loading`, `lagging`,
// `error` with its message). Reduce and the partial policy are the caller's (query-service.ts).
//
// Per shard:
//  - only replicas `loaded` at the query's version and not marked lagging are candidates; without
//    one the shard is skipped at once (`loading` when a replica is loading, else `lagging` when one
//    is loaded at another version or marked lagging, else `unavailable`);
//  - candidates are tried local member first, then the least busy member (calls in flight and
//    queued from this member, across queries), then the lower node id;
//  - each attempt has `shardTimeoutMs`; an attempt that fails or times out is cancelled and the
//    shard is tried on the next candidate, at most `shardAttemptsMax` attempts in all;
//  - once the endpoint has `hedgeSamplesMin` latencies recorded, an attempt still running after
//    the `hedgeAfterPercentile` latency gets a hedge on the next candidate; the first answer wins
//    and the other call is cancelled (maps are read-only, so running one twice is safe);
//  - a failure of the endpoint's own code (DRAM_ERR_QUERY_FAILED, _QUERY_MEMORY,
//    _ANSWER_TOO_LARGE) would fail the same way elsewhere: it is not retried, and with
//    `failOnDefinite` it fails the whole run (every other call cancelled);
//  - a member that answers busy (its slots for the endpoint are full) has run nothing: that is not
//    an attempt, and once no other replica is left the busy ones are asked again after a short
//    wait, at most `busyRetriesMax` times, so a burst of queries waits rather than answering partial.
// Calls to one member are bounded (`memberCallsMax` in flight, `memberQueueMax` waiting, more is
// refused as `unavailable` for that attempt), so one query cannot flood a member.
//
// Time comes only through the clock port and calls only through the map port, so the unit tests
// drive timeouts, retries and hedges deterministically.
//
// Called by: src/query/query-service.ts. Ports implemented by: src/api/query-routes.ts (remote
// calls over HTTP), query-service.ts (this member's shards), tests (fakes).

import { setMaxListeners } from 'node:events';
import { assert } from '../base/assert.ts';
import type { NodeId } from '../base/ids.ts';
import { isQueryError, type JsonValue, type QueryError } from '../data/query-engine.ts';
import type { TimerHandle } from '../multiraft/ports.ts';
import type { ShardReplica } from './database-directory.ts';

export type SkipReason = 'unavailable' | 'timeout' | 'loading' | 'lagging' | 'error';

/** One shard's map, as sent to a member. */
export interface ShardCall {
  readonly database: string;
  readonly version: string;
  readonly endpoint: string;
  readonly params: JsonValue;
  readonly shard: string;
}

/**
 * Runs one shard's map on a member and resolves to its answer. Rejects with a QueryError for a
 * failure of the endpoint's code, or a ShardCallError saying why the member could not answer;
 * aborting `signal` cancels the call (it may then reject with anything).
 */
export type MapPort = (node: NodeId, call: ShardCall, signal: AbortSignal) => Promise<JsonValue>;

export interface FanOutClock {
  nowMs(): number;
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Why a member could not answer a shard (not a failure of the endpoint's code). */
export class ShardCallError extends Error {
  override readonly name = 'ShardCallError';
  readonly reason: Exclude<SkipReason, 'timeout'>;
  /** The member refused for now (its slots for this endpoint are full): asking it again later may work. */
  readonly busy: boolean;

  constructor(reason: Exclude<SkipReason, 'timeout'>, message: string, busy = false) {
    super(message);
    this.reason = reason;
    this.busy = busy;
  }
}

export interface FanOutLimits {
  /** One attempt at one shard on one member, queueing for the member included. */
  readonly shardTimeoutMs: number;
  /** Attempts at one shard, hedges and retries included. */
  readonly shardAttemptsMax: number;
  /** Hedge after this percentile (1-100) of the endpoint's recent latencies; 0 turns hedging off. */
  readonly hedgeAfterPercentile: number;
  /** Latencies an endpoint needs before its calls are hedged. */
  readonly hedgeSamplesMin: number;
  /** Latencies kept per endpoint (the most recent). */
  readonly latencySamplesMax: number;
  /** Calls from this member to one member in flight at once. */
  readonly memberCallsMax: number;
  /** Calls waiting for one member; one more is refused (`unavailable`). */
  readonly memberQueueMax: number;
  /** Times one shard goes back to members that answered busy, once no other replica is left to try. */
  readonly busyRetriesMax: number;
  /** Wait before the n-th such return: n times this. */
  readonly busyRetryDelayMs: number;
}

export const fanOutLimitsDefault: FanOutLimits = {
  shardTimeoutMs: 10_000,
  shardAttemptsMax: 3,
  hedgeAfterPercentile: 95,
  hedgeSamplesMin: 20,
  latencySamplesMax: 256,
  memberCallsMax: 8,
  memberQueueMax: 4096,
  busyRetriesMax: 20,
  busyRetryDelayMs: 20,
};

export interface ShardTarget {
  readonly shard: string;
  readonly replicas: readonly ShardReplica[];
}

export interface FanOutQuery {
  readonly database: string;
  readonly version: string;
  readonly endpoint: string;
  readonly params: JsonValue;
  /** In shard order. */
  readonly shards: readonly ShardTarget[];
  /** The query's: aborting cancels every call. */
  readonly signal: AbortSignal;
  /** A failure of the endpoint's code on any shard rejects the run with it (partial=deny). */
  readonly failOnDefinite: boolean;
  /** This query's calls go through this port instead of the fan-out's own (a client keeps per-query state in it). */
  readonly map?: MapPort | undefined;
}

export type ShardOutcome =
  | {
      readonly shard: string;
      readonly node: NodeId;
      readonly version: string;
      readonly ms: number;
      readonly result: JsonValue;
      readonly attempts: number;
      /** The answer came from a hedge (a second call sent while the first still ran). */
      readonly hedged: boolean;
    }
  | { readonly shard: string; readonly skipped: SkipReason; readonly message?: string; readonly attempts: number };

export function isAnswered(outcome: ShardOutcome): outcome is Extract<ShardOutcome, { result: JsonValue }> {
  return 'result' in outcome;
}

/** Codes of failures of the endpoint's own code: the same on every replica, so never retried. */
const definiteCodes: ReadonlySet<string> = new Set([
  'DRAM_ERR_QUERY_FAILED',
  'DRAM_ERR_QUERY_MEMORY',
  'DRAM_ERR_ANSWER_TOO_LARGE',
]);

export function isDefiniteFailure(error: unknown): error is QueryError {
  return isQueryError(error) && definiteCodes.has(error.code);
}

/** The p-th percentile (nearest rank) of `samples`. */
export function percentile(samples: readonly number[], p: number): number {
  assert(samples.length > 0 && p > 0 && p <= 100, 'percentile: samples and 0 < p <= 100');
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Why no replica of a shard can be asked, from the replicas' states. */
function noCandidateReason(replicas: readonly ShardReplica[], version: string): SkipReason {
  if (replicas.some((replica) => replica.state === 'loading')) return 'loading';
  if (
    replicas.some((replica) => replica.state === 'loaded' && (replica.version !== version || replica.lagging === true))
  )
    return 'lagging';
  return 'unavailable';
}

interface Waiter {
  readonly grant: () => void;
}

/**
 * What the fan-out reports as it runs (src/metrics/ implements it, reached through the API's
 * metrics port; the smart client runs without one).
 */
export interface FanOutMetrics {
  /** A run over `shards` shards started (the fan-out's width). */
  fanOutStarted(shards: number): void;
  /** One shard answered, `ms` from its first attempt to its answer (retries and queueing included). */
  shardAnswered(ms: number): void;
  /** One shard ended without an answer. */
  shardSkipped(reason: SkipReason): void;
  /** An attempt started after a failed or timed-out one. */
  shardRetried(): void;
  hedgeSent(): void;
  /** A hedge answered first. */
  hedgeWon(): void;
  /** A query answered under partial=allow with some shards missing. */
  partialAnswered(): void;
}

export interface FanOutCounters {
  /** Attempts started after a failed or timed-out one. */
  retries: number;
  hedgesSent: number;
  /** Hedges that answered first. */
  hedgesWon: number;
}

/** One per member process: the per-member call bounds and the latency history span queries. */

/** One shard's attempts while they run: who was asked, who is still running, how it ends. */
interface ShardRun {
  readonly query: FanOutQuery;
  readonly target: ShardTarget;
  readonly candidates: readonly NodeId[];
  readonly startedMs: number;
  readonly tried: Set<NodeId>;
  readonly running: Map<NodeId, AbortController>;
  attempts: number;
  last: { reason: SkipReason; message: string };
  hedgeTimer: TimerHandle | undefined;
  /** Members that answered busy, tried again after a wait once no other replica is left. */
  readonly busy: Set<NodeId>;
  busyRetries: number;
  busyTimer: TimerHandle | undefined;
  settled: boolean;
  readonly settle: (outcome: ShardOutcome | { error: QueryError }) => void;
}

export class FanOut {
  private readonly self: NodeId;
  private readonly map: MapPort;
  private readonly clock: FanOutClock;
  private readonly limits: FanOutLimits;
  private readonly inFlight = new Map<NodeId, number>();
  private readonly queues = new Map<NodeId, Waiter[]>();
  private readonly latencies = new Map<string, number[]>();
  readonly counters: FanOutCounters = { retries: 0, hedgesSent: 0, hedgesWon: 0 };

  private readonly metrics: FanOutMetrics | undefined;

  constructor(options: {
    self: NodeId;
    map: MapPort;
    clock: FanOutClock;
    limits?: FanOutLimits;
    metrics?: FanOutMetrics | undefined;
  }) {
    this.self = options.self;
    this.metrics = options.metrics;
    this.map = options.map;
    this.clock = options.clock;
    this.limits = options.limits ?? fanOutLimitsDefault;
    for (const [name, value] of Object.entries(this.limits))
      assert(Number.isSafeInteger(value) && value >= 0, `fan-out: ${name} must be a non-negative integer`);
    assert(this.limits.hedgeAfterPercentile <= 100, 'fan-out: hedgeAfterPercentile is at most 100');
    assert(this.limits.shardAttemptsMax >= 1 && this.limits.memberCallsMax >= 1, 'fan-out: attempts and calls >= 1');
  }

  /** Calls in flight and waiting from this member to `node`. */
  load(node: NodeId): number {
    return (this.inFlight.get(node) ?? 0) + (this.queues.get(node)?.length ?? 0);
  }

  /** The delay after which an attempt of `endpoint` is hedged, or undefined (off, or too few samples). */
  hedgeDelayMs(endpoint: string): number | undefined {
    const samples = this.latencies.get(endpoint) ?? [];
    const { hedgeAfterPercentile, hedgeSamplesMin } = this.limits;
    if (hedgeAfterPercentile === 0 || samples.length === 0 || samples.length < hedgeSamplesMin) return undefined;
    return percentile(samples, hedgeAfterPercentile);
  }

  /** Every shard's outcome, in the order of `query.shards`. */
  async run(query: FanOutQuery): Promise<ShardOutcome[]> {
    const stopAll = new AbortController();
    // One listener per shard of the run (at most shardsListedMax): not a leak.
    setMaxListeners(query.shards.length + 16, stopAll.signal);
    const onQueryAbort = (): void => {
      stopAll.abort(query.signal.reason);
    };
    query.signal.addEventListener('abort', onQueryAbort, { once: true });
    if (query.signal.aborted) onQueryAbort();
    this.metrics?.fanOutStarted(query.shards.length);
    let definite: QueryError | undefined;
    try {
      const outcomes = await Promise.all(
        query.shards.map((target) =>
          this.runShard(query, target, stopAll.signal).catch((error: unknown) => {
            // Only a definite failure with failOnDefinite rejects a shard: stop every other call.
            definite ??= error as QueryError;
            stopAll.abort(error);
            return { shard: target.shard, skipped: 'error', message: (error as Error).message, attempts: 0 } as const;
          }),
        ),
      );
      if (definite !== undefined) throw definite;
      return outcomes;
    } finally {
      query.signal.removeEventListener('abort', onQueryAbort);
    }
  }

  private candidates(target: ShardTarget, version: string): NodeId[] {
    return target.replicas
      .filter((replica) => replica.state === 'loaded' && replica.version === version && replica.lagging !== true)
      .map((replica) => replica.node)
      .filter((node, at, nodes) => nodes.indexOf(node) === at);
  }

  /** The next member to ask: local first, then the least busy, then the lowest id. */
  private pick(candidates: readonly NodeId[], tried: ReadonlySet<NodeId>): NodeId | undefined {
    let best: NodeId | undefined;
    const rank = (node: NodeId): [number, number, number] => [node === this.self ? 0 : 1, this.load(node), node];
    for (const node of candidates) {
      if (tried.has(node)) continue;
      if (best === undefined) {
        best = node;
        continue;
      }
      const [a, b] = [rank(node), rank(best)];
      if (a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])))) best = node;
    }
    return best;
  }

  private runShard(query: FanOutQuery, target: ShardTarget, stopAll: AbortSignal): Promise<ShardOutcome> {
    const candidates = this.candidates(target, query.version);
    if (candidates.length === 0)
      return Promise.resolve({
        shard: target.shard,
        skipped: noCandidateReason(target.replicas, query.version),
        attempts: 0,
      });
    return new Promise<ShardOutcome>((resolve, reject) => {
      const run: ShardRun = {
        query,
        target,
        candidates,
        startedMs: this.clock.nowMs(),
        tried: new Set<NodeId>(),
        running: new Map<NodeId, AbortController>(),
        attempts: 0,
        last: { reason: 'unavailable', message: 'no attempt' },
        hedgeTimer: undefined,
        busy: new Set<NodeId>(),
        busyRetries: 0,
        busyTimer: undefined,
        settled: false,
        settle: (outcome) => {
          if (run.settled) return;
          run.settled = true;
          if (run.hedgeTimer !== undefined) this.clock.clearTimer(run.hedgeTimer);
          if (run.busyTimer !== undefined) this.clock.clearTimer(run.busyTimer);
          stopAll.removeEventListener('abort', onStopAll);
          for (const controller of run.running.values()) controller.abort(new ShardCallError('error', 'cancelled'));
          run.running.clear();
          if ('error' in outcome) reject(outcome.error);
          else resolve(outcome);
          if ('skipped' in outcome) this.metrics?.shardSkipped(outcome.skipped);
          else if ('result' in outcome) this.metrics?.shardAnswered(outcome.ms);
        },
      };
      const onStopAll = (): void => {
        run.settle({ shard: target.shard, skipped: 'error', message: 'the query was stopped', attempts: run.attempts });
      };
      stopAll.addEventListener('abort', onStopAll, { once: true });
      if (stopAll.aborted) {
        onStopAll();
        return;
      }
      this.launch(run, false);
      const hedgeDelayMs = this.hedgeDelayMs(query.endpoint);
      if (hedgeDelayMs !== undefined && candidates.length > 1)
        run.hedgeTimer = this.clock.setTimer(() => {
          run.hedgeTimer = undefined;
          if (!run.settled && run.running.size === 1) this.launch(run, true);
        }, hedgeDelayMs);
    });
  }

  /** Asks the next replica of `run`'s shard (a hedge beside a running attempt, or after a failed one). */
  private launch(run: ShardRun, hedge: boolean): boolean {
    const node = this.pick(run.candidates, run.tried);
    if (node === undefined || run.attempts >= this.limits.shardAttemptsMax) return false;
    run.attempts++;
    if (hedge) {
      this.counters.hedgesSent++;
      this.metrics?.hedgeSent();
    } else if (run.attempts > 1) {
      this.counters.retries++;
      this.metrics?.shardRetried();
    }
    run.tried.add(node);
    const controller = new AbortController();
    run.running.set(node, controller);
    const callStartedMs = this.clock.nowMs();
    const timeout = this.clock.setTimer(() => {
      controller.abort(new ShardCallError('error', 'timed out'));
    }, this.limits.shardTimeoutMs);
    const { query, target } = run;
    const call: ShardCall = {
      database: query.database,
      version: query.version,
      endpoint: query.endpoint,
      params: query.params,
      shard: target.shard,
    };
    // A timed-out or cancelled attempt ends now, whether or not the port's call has returned yet.
    Promise.race([this.callMember(node, call, controller.signal, query.map), aborted(controller.signal)]).then(
      (result) => {
        this.clock.clearTimer(timeout);
        if (run.settled) return;
        run.running.delete(node);
        const nowMs = this.clock.nowMs();
        this.recordLatency(query.endpoint, nowMs - callStartedMs);
        if (hedge) {
          this.counters.hedgesWon++;
          this.metrics?.hedgeWon();
        }
        run.settle({
          shard: target.shard,
          node,
          version: query.version,
          ms: nowMs - run.startedMs,
          result,
          attempts: run.attempts,
          hedged: hedge,
        });
      },
      (error: unknown) => {
        this.clock.clearTimer(timeout);
        if (run.settled) return;
        run.running.delete(node);
        this.attemptFailed(run, node, controller.signal, error);
      },
    );
    return true;
  }

  /** An attempt on `node` failed: a definite failure ends the shard, anything else tries another replica. */
  private attemptFailed(run: ShardRun, node: NodeId, signal: AbortSignal, error: unknown): void {
    const { query, target } = run;
    if (isDefiniteFailure(error)) {
      if (query.failOnDefinite) run.settle({ error });
      else run.settle({ shard: target.shard, skipped: 'error', message: error.message, attempts: run.attempts });
      return;
    }
    run.last = signal.aborted
      ? { reason: 'timeout', message: `node ${node} did not answer within ${this.limits.shardTimeoutMs} ms` }
      : error instanceof ShardCallError
        ? { reason: error.reason, message: `node ${node}: ${error.message}` }
        : { reason: 'error', message: `node ${node}: ${error instanceof Error ? error.message : String(error)}` };
    // A busy member refused before running anything: not an attempt; it may be asked again later.
    if (error instanceof ShardCallError && error.busy) {
      run.attempts--;
      run.busy.add(node);
    }
    if (run.running.size > 0 || this.launch(run, false) || this.retryBusy(run)) return;
    run.settle({ shard: target.shard, skipped: run.last.reason, message: run.last.message, attempts: run.attempts });
  }

  /**
   * No replica is left to try but some answered busy: asks them again after a wait growing with
   * each return, at most `busyRetriesMax` times per shard (the query's own timeout bounds it too).
   */
  private retryBusy(run: ShardRun): boolean {
    if (run.busy.size === 0 || run.busyRetries >= this.limits.busyRetriesMax || run.busyTimer !== undefined)
      return false;
    run.busyRetries++;
    run.busyTimer = this.clock.setTimer(() => {
      run.busyTimer = undefined;
      if (run.settled) return;
      for (const node of run.busy) run.tried.delete(node);
      run.busy.clear();
      if (this.launch(run, false)) return;
      run.settle({
        shard: run.target.shard,
        skipped: run.last.reason,
        message: run.last.message,
        attempts: run.attempts,
      });
    }, this.limits.busyRetryDelayMs * run.busyRetries);
    return true;
  }

  private recordLatency(endpoint: string, ms: number): void {
    let samples = this.latencies.get(endpoint);
    if (samples === undefined) {
      samples = [];
      this.latencies.set(endpoint, samples);
    }
    samples.push(ms);
    if (samples.length > this.limits.latencySamplesMax) samples.shift();
  }

  /** The call, once the member has a free slot; a full queue refuses it as `unavailable`. */
  private async callMember(
    node: NodeId,
    call: ShardCall,
    signal: AbortSignal,
    map: MapPort | undefined,
  ): Promise<JsonValue> {
    await this.acquire(node, signal);
    try {
      return await (map ?? this.map)(node, call, signal);
    } finally {
      this.release(node);
    }
  }

  private acquire(node: NodeId, signal: AbortSignal): Promise<void> {
    const inFlight = this.inFlight.get(node) ?? 0;
    if (inFlight < this.limits.memberCallsMax) {
      this.inFlight.set(node, inFlight + 1);
      return Promise.resolve();
    }
    const queue = this.queues.get(node) ?? [];
    if (queue.length >= this.limits.memberQueueMax)
      return Promise.reject(new ShardCallError('unavailable', `${queue.length} calls already wait for this member`));
    this.queues.set(node, queue);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** Hands the slot to the next waiter, or frees it. */
  private release(node: NodeId): void {
    const next = this.queues.get(node)?.shift();
    if (next !== undefined) {
      next.grant();
      return;
    }
    const left = (this.inFlight.get(node) ?? 1) - 1;
    if (left > 0) this.inFlight.set(node, left);
    else this.inFlight.delete(node);
    if (this.queues.get(node)?.length === 0) this.queues.delete(node);
  }
}

/** Rejects with the signal's reason once it fires. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fire = (): void => {
      reject(signal.reason as Error);
    };
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
  });
}
