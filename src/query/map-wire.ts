// The answer of a map route (a member's `POST .../map/:endpoint`, asked by another member or by a
// smart client) as the fan-out sees it: one shard's result and the params it ran with, or why not.
//
// A 200 is `{ partials: [{ shard, result, ms }], params }`: the asked shard's `result` (a 200
// without it is an `error`). An error answer `{ code, message, details }` becomes:
//  - a failure of the endpoint's own code (DRAM_ERR_QUERY_FAILED, _QUERY_MEMORY,
//    _ANSWER_TOO_LARGE): a QueryError, the same on every replica, so the fan-out does not retry it;
//  - DRAM_ERR_NO_LOCAL_SHARDS: a ShardCallError with the member's reason (loading, lagging,
//    unavailable), retried elsewhere;
//  - busy or overloaded: `unavailable` and `busy`, retried elsewhere, or on that member after a wait;
//  - shutting down: `unavailable`, retried elsewhere;
//  - anything else: `error`, retried elsewhere, with the code in the message.
// The HTTP request itself (which client, which credential) is the caller's: src/api/query-routes.ts
// over the node's signed member client, src/client/query-client.ts with the user's token.
//
// Called by: src/api/query-routes.ts, src/client/query-client.ts.

import { QueryError, queryErrorCodes, type JsonValue, type QueryErrorCode } from '../data/query-engine.ts';
import { isDefiniteFailure, ShardCallError, type SkipReason } from './fan-out.ts';

const memberReasons: readonly Exclude<SkipReason, 'timeout'>[] = ['unavailable', 'loading', 'lagging', 'error'];
/** The member's slots are full for now: the fan-out may ask it again after a wait. */
const busyCodes: ReadonlySet<string> = new Set(['DRAM_ERR_ENDPOINT_BUSY', 'DRAM_ERR_OVERLOADED']);

function isQueryErrorCode(code: unknown): code is QueryErrorCode {
  return (queryErrorCodes as readonly unknown[]).includes(code);
}

/** A member's error answer (its status and parsed body): a definite failure, or why it could not answer. */
export function mapFailure(status: number, body: unknown): Error {
  const answer = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof answer['code'] === 'string' ? answer['code'] : undefined;
  const message = typeof answer['message'] === 'string' ? answer['message'] : `HTTP ${status}`;
  const failure = isQueryErrorCode(code) ? new QueryError(code, message) : undefined;
  if (failure !== undefined && isDefiniteFailure(failure)) return failure;
  if (code === 'DRAM_ERR_NO_LOCAL_SHARDS') {
    const reason = (answer['details'] as Record<string, unknown> | undefined)?.['reason'];
    return new ShardCallError(memberReasons.find((known) => known === reason) ?? 'unavailable', message);
  }
  if (code === 'DRAM_ERR_SHUTTING_DOWN') return new ShardCallError('unavailable', `${code}: ${message}`);
  if (code !== undefined && busyCodes.has(code)) return new ShardCallError('unavailable', `${code}: ${message}`, true);
  return new ShardCallError('error', `${code ?? `HTTP ${status}`}: ${message.slice(0, 500)}`);
}

export interface MapShardAnswer {
  readonly result: JsonValue;
  /** The params the member ran the map with (checked, defaults filled in); undefined from an older member. */
  readonly params: JsonValue | undefined;
}

/** Shard `shard`'s answer from a map route's status and body text; throws what `mapFailure` says otherwise. */
export function mapAnswerOf(status: number, text: string, shard: string): MapShardAnswer {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new ShardCallError('error', `answered HTTP ${status} with a body that is not JSON`);
  }
  if (status !== 200) throw mapFailure(status, answer);
  const { partials, params } = (typeof answer === 'object' && answer !== null ? answer : {}) as {
    partials?: unknown;
    params?: JsonValue;
  };
  const found = Array.isArray(partials)
    ? (partials as unknown[]).find(
        (partial) =>
          typeof partial === 'object' && partial !== null && (partial as { shard?: unknown }).shard === shard,
      )
    : undefined;
  if (found === undefined || !('result' in (found as object)))
    throw new ShardCallError('error', `answered without the partial of shard ${shard}`);
  return { result: (found as { result: JsonValue }).result, params };
}
