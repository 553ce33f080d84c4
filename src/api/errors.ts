// The one registry of the operating errors the HTTP API answers with (docs/CONTRIBUTING.md, "Errors":
// one registry with codes and statuses, kept in step with docs/errors.md by test/api/errors.test.ts).
// Every error body is `{ error: true, code: "DRAM_ERR_*", message }` (docs/ARCHITECTURE.md, the
// external contract), plus `details` when there is something a client can act on (a leader hint, a
// current index, a limit).
//
// Invariants: a code has exactly one status; nothing outside this file invents a code or a status;
// bad input is always a 4xx, never a 500 (fastify's own parse, size and validation errors are
// mapped here too). `ApiError` is recognised by a Symbol.for brand and its code, not instanceof, so
// two copies of this module in one process (undici's lesson) still agree on what an ApiError is.
//
// Called by: src/api/app.ts (installs the handlers), the route plugins (throw or send ApiError).

import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const errorRegistry = {
  DRAM_ERR_BAD_REQUEST: {
    status: 400,
    meaning:
      'The request is malformed: bad HTTP framing, a repeated identity header, bad or too deeply nested JSON, a bad parameter, query or header value.',
  },
  DRAM_ERR_UNAUTHORIZED: {
    status: 401,
    meaning:
      'The route needs a token (Authorization: Bearer <token>) and none, or a wrong one, was given; nothing was changed.',
  },
  DRAM_ERR_FORBIDDEN: {
    status: 403,
    meaning: 'The read-only token was given for a route that changes something; nothing was changed.',
  },
  DRAM_ERR_KEY_NOT_FOUND: { status: 404, meaning: 'The key does not exist (GET, or DELETE of an absent key).' },
  DRAM_ERR_UNKNOWN_GROUP: { status: 404, meaning: 'No Raft group with this id is hosted on this node.' },
  DRAM_ERR_ROUTE_NOT_FOUND: { status: 404, meaning: 'No route matches this method and path.' },
  DRAM_ERR_REQUEST_TIMEOUT: {
    status: 408,
    meaning: 'The request head or body did not arrive in time; the connection is closed and nothing was changed.',
  },
  DRAM_ERR_ACTION_NOT_FOUND: { status: 404, meaning: 'No agent action with this id is known to the cluster.' },
  DRAM_ERR_UNKNOWN_ACTION_KIND: {
    status: 400,
    meaning: 'The action kind is not one this version runs (see docs/agent-api.md); nothing was scheduled.',
  },
  DRAM_ERR_INVALID_ACTION_ARGS: {
    status: 400,
    meaning: "The action's args do not suit its kind, or are larger than the args limit; nothing was scheduled.",
  },
  DRAM_ERR_ACTION_EXISTS: {
    status: 409,
    meaning: 'Another action already uses this action id; nothing was scheduled.',
  },
  DRAM_ERR_ACTION_FINISHED: {
    status: 409,
    meaning: 'The action has already finished (DONE or FAILED) and can no longer be cancelled.',
  },
  DRAM_ERR_ACTIONS_QUEUE_FULL: {
    status: 429,
    meaning: 'The cluster has actionsQueuedMax unfinished actions; nothing was scheduled, retry once some finished.',
  },
  DRAM_ERR_STALE_REQUEST: {
    status: 409,
    meaning:
      'Not applied by this request. Either its seq is older than the last one applied for this client id (details.lastSeq; whether this seq was applied before is not known), or the client id has no session (details.sessionExpired: it expired, or the id’s first request was not seq 1), so an earlier attempt of it may or may not have been applied: read before retrying, and go on with a new client id from seq 1.',
  },
  DRAM_ERR_TRANSFER_FAILED: {
    status: 409,
    meaning: 'Leadership cannot be transferred: there is no eligible voter to hand it to.',
  },
  DRAM_ERR_MEMBER_CONFLICT: {
    status: 409,
    meaning:
      'The node id is already known at other addresses, or another node already uses one of the addresses; nothing was changed.',
  },
  DRAM_ERR_LAST_VOTER: {
    status: 409,
    meaning: 'The node to remove is the last voter of a group, which would be left without one; nothing was changed.',
  },
  DRAM_ERR_OLDER_NODES: {
    status: 409,
    meaning:
      'A registered node runs a release that cannot read what the request would record in the meta model (details.nodes lists each with its version); nothing was changed: upgrade every node first.',
  },
  DRAM_ERR_CLUSTER_MISMATCH: {
    status: 409,
    meaning: "The request names another cluster id than this node's; nothing was changed.",
  },
  DRAM_ERR_CAS_MISMATCH: {
    status: 412,
    meaning: "Compare-and-set failed: the key's modify index differs from ?cas (0 means the key must be absent).",
  },
  DRAM_ERR_KEY_TOO_LARGE: { status: 413, meaning: 'The key is longer than the key limit in UTF-8 bytes.' },
  DRAM_ERR_VALUE_TOO_LARGE: {
    status: 413,
    meaning: 'The value (request body) is larger than the value or entry limit.',
  },
  DRAM_ERR_BODY_TOO_LARGE: {
    status: 413,
    meaning: 'A non-KV request body is larger than that route accepts (any body, for a route that takes none).',
  },
  DRAM_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    meaning: 'The Content-Type is malformed, or not one this route accepts.',
  },
  DRAM_ERR_EXPECTATION_FAILED: {
    status: 417,
    meaning: 'The Expect header asks for something other than 100-continue, the only expectation served.',
  },
  DRAM_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    meaning: 'The request line and headers together are larger than the head limit (a URL this long included).',
  },
  DRAM_ERR_INTERNAL: {
    status: 500,
    meaning: 'A bug or an unexpected failure on this node; the request may or may not have taken effect.',
  },
  DRAM_ERR_FORWARD_FAILED: {
    status: 502,
    meaning: 'A read or admin request could not be forwarded to the leader (nothing was changed).',
  },
  DRAM_ERR_NOT_LEADER: {
    status: 503,
    meaning:
      'This node cannot act as the group leader and did not forward the request; definitely not applied, retry at the leader hint.',
  },
  DRAM_ERR_NO_LEADER: {
    status: 503,
    meaning: 'The group has no known leader right now (election under way); definitely not applied, retry.',
  },
  DRAM_ERR_OVERLOADED: {
    status: 503,
    meaning: 'A bounded queue or the HTTP connection limit is full; definitely not applied, retry after a pause.',
  },
  DRAM_ERR_SHUTTING_DOWN: {
    status: 503,
    meaning: 'This node is shutting down and takes no new request; definitely not applied, retry at another node.',
  },
  DRAM_ERR_INDETERMINATE: {
    status: 503,
    meaning:
      'The write may or may not have been applied; read before retrying, or retry with the same client id and seq.',
  },
  DRAM_ERR_MEMBERSHIP_PENDING: {
    status: 503,
    meaning:
      'The node is not a voter of every group yet, or not out of every group yet (a learner still catching up, an election, another change pending); steps done stay done, retry the same request to continue.',
  },
  DRAM_ERR_CONF_CHANGED: {
    status: 409,
    meaning:
      "The group's configuration changed since the membership change was planned from it; nothing was changed, plan again from the group's current configuration.",
  },
  DRAM_ERR_NODE_STOPPED: {
    status: 503,
    meaning:
      'This node is stopping (shut down, or stopped by a fatal error) and did not apply the request; retry at another member.',
  },
  DRAM_ERR_TIMEOUT: { status: 504, meaning: 'A read did not become safe to serve in time; nothing was changed.' },
  DRAM_ERR_SNAPSHOT_INTERRUPTED: {
    status: 503,
    meaning:
      "A group's snapshot for a backup was cut short (a snapshot from the leader was installed meanwhile); nothing was changed, retry.",
  },
  // Query endpoints (src/query/, src/engine/): QueryError carries these codes (src/data/query-engine.ts).
  DRAM_ERR_UNKNOWN_ENDPOINT: {
    status: 404,
    meaning: 'No query endpoint with this name is loaded on this node (endpoint modules come from --endpoints DIR).',
  },
  DRAM_ERR_INVALID_PARAMS: {
    status: 400,
    meaning:
      "The query's params do not match the endpoint's JSON schema (details.errors lists what is wrong); nothing was run.",
  },
  DRAM_ERR_ENDPOINT_BUSY: {
    status: 429,
    meaning:
      'The endpoint already runs as many queries as its concurrency limit on this node (details.concurrencyMax); nothing was run, retry after a pause.',
  },
  DRAM_ERR_QUERY_FAILED: {
    status: 422,
    meaning:
      "The endpoint's map or reduce threw or answered something that is not JSON, or its SQL failed (syntax, a missing column, a file outside the database, a statement that is not one read, a value with no JSON form); the message says why.",
  },
  DRAM_ERR_QUERY_MEMORY: {
    status: 422,
    meaning:
      'A statement of the query needed more memory than the per-query limit (details.memoryBytesMax) and was stopped; ask for less.',
  },
  DRAM_ERR_ANSWER_TOO_LARGE: {
    status: 422,
    meaning:
      "An answer within the query (one statement, one shard's map or the reduce) is over the rows or bytes limit (details.rowsMax or details.bytesMax) and was dropped; filter, aggregate or LIMIT.",
  },
  DRAM_ERR_QUERY_TIMEOUT: {
    status: 504,
    meaning:
      "The query ran longer than its endpoint's timeout, or one statement longer than the statement timeout (details.timeoutMs), and was stopped.",
  },
  DRAM_ERR_DATABASE_NOT_FOUND: {
    status: 404,
    meaning: 'No database with this name is in the catalog (or the alias points at none); nothing was changed.',
  },
  DRAM_ERR_UNKNOWN_SHARD: {
    status: 404,
    meaning:
      "A shard named in ?shards= is not one of the database's shards (details.shards lists them); nothing was run.",
  },
  DRAM_ERR_NO_LOCAL_SHARDS: {
    status: 409,
    meaning:
      'The query asked for shards of this member only (?scope=local, or a member-to-member map) and this member does not hold them loaded at the version served (details.reason: unavailable, loading or lagging); nothing was run.',
  },
  DRAM_ERR_PARTIAL: {
    status: 503,
    meaning:
      'Some shards of the query could not be answered (details.coverage says which and why) and ?partial=deny (the default) refuses a partial answer; retry, or ask with ?partial=allow.',
  },
  // Object store (S3) errors (src/data/object-store.ts): what a query answers when a lazy database's files cannot be fetched.
  DRAM_ERR_S3_NOT_FOUND: {
    status: 404,
    meaning: "An object of the database does not exist in the object store (S3's NoSuchKey, or a 404 to a HEAD).",
  },
  DRAM_ERR_S3_NO_BUCKET: { status: 404, meaning: 'The bucket does not exist in the object store (NoSuchBucket).' },
  DRAM_ERR_S3_ACCESS_DENIED: {
    status: 502,
    meaning:
      "The object store refused the cluster's credentials (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, an expired token, or no credentials found by the standard chain).",
  },
  DRAM_ERR_S3_INVALID_RANGE: {
    status: 502,
    meaning:
      "A byte range asked of the object store is malformed or starts at or after the object's end (the object changed under the manifest).",
  },
  DRAM_ERR_S3_TOO_LARGE: {
    status: 502,
    meaning: "An object, range or listing of the object store is larger than the caller's limit.",
  },
  DRAM_ERR_S3_UNAVAILABLE: {
    status: 503,
    meaning:
      "The object store could not be reached, timed out, throttled (SlowDown, 429) or failed (5xx), after the SDK's own retries; retry later.",
  },
  DRAM_ERR_S3_FAILED: {
    status: 502,
    meaning:
      'The object store refused the request otherwise: an invalid bucket name or key, an unsupported request, an answer the adapter cannot read.',
  },
  DRAM_ERR_NOT_IN_CLUSTER: {
    status: 409,
    meaning:
      'This node is not in a cluster yet: it runs only cluster.init and cluster.join (docs/agent-api.md); nothing was scheduled.',
  },
  DRAM_ERR_IN_CLUSTER: {
    status: 409,
    meaning:
      'This node is already in a cluster: cluster.init and cluster.join run only on a node that is not; nothing was scheduled.',
  },
  DRAM_ERR_ACTION_FAILED: {
    status: 409,
    meaning:
      'The action an admin route scheduled and waited for FAILED; the message is its error, details.action its id.',
  },
  DRAM_ERR_INVALID_DATABASE: {
    status: 400,
    meaning:
      'A database request is malformed: a name with characters other than letters, digits, ".", "_", "-" (or with "/" or ".."), a source that is not s3://bucket/prefix, a bad replicas value or more replicas than active nodes, an unknown field; nothing was changed.',
  },
  DRAM_ERR_DATABASE_EXISTS: {
    status: 409,
    meaning:
      'A database or alias with this name exists already (a database name cannot be an alias, nor the reverse); nothing was changed.',
  },
  DRAM_ERR_SOURCE_NOT_FOUND: {
    status: 404,
    meaning: "The source's bucket does not exist, or no object is under its prefix; nothing was changed.",
  },
  DRAM_ERR_SOURCE_DENIED: {
    status: 403,
    meaning: "The object store refused this node's credentials for the source; nothing was changed.",
  },
  DRAM_ERR_SOURCE_UNAVAILABLE: {
    status: 503,
    meaning:
      'The object store could not be reached (or failed) while the source was checked; nothing was changed, retry later.',
  },
  DRAM_ERR_NOT_LOADED: {
    status: 409,
    meaning:
      'The database is not loaded on its replica count of copies of every shard, so an alias may not point at it yet; nothing was changed.',
  },
  DRAM_ERR_ALIAS_NOT_FOUND: {
    status: 404,
    meaning:
      "No alias with this name exists (or it does not point at the database named in a swap's remove); nothing was changed.",
  },
  DRAM_ERR_CATALOG_FULL: {
    status: 409,
    meaning: 'The catalog holds its limit of databases or aliases (databasesMax, aliasesMax); nothing was changed.',
  },
} as const satisfies Record<string, { readonly status: number; readonly meaning: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorRegistry, value);
}

const apiErrorBrand: unique symbol = Symbol.for('dram.api.ApiError');

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly [apiErrorBrand] = true;
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Readonly<Record<string, unknown>>) {
    super(message);
    this.code = code;
    this.status = errorRegistry[code].status;
    this.details = details;
  }
}

/** Brand check that works across duplicate copies of this module (Symbol.for is process-wide). */
export function isApiError(value: unknown): value is ApiError {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<PropertyKey, unknown>;
  return candidate[apiErrorBrand] === true && isErrorCode(candidate['code']);
}

export interface ErrorBody {
  readonly error: true;
  readonly code: ErrorCode;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export function errorBody(error: ApiError): ErrorBody {
  return {
    error: true,
    code: error.code,
    message: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/** The Replicante agent API's routes: their errors keep that spec's shape, `{error, error_msg}`. */
export const agentApiPrefix = '/api/unstable';

/** Whether a request URL is one of the Replicante agent API's. */
export function isAgentApiUrl(url: string): boolean {
  return url === agentApiPrefix || url.startsWith(`${agentApiPrefix}/`);
}

/**
 * Sends `error` with its registry status, in dram's shape or, on the agent API's routes (whatever
 * refused the request: a route, the request guard, the not-found handler), in Replicante's.
 */
export function sendApiError(reply: FastifyReply, error: ApiError): FastifyReply {
  // The registry is the source of the status, even for an ApiError built by another copy.
  const body = isAgentApiUrl(reply.request.url) ? { error: true, error_msg: error.message } : errorBody(error);
  return reply.code(errorRegistry[error.code].status).type('application/json; charset=utf-8').send(body);
}

/**
 * A whole HTTP/1.1 response carrying `error`, closing the connection: for the answers written
 * straight to a socket, below fastify (a malformed request, a timeout, a connection over the limit).
 */
export function rawErrorResponse(error: ApiError): string {
  const status = errorRegistry[error.code].status;
  const body = JSON.stringify(errorBody(error));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

const kvRoutePrefix = '/v1/kv/';

/**
 * Maps anything thrown in a route or by fastify itself to a registry error. Bad input is a 4xx:
 * fastify's parse, size, media-type and validation errors carry a 4xx statusCode; only what is
 * neither an ApiError nor a 4xx is a 500.
 */
export function toApiError(error: unknown, url: string): ApiError {
  if (isApiError(error)) return error;
  const fastifyError = (typeof error === 'object' && error !== null ? error : {}) as Partial<FastifyError>;
  const onKvRoute = url.startsWith(kvRoutePrefix);
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return onKvRoute
        ? new ApiError('DRAM_ERR_VALUE_TOO_LARGE', 'value is larger than the value limit')
        : new ApiError('DRAM_ERR_BODY_TOO_LARGE', 'request body is too large for this route');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return onKvRoute
        ? new ApiError('DRAM_ERR_KEY_TOO_LARGE', 'key is longer than the key limit')
        : new ApiError('DRAM_ERR_BAD_REQUEST', 'path parameter is too long');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('DRAM_ERR_UNSUPPORTED_MEDIA_TYPE', 'unsupported or malformed Content-Type');
    default:
      break;
  }
  if (fastifyError.validation !== undefined)
    return new ApiError('DRAM_ERR_BAD_REQUEST', `invalid request: ${fastifyError.message ?? 'validation failed'}`);
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(
      'DRAM_ERR_BAD_REQUEST',
      fastifyError.message ?? 'bad request',
      fastifyError.code === undefined ? undefined : { cause: fastifyError.code },
    );
  }
  return new ApiError('DRAM_ERR_INTERNAL', 'internal error');
}

/** No route for this method and path (the query left out of the message). */
export function routeNotFoundError(method: string, url: string): ApiError {
  return new ApiError('DRAM_ERR_ROUTE_NOT_FOUND', `no route for ${method} ${url.split('?')[0] ?? ''}`);
}

/** Installs the error, not-found and framework-error handlers on the root instance. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error, request.url);
    if (apiError.code === 'DRAM_ERR_INTERNAL') request.log.error({ err: error }, 'unhandled error in route');
    return sendApiError(reply, apiError);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendApiError(reply, routeNotFoundError(request.method, request.url)),
  );
}

/** fastify's `frameworkErrors` option: a bad percent-encoding or an over-long parameter. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendApiError(reply, toApiError(error, request.url));
}
