// Removing a node from the cluster over HTTP (the counterpart of member-routes.ts's join):
//  - `DELETE /v1/admin/members/:nodeId` on any node: removes the node from every kv group at once,
//    each through the group's leader (itself, or one HTTP hop to the per-group route), and once
//    it is out of every group forgets it here (address book, transport, forwarding);
//  - `DELETE /v1/admin/groups/:group/members/:nodeId`: the same for one group; a follower
//    forwards it to the leader, which proposes the change (src/api/member-removal.ts).
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
// Every wait is bounded by `requestTimeoutMs`; a moving leadership (the removed node led the
// group and handed it over) is retried every `pollMs`, at most `groupAttemptsMax` times.
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import { performance } from 'node:perf_hooks';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import { ApiError, isErrorCode } from './errors.ts';
import { forwardedByHeader, forwardOrRefuse, type ForwardContext } from './forwarding.ts';
import { groupView } from './host-view.ts';
import { parseCounter } from './kv-input.ts';
import { memberChangeLimitsDefault, sleep, type GroupMemberProgress, type MemberChangeLimits, type MemberState, type MemberStep } from './member-change.ts';
import { membersJson } from './member-directory.ts';
import { groupAttemptsMax } from './member-routes.ts';
import { ensureAbsent, lastVoter } from './member-removal.ts';
import type { ApiHost, Forward, MemberDirectory } from './ports.ts';

export interface MemberRemoveRoutesOptions {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly groups: readonly GroupId[];
  readonly forward: Forward | undefined;
  readonly directory: MemberDirectory;
  /** The whole request (every group) answers within about this long. */
  readonly requestTimeoutMs: number;
  readonly limits?: MemberChangeLimits;
}

/** A group with fewer voters than this tolerates no failure: the answer warns about it. */
export const votersTolerantMin = 3;

interface RemoveContext extends ForwardContext {
  readonly options: MemberRemoveRoutesOptions;
  readonly limits: MemberChangeLimits;
}

/** `:nodeId` as a node id (a positive integer); throws DRAM_ERR_BAD_REQUEST. */
export function parseNodeParam(text: string): NodeId {
  const value = parseCounter(text, 'nodeId');
  if (value < 1) throw new ApiError('DRAM_ERR_BAD_REQUEST', `nodeId must be a positive integer, got '${text}'`);
  return asNodeId(value);
}

function lastVoterError(group: GroupId, node: NodeId): ApiError {
  return new ApiError('DRAM_ERR_LAST_VOTER', `node ${node} is the last voter of group ${group}: removing it would leave the group without a voter`, { group, nodeId: node });
}

function pendingError(message: string, details: Record<string, unknown>): ApiError {
  return new ApiError('DRAM_ERR_MEMBERSHIP_PENDING', message, details);
}

const memberStates: readonly MemberState[] = ['voter', 'learner', 'absent', 'unknown'];

/** A leader's per-group report as it came over HTTP; undefined when it is not one. */
function progressFrom(value: unknown, group: GroupId): GroupMemberProgress | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const raw = value as Record<string, unknown>;
  const state = memberStates.find((candidate) => candidate === raw['state']);
  const steps = Array.isArray(raw['steps']) ? raw['steps'].flatMap((step: unknown): MemberStep[] => (step === 'remove_node' ? [step] : [])) : [];
  const leader = raw['leader'];
  if (state === undefined || typeof leader !== 'number' || !Number.isSafeInteger(leader) || leader < 0) return undefined;
  const voters = Array.isArray(raw['voters']) ? raw['voters'].filter((id): id is number => typeof id === 'number' && Number.isSafeInteger(id) && id > 0).map(asNodeId) : undefined;
  return { group, leader: asNodeId(leader), state, steps, ...(voters === undefined ? {} : { voters }), ...(typeof raw['pending'] === 'string' ? { pending: raw['pending'] } : {}) };
}

type Attempt = { readonly done: GroupMemberProgress } | { readonly retry: string; readonly steps?: readonly MemberStep[] };

/** One try at the group's leader over HTTP: its report, or why to try again. */
async function askLeader(context: RemoveContext, group: GroupId, leader: NodeId, node: NodeId): Promise<Attempt> {
  const forward = context.forward;
  if (forward === undefined) return { retry: `node ${leader} leads group ${group} and forwarding is not configured` };
  try {
    const response = await forward(leader, { method: 'DELETE', url: `/v1/admin/groups/${group}/members/${node}`, headers: { [forwardedByHeader]: String(context.nodeId) }, body: undefined });
    const answer = JSON.parse(response.body.toString('utf8')) as { code?: unknown; message?: unknown; details?: unknown };
    const progress = progressFrom(response.status === 200 ? answer : answer.details, group);
    if (progress !== undefined) return { done: progress };
    const code = isErrorCode(answer.code) ? answer.code : `HTTP ${response.status}`;
    const said = `node ${leader} answered ${code}: ${typeof answer.message === 'string' ? answer.message : ''}`.trim();
    // A 4xx (e.g. the leader sees the node as the last voter) will not change by asking again.
    if (response.status >= 400 && response.status < 500) return { done: { group, leader, state: 'unknown', steps: [], pending: said } };
    return { retry: said };
  } catch (error) {
    return { retry: `node ${leader} could not be asked: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** One try on this node, which leads the group (a leader removing itself answers from its applied configuration). */
async function runHere(context: RemoveContext, group: GroupId, node: NodeId, deadlineMs: number): Promise<Attempt> {
  const result = await ensureAbsent(context.options.host, group, node, deadlineMs, context.limits);
  switch (result.kind) {
    case 'absent':
    case 'pending':
      return { done: result.progress };
    case 'not_leader':
      return { retry: `leadership of group ${group} moved to node ${result.leaderHint}`, steps: result.steps };
    case 'last_voter':
      return { done: { group, leader: context.nodeId, state: 'voter', steps: [], pending: lastVoterError(group, node).message } };
    case 'unknown_group':
      return { done: { group, leader: context.nodeId, state: 'unknown', steps: [], pending: `group ${group} is not hosted here` } };
    case 'invalid':
      return { done: { group, leader: context.nodeId, state: 'unknown', steps: [], pending: `the change is invalid: ${result.reason}` } };
  }
}

/** Gets `node` out of `group` through whichever node leads it, retrying a moving leadership until the deadline. */
async function leaveGroup(context: RemoveContext, group: GroupId, node: NodeId, deadlineMs: number): Promise<GroupMemberProgress> {
  const stepsSoFar: MemberStep[] = [];
  let why = 'no attempt before the deadline';
  for (let attempt = 0; attempt < groupAttemptsMax && performance.now() < deadlineMs; attempt++) {
    const status = groupView(context.options.host, group)?.status;
    if (status === undefined) return { group, leader: 0 as NodeId, state: 'unknown', steps: [], pending: `group ${group} is not hosted on node ${context.nodeId}` };
    const outcome =
      status.role === 'leader' ? await runHere(context, group, node, deadlineMs)
      : status.leader === 0 ? { retry: `group ${group} has no known leader` }
      : await askLeader(context, group, status.leader, node);
    if ('done' in outcome) return { ...outcome.done, steps: [...stepsSoFar, ...outcome.done.steps] };
    stepsSoFar.push(...(outcome.steps ?? []));
    why = outcome.retry;
    await sleep(Math.min(context.limits.pollMs, deadlineMs - performance.now()));
  }
  return { group, leader: groupView(context.options.host, group)?.status.leader ?? (0 as NodeId), state: 'unknown', steps: stepsSoFar, pending: why };
}

/** The per-group route on this node: remove when leading the group, else forward to its leader (one hop). */
async function removeFromGroup(context: RemoveContext, group: GroupId, node: NodeId, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | GroupMemberProgress> {
  const view = groupView(context.options.host, group);
  if (view === undefined) throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
  const result = view.status.role === 'leader' ? await ensureAbsent(context.options.host, group, node, performance.now() + context.options.requestTimeoutMs, context.limits) : { kind: 'not_leader' as const, leaderHint: view.status.leader };
  switch (result.kind) {
    case 'absent':
      return result.progress;
    case 'pending':
      throw pendingError(`node ${node} is still a member of group ${group}: ${result.progress.pending ?? result.progress.state}`, { ...result.progress });
    case 'last_voter':
      throw lastVoterError(group, node);
    case 'unknown_group':
      throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
    case 'invalid':
      throw new ApiError('DRAM_ERR_BAD_REQUEST', `cannot remove node ${node} from group ${group}: ${result.reason}`, { group });
    case 'not_leader':
      return forwardOrRefuse(context, request, reply, { group, leaderHint: result.leaderHint, body: undefined, onFailure: 'forward_failed' });
  }
}

function warningsOf(groups: readonly GroupMemberProgress[]): string[] {
  return groups.flatMap((report) => {
    const voters = report.voters;
    if (voters === undefined || voters.length >= votersTolerantMin) return [];
    return [`group ${report.group} has ${voters.length} voter${voters.length === 1 ? '' : 's'} left (${voters.join(', ')}): it tolerates no failure`];
  });
}

export const memberRemoveRoutes: FastifyPluginCallback<MemberRemoveRoutesOptions> = (app, options, done) => {
  const context: RemoveContext = { nodeId: options.nodeId, forward: options.forward, options, limits: options.limits ?? memberChangeLimitsDefault };

  app.delete<{ Params: { nodeId: string } }>('/v1/admin/members/:nodeId', async (request) => {
    const node = parseNodeParam(request.params.nodeId);
    // Refused before anything is proposed, so a refusal leaves every group as it was.
    for (const group of options.groups) {
      const confState = groupView(options.host, group)?.status.confState;
      if (confState !== undefined && lastVoter(confState, node)) throw lastVoterError(group, node);
    }
    const deadlineMs = performance.now() + options.requestTimeoutMs;
    const groups = await Promise.all(options.groups.map((group) => leaveGroup(context, group, node, deadlineMs)));
    const waiting = groups.filter((group) => group.state !== 'absent');
    if (waiting.length > 0) {
      throw pendingError(`node ${node} is out of ${groups.length - waiting.length} of ${groups.length} groups; retry to continue (${waiting.map((group) => `group ${group.group}: ${group.pending ?? group.state}`).join('; ')})`, { nodeId: node, groups });
    }
    // In no group any more: stop dialing it, forwarding to it and listing it.
    options.directory.forget(node);
    request.log.info({ removed: node }, 'node removed from every group');
    return { nodeId: node, groups, warnings: warningsOf(groups), members: membersJson(options.directory.list()) };
  });

  app.delete<{ Params: { group: string; nodeId: string } }>('/v1/admin/groups/:group/members/:nodeId', async (request, reply) => {
    const group = asGroupId(parseCounter(request.params.group, 'group'));
    const node = parseNodeParam(request.params.nodeId);
    return removeFromGroup(context, group, node, request, reply);
  });

  done();
};
