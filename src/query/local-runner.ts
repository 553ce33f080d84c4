// Runs one query of an endpoint over the shards of a database that are on this member: `map` once
// per shard (at most shardParallelMax at once, each with a context over that shard's files and
// `ctx.sql` on the query engine), then `reduce` over the shards' answers in shard order, or, without
// `reduce`, the list of those answers. This is what `?scope=local` runs, and what a member runs
// for its own shards when a query fans out.
//
// Order of refusals, each before anything runs: an unknown endpoint (404), params that do not
// match the schema (400), the endpoint already at its concurrency limit (429). Then the query has
// the endpoint's timeout for everything; on timeout (or the caller's abort, or one shard failing)
// the query's AbortSignal fires, which interrupts every statement it runs, and the caller gets
// the error at once. The concurrency slot is held until the endpoint's code has really returned,
// so an endpoint stuck in JavaScript cannot exceed its limit by timing out repeatedly.
//
// Every shard's answer and the final answer go through JSON (stringify, bounded by
// answerBytesMax, then parse): `reduce` sees exactly what it would see after a trip over HTTP
// from another member, and a value that is not JSON (a BigInt, a cycle, a function, undefined) is
// DRAM_ERR_QUERY_FAILED here, not a surprise after fan-out.
//
// `runWith`, `mapShard` and `reduce` are the same steps for a query that fans out: the receiving
// member admits it once (one slot, one timeout), maps its own shards and reduces; `mapShards` is
// what a member runs when another member asks it for the answers of some of its shards.
//
// Called by: src/query/query-service.ts (the query routes), tests and the benchmark.

import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import { isQueryError, QueryError, type JsonValue, type QueryEngine, type SqlArgument } from '../data/query-engine.ts';
import type { LocalDatabase, LocalShard } from '../data/local-databases.ts';
import type { EndpointSet, LoadedEndpoint } from './endpoint-loader.ts';
import type { EndpointContext } from './endpoint-module.ts';

// A database's local files as the runner takes them are declared with the catalog that builds them
// (src/data/local-databases.ts), since the data layer may not import this one.
export type { LocalDatabase, LocalShard };

export interface LocalQuery {
  readonly endpoint: string;
  /** The request body as parsed JSON; undefined (no body) is `{}`. */
  readonly params: JsonValue | undefined;
  readonly database: LocalDatabase;
  /** The caller's: aborting stops the query (a client gone away). */
  readonly signal?: AbortSignal | undefined;
}

export interface ShardTiming {
  readonly shard: string;
  /** The shard's map, from its start to its answer. */
  readonly ms: number;
}

/** Whose queries a concurrency slot counts: this member's own, or the maps other members ask of it. */
export type SlotPool = 'queries' | 'maps';

function slotKey(name: string, pool: SlotPool): string {
  return pool === 'queries' ? name : `${name}\u0000maps`;
}

/** One shard's answer to map. */
export interface ShardAnswer extends ShardTiming {
  readonly result: JsonValue;
}

/** A query admitted by `runWith`: its endpoint, checked params, signal and how to stop it. */
export interface AdmittedQuery {
  readonly endpoint: LoadedEndpoint;
  readonly params: JsonValue;
  readonly signal: AbortSignal;
  readonly stop: (reason: QueryError) => void;
}

export interface LocalAnswer {
  readonly result: JsonValue;
  /** One per shard, in shard order. */
  readonly shards: readonly ShardTiming[];
}

export interface LocalRunnerLimits {
  /** Shards of one query whose map runs at once. */
  readonly shardParallelMax: number;
  /** One shard's answer, and the query's answer, as JSON text (UTF-8). */
  readonly answerBytesMax: number;
}

export const localRunnerLimitsDefault: LocalRunnerLimits = {
  shardParallelMax: 4,
  answerBytesMax: 16 * 1024 * 1024,
};

export interface LocalRunnerOptions {
  readonly endpoints: EndpointSet;
  readonly engine: QueryEngine;
  readonly limits?: LocalRunnerLimits;
  readonly nowMs?: () => number;
}

/** `value` through JSON, refusing what is not JSON or is over `bytesMax`. */
export function throughJson(value: unknown, bytesMax: number, what: string): JsonValue {
  // JSON.stringify answers undefined for undefined, functions and symbols; its type says string.
  const stringify = JSON.stringify as (value: unknown) => string | undefined;
  let text: string | undefined;
  try {
    text = stringify(value);
  } catch (error) {
    throw new QueryError('DRAM_ERR_QUERY_FAILED', `${what} is not JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw new QueryError('DRAM_ERR_QUERY_FAILED', `${what} is not JSON (${typeof value})`);
  if (Buffer.byteLength(text) > bytesMax)
    throw new QueryError('DRAM_ERR_ANSWER_TOO_LARGE', `${what} is larger than ${bytesMax} bytes of JSON`, {
      bytesMax,
    });
  return JSON.parse(text) as JsonValue;
}

/** A failure inside the endpoint's code or its SQL, with where it happened. */
function failure(error: unknown, where: string): QueryError {
  if (isQueryError(error)) return new QueryError(error.code, `${where}: ${error.message}`, error.details);
  const message = error instanceof Error ? error.message : String(error);
  return new QueryError('DRAM_ERR_QUERY_FAILED', `${where} threw: ${message}`);
}

export class LocalRunner {
  private readonly endpoints: EndpointSet;
  private readonly engine: QueryEngine;
  private readonly limits: LocalRunnerLimits;
  private readonly nowMs: () => number;
  private readonly active = new Map<string, number>();

  constructor(options: LocalRunnerOptions) {
    this.endpoints = options.endpoints;
    this.engine = options.engine;
    this.limits = options.limits ?? localRunnerLimitsDefault;
    this.nowMs = options.nowMs ?? (() => performance.now());
    for (const [name, value] of Object.entries(this.limits))
      assert(Number.isSafeInteger(value) && value > 0, `local runner: ${name} must be a positive integer`);
  }

  /** The endpoint of this name, if loaded: the route's 404 before it looks at the database. */
  endpoint(name: string): LoadedEndpoint | undefined {
    return this.endpoints.get(name);
  }

  /** Queries of this endpoint holding a concurrency slot now (in `pool`: this member's own, or maps for others). */
  running(name: string, pool: SlotPool = 'queries'): number {
    return this.active.get(slotKey(name, pool)) ?? 0;
  }

  async run(query: LocalQuery): Promise<LocalAnswer> {
    return this.runWith(query, (admitted) => this.runAdmitted(admitted, query.database));
  }

  /**
   * Runs map on every shard of `query.database` and answers the shards' answers, without reduce:
   * what another member asks of this one. Its slots are counted apart from this member's own
   * queries (same limit), so neither can starve the other.
   */
  async mapShards(query: LocalQuery): Promise<readonly ShardAnswer[]> {
    return this.runWith(query, (admitted) => this.mapAll(admitted, query.database), 'maps');
  }

  /** Map over every shard of `database`, then reduce, inside a query `runWith` admitted. */
  async runAdmitted(admitted: AdmittedQuery, database: LocalDatabase): Promise<LocalAnswer> {
    const mapped = await this.mapAll(admitted, database);
    const partials = mapped.map((answer) => answer.result);
    const timings = mapped.map(({ shard, ms }) => ({ shard, ms }));
    return { result: await this.reduce(admitted.endpoint, partials, admitted.params), shards: timings };
  }

  /**
   * Admits one query of an endpoint (an unknown endpoint 404, params 400, a full endpoint 429,
   * each before anything runs), then runs `work` under the endpoint's timeout and concurrency
   * slot. `work` gets the checked params and the query's signal, which fires on timeout, on the
   * caller's abort or when `stop` is called; the caller gets the error at once.
   */
  async runWith<T>(
    query: Pick<LocalQuery, 'endpoint' | 'params' | 'signal'>,
    work: (admitted: AdmittedQuery) => Promise<T>,
    pool: SlotPool = 'queries',
  ): Promise<T> {
    const endpoint = this.endpoints.get(query.endpoint);
    if (endpoint === undefined)
      throw new QueryError('DRAM_ERR_UNKNOWN_ENDPOINT', `no endpoint named "${query.endpoint}" is loaded`);
    const check = endpoint.validateParams(query.params ?? {});
    if (check.kind === 'invalid')
      throw new QueryError('DRAM_ERR_INVALID_PARAMS', check.message, { errors: check.errors });
    const key = slotKey(endpoint.name, pool);
    const running = this.running(endpoint.name, pool);
    if (running >= endpoint.concurrencyMax)
      throw new QueryError('DRAM_ERR_ENDPOINT_BUSY', `endpoint "${endpoint.name}" already runs ${running} queries`, {
        concurrencyMax: endpoint.concurrencyMax,
      });
    this.active.set(key, running + 1);

    const controller = new AbortController();
    const stop = (reason: QueryError): void => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const timer = setTimeout(() => {
      stop(
        new QueryError(
          'DRAM_ERR_QUERY_TIMEOUT',
          `endpoint "${endpoint.name}" ran longer than ${endpoint.timeoutMs} ms`,
          {
            timeoutMs: endpoint.timeoutMs,
          },
        ),
      );
    }, endpoint.timeoutMs);
    const onCallerAbort = (): void => {
      const reason: unknown = query.signal?.reason;
      stop(isQueryError(reason) ? reason : new QueryError('DRAM_ERR_QUERY_TIMEOUT', 'the caller stopped the query'));
    };
    query.signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (query.signal?.aborted === true) onCallerAbort();

    const work$ = work({ endpoint, params: check.params, signal: controller.signal, stop });
    // The slot is freed when the endpoint's code has returned, not when the caller is answered.
    void work$
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        query.signal?.removeEventListener('abort', onCallerAbort);
        const left = this.running(endpoint.name, pool) - 1;
        if (left > 0) this.active.set(key, left);
        else this.active.delete(key);
      });
    return Promise.race([work$, stopped(controller.signal)]);
  }

  /** One shard's map, its answer through JSON; a failure is a QueryError saying where. No slot taken. */
  async mapShard(
    admitted: Pick<AdmittedQuery, 'endpoint' | 'params' | 'signal'>,
    database: LocalDatabase,
    shard: LocalShard,
  ): Promise<JsonValue> {
    const { endpoint, params, signal } = admitted;
    try {
      const answer = await endpoint.map(this.context(database, shard, signal), params);
      return throughJson(answer, this.limits.answerBytesMax, `the answer of map on shard ${shard.shard}`);
    } catch (error) {
      if (signal.aborted && isQueryError(signal.reason)) throw signal.reason;
      throw failure(error, `map on shard ${shard.shard}`);
    }
  }

  /** `reduce` over the partials (in shard order), or the list of them without one, through JSON. */
  async reduce(endpoint: LoadedEndpoint, partials: JsonValue[], params: JsonValue): Promise<JsonValue> {
    const { answerBytesMax } = this.limits;
    if (endpoint.reduce === undefined) return throughJson(partials, answerBytesMax, 'the list of the shards’ answers');
    try {
      const reduced = await endpoint.reduce(partials, params);
      return throughJson(reduced, answerBytesMax, 'the answer of reduce');
    } catch (error) {
      throw failure(error, 'reduce');
    }
  }

  /** Every shard's map, at most shardParallelMax at once; the first failure stops the others. */
  async mapAll(admitted: AdmittedQuery, database: LocalDatabase): Promise<ShardAnswer[]> {
    const { signal, stop } = admitted;
    const answers: ShardAnswer[] = [];
    const mapOne = async (at: number, shard: LocalShard): Promise<void> => {
      const started = this.nowMs();
      try {
        const result = await this.mapShard(admitted, database, shard);
        answers[at] = { shard: shard.shard, result, ms: this.nowMs() - started };
      } catch (error) {
        stop(error as QueryError);
        throw error;
      }
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < database.shards.length && !signal.aborted) {
        const at = next++;
        const shard = database.shards[at];
        if (shard !== undefined) await mapOne(at, shard);
      }
    };
    // allSettled, not all: after one shard fails, wait for the others' code to return too.
    const outcomes = await Promise.allSettled(
      Array.from({ length: Math.min(this.limits.shardParallelMax, database.shards.length) }, worker),
    );
    if (signal.aborted) throw signal.reason as QueryError;
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason as QueryError;
    return answers;
  }

  private context(database: LocalDatabase, shard: LocalShard, signal: AbortSignal): EndpointContext {
    const engine = this.engine;
    return {
      database: database.name,
      version: database.version,
      shard: shard.shard,
      dir: shard.dir,
      files: shard.files,
      globalDir: database.globalDir,
      globalFiles: database.globalFiles,
      sql: (text: string, ...args: SqlArgument[]) => engine.sql({ text, args, signal }),
      signal,
    };
  }
}

/** Rejects with the signal's reason once it fires. */
function stopped(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fire = (): void => {
      reject(signal.reason as Error);
    };
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
  });
}
