// The smart query client: runs a query over a sharded database without a member fanning it out.
// It learns the shard map from any member (`GET /v1/databases` for the name or alias and its
// current version, `GET /v1/databases/:name/shards` for each shard's members and load states,
// `GET /v1/admin/members` for their HTTP addresses), sends each shard's `map` straight to one of
// its members (`POST /v1/databases/:name/map/:endpoint` with the user's token, never the cluster
// secret), and reduces: itself, with the endpoint's `reduce` when the caller hands it the endpoint
// module, else by asking a member (`POST /v1/endpoints/:endpoint/reduce`).
//
// The policies are the member's own, from the same code: the fan-out (src/query/fan-out.ts:
// candidates loaded at the query's version, the least busy first, per-shard timeout, retry on
// another replica, hedging after a latency percentile, bounded calls per member), the coverage
// and the partial policy (src/query/coverage.ts: under `deny` a missing shard is
// DRAM_ERR_PARTIAL with the coverage, never a short answer), and the reading of a member's map
// answer (src/query/map-wire.ts). Every shard of one query is asked at one version, so a query
// through an alias being swapped sees one database or the other, never a mix.
//
// The map is kept `mapTtlMs`; a query that found a member without its shard at the map's
// version (lagging, loading, gone) drops it, and when that left shards unanswered it is run once
// more over a freshly learned map. A refusal of the query itself (unknown endpoint, invalid
// params, a refused token) ends the query at once with the member's code, without trying other
// replicas. Errors are QueryClientError with a DRAM_ERR_* code (docs/errors.md) or a client code.
//
// Called by: users, test/client/query-client.test.ts, test/integration/sharded-query.test.ts,
// bench/smart-client.bench.ts.

import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { asNodeId, NO_NODE, type NodeId } from '../base/ids.ts';
import { isQueryError, type JsonValue } from '../data/query-engine.ts';
import { gather, pickShards, type Coverage, type PartialPolicy } from '../query/coverage.ts';
import {
  FanOut,
  isAnswered,
  ShardCallError,
  type FanOutClock,
  type FanOutLimits,
  type MapPort,
  type ShardOutcome,
  type ShardTarget,
} from '../query/fan-out.ts';
import { mapAnswerOf } from '../query/map-wire.ts';

/** An endpoint module as the client uses it: its name and, when it has one, its reduce. */
export interface ClientEndpoint {
  readonly name: string;
  // The module's own types are narrower; the client hands it JSON.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly reduce?: ((partials: any[], params: any) => unknown) | undefined;
}

export interface QueryClientOptions {
  /** HTTP URLs of members (`http://host:port`); the shard map is learned from the first that answers. */
  readonly members: readonly string[];
  /** The nodes' --token or --read-token. */
  readonly token?: string | undefined;
  /** Endpoint modules whose reduce runs in the client; a query of any other endpoint is reduced by a member. */
  readonly endpoints?: readonly ClientEndpoint[] | undefined;
  readonly fanOutLimits?: FanOutLimits | undefined;
  /** How long a learned shard map is used (default 5,000 ms). */
  readonly mapTtlMs?: number | undefined;
  /** Each request that learns the map or asks a member to reduce (default 10,000 ms). */
  readonly requestTimeoutMs?: number | undefined;
  /** Connections kept per member (default 16). */
  readonly socketsPerMemberMax?: number | undefined;
}

export interface ClientQuery {
  /** Only these shards; undefined: every shard of the database. */
  readonly shards?: readonly string[] | undefined;
  readonly partial?: PartialPolicy | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ClientAnswer {
  readonly result: JsonValue;
  readonly coverage: Coverage;
  /** The database the name or alias named, and the version every answered shard was read at. */
  readonly database: string;
  readonly version: string;
}

export class QueryClientError extends Error {
  override readonly name = 'QueryClientError';
  /** A server DRAM_ERR_* code (docs/errors.md), or DRAM_ERR_CONNECTION_FAILED when no member answered. */
  readonly code: string;
  readonly status: number | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, status?: number, details?: Readonly<Record<string, unknown>>) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** One learned shard map of a database: its version, its shards' replicas, its members' URLs. */
interface ShardMap {
  readonly database: string;
  readonly version: string;
  readonly shards: readonly ShardTarget[];
  readonly urls: ReadonlyMap<NodeId, string>;
  readonly learnedMs: number;
}

/** A member's answer: status and body text. */
interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** Codes that refuse the query itself: the same on every member, so the query ends at once. */
const requestRefusals: ReadonlySet<string> = new Set([
  'DRAM_ERR_UNKNOWN_ENDPOINT',
  'DRAM_ERR_INVALID_PARAMS',
  'DRAM_ERR_BAD_REQUEST',
  'DRAM_ERR_UNAUTHORIZED',
  'DRAM_ERR_FORBIDDEN',
  'DRAM_ERR_BODY_TOO_LARGE',
]);

/** Skip reasons that say the map may be out of date: the member did not hold the shard at that version. */
const staleReasons: ReadonlySet<string> = new Set(['unavailable', 'loading', 'lagging']);

/** An answer of a member larger than this is refused (the final answer is bounded at 16 MiB of JSON). */
export const clientAnswerBytesMax = 32 * 1024 * 1024;

const clientClock: FanOutClock = {
  nowMs: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (handle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

function errorOf(answer: HttpAnswer, what: string): QueryClientError {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(answer.text) as Record<string, unknown>;
  } catch {
    // Not JSON: the status says it.
  }
  const code = typeof body['code'] === 'string' ? body['code'] : 'DRAM_ERR_PROTOCOL';
  const message = typeof body['message'] === 'string' ? body['message'] : `${what}: HTTP ${answer.status}`;
  return new QueryClientError(code, message, answer.status, body['details'] as Record<string, unknown> | undefined);
}

/** One query's state while its maps run: the refusal that ended it, the params a member checked. */
interface RunState {
  refusal: QueryClientError | undefined;
  params: JsonValue | undefined;
}

function asClientError(error: unknown): unknown {
  return isQueryError(error) ? new QueryClientError(error.code, error.message, undefined, error.details) : error;
}

export class QueryClient {
  private readonly members: readonly string[];
  private readonly token: string | undefined;
  private readonly endpoints: ReadonlyMap<string, ClientEndpoint>;
  private readonly mapTtlMs: number;
  private readonly requestTimeoutMs: number;
  private readonly agents: { readonly http: http.Agent; readonly https: https.Agent };
  private readonly maps = new Map<string, ShardMap>();
  /** The fan-out (its per-member bounds and latency history span queries, as on a member). */
  readonly fanOut: FanOut;

  constructor(options: QueryClientOptions) {
    if (options.members.length === 0) throw new Error('query client: at least one member URL is needed');
    this.members = options.members.map((member) => new URL(member).origin);
    this.token = options.token;
    this.endpoints = new Map((options.endpoints ?? []).map((endpoint) => [endpoint.name, endpoint]));
    this.mapTtlMs = options.mapTtlMs ?? 5000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    const maxSockets = options.socketsPerMemberMax ?? 16;
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets }),
      https: new https.Agent({ keepAlive: true, maxSockets }),
    };
    this.fanOut = new FanOut({
      self: NO_NODE,
      map: () => Promise.reject(new ShardCallError('error', 'the query client sends every call through its query')),
      clock: clientClock,
      ...(options.fanOutLimits === undefined ? {} : { limits: options.fanOutLimits }),
    });
  }

  /** Runs `endpoint` over the database `nameOrAlias` names: `{ result, coverage }`, as a member answers it. */
  async query(
    nameOrAlias: string,
    endpoint: string,
    params: JsonValue = {},
    options: ClientQuery = {},
  ): Promise<ClientAnswer> {
    const cached = this.maps.get(nameOrAlias);
    const fresh = cached === undefined || performance.now() - cached.learnedMs > this.mapTtlMs;
    let map = fresh ? await this.learn(nameOrAlias, options.signal) : cached;
    let run = await this.mapAll(map, endpoint, params, options);
    // A member without its shard at the map's version: the map is stale; learn it again, once.
    if (run.outcomes.some((outcome) => !isAnswered(outcome) && staleReasons.has(outcome.skipped))) {
      this.maps.delete(nameOrAlias);
      if (!fresh) {
        map = await this.learn(nameOrAlias, options.signal);
        run = await this.mapAll(map, endpoint, params, options);
      }
    }
    try {
      const { coverage, partials } = gather(map.database, run.outcomes, options.partial ?? 'deny');
      const result = await this.reduce(map, endpoint, run.params ?? params, partials, options.signal);
      return { result, coverage, database: map.database, version: map.version };
    } catch (error) {
      throw asClientError(error);
    }
  }

  /** Forgets the learned maps and closes the kept connections. */
  close(): void {
    this.maps.clear();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Every asked shard's outcome over `map`, and the checked params a member answered with. */
  private async mapAll(
    map: ShardMap,
    endpoint: string,
    params: JsonValue,
    options: ClientQuery,
  ): Promise<{ outcomes: ShardOutcome[]; params: JsonValue | undefined }> {
    const stop = new AbortController();
    const onAbort = (): void => {
      stop.abort(options.signal?.reason);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted === true) onAbort();
    const state: RunState = { refusal: undefined, params: undefined };
    try {
      const shards = pickShards(map.database, map.shards, options.shards);
      const outcomes = await this.fanOut.run({
        database: map.database,
        version: map.version,
        endpoint,
        params,
        shards,
        signal: stop.signal,
        failOnDefinite: (options.partial ?? 'deny') === 'deny',
        map: (node, call, signal) => this.mapOn(map, state, stop, node, call, signal),
      });
      if (state.refusal !== undefined) throw state.refusal;
      if (options.signal?.aborted === true) throw options.signal.reason;
      return { outcomes, params: state.params };
    } catch (error) {
      throw state.refusal ?? asClientError(error);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One shard's map on member `node`, with the user's token; a refusal of the query stops it all. */
  private async mapOn(
    map: ShardMap,
    state: RunState,
    stop: AbortController,
    node: NodeId,
    call: Parameters<MapPort>[1],
    signal: AbortSignal,
  ): Promise<JsonValue> {
    const base = map.urls.get(node);
    if (base === undefined) throw new ShardCallError('unavailable', `no HTTP address is known for node ${node}`);
    const path = `/v1/databases/${encodeURIComponent(call.database)}/map/${encodeURIComponent(call.endpoint)}`;
    const body = JSON.stringify({ version: call.version, shards: [call.shard], params: call.params });
    let answer: HttpAnswer;
    try {
      answer = await this.send(`${base}${path}`, 'POST', body, signal, undefined);
    } catch (error) {
      throw new ShardCallError('unavailable', error instanceof Error ? error.message : String(error));
    }
    if (answer.status !== 200) {
      const refused = errorOf(answer, `node ${node}`);
      if (requestRefusals.has(refused.code)) {
        state.refusal ??= refused;
        stop.abort(refused);
        throw refused;
      }
    }
    const { result, params } = mapAnswerOf(answer.status, answer.text, call.shard);
    state.params ??= params;
    return result;
  }

  /** The endpoint's reduce here when the client has the module, else a member's. */
  private async reduce(
    map: ShardMap,
    endpoint: string,
    params: JsonValue,
    partials: JsonValue[],
    signal: AbortSignal | undefined,
  ): Promise<JsonValue> {
    const local = this.endpoints.get(endpoint);
    if (local !== undefined) {
      if (local.reduce === undefined) return partials;
      try {
        return JSON.parse(JSON.stringify(await local.reduce(partials, params))) as JsonValue;
      } catch (error) {
        // As a member answers a reduce that throws or answers something that is not JSON.
        throw new QueryClientError('DRAM_ERR_QUERY_FAILED', `reduce threw: ${(error as Error).message}`);
      }
    }
    const body = JSON.stringify({ params, partials });
    const path = `/v1/endpoints/${encodeURIComponent(endpoint)}/reduce`;
    const answer = await this.anyMember([...map.urls.values()], path, 'POST', body, signal);
    return (JSON.parse(answer.text) as { result: JsonValue }).result;
  }

  /** The shard map of `nameOrAlias`, learned from the first member that answers. */
  private async learn(nameOrAlias: string, signal: AbortSignal | undefined): Promise<ShardMap> {
    const list = await this.anyMember(this.members, '/v1/databases', 'GET', undefined, signal);
    const databases = (JSON.parse(list.text) as { databases: { name: string; version: number; aliases: string[] }[] })
      .databases;
    const record =
      databases.find((database) => database.name === nameOrAlias) ??
      databases.find((database) => database.aliases.includes(nameOrAlias));
    if (record === undefined)
      throw new QueryClientError('DRAM_ERR_DATABASE_NOT_FOUND', `no database or alias named "${nameOrAlias}"`);
    const version = String(record.version);
    const shardsPath = `/v1/databases/${encodeURIComponent(record.name)}/shards`;
    const shardsAnswer = await this.anyMember(this.members, shardsPath, 'GET', undefined, signal);
    const entries = (
      JSON.parse(shardsAnswer.text) as {
        shards: { shard: string; version: number; members: { node: number; state: string; role?: string }[] }[];
      }
    ).shards.filter((entry) => String(entry.version) === version);
    const membersAnswer = await this.anyMember(this.members, '/v1/admin/members', 'GET', undefined, signal);
    const urls = new Map<NodeId, string>();
    const scheme = new URL(this.members[0] ?? 'http://127.0.0.1').protocol;
    for (const member of (JSON.parse(membersAnswer.text) as { members: { nodeId: number; http?: string }[] }).members)
      if (member.http !== undefined) urls.set(asNodeId(member.nodeId), `${scheme}//${member.http}`);
    const map: ShardMap = {
      database: record.name,
      version,
      shards: entries.map((entry) => ({
        shard: entry.shard,
        replicas: entry.members.map((member) => ({
          node: asNodeId(member.node),
          state: member.state === 'loaded' || member.state === 'loading' ? member.state : 'failed',
          version,
          // A replica its shard group reports catching up is never asked.
          ...(member.role === 'RECOVERING' ? { lagging: true } : {}),
        })),
      })),
      urls,
      learnedMs: performance.now(),
    };
    this.maps.set(nameOrAlias, map);
    return map;
  }

  /** `path` on the first of `bases` that answers 2xx; a 4xx is the answer (the same anywhere), else the next. */
  private async anyMember(
    bases: readonly string[],
    path: string,
    method: 'GET' | 'POST',
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    let last: QueryClientError | undefined;
    for (const base of bases) {
      let answer: HttpAnswer;
      try {
        answer = await this.send(`${base}${path}`, method, body, signal, this.requestTimeoutMs);
      } catch (error) {
        last = new QueryClientError('DRAM_ERR_CONNECTION_FAILED', `${base}: ${(error as Error).message}`);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      last = errorOf(answer, `${method} ${base}${path}`);
      if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) throw last;
    }
    throw last ?? new QueryClientError('DRAM_ERR_CONNECTION_FAILED', 'no member to ask');
  }

  /** One HTTP request; rejects on a connection failure, a timeout or `signal`. */
  private send(
    url: string,
    method: 'GET' | 'POST',
    body: string | undefined,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ): Promise<HttpAnswer> {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const options = {
      method,
      headers,
      agent: secure ? this.agents.https : this.agents.http,
      ...(signal === undefined ? {} : { signal }),
      ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
    };
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(target, options, (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > clientAnswerBytesMax) {
            request.destroy(new Error(`answer larger than ${clientAnswerBytesMax} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', reject);
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end(body);
    });
  }
}
