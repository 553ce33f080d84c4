// The joining node's side of `dram start --join http://member`: two calls to the member's HTTP API.
//  1. `GET /v1/admin/members`, before anything starts: the cluster id (checked against ours, so a
//     node is never half-joined to the wrong cluster), the kv groups to host, and every member's
//     raft and HTTP addresses;
//  2. `POST /v1/internal/members`, once this node serves (its learners must be able to catch up
//     before the member promotes them): answered when this node is a voter of every group. This
//     is the direct route, not `POST /v1/admin/members` (which schedules cluster.add and waits for
//     it): a join asked for by a running cluster.add must not queue behind it.
// The second call goes to the member joined through first, then, attempt by attempt, to the
// other members the first call listed (a member that died meanwhile does not stop the join).
// Both retry what may pass (no answer, a 5xx, DRAM_ERR_MEMBERSHIP_PENDING: the member keeps what
// it did, so each retry continues where the last stopped) every `retryDelayMs`, at most
// `attemptsMax` times, each call bounded by `callTimeoutMs`; a 4xx is the cluster refusing us,
// which no retry fixes: a JoinError with the member's code and message.
//
// Called by: src/node/membership.ts.

import type { GroupId } from '../base/ids.ts';
import { joinAnswer } from '../control/bootstrap.ts';
import { asGroupId, asNodeId } from '../base/ids.ts';
import { formatAddress, membersMax, parseAddress, type MemberAddresses } from '../control/member-directory.ts';
import type { NetAddress } from '../codec/wire.ts';

export class JoinError extends Error {
  override readonly name = 'JoinError';
  readonly code = 'DRAM_ERR_JOIN';
}

export interface JoinRetry {
  readonly attemptsMax: number;
  readonly retryDelayMs: number;
  readonly callTimeoutMs: number;
}

/** About a minute of retries: long enough for an election or a slow catch-up, short enough to notice. */
export const joinRetryDefault: JoinRetry = { attemptsMax: 60, retryDelayMs: 1000, callTimeoutMs: 60_000 };

/** More kv groups than this in a member's answer is not a cluster we know how to join. */
export const clusterGroupsMax = 65_536;

export interface ClusterView {
  readonly clusterId: string;
  readonly groups: readonly GroupId[];
  readonly members: readonly MemberAddresses[];
  /**
   * The cluster places its kv groups (a kv replication factor is recorded): a joining node only
   * registers, and the placement controller hands it groups (absent from older members: false).
   */
  readonly placed: boolean;
}

/** Headers proving this node holds the cluster secret, for the call `method url` (src/node/peer-signer.ts). */
export type CallSigner = (method: string, url: string) => Record<string, string>;

export type JoinLog = (message: string, fields: Readonly<Record<string, unknown>>) => void;

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** The member's cluster as it describes it; throws JoinError when it refuses or never answers. */
export async function fetchClusterView(
  via: string,
  retry: JoinRetry,
  log: JoinLog,
  sign?: CallSigner,
): Promise<ClusterView> {
  const answer = await callWithRetries([via], 'GET', '/v1/admin/members', undefined, retry, log, sign);
  return parseClusterView(answer.body, via);
}

/**
 * Asks the member (or, when it does not answer, the next of `others`) to make `self` a voter of
 * every group; resolves once it is, throws JoinError otherwise.
 */
export async function requestMembership(
  via: string,
  others: readonly string[],
  self: MemberAddresses & { readonly clusterId: string },
  retry: JoinRetry,
  log: JoinLog,
  sign?: CallSigner,
): Promise<void> {
  if (self.http === undefined) throw new JoinError("joining needs this node's HTTP address");
  const body = JSON.stringify({
    nodeId: self.nodeId,
    raft: formatAddress(self.raft),
    http: formatAddress(self.http),
    clusterId: self.clusterId,
  });
  await callWithRetries([via, ...others], 'POST', '/v1/internal/members', body, retry, log, sign);
}

async function callWithRetries(
  members: readonly string[],
  method: 'GET' | 'POST',
  path: string,
  body: string | undefined,
  retry: JoinRetry,
  log: JoinLog,
  sign: CallSigner | undefined,
): Promise<Answer> {
  let lastProblem = 'no attempt made';
  let via = members[0] ?? '';
  for (let attempt = 1; attempt <= retry.attemptsMax; attempt++) {
    via = members[(attempt - 1) % members.length] ?? via;
    const outcome = await callOnce(via, method, path, body, retry.callTimeoutMs, sign);
    if (typeof outcome !== 'string') {
      const answer = joinAnswer(outcome.status);
      if (answer === 'done') return outcome;
      const problem = describe(outcome);
      if (answer === 'refused') throw new JoinError(`${via} refused ${method} ${path}: ${problem}`);
      lastProblem = problem;
    } else {
      lastProblem = outcome;
    }
    log('join: not there yet, retrying', { via, path, attempt, attemptsMax: retry.attemptsMax, problem: lastProblem });
    if (attempt < retry.attemptsMax) await new Promise((resolve) => setTimeout(resolve, retry.retryDelayMs));
  }
  throw new JoinError(
    `${method} ${via}${path} did not succeed in ${retry.attemptsMax} attempts: ${lastProblem}. Start the node again with the same flags to continue where it stopped`,
  );
}

/** The answer, or why there was none. */
async function callOnce(
  via: string,
  method: string,
  path: string,
  body: string | undefined,
  timeoutMs: number,
  sign: CallSigner | undefined,
): Promise<Answer | string> {
  try {
    // Relative to the member's URL, so a base path (a proxy's prefix) is kept.
    const url = new URL(path.replace(/^\//u, ''), `${via}/`);
    const headers = {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...sign?.(method, url.pathname + url.search),
    };
    const response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `no answer from ${via} (${error instanceof Error ? error.message : String(error)}${cause})`;
  }
}

function describe(answer: Answer): string {
  const body = answer.body;
  if (typeof body === 'object' && body !== null && 'code' in body && 'message' in body)
    return `${answer.status} ${String(body.code)} ${String(body.message)}`;
  return `HTTP ${answer.status}`;
}

/** Validates the GET answer; a malformed one is a JoinError (we would not know what to host). */
export function parseClusterView(value: unknown, via: string): ClusterView {
  const bad = (why: string): never => {
    throw new JoinError(`${via}/v1/admin/members answered something unexpected: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not a JSON object');
  const raw = value as Record<string, unknown>;
  const clusterId = raw['clusterId'];
  if (typeof clusterId !== 'string' || clusterId.length === 0) return bad('no clusterId');
  const groups = raw['groups'];
  if (!Array.isArray(groups) || groups.length === 0 || groups.length > clusterGroupsMax)
    return bad(`groups: expected 1..${clusterGroupsMax} group ids`);
  const groupIds = groups.map((group: unknown) =>
    typeof group === 'number' && Number.isSafeInteger(group) && group >= 0
      ? asGroupId(group)
      : bad(`groups: ${JSON.stringify(group)} is not a group id`),
  );
  const members = raw['members'];
  if (!Array.isArray(members) || members.length > membersMax) return bad(`members: expected at most ${membersMax}`);
  const factor = raw['kvReplicationFactor'];
  if (
    factor !== undefined &&
    factor !== null &&
    !(typeof factor === 'number' && Number.isSafeInteger(factor) && factor > 0)
  )
    return bad('kvReplicationFactor: expected a positive integer or null');
  return {
    clusterId,
    groups: groupIds,
    members: members.map((member: unknown, k) => parseMember(member, `members[${k}]`, bad)),
    placed: typeof factor === 'number',
  };
}

function parseMember(value: unknown, path: string, bad: (why: string) => never): MemberAddresses {
  if (typeof value !== 'object' || value === null) return bad(`${path}: not an object`);
  const raw = value as Record<string, unknown>;
  const nodeId = raw['nodeId'];
  if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId < 1)
    return bad(`${path}.nodeId: not a node id`);
  const address = (name: string): NetAddress | undefined => {
    const text = raw[name];
    if (text === undefined) return undefined;
    const parsed = typeof text === 'string' ? parseAddress(text, 'any') : 'not a string';
    return typeof parsed === 'string' ? bad(`${path}.${name}: ${parsed}`) : parsed;
  };
  const raft = address('raft') ?? bad(`${path}.raft: missing`);
  return { nodeId: asNodeId(nodeId), raft, http: address('http') };
}
