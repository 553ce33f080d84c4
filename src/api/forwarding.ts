// Forwarding a request this node cannot serve to the group's leader (docs/ARCHITECTURE.md, key
// decision 4: every node serves), through the Forward port, and relaying the answer as is.
//
// Invariants:
//  - at most one hop: a forwarded request carries X-Dram-Forwarded-By, and a node that receives one
//    and is not the leader answers 503 instead of forwarding again (two nodes with stale views of
//    each other could otherwise bounce a request forever);
//  - no leader known -> 503 DRAM_ERR_NO_LEADER; leader known but forwarding impossible -> 503
//    DRAM_ERR_NOT_LEADER with the hint in details (both definite failures: nothing was applied);
//  - a forward that gets no answer is indeterminate for a write (the leader may have applied it
//    before the connection broke) and a plain failure (502) for reads and admin calls;
//  - only the content type and dram's own headers cross in either direction; hop-by-hop headers
//    (length, encoding, connection) are the transports' business.
//
// Called by: src/api/kv-routes.ts, admin-routes.ts, member-routes.ts and member-remove-routes.ts
// (forwardOrRefuse); kv-outcomes.ts and binary-server.ts use the leader errors; member-fanout.ts
// the forwarded-by header.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { NO_NODE, type GroupId, type NodeId } from '../base/ids.ts';
import { ApiError } from './errors.ts';
import { forwardNoAddressCode, type Forward, type ForwardMethod, type ForwardResponse } from './ports.ts';

export const forwardedByHeader = 'x-dram-forwarded-by';

/** Request headers the leader needs: the body's type and the exactly-once client stamp. */
const forwardedRequestHeaders = ['content-type', 'x-dram-client-id', 'x-dram-request-seq'] as const;

export interface ForwardContext {
  readonly nodeId: NodeId;
  readonly forward: Forward | undefined;
}

export type ForwardFailure = 'indeterminate' | 'forward_failed';

export function noLeaderError(group: GroupId): ApiError {
  return new ApiError('DRAM_ERR_NO_LEADER', `group ${group} has no known leader`, { group });
}

/** NOT_LEADER with the hint; with no leader known (hint 0) it is NO_LEADER, whoever asks. */
export function notLeaderError(group: GroupId, leaderHint: NodeId, why: string): ApiError {
  if (leaderHint === 0) return noLeaderError(group);
  return new ApiError('DRAM_ERR_NOT_LEADER', `this node does not lead group ${group}: ${why}`, { group, leaderHint });
}

function forwardMethod(method: string): ForwardMethod | undefined {
  return method === 'GET' || method === 'PUT' || method === 'DELETE' || method === 'POST' ? method : undefined;
}

/**
 * One request to forward, whoever received it (an HTTP route, or the binary protocol for a key of a
 * group this node does not host): what the Forward port sends, and whether it came forwarded.
 */
export interface ForwardCall {
  readonly method: ForwardMethod;
  /** Path and query (e.g. `/v1/kv/a%20b?cas=3`). */
  readonly url: string;
  /** The headers the target needs (forwardedRequestHeaders); the hop mark is added here. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  /** The request came from another node already (it carried X-Dram-Forwarded-By): no second hop. */
  readonly forwarded: boolean;
  /** Told when a forward got no answer. */
  readonly warn?: ((detail: Record<string, unknown>, message: string) => void) | undefined;
}

interface ForwardTarget {
  readonly group: GroupId;
  readonly leaderHint: NodeId;
  readonly onFailure: ForwardFailure;
}

/** The call an HTTP request makes: its method, URL, the headers the target needs and its hop mark. */
function callOf(request: FastifyRequest, body: Buffer | undefined): ForwardCall | undefined {
  const method = forwardMethod(request.method);
  if (method === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const name of forwardedRequestHeaders) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return {
    method,
    url: request.url,
    headers,
    body,
    forwarded: request.headers[forwardedByHeader] !== undefined,
    warn: (detail, message) => {
      request.log.warn(detail, message);
    },
  };
}

/** Forwards to `leaderHint` when allowed, relays its answer; otherwise throws the 503 that says why not. */
export async function forwardOrRefuse(
  context: ForwardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  target: ForwardTarget & { readonly body: Buffer | undefined },
): Promise<FastifyReply> {
  const call = callOf(request, target.body);
  if (call === undefined) {
    refuseForward(context, target);
    throw notLeaderError(target.group, target.leaderHint, `${request.method} is not forwarded`);
  }
  return relay(reply, await forwardCall(context, target, call));
}

/** Throws the 503 that says why a request for `target` cannot be forwarded at all, if it cannot. */
function refuseForward(context: ForwardContext, target: ForwardTarget, call?: ForwardCall): void {
  const { group, leaderHint } = target;
  if (leaderHint === 0) throw noLeaderError(group);
  if (leaderHint === context.nodeId) throw notLeaderError(group, leaderHint, 'leadership is changing hands');
  if (context.forward === undefined) throw notLeaderError(group, leaderHint, 'forwarding is not configured');
  if (call?.forwarded === true) throw notLeaderError(group, leaderHint, 'request was already forwarded once');
}

/**
 * Sends `call` to `target.leaderHint` and returns its answer, whatever its status; throws the 503
 * that says why not when it cannot be sent, and the failure `target.onFailure` names when it got
 * no answer.
 */
export async function forwardCall(
  context: ForwardContext,
  target: ForwardTarget,
  call: ForwardCall,
): Promise<ForwardResponse> {
  refuseForward(context, target, call);
  const { group, leaderHint } = target;
  const forward = context.forward as Forward;
  const headers = { ...call.headers, [forwardedByHeader]: String(context.nodeId) };
  try {
    return await forward(leaderHint, { method: call.method, url: call.url, headers, body: call.body });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    call.warn?.({ group, leader: leaderHint, err: error }, 'forward to leader failed');
    // A connection that was never made carried no request: a definite failure, safe to retry.
    if (connectionNeverMade(error))
      throw new ApiError(
        'DRAM_ERR_NOT_LEADER',
        `this node does not lead group ${group}: node ${leaderHint} is unreachable (${detail})`,
        { group, leaderHint, unreachable: true },
      );
    if (target.onFailure === 'indeterminate') {
      throw new ApiError(
        'DRAM_ERR_INDETERMINATE',
        `forwarded write to node ${leaderHint} got no answer (${detail}); it may or may not be applied`,
        { group, leaderHint },
      );
    }
    throw new ApiError('DRAM_ERR_FORWARD_FAILED', `could not forward to node ${leaderHint}: ${detail}`, {
      group,
      leaderHint,
    });
  }
}

/**
 * Forwards to the first of `members` (nodes hosting a group this node does not) that takes the
 * connection, starting at a different one per request; a node that refuses the connection is
 * skipped (nothing was sent). No member, or none reachable: 503 DRAM_ERR_NO_LEADER or NOT_LEADER,
 * definite failures.
 */
export async function forwardToAny(
  context: ForwardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  target: {
    readonly group: GroupId;
    readonly members: readonly NodeId[];
    readonly body: Buffer | undefined;
    readonly onFailure: ForwardFailure;
  },
): Promise<FastifyReply> {
  const call = callOf(request, target.body);
  if (call === undefined)
    throw notLeaderError(target.group, target.members[0] ?? NO_NODE, `${request.method} is not forwarded`);
  return relay(reply, await forwardCallToAny(context, target, call));
}

/** forwardToAny's member loop for any call: the answer of the first member reached. */
export async function forwardCallToAny(
  context: ForwardContext,
  target: { readonly group: GroupId; readonly members: readonly NodeId[]; readonly onFailure: ForwardFailure },
  call: ForwardCall,
): Promise<ForwardResponse> {
  const { group, members } = target;
  if (members.length === 0)
    throw new ApiError('DRAM_ERR_NO_LEADER', `group ${group} is not hosted here and no member of it is known`, {
      group,
    });
  const first = nextMember++ % members.length;
  let last: unknown;
  for (let k = 0; k < members.length; k++) {
    const member = members[(first + k) % members.length] as NodeId;
    try {
      return await forwardCall(context, { ...target, leaderHint: member }, call);
    } catch (error) {
      // Only "never reached": any other failure may have carried the request, and is final.
      if (!(error instanceof ApiError) || error.code !== 'DRAM_ERR_NOT_LEADER' || !unreachable(error)) throw error;
      last = error;
    }
  }
  throw last;
}

let nextMember = 0;

function unreachable(error: ApiError): boolean {
  return error.details?.['unreachable'] === true;
}

const connectionFailureCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  forwardNoAddressCode,
]);

function connectionNeverMade(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' && connectionFailureCodes.has(code);
}

function relay(reply: FastifyReply, response: ForwardResponse): FastifyReply {
  for (const [name, value] of Object.entries(response.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-type' || lower.startsWith('x-dram-')) reply.header(lower, value);
  }
  return reply.code(response.status).send(response.body);
}
