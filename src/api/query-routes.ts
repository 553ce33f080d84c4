// The query routes, translating HTTP to the query service (src/query/query-service.ts) and back:
//
//  - `POST /v1/databases/:nameOrAlias/query/:endpoint`, the params as the JSON body (none: `{}`),
//    `?scope=local` (only this member's shards), `?shards=0,3,7` (only these shards),
//    `?partial=allow|deny` (default deny). Answers `{ result, coverage: { complete, shards } }`.
//    A name or an endpoint with `/` (percent-encoded) or `..`, or a bad query value, is 400
//    before anything is looked up. Needs the read token at least (a query only reads).
//  - `POST /v1/internal/databases/:name/map/:endpoint`, member-only (signed with the cluster
//    secret): `{ version, shards, params }` runs the maps of those local shards at that version
//    and answers `{ partials: [{ shard, result, ms }], params }` (the params checked, defaults
//    filled in); what a fan-out calls on other members.
//  - `POST /v1/databases/:name/map/:endpoint`: the same map for a smart client (src/client/),
//    with the user's token (the read token is enough); never the cluster secret on a client.
//  - `POST /v1/endpoints/:endpoint/reduce` `{ params, partials }`: the endpoint's reduce over
//    partials a smart client gathered, admitted like a query (read token) -> `{ result }`.
// Errors: a QueryError or an ObjectStoreError keeps its code (both are registry codes); the
// caller going away stops the query (every statement it runs is interrupted).
//
// Also the remote map port the fan-out uses: one shard's map on another member over the Forward
// port (the node's signed HTTP client), with the answer checked at this edge. Without a query
// service (no endpoints or no catalog wired) every database is unknown: 404.
//
// Called by: src/api/app.ts.

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { isObjectStoreError } from '../data/object-store.ts';
import { isQueryError, QueryError, type JsonValue } from '../data/query-engine.ts';
import { endpointNamePattern, endpointTimeoutMsMax } from '../query/endpoint-module.ts';
import { localRunnerLimitsDefault } from '../query/local-runner.ts';
import type { PartialPolicy } from '../query/coverage.ts';
import { ShardCallError, type MapPort } from '../query/fan-out.ts';
import { mapAnswerOf } from '../query/map-wire.ts';
import {
  databaseNamePattern,
  queryShardsListedMax,
  type QueryScope,
  type QueryService,
} from '../query/query-service.ts';
import { readAccess } from './auth.ts';
import { ApiError } from './errors.ts';
import type { Forward } from './ports.ts';
import { jsonBody, memberOnly } from './request-guard.ts';

/** A query's params as JSON text. */
export const queryParamsBytesMax = 64 * 1024;
/** A member-to-member map request: the params and the list of shards. */
const mapRequestBytesMax = queryParamsBytesMax + 64 * 1024;
const shardIdPattern = /^[A-Za-z0-9_.-]{1,64}$/u;

export const queryPath = '/v1/databases/:nameOrAlias/query/:endpoint';
export const mapPath = '/v1/internal/databases/:name/map/:endpoint';
/** The same map, for a smart client with the user's (read) token. */
export const clientMapPath = '/v1/databases/:name/map/:endpoint';
export const reducePath = '/v1/endpoints/:endpoint/reduce';

/** A JSON body of at most `bytesMax`, and only the read token needed: both live in the route's config. */
function readingRoute(bytesMax: number): RouteShorthandOptions {
  const body = jsonBody(bytesMax);
  return { ...body, config: { ...body.config, ...readAccess.config } };
}
const queryRouteOptions = readingRoute(queryParamsBytesMax);
const mapRouteOptions = readingRoute(mapRequestBytesMax);
/** A smart client's reduce: the params and every shard's answer (each at most 16 MiB of JSON, as the runner bounds it). */
export const reduceRequestBytesMax = queryParamsBytesMax + localRunnerLimitsDefault.answerBytesMax;
const reduceRouteOptions = readingRoute(reduceRequestBytesMax);

export type QueryObserver = (nameOrAlias: string, ms: number, ok: boolean) => void;

export interface QueryRouteOptions {
  /** Without one, every database is unknown (404 DRAM_ERR_DATABASE_NOT_FOUND). */
  readonly service: QueryService | undefined;
  /** Told of every query that reached the service (a refusal before it, a bad name or option, is not counted). */
  readonly onQuery?: QueryObserver | undefined;
}

function checkName(what: string, value: string, pattern: RegExp): string {
  if (!pattern.test(value) || value.includes('..'))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `${what} ${JSON.stringify(value.slice(0, 200))} is not a valid name`);
  return value;
}

function queryValue(query: unknown, name: string): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ApiError('DRAM_ERR_BAD_REQUEST', `?${name} must be given once`);
  return value;
}

function shardList(text: string, where: string): string[] {
  const shards = text.split(',');
  if (shards.length > queryShardsListedMax)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `${where} names more than ${queryShardsListedMax} shards`);
  for (const shard of shards)
    if (!shardIdPattern.test(shard))
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `${where}: ${JSON.stringify(shard.slice(0, 80))} is not a shard id`);
  return shards;
}

interface QueryOptions {
  readonly scope: QueryScope;
  readonly partial: PartialPolicy;
  readonly shards: string[] | undefined;
}

export function parseQueryOptions(query: unknown): QueryOptions {
  const scope = queryValue(query, 'scope');
  if (scope !== undefined && scope !== 'local')
    throw new ApiError('DRAM_ERR_BAD_REQUEST', '?scope takes only "local" (without it: every shard of the cluster)');
  const partial = queryValue(query, 'partial') ?? 'deny';
  if (partial !== 'allow' && partial !== 'deny')
    throw new ApiError('DRAM_ERR_BAD_REQUEST', '?partial takes "allow" or "deny"');
  const shards = queryValue(query, 'shards');
  return {
    scope: scope === 'local' ? 'local' : 'cluster',
    partial,
    shards: shards === undefined ? undefined : shardList(shards, '?shards'),
  };
}

/** A QueryError or an object store error as the registry error it carries; anything else as is. */
function asApiError(error: unknown): unknown {
  if (isQueryError(error)) return new ApiError(error.code, error.message, error.details);
  if (isObjectStoreError(error)) return new ApiError(error.code, error.message);
  return error;
}

/** Aborted when the caller goes away before its answer is sent. */
function callerSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new QueryError('DRAM_ERR_QUERY_TIMEOUT', 'the caller went away'));
  });
  request.raw.once('aborted', () => {
    controller.abort(new QueryError('DRAM_ERR_QUERY_TIMEOUT', 'the caller went away'));
  });
  return controller.signal;
}

interface MapBody {
  readonly version: string;
  readonly shards: string[];
  readonly params: JsonValue | undefined;
}

function mapBody(body: unknown): MapBody {
  const raw = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<
    string,
    unknown
  >;
  const { version, shards, params } = raw;
  if (typeof version !== 'string' || version.length === 0 || version.length > 256)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'version must be a non-empty string');
  if (!Array.isArray(shards) || shards.length === 0 || !shards.every((shard) => typeof shard === 'string'))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'shards must be a non-empty list of shard ids');
  return { version, shards: shardList(shards.join(','), 'shards'), params: params as JsonValue };
}

type MapRouteRequest = FastifyRequest<{ Params: { name: string; endpoint: string } }>;

/** The map route's handler, the same for a member (member-only path) and a smart client (user's token). */
function mapRoute(service: QueryService | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const { params } = request as MapRouteRequest;
    const database = checkName('database', params.name, databaseNamePattern);
    const endpoint = checkName('endpoint', params.endpoint, endpointNamePattern);
    const body = mapBody(request.body);
    if (service === undefined)
      throw new ApiError('DRAM_ERR_NO_LOCAL_SHARDS', `no database "${database}" is served here`, {
        reason: 'unavailable',
      });
    try {
      return await service.mapShards({
        database,
        version: body.version,
        endpoint,
        params: body.params,
        shards: body.shards,
        signal: callerSignal(request, reply),
      });
    } catch (error) {
      throw asApiError(error);
    }
  };
}

/** `{ params, partials }`: the partials a smart client gathered, as a list of JSON values. */
function reduceBody(body: unknown): { params: JsonValue | undefined; partials: JsonValue[] } {
  const raw = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<
    string,
    unknown
  >;
  const unknown = Object.keys(raw).filter((key) => key !== 'params' && key !== 'partials');
  if (unknown.length > 0) throw new ApiError('DRAM_ERR_BAD_REQUEST', `unknown field(s) ${unknown.join(', ')}`);
  if (!Array.isArray(raw['partials']) || raw['partials'].length > queryShardsListedMax)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `partials must be a list of at most ${queryShardsListedMax} answers`);
  return { params: raw['params'] as JsonValue | undefined, partials: raw['partials'] as JsonValue[] };
}

function reduceRoute(service: QueryService | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const endpoint = checkName(
      'endpoint',
      (request as FastifyRequest<{ Params: { endpoint: string } }>).params.endpoint,
      endpointNamePattern,
    );
    const body = reduceBody(request.body);
    if (service === undefined)
      throw new ApiError('DRAM_ERR_UNKNOWN_ENDPOINT', `no endpoint named "${endpoint}" is loaded`);
    try {
      const result = await service.reduce({ endpoint, ...body, signal: callerSignal(request, reply) });
      return { result };
    } catch (error) {
      throw asApiError(error);
    }
  };
}

export function queryRoutes(app: FastifyInstance, options: QueryRouteOptions, done: (error?: Error) => void): void {
  const service = options.service;

  app.post<{ Params: { nameOrAlias: string; endpoint: string } }>(
    queryPath,
    queryRouteOptions,
    async (request, reply) => {
      const nameOrAlias = checkName('database', request.params.nameOrAlias, databaseNamePattern);
      const endpoint = checkName('endpoint', request.params.endpoint, endpointNamePattern);
      const { scope, partial, shards } = parseQueryOptions(request.query);
      if (service === undefined)
        throw new ApiError('DRAM_ERR_DATABASE_NOT_FOUND', `no database or alias named "${nameOrAlias}"`);
      const started = performance.now();
      try {
        const answer = await service.query({
          nameOrAlias,
          endpoint,
          params: request.body as JsonValue | undefined,
          scope,
          shards,
          partial,
          signal: callerSignal(request, reply),
        });
        options.onQuery?.(nameOrAlias, performance.now() - started, true);
        return answer;
      } catch (error) {
        options.onQuery?.(nameOrAlias, performance.now() - started, false);
        throw asApiError(error);
      }
    },
  );

  const mapHandler = mapRoute(service);
  app.post(mapPath, { ...jsonBody(mapRequestBytesMax), ...memberOnly }, mapHandler);
  app.post(clientMapPath, mapRouteOptions, mapHandler);
  app.post(reducePath, reduceRouteOptions, reduceRoute(service));
  done();
}

/** One shard's map on another member over HTTP (the Forward port signs it with the cluster secret). */
export function remoteMap(forward: Forward | undefined): MapPort {
  return async (node, call, signal) => {
    if (forward === undefined) throw new ShardCallError('unavailable', 'no HTTP client to other members is configured');
    const url = mapPath
      .replace(':name', encodeURIComponent(call.database))
      .replace(':endpoint', encodeURIComponent(call.endpoint));
    const body = JSON.stringify({ version: call.version, shards: [call.shard], params: call.params });
    let response;
    try {
      response = await forward(node, {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(body),
        signal,
        // The fan-out's own per-shard timeout ends the call (through the signal) sooner.
        timeoutMs: endpointTimeoutMsMax,
      });
    } catch (error) {
      throw new ShardCallError('unavailable', error instanceof Error ? error.message : String(error));
    }
    return mapAnswerOf(response.status, response.body.toString('utf8'), call.shard).result;
  };
}
