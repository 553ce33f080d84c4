// Driving one group's membership change through whichever node leads it, for the routes that
// change every group at once (`POST /v1/admin/members` adds a node, `DELETE
// /v1/admin/members/:nodeId` removes one): run the change here when this node leads the group,
// else ask the leader once over HTTP at its per-group route; when leadership moves or the leader
// cannot be reached, try again every `pollMs`, at most `groupAttemptsMax` times, within the
// request deadline. Also the parsing of the per-group report a leader sends back, which is
// validated here, at the edge, like any other input from the network; and the dependencies both
// membership plugins take as options, with the context built from them.
//
// Invariants: a group's report carries every step applied across its attempts (an attempt that
// lost leadership half way keeps its steps); a leader's report, done or pending, ends the group's
// attempts (the leader spent the time on it), and so does a 4xx from the leader (asking again
// would not change it). What differs between adding and removing comes in as arguments: what to
// run when leading, and the request (method, url, body) for the leader's per-group route.
//
// Called by: src/api/member-routes.ts, src/api/member-remove-routes.ts.

import { performance } from 'node:perf_hooks';
import { NO_NODE, asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import { ApiError, isErrorCode } from './errors.ts';
import { forwardedByHeader, type ForwardContext } from './forwarding.ts';
import { leaderOf } from './host-view.ts';
import {
  memberChangeLimitsDefault,
  sleep,
  type ChangeStopped,
  type GroupMemberProgress,
  type MemberChangeLimits,
  type MemberState,
  type MemberStep,
} from '../control/member-change.ts';
import type { MemberDirectory } from '../control/member-directory.ts';
import type { ApiHost, Forward } from './ports.ts';

/** Attempts per group in one request when its leader changes or cannot be reached (each at most `pollMs` apart). */
export const groupAttemptsMax = 50;

/** One try at a group: the report that ends its attempts, or why to try again (with the steps applied meanwhile). */
export type Attempt =
  | { readonly done: GroupMemberProgress }
  | { readonly retry: string; readonly steps?: readonly MemberStep[]; readonly leaderHint?: NodeId };

/** The leader's per-group route for this change, and what its report may carry. */
export interface LeaderCall {
  readonly method: 'POST' | 'DELETE';
  readonly url: string;
  /** A JSON body, or none. */
  readonly body: string | undefined;
  /** The steps this change applies; any other name in a report is dropped. */
  readonly stepsKnown: readonly MemberStep[];
  /** Whether the report carries the group's voters (a removal's does). */
  readonly votersReported: boolean;
}

/** The dependencies both membership plugins (adding and removing a node) take as options. */
export interface MembershipRouteOptions {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly groups: readonly GroupId[];
  readonly forward: Forward | undefined;
  readonly directory: MemberDirectory;
  /** The whole request (every group) answers within about this long. */
  readonly requestTimeoutMs: number;
  readonly limits?: MemberChangeLimits;
  /**
   * The nodes hosting a group (the meta model's record): a group not hosted here is changed through
   * one of them (placement puts groups on subsets of the nodes).
   */
  readonly locate?: ((group: GroupId) => readonly NodeId[]) | undefined;
}

/** A membership plugin's context: its options, and the limits with their defaults filled in. */
export interface FanoutContext<Options extends MembershipRouteOptions = MembershipRouteOptions> extends ForwardContext {
  readonly options: Options;
  readonly limits: MemberChangeLimits;
}

export function fanoutContext<Options extends MembershipRouteOptions>(options: Options): FanoutContext<Options> {
  return {
    nodeId: options.nodeId,
    forward: options.forward,
    options,
    limits: options.limits ?? memberChangeLimitsDefault,
  };
}

/** One group's change: what to run on this node when it leads the group, and the call to make at a leader elsewhere. */
export interface MembershipChange {
  readonly group: GroupId;
  readonly runHere: (deadlineMs: number) => Promise<Attempt>;
  readonly atLeader: LeaderCall;
}

export function unknownGroupError(group: GroupId): ApiError {
  return new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
}

/** `step` when this node leads `group`, else where its leader is; a group not hosted here is refused (404). */
export async function whenLeading<R>(
  host: Pick<ApiHost, 'groupStatus'>,
  group: GroupId,
  step: () => Promise<R>,
): Promise<R | { readonly kind: 'not_leader'; readonly leaderHint: NodeId }> {
  const view = host.groupStatus(group);
  if (view === undefined) throw unknownGroupError(group);
  if (view.status.role !== 'leader') return { kind: 'not_leader', leaderHint: view.status.leader };
  return step();
}

export function pendingError(message: string, details: Record<string, unknown>): ApiError {
  return new ApiError('DRAM_ERR_MEMBERSHIP_PENDING', message, details);
}

/** The attempt for a change this node stopped: go to the new leader, or report the group as stuck. */
export function stoppedAttempt(context: ForwardContext, group: GroupId, result: ChangeStopped): Attempt {
  switch (result.kind) {
    case 'not_leader':
      return { retry: `leadership of group ${group} moved to node ${result.leaderHint}`, steps: result.steps };
    case 'unknown_group':
      return {
        done: {
          group,
          leader: context.nodeId,
          state: 'unknown',
          steps: [],
          pending: `group ${group} is not hosted here`,
        },
      };
    case 'invalid':
      return {
        done: {
          group,
          leader: context.nodeId,
          state: 'unknown',
          steps: [],
          pending: `the change is invalid: ${result.reason}`,
        },
      };
  }
}

const memberStates: readonly MemberState[] = ['voter', 'learner', 'absent', 'unknown'];

/** A leader's per-group report as it came over HTTP; undefined when it is not one. */
function progressFrom(value: unknown, group: GroupId, call: LeaderCall): GroupMemberProgress | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const raw = value as Record<string, unknown>;
  const state = memberStates.find((candidate) => candidate === raw['state']);
  const steps = Array.isArray(raw['steps'])
    ? raw['steps'].flatMap((step) => call.stepsKnown.filter((known) => known === step))
    : [];
  const leader = raw['leader'];
  if (state === undefined || typeof leader !== 'number' || !Number.isSafeInteger(leader) || leader < 0)
    return undefined;
  const voters =
    call.votersReported && Array.isArray(raw['voters'])
      ? raw['voters']
          .filter((id): id is number => typeof id === 'number' && Number.isSafeInteger(id) && id > 0)
          .map(asNodeId)
      : undefined;
  return {
    group,
    leader: asNodeId(leader),
    state,
    steps,
    ...(voters === undefined ? {} : { voters }),
    ...(typeof raw['pending'] === 'string' ? { pending: raw['pending'] } : {}),
  };
}

/** One try at the group's leader over HTTP: its report, or why to try again. */
async function askLeader(context: ForwardContext, group: GroupId, leader: NodeId, call: LeaderCall): Promise<Attempt> {
  const forward = context.forward;
  if (forward === undefined) return { retry: `node ${leader} leads group ${group} and forwarding is not configured` };
  try {
    const headers = {
      ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
      [forwardedByHeader]: String(context.nodeId),
    };
    const response = await forward(leader, {
      method: call.method,
      url: call.url,
      headers,
      body: call.body === undefined ? undefined : Buffer.from(call.body),
    });
    const answer = JSON.parse(response.body.toString('utf8')) as {
      code?: unknown;
      message?: unknown;
      details?: unknown;
    };
    const progress = progressFrom(response.status === 200 ? answer : answer.details, group, call);
    // A report (done or still pending) means the leader spent its time on the group: no retry.
    if (progress !== undefined) return { done: progress };
    const code = isErrorCode(answer.code) ? answer.code : `HTTP ${response.status}`;
    const said = `node ${leader} answered ${code}: ${typeof answer.message === 'string' ? answer.message : ''}`.trim();
    // A 4xx (the leader's address book disagrees, or it sees the node as the last voter) will not change by asking again.
    if (response.status >= 400 && response.status < 500)
      return { done: { group, leader, state: 'unknown', steps: [], pending: said } };
    const hint = (answer.details as { leaderHint?: unknown } | undefined)?.leaderHint;
    return typeof hint === 'number' && hint > 0 ? { retry: said, leaderHint: asNodeId(hint) } : { retry: said };
  } catch (error) {
    return { retry: `node ${leader} could not be asked: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Gets one group's change done through whichever node leads it, retrying a moving leadership until the deadline. */
export async function changeThroughLeader(
  context: FanoutContext,
  change: MembershipChange,
  deadlineMs: number,
): Promise<GroupMemberProgress> {
  const group = change.group;
  const stepsSoFar: MemberStep[] = [];
  let why = 'no attempt before the deadline';
  let hint: NodeId | undefined;
  for (let attempt = 0; attempt < groupAttemptsMax && performance.now() < deadlineMs; attempt++) {
    const status = context.options.host.groupStatus(group)?.status;
    const members = status === undefined ? (context.options.locate?.(group) ?? []) : [];
    if (status === undefined && members.length > 0) {
      // Not hosted here: through a node that hosts it (its answer names the leader to ask next).
      const target = hint ?? members[attempt % members.length] ?? NO_NODE;
      const outcome = await askLeader(context, group, target, change.atLeader);
      if ('done' in outcome) return { ...outcome.done, steps: [...stepsSoFar, ...outcome.done.steps] };
      stepsSoFar.push(...(outcome.steps ?? []));
      why = outcome.retry;
      hint = outcome.leaderHint;
      await sleep(Math.min(context.limits.pollMs, deadlineMs - performance.now()));
      continue;
    }
    if (status === undefined)
      return {
        group,
        leader: NO_NODE,
        state: 'unknown',
        steps: [],
        pending: `group ${group} is not hosted on node ${context.nodeId}`,
      };
    const outcome =
      status.role === 'leader'
        ? await change.runHere(deadlineMs)
        : status.leader === 0
          ? { retry: `group ${group} has no known leader` }
          : await askLeader(context, group, status.leader, change.atLeader);
    if ('done' in outcome) return { ...outcome.done, steps: [...stepsSoFar, ...outcome.done.steps] };
    stepsSoFar.push(...(outcome.steps ?? []));
    why = outcome.retry;
    await sleep(Math.min(context.limits.pollMs, deadlineMs - performance.now()));
  }
  return { group, leader: leaderOf(context.options.host, group), state: 'unknown', steps: stepsSoFar, pending: why };
}
