// Removing a node from the cluster over HTTP (the counterpart of member-routes.ts's join):
//  - `DELETE /v1/admin/members/:nodeId` on any node: removes the node from every kv group at once,
//    each through the group's leader (itself, or one HTTP hop to the per-group route), and once
//    it is out of every group forgets it here (address book, transport, forwarding);
//  - `DELETE /v1/admin/groups/:group/members/:nodeId`: the same for one group; a follower
//    forwards it to the leader, which proposes the change (src/control/member-removal.ts).
//
// Answers: 200 when the node is in no group asked about, with per group the leader, the steps
// applied and the voters left (and `warnings` for a group left with fewer than three voters,
// which then tolerates no failure); 503 DRAM_ERR_MEMBERSHIP_PENDING with the same report in
// `details` when a group did not get there within the request timeout (retry: a group already
// done is skipped). Removing a node that is in no group is a success that changes nothing.
// Refused before anything is proposed: a bad id (400), and removing a group's last voter (409
// DRAM_ERR_LAST_VOTER, judged on this node's applied configurations; a leader that sees it
// differently refuses its group alone and the request reports it pending).
//
// Other members forget the node on their own, when their applied configurations no longer hold
// it anywhere (src/node/removal-watch.ts); this route forgets it here at once so that its answer
// already lists the members without it.
//
// With the meta model (a node of a cluster), `DELETE /v1/admin/members/:nodeId` is a thin wrapper:
// after the same last-voter check it schedules `agent.replicante.io/cluster.remove {node}` and waits
// for it (src/api/action-schedule.ts; `?wait=false` answers 202 `{action}` at once); the action
// takes the node out of every kv group through the direct route, `DELETE /v1/internal/members/:nodeId`,
// then out of the meta group and the registry.
//
// Every wait is bounded by `requestTimeoutMs`; a moving leadership (the removed node led the
// group and handed it over) is retried every `pollMs`, at most `groupAttemptsMax` times (the
// driver, shared with adding a node, is src/api/member-fanout.ts).
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import { performance } from 'node:perf_hooks';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { NO_NODE, asGroupId, asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import { ApiError } from './errors.ts';
import { forwardOrRefuse } from './forwarding.ts';
import { parseCounter } from './route-input.ts';
import type { GroupMemberProgress } from '../control/member-change.ts';
import { membersJson } from '../control/member-directory.ts';
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
import { ensureAbsent, lastVoter } from '../control/member-removal.ts';
import { clusterRemoveKind } from '../control/action-kinds.ts';
import { runAsAction, type ActionsContext } from './action-schedule.ts';
import { memberOnly } from './request-guard.ts';

export interface MemberRemoveRoutesOptions extends MembershipRouteOptions {
  /** With it, the public removal route schedules cluster.remove and waits for it. */
  readonly actions?: ActionsContext | undefined;
}

/** A group with fewer voters than this tolerates no failure: the answer warns about it. */
export const votersTolerantMin = 3;

type RemoveContext = FanoutContext;

/** `:nodeId` as a node id (a positive integer); throws DRAM_ERR_BAD_REQUEST. */
export function parseNodeParam(text: string): NodeId {
  const value = parseCounter(text, 'nodeId');
  if (value < 1) throw new ApiError('DRAM_ERR_BAD_REQUEST', `nodeId must be a positive integer, got '${text}'`);
  return asNodeId(value);
}

function lastVoterError(group: GroupId, node: NodeId): ApiError {
  return new ApiError(
    'DRAM_ERR_LAST_VOTER',
    `node ${node} is the last voter of group ${group}: removing it would leave the group without a voter`,
    { group, nodeId: node },
  );
}

/** One try on this node, which leads the group (a leader removing itself answers from its applied configuration). */
async function runHere(context: RemoveContext, group: GroupId, node: NodeId, deadlineMs: number): Promise<Attempt> {
  const result = await ensureAbsent(context.options.host, group, node, deadlineMs, context.limits);
  if (result.kind === 'absent' || result.kind === 'pending') return { done: result.progress };
  if (result.kind === 'last_voter')
    return {
      done: { group, leader: context.nodeId, state: 'voter', steps: [], pending: lastVoterError(group, node).message },
    };
  return stoppedAttempt(context, group, result);
}

/** `node` taken out of `group` through whichever node leads it (the leader's per-group route, when not here). */
function leaveChange(context: RemoveContext, group: GroupId, node: NodeId): MembershipChange {
  return {
    group,
    runHere: (deadlineMs) => runHere(context, group, node, deadlineMs),
    atLeader: {
      method: 'DELETE',
      url: `/v1/admin/groups/${group}/members/${node}`,
      body: undefined,
      stepsKnown: ['remove_node'],
      votersReported: true,
    },
  };
}

/** The per-group route on this node: remove when leading the group, else forward to its leader (one hop). */
async function removeFromGroup(
  context: RemoveContext,
  group: GroupId,
  node: NodeId,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply | GroupMemberProgress> {
  const { host, requestTimeoutMs } = context.options;
  const result = await whenLeading(host, group, () =>
    ensureAbsent(host, group, node, performance.now() + requestTimeoutMs, context.limits),
  );
  switch (result.kind) {
    case 'absent':
      return result.progress;
    case 'pending':
      throw pendingError(
        `node ${node} is still a member of group ${group}: ${result.progress.pending ?? result.progress.state}`,
        { ...result.progress },
      );
    case 'last_voter':
      throw lastVoterError(group, node);
    case 'unknown_group':
      throw unknownGroupError(group);
    case 'invalid':
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `cannot remove node ${node} from group ${group}: ${result.reason}`, {
        group,
      });
    case 'not_leader':
      return forwardOrRefuse(context, request, reply, {
        group,
        leaderHint: result.leaderHint,
        body: undefined,
        onFailure: 'forward_failed',
      });
  }
}

function warningsOf(groups: readonly GroupMemberProgress[]): string[] {
  return groups.flatMap((report) => {
    const voters = report.voters;
    if (voters === undefined || voters.length >= votersTolerantMin) return [];
    return [
      `group ${report.group} has ${voters.length} voter${voters.length === 1 ? '' : 's'} left (${voters.join(', ')}): it tolerates no failure`,
    ];
  });
}

export const memberRemoveRoutes: FastifyPluginCallback<MemberRemoveRoutesOptions> = (app, options, done) => {
  const context = fanoutContext(options);

  /** Refused before anything is proposed or scheduled, so a refusal leaves every group as it was. */
  const checkLastVoter = (node: NodeId): void => {
    for (const group of options.groups) {
      const confState = options.host.groupStatus(group)?.status.confState;
      if (confState !== undefined && lastVoter(confState, node)) throw lastVoterError(group, node);
    }
  };

  const actions = options.actions;
  app.delete<{ Params: { nodeId: string } }>('/v1/admin/members/:nodeId', async (request, reply) => {
    if (actions === undefined) return removeEverywhere(request);
    const node = parseNodeParam(request.params.nodeId);
    checkLastVoter(node);
    return runAsAction(actions, request, reply, clusterRemoveKind, { node });
  });
  app.delete<{ Params: { nodeId: string } }>('/v1/internal/members/:nodeId', memberOnly, removeEverywhere);

  /** A group not hosted here whose record (placement) does not list the node: nothing to remove. */
  function recordedAbsent(group: GroupId, node: NodeId): boolean {
    if (options.locate === undefined || options.host.groupStatus(group) !== undefined) return false;
    return !options.locate(group).includes(node);
  }

  async function removeEverywhere(request: FastifyRequest<{ Params: { nodeId: string } }>) {
    const node = parseNodeParam(request.params.nodeId);
    checkLastVoter(node);
    const deadlineMs = performance.now() + options.requestTimeoutMs;
    const groups: GroupMemberProgress[] = await Promise.all(
      options.groups.map((group) =>
        recordedAbsent(group, node)
          ? Promise.resolve<GroupMemberProgress>({ group, leader: NO_NODE, state: 'absent', steps: [] })
          : changeThroughLeader(context, leaveChange(context, group, node), deadlineMs),
      ),
    );
    const waiting = groups.filter((group) => group.state !== 'absent');
    if (waiting.length > 0) {
      throw pendingError(
        `node ${node} is out of ${groups.length - waiting.length} of ${groups.length} groups; retry to continue (${waiting.map((group) => `group ${group.group}: ${group.pending ?? group.state}`).join('; ')})`,
        { nodeId: node, groups },
      );
    }
    // In no group any more: stop dialing it, forwarding to it and listing it.
    options.directory.forget(node);
    request.log.info({ removed: node }, 'node removed from every group');
    return { nodeId: node, groups, warnings: warningsOf(groups), members: membersJson(options.directory.list()) };
  }

  app.delete<{ Params: { group: string; nodeId: string } }>(
    '/v1/admin/groups/:group/members/:nodeId',
    async (request, reply) => {
      const group = asGroupId(parseCounter(request.params.group, 'group'));
      const node = parseNodeParam(request.params.nodeId);
      return removeFromGroup(context, group, node, request, reply);
    },
  );

  done();
};
