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
// Called by: the query route (src/api/, with `?scope=local`), tests and the benchmark.

import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import { isQueryError, QueryError, type JsonValue, type QueryEngine, type SqlArgument } from '../data/query-engine.ts';
import type { EndpointSet, LoadedEndpoint } from './endpoint-loader.ts';
import type { EndpointContext } from './endpoint-module.ts';

export interface LocalShard {
  /** The id from the shard's folder name, `shard=<id>`. */
  readonly shard: string;
  readonly dir: string;
  /** Absolute paths of the shard's files, complete on disk. */
  readonly files: readonly string[];
}

export interface LocalDatabase {
  readonly name: string;
  readonly version: string;
  readonly globalDir: string | undefined;
  readonly globalFiles: readonly string[];
  /** In shard order: the order of the answers handed to reduce. */
  readonly shards: readonly LocalShard[];
}

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

  /** Queries of this endpoint holding a concurrency slot now. */
  running(name: string): number {
    return this.active.get(name) ?? 0;
  }

  async run(query: LocalQuery): Promise<LocalAnswer> {
    const endpoint = this.endpoints.get(query.endpoint);
    if (endpoint === undefined)
      throw new QueryError('DRAM_ERR_UNKNOWN_ENDPOINT', `no endpoint named "${query.endpoint}" is loaded`);
    const check = endpoint.validateParams(query.params ?? {});
    if (check.kind === 'invalid')
      throw new QueryError('DRAM_ERR_INVALID_PARAMS', check.message, { errors: check.errors });
    const running = this.running(endpoint.name);
    if (running >= endpoint.concurrencyMax)
      throw new QueryError('DRAM_ERR_ENDPOINT_BUSY', `endpoint "${endpoint.name}" already runs ${running} queries`, {
        concurrencyMax: endpoint.concurrencyMax,
      });
    this.active.set(endpoint.name, running + 1);

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

    const work = this.mapReduce(endpoint, check.params, query.database, controller.signal, stop);
    // The slot is freed when the endpoint's code has returned, not when the caller is answered.
    void work
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        query.signal?.removeEventListener('abort', onCallerAbort);
        const left = this.running(endpoint.name) - 1;
        if (left > 0) this.active.set(endpoint.name, left);
        else this.active.delete(endpoint.name);
      });
    return Promise.race([work, stopped(controller.signal)]);
  }

  private async mapReduce(
    endpoint: LoadedEndpoint,
    params: JsonValue,
    database: LocalDatabase,
    signal: AbortSignal,
    stop: (reason: QueryError) => void,
  ): Promise<LocalAnswer> {
    const { answerBytesMax, shardParallelMax } = this.limits;
    const partials: JsonValue[] = [];
    const timings: ShardTiming[] = [];
    const mapShard = async (at: number, shard: LocalShard): Promise<void> => {
      const started = this.nowMs();
      try {
        const answer = await endpoint.map(this.context(database, shard, signal), params);
        partials[at] = throughJson(answer, answerBytesMax, `the answer of map on shard ${shard.shard}`);
      } catch (error) {
        const reason =
          signal.aborted && isQueryError(signal.reason) ? signal.reason : failure(error, `map on shard ${shard.shard}`);
        stop(reason);
        throw reason;
      }
      timings[at] = { shard: shard.shard, ms: this.nowMs() - started };
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < database.shards.length && !signal.aborted) {
        const at = next++;
        const shard = database.shards[at];
        if (shard !== undefined) await mapShard(at, shard);
      }
    };
    // allSettled, not all: after one shard fails, wait for the others' code to return too.
    const outcomes = await Promise.allSettled(
      Array.from({ length: Math.min(shardParallelMax, database.shards.length) }, worker),
    );
    if (signal.aborted) throw signal.reason as QueryError;
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason as QueryError;
    if (endpoint.reduce === undefined)
      return { result: throughJson(partials, answerBytesMax, 'the list of the shards’ answers'), shards: timings };
    try {
      const reduced = await endpoint.reduce(partials, params);
      return { result: throughJson(reduced, answerBytesMax, 'the answer of reduce'), shards: timings };
    } catch (error) {
      throw failure(error, 'reduce');
    }
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
