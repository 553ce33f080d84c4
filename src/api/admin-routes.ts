// Node status and admin failover (docs/ARCHITECTURE.md, "The external contract today"):
//  - `GET /v1/status`: node id, cluster id, and every hosted group with role, term, commit,
//    applied, the first and last index of its log here (the first moves past a snapshot, taken
//    here or installed from the leader, less the tail kept behind it), leader and lag (log
//    entries, as the leader sees its slowest member; 0 elsewhere),
//    its membership as this node has applied it (voters, learners), and the last leader change
//    this node saw (when, by its wall clock; from which leader to which; the term; `transfer` or
//    `automatic`, as far as this node can tell: see LeaderChange in src/multiraft/host.ts), or null;
//  - `POST /v1/admin/groups/:group/transfer-leadership` `{ to? }`: asks the group's leader to hand
//    leadership to `to`, or to its most caught-up other voter. A follower forwards the call to the
//    leader. 202 means the transfer started (it completes or aborts on its own within an election
//    timeout; watch /v1/status); 200 means `to` already leads.
//    With the meta model (a node of a cluster), this route is a thin wrapper: it schedules the
//    action `dram.io/group.transfer-leadership {group, to?}` and waits for it (src/api/action-
//    schedule.ts: 200 `{group, from, to, action}` once `to` leads; `?wait=false` answers 202
//    `{action}` at once). The direct route is `POST /v1/internal/groups/:group/transfer-leadership`
//    (what the action's step calls; a follower forwards it to the leader).
//  - `POST /v1/admin/groups/:group/compact` (no body, or `{}`): snapshots this node's replica of
//    the group now and compacts its log behind the snapshot (the host's compactNow), whatever the
//    snapshot thresholds say; not forwarded (each member compacts its own log). 202 `{group,
//    node, index, state: 'started'}`; 200 with `in_progress` (a snapshot is being stored) or
//    `up_to_date` (nothing applied since the last one, at `index`).
//    With the meta model it schedules the action `dram.io/group.compact {group, node: <this
//    node>}` and waits for it, as the transfer route does: 200 `{group, node, index, state,
//    action}` once DONE (`?wait=false`: 202 `{action}`), so a compaction is ordered and recorded
//    like every admin operation. A group this node does not host is refused (404) before anything
//    is scheduled. The direct route is `POST /v1/internal/groups/:group/compact {node?}` (what the
//    action's step calls): this node compacts when `node` is absent or itself, else it forwards
//    the call to `node` (one hop).
//
// The JSON body is validated by hand rather than by a fastify schema: fastify's default Ajv
// settings coerce types and silently drop unknown properties, and an admin command with a typo
// (`{"too": 2}`) must be refused, not run with the default target.
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options); src/cli/main.ts
// reads its answers with its types.

import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { asGroupId, type GroupId, type NodeId } from '../base/ids.ts';
import { compactKind, transferLeadershipKind } from '../control/action-kinds.ts';
import { runAsAction, type ActionsContext } from './action-schedule.ts';
import { ApiError } from './errors.ts';
import { forwardOrRefuse, type ForwardContext } from './forwarding.ts';
import { lagEntries, mostCaughtUpVoter } from './host-view.ts';
import { parseCounter } from './route-input.ts';
import type { ApiHost, Forward } from './ports.ts';
import { jsonBody, memberOnly } from './request-guard.ts';

export interface AdminRoutesOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly host: ApiHost;
  readonly forward: Forward | undefined;
  /** With it, the public admin route schedules an action and waits for it. */
  readonly actions?: ActionsContext | undefined;
}

/** The direct transfer route (no action): what the action's step calls. */
export const transferDirectPath = '/v1/internal/groups/:group/transfer-leadership';

/** The direct compaction route (no action): what the action's step calls. */
export const compactDirectPath = '/v1/internal/groups/:group/compact';

/** A transfer request body is `{}` or `{ "to": <node id> }`; a few bytes is plenty. */
export const transferBodyBytesMax = 1024;

function parseTransferBody(body: unknown): NodeId | undefined {
  if (body === undefined) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'body must be a JSON object such as {"to": 2}');
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (name !== 'to') throw new ApiError('DRAM_ERR_BAD_REQUEST', `unknown field '${name}' (only 'to' is accepted)`);
  }
  const to = fields['to'];
  if (to === undefined) return undefined;
  if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', "'to' must be a positive integer node id");
  return to as NodeId;
}

/** The body of `GET /v1/status`; the CLI's `dram status` reads it with this type. */
export type StatusAnswer = ReturnType<typeof statusAnswer>;

function statusAnswer(options: AdminRoutesOptions) {
  return {
    nodeId: options.nodeId,
    clusterId: options.clusterId,
    groups: options.host.status().map(({ group, status, appliedIndex, lastLeaderChange }) => ({
      group,
      role: status.role,
      term: status.term,
      commit: status.commit,
      applied: appliedIndex,
      firstIndex: status.firstIndex,
      lastIndex: status.lastIndex,
      leader: status.leader,
      lag: lagEntries(status),
      voters: status.confState.voters,
      learners: status.confState.learners,
      quiesced: status.quiesced,
      lastLeaderChange:
        lastLeaderChange === undefined
          ? null
          : {
              at: new Date(lastLeaderChange.atMs).toISOString(),
              from: lastLeaderChange.from,
              to: lastLeaderChange.to,
              term: lastLeaderChange.term,
              cause: lastLeaderChange.cause,
            },
    })),
  };
}

/** The public compact route's body: empty or `{}`. */
function parseCompactBody(body: unknown): void {
  if (
    body !== undefined &&
    (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length > 0)
  )
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'the body must be empty or {}');
}

/** The direct route's body: empty, `{}` or `{"node": <id>}` (the replica to compact; default this node). */
function parseCompactTarget(body: unknown): NodeId | undefined {
  if (body === undefined) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'body must be a JSON object such as {"node": 2}');
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((name) => name !== 'node');
  if (unknown !== undefined) throw new ApiError('DRAM_ERR_BAD_REQUEST', `unknown field '${unknown}' (only 'node')`);
  const node = fields['node'];
  if (node === undefined) return undefined;
  if (typeof node !== 'number' || !Number.isSafeInteger(node) || node < 1)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', "'node' must be a positive integer node id");
  return node as NodeId;
}

/** Compacts this node's replica of a group now and answers what the host said. */
function compactHere(options: AdminRoutesOptions, group: GroupId, reply: FastifyReply): FastifyReply {
  const result = options.host.compactNow(group);
  if (result.kind === 'unknown_group')
    throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
  return reply
    .code(result.kind === 'started' ? 202 : 200)
    .send({ group, node: options.nodeId, index: result.index, state: result.kind });
}

/** The public compact route (an action with the meta model) and the direct one its step calls. */
function compactRoutes(app: FastifyInstance, options: AdminRoutesOptions, context: ForwardContext): void {
  app.post<{ Params: { group: string } }>(
    '/v1/admin/groups/:group/compact',
    jsonBody(transferBodyBytesMax),
    async (request, reply) => {
      const group: GroupId = asGroupId(parseCounter(request.params.group, 'group'));
      parseCompactBody(request.body);
      const actions = options.actions;
      if (actions === undefined) return compactHere(options, group, reply);
      if (options.host.groupStatus(group) === undefined)
        throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
      return runAsAction(actions, request, reply, compactKind, { group, node: options.nodeId });
    },
  );
  app.post<{ Params: { group: string } }>(
    compactDirectPath,
    { ...jsonBody(transferBodyBytesMax), ...memberOnly },
    async (request, reply) => {
      const group: GroupId = asGroupId(parseCounter(request.params.group, 'group'));
      const node = parseCompactTarget(request.body);
      if (node === undefined || node === options.nodeId) return compactHere(options, group, reply);
      // Another node's replica: one hop to it, with the same body (there it names itself).
      return forwardOrRefuse(context, request, reply, {
        group,
        leaderHint: node,
        body: Buffer.from(JSON.stringify({ node })),
        onFailure: 'forward_failed',
      });
    },
  );
}

export const adminRoutes: FastifyPluginCallback<AdminRoutesOptions> = (app, options, done) => {
  const context: ForwardContext = { nodeId: options.nodeId, forward: options.forward };

  app.get('/v1/status', () => statusAnswer(options));

  const actions = options.actions;
  app.post<{ Params: { group: string } }>(
    '/v1/admin/groups/:group/transfer-leadership',
    jsonBody(transferBodyBytesMax),
    async (request, reply) => {
      if (actions === undefined) return transfer(request, reply);
      const group: GroupId = asGroupId(parseCounter(request.params.group, 'group'));
      const to = parseTransferBody(request.body);
      return runAsAction(actions, request, reply, transferLeadershipKind, to === undefined ? { group } : { group, to });
    },
  );
  compactRoutes(app, options, context);
  app.post<{ Params: { group: string } }>(
    transferDirectPath,
    { ...jsonBody(transferBodyBytesMax), ...memberOnly },
    transfer,
  );

  async function transfer(
    request: FastifyRequest<{ Params: { group: string } }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const group: GroupId = asGroupId(parseCounter(request.params.group, 'group'));
    const requested = parseTransferBody(request.body);
    const view = options.host.groupStatus(group);
    if (view === undefined)
      throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
    if (view.status.role !== 'leader') {
      const body = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
      return forwardOrRefuse(context, request, reply, {
        group,
        leaderHint: view.status.leader,
        body,
        onFailure: 'forward_failed',
      });
    }
    const to = requested ?? mostCaughtUpVoter(view.status);
    if (to === undefined)
      throw new ApiError('DRAM_ERR_TRANSFER_FAILED', `group ${group} has no other voter to take over`, { group });
    const answer = { group, from: options.nodeId, to };
    if (to === options.nodeId) return reply.code(200).send(answer);
    const result = options.host.transferLeadership(group, to);
    switch (result.kind) {
      case 'started':
      case 'in_progress':
        return reply.code(202).send(answer);
      case 'already_leader':
        return reply.code(200).send({ group, from: options.nodeId, to: options.nodeId });
      case 'not_leader':
        return forwardOrRefuse(context, request, reply, {
          group,
          leaderHint: result.leaderHint,
          body: Buffer.from(JSON.stringify(request.body ?? {})),
          onFailure: 'forward_failed',
        });
      case 'invalid_target':
        throw new ApiError('DRAM_ERR_BAD_REQUEST', `cannot transfer to node ${to}: ${result.reason}`, { group, to });
      case 'unknown_group':
        throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
    }
  }

  done();
};
