// Cluster membership over HTTP (how `dram start --join` adds a node, and what an operator can call):
//  - `GET /v1/admin/members`: this node's id and cluster id, the kv groups, and every node it
//    knows with its raft and HTTP addresses (what a joining node needs before it starts);
//  - `POST /v1/admin/members` `{ nodeId, raft, http, clusterId? }`: makes the node a voter of
//    every kv group. This node records its addresses, then, for each group at once, asks the
//    group's leader (itself, or over HTTP) to add it as a learner and promote it once caught up;
//  - `POST /v1/admin/groups/:group/members` (same body): the same for one group; a follower
//    forwards it to the leader, which runs the steps (src/control/member-change.ts).
//
// With the meta model (a node of a cluster), `POST /v1/admin/members` is a thin wrapper: after the
// same checks (400, 409: nothing scheduled) it schedules `agent.replicante.io/cluster.add
// {node: "http://<http>"}` and waits for it (src/api/action-schedule.ts; `?wait=false` answers 202
// `{action}` at once). The direct route, what a joining node calls once it serves, is
// `POST /v1/internal/members` (same body, the answers below).
//
// Answers: 200 when the node is a voter of every group asked about, with per group the leader
// and the steps applied; 503 DRAM_ERR_MEMBERSHIP_PENDING with the same per-group report in
// `details` when a group did not get there within the request timeout (retry the same request:
// done steps are skipped). Bad input is a 400, a cluster id other than ours or a node id / address
// clash with the address book a 409, and nothing is recorded or proposed then.
//
// Where the cluster places its kv groups (the meta model records a kv replication factor, shown as
// `kvReplicationFactor` by the GET), the direct route only registers the node (ACTIVE, with its
// addresses) and answers `{nodeId, groups: [], placed: true, members}`: the placement controller
// then hands it groups, as it spreads replicas to the least loaded nodes.
//
// Bodies are validated by hand like the other admin routes (no Ajv coercion, unknown fields
// refused). Every wait is bounded by `requestTimeoutMs`; the fan-out retries a group whose leader
// is changing every `pollMs`, at most `groupAttemptsMax` times, within that deadline (the driver,
// shared with removing a node, is src/api/member-fanout.ts).
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import { performance } from 'node:perf_hooks';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import { clusterIdBytes, clusterIdBytesMax } from '../codec/wire.ts';
import { ApiError } from './errors.ts';
import { forwardOrRefuse } from './forwarding.ts';
import { parseCounter } from './route-input.ts';
import { ensureVoter, type GroupMemberProgress } from '../control/member-change.ts';
import { memberConflict, membersJson, parseAddress, type MemberAddresses } from '../control/member-directory.ts';
import {
  changeThroughLeader,
  fanoutContext,
  pendingError,
  unknownGroupError,
  whenLeading,
  stoppedAttempt,
  type Attempt,
  type FanoutContext,
  type MembershipChange,
  type MembershipRouteOptions,
} from './member-fanout.ts';
import { jsonBody, memberOnly } from './request-guard.ts';
import { clusterAddKind } from '../control/action-kinds.ts';
import { formatAddress } from '../control/member-directory.ts';
import { runAsAction, type ActionsContext } from './action-schedule.ts';
import { proposeMeta } from './meta-propose.ts';

export interface MemberRoutesOptions extends MembershipRouteOptions {
  readonly clusterId: string;
  /** With it, the public join route schedules cluster.add and waits for it. */
  readonly actions?: ActionsContext | undefined;
}

/** The direct join route (no action): what a joining node calls once it serves. */
export const memberJoinDirectPath = '/v1/internal/members';

/** `{ nodeId, raft, http, clusterId }` with the longest host names and cluster id fits in well under this. */
export const memberBodyBytesMax = 2048;

export interface MemberRequest {
  readonly member: MemberAddresses;
  readonly clusterId: string | undefined;
}

const memberFields: ReadonlySet<string> = new Set(['nodeId', 'raft', 'http', 'clusterId']);

/** Validates a member body; throws DRAM_ERR_BAD_REQUEST naming the field. */
export function parseMemberBody(body: unknown): MemberRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(
      'DRAM_ERR_BAD_REQUEST',
      'body must be a JSON object such as {"nodeId": 4, "raft": "10.0.0.4:9080", "http": "10.0.0.4:8080"}',
    );
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!memberFields.has(name))
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `unknown field '${name}' (accepted: ${[...memberFields].join(', ')})`);
  }
  const nodeId = fields['nodeId'];
  if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId < 1)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', "'nodeId' must be a positive integer");
  const clusterId = fields['clusterId'];
  if (
    clusterId !== undefined &&
    (typeof clusterId !== 'string' || clusterIdBytes(clusterId) === 0 || clusterIdBytes(clusterId) > clusterIdBytesMax)
  ) {
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `'clusterId' must be a string of 1..${clusterIdBytesMax} bytes`);
  }
  return {
    member: { nodeId: asNodeId(nodeId), raft: addressField(fields, 'raft'), http: addressField(fields, 'http') },
    clusterId,
  };
}

function addressField(fields: Record<string, unknown>, name: 'raft' | 'http'): MemberAddresses['raft'] {
  const text = fields[name];
  if (typeof text !== 'string') throw new ApiError('DRAM_ERR_BAD_REQUEST', `'${name}' must be a "host:port" string`);
  const address = parseAddress(text);
  if (typeof address === 'string') throw new ApiError('DRAM_ERR_BAD_REQUEST', `'${name}': ${address}`);
  return address;
}

type MemberContext = FanoutContext<MemberRoutesOptions>;

/** The checks that come before anything is recorded: cluster id, then the address book. */
function admit(context: MemberContext, request: MemberRequest): void {
  const ours = context.options.clusterId;
  if (request.clusterId !== undefined && ours !== '' && request.clusterId !== ours) {
    throw new ApiError(
      'DRAM_ERR_CLUSTER_MISMATCH',
      `this node belongs to cluster ${JSON.stringify(ours)}, not ${JSON.stringify(request.clusterId)}`,
      { clusterId: ours },
    );
  }
  const conflict = memberConflict(context.options.directory.list(), request.member);
  if (conflict !== undefined)
    throw new ApiError('DRAM_ERR_MEMBER_CONFLICT', conflict, { nodeId: request.member.nodeId });
}

function memberBodyJson(request: MemberRequest): string {
  const [member] = membersJson([request.member]);
  return JSON.stringify({ ...member, ...(request.clusterId === undefined ? {} : { clusterId: request.clusterId }) });
}

/** One try on this node, which leads the group. */
async function runHere(context: MemberContext, group: GroupId, node: NodeId, deadlineMs: number): Promise<Attempt> {
  const result = await ensureVoter(context.options.host, group, node, deadlineMs, context.limits);
  if (result.kind === 'voter' || result.kind === 'pending') return { done: result.progress };
  return stoppedAttempt(context, group, result);
}

/** `member` made a voter of `group` through whichever node leads it (the leader's per-group route, when not here). */
function joinChange(context: MemberContext, group: GroupId, request: MemberRequest): MembershipChange {
  return {
    group,
    runHere: (deadlineMs) => runHere(context, group, request.member.nodeId, deadlineMs),
    atLeader: {
      method: 'POST',
      url: `/v1/admin/groups/${group}/members`,
      body: memberBodyJson(request),
      stepsKnown: ['add_learner', 'add_voter'],
      votersReported: false,
    },
  };
}

/** The per-group route on this node: run the steps when leading the group, else forward to its leader (one hop). */
async function addToGroup(
  context: MemberContext,
  parsed: MemberRequest,
  group: GroupId,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | GroupMemberProgress> {
  const node = parsed.member.nodeId;
  const { host, requestTimeoutMs } = context.options;
  const result = await whenLeading(host, group, () =>
    ensureVoter(host, group, node, performance.now() + requestTimeoutMs, context.limits),
  );
  switch (result.kind) {
    case 'voter':
      return result.progress;
    case 'pending':
      throw pendingError(
        `node ${node} is not a voter of group ${group} yet: ${result.progress.pending ?? result.progress.state}`,
        { ...result.progress },
      );
    case 'unknown_group':
      throw unknownGroupError(group);
    case 'invalid':
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `cannot add node ${node} to group ${group}: ${result.reason}`, {
        group,
      });
    case 'not_leader':
      return forwardOrRefuse(context, request, reply, {
        group,
        leaderHint: result.leaderHint,
        body: Buffer.from(memberBodyJson(parsed)),
        onFailure: 'forward_failed',
      });
  }
}

/**
 * Where the cluster places its kv groups, a joining node is registered (ACTIVE, with its
 * addresses) and made a voter of nothing: the placement controller hands it groups.
 */
async function registerPlaced(context: MemberContext, actions: ActionsContext, parsed: MemberRequest) {
  const { nodeId, raft, http } = parsed.member;
  const known = actions.model.node(nodeId);
  const url = http === undefined ? null : `http://${formatAddress(http)}`;
  const proposed = await proposeMeta(actions, {
    type: 'node.upsert',
    node: {
      id: nodeId,
      address: { member: url, client: url, raft: formatAddress(raft) },
      agentVersion: known?.agentVersion ?? '',
      storeVersion: known?.storeVersion ?? '',
      attributes: known?.attributes ?? {},
      status: known?.status === 'LEAVING' ? 'LEAVING' : 'ACTIVE',
    },
  });
  if (!proposed.outcome.ok)
    throw new ApiError('DRAM_ERR_INTERNAL', `registering node ${nodeId} refused: ${proposed.outcome.code}`);
  return { nodeId, groups: [], placed: true, members: membersJson(context.options.directory.list()) };
}

export const memberRoutes: FastifyPluginCallback<MemberRoutesOptions> = (app, options, done) => {
  const context = fanoutContext(options);

  app.get('/v1/admin/members', () => ({
    nodeId: options.nodeId,
    clusterId: options.clusterId,
    groups: options.groups,
    members: membersJson(options.directory.list()),
    // Set: the cluster places its kv groups, and a joining node only registers (see joinEverywhere).
    kvReplicationFactor: options.actions?.model.replicationFactor('kv') ?? null,
  }));

  const actions = options.actions;
  app.post('/v1/admin/members', jsonBody(memberBodyBytesMax), async (request, reply) => {
    if (actions === undefined) return joinEverywhere(request);
    const parsed = parseMemberBody(request.body);
    admit(context, parsed);
    const http = parsed.member.http;
    if (http === undefined) throw new ApiError('DRAM_ERR_BAD_REQUEST', '\'http\' must be a "host:port" string');
    options.directory.record(parsed.member);
    return runAsAction(actions, request, reply, clusterAddKind, { node: `http://${formatAddress(http)}` });
  });
  app.post(memberJoinDirectPath, { ...jsonBody(memberBodyBytesMax), ...memberOnly }, joinEverywhere);

  async function joinEverywhere(request: FastifyRequest) {
    const parsed = parseMemberBody(request.body);
    admit(context, parsed);
    options.directory.record(parsed.member);
    if (actions !== undefined && actions.model.replicationFactor('kv') !== undefined)
      return registerPlaced(context, actions, parsed);
    const deadlineMs = performance.now() + options.requestTimeoutMs;
    const groups = await Promise.all(
      options.groups.map((group) => changeThroughLeader(context, joinChange(context, group, parsed), deadlineMs)),
    );
    const nodeId = parsed.member.nodeId;
    const waiting = groups.filter((group) => group.state !== 'voter');
    if (waiting.length > 0) {
      throw pendingError(
        `node ${nodeId} is a voter of ${groups.length - waiting.length} of ${groups.length} groups; retry to continue (${waiting.map((group) => `group ${group.group}: ${group.pending ?? group.state}`).join('; ')})`,
        { nodeId, groups },
      );
    }
    return { nodeId, groups, members: membersJson(options.directory.list()) };
  }

  app.post<{ Params: { group: string } }>(
    '/v1/admin/groups/:group/members',
    jsonBody(memberBodyBytesMax),
    async (request, reply) => {
      const group = asGroupId(parseCounter(request.params.group, 'group'));
      const parsed = parseMemberBody(request.body);
      admit(context, parsed);
      if (options.host.groupStatus(group) === undefined) throw unknownGroupError(group);
      options.directory.record(parsed.member);
      return addToGroup(context, parsed, group, request, reply);
    },
  );

  done();
};
