// Making a node a voter of one group, run on that group's leader: add it as a learner, wait until
// it has caught up (its match index at most `learnerLagEntriesMax` behind the leader's commit
// index), then promote it. Each step is one membership change through the host, proposed only
// when the group's configuration shows it is not done yet, so a retried request continues where
// the previous one stopped and a step is never applied twice.
//
// Why a learner first: a new voter with an empty log would count toward the quorum at once while
// able to acknowledge nothing, so a three-voter group would need all three old voters until it
// caught up. A learner receives the log without voting, and is promoted once it can keep up.
//
// Waiting is bounded by the caller's deadline (the request timeout); past it the caller gets what
// was done and where the node stands, and may retry. A proposal outlives a missed deadline in the
// host (its outcome is decided by the log), which the next attempt sees in the configuration.
//
// The helpers shared with removing a node (src/api/member-removal.ts) are exported: the mapping of
// a refused proposal, the deadline race, the sleep.
//
// Called by: src/api/member-routes.ts, src/api/member-removal.ts.

import { performance } from 'node:perf_hooks';
import type { GroupId, NodeId } from '../base/ids.ts';
import type { ProposalOutcome } from '../multiraft/host.ts';
import type { ConfState, Status } from '../raft/types.ts';
import type { ApiHost } from './ports.ts';

/** A membership change a request applied: the join's two steps, or the removal's one. */
export type MemberStep = 'add_learner' | 'add_voter' | 'remove_node';

/** Where a node stands in a group, as its leader (or, failing that, this node) sees it. */
export type MemberState = 'voter' | 'learner' | 'absent' | 'unknown';

export interface GroupMemberProgress {
  readonly group: GroupId;
  /** The leader that handled the group (0: none reached). */
  readonly leader: NodeId;
  readonly state: MemberState;
  /** The changes this request applied, in order. */
  readonly steps: readonly MemberStep[];
  /** Why the node is not a voter yet (or, for a removal, not absent yet); absent once it is. */
  readonly pending?: string;
  /** A removal's report: the group's voters once the node is out (how many failures it still tolerates). */
  readonly voters?: readonly NodeId[];
}

/** Why a change stops on this node: the caller goes to another leader, or gives up on the group. */
export type ChangeStopped =
  | { readonly kind: 'not_leader'; readonly leaderHint: NodeId; readonly steps: readonly MemberStep[] }
  | { readonly kind: 'unknown_group' }
  | { readonly kind: 'invalid'; readonly reason: string };

export type EnsureVoterResult =
  | { readonly kind: 'voter'; readonly progress: GroupMemberProgress }
  | { readonly kind: 'pending'; readonly progress: GroupMemberProgress }
  | ChangeStopped;

export interface MemberChangeLimits {
  /** A learner is promoted once its match index is at most this many entries behind the commit index. */
  readonly learnerLagEntriesMax: number;
  /** How often the leader looks again at a learner's progress or a pending change. */
  readonly pollMs: number;
}

export const memberChangeLimitsDefault: MemberChangeLimits = { learnerLagEntriesMax: 256, pollMs: 20 };

/** Two steps at most, each possibly refused once for a change still pending: a bound on proposals per call. */
const proposalsMax = 16;

export function memberState(confState: ConfState, node: NodeId): MemberState {
  if (confState.voters.includes(node)) return 'voter';
  if (confState.learners.includes(node)) return 'learner';
  return 'absent';
}

/** The next change to propose, or why to wait. */
function nextStep(status: Status, node: NodeId, limits: MemberChangeLimits): { readonly step: MemberStep } | { readonly wait: string } {
  const confState = status.confState;
  if (confState.votersOutgoing.length > 0) return { wait: 'the group is leaving a joint configuration' };
  const state = memberState(confState, node);
  if (state === 'absent') return { step: 'add_learner' };
  const progress = status.progress.find((member) => member.id === node);
  if (progress === undefined || progress.match === 0) return { wait: `learner ${node} has acknowledged nothing yet (is it running, with the cluster's secret?)` };
  const behind = status.commit - progress.match;
  if (behind > limits.learnerLagEntriesMax) return { wait: `learner ${node} is catching up: match ${progress.match}, commit ${status.commit}` };
  return { step: 'add_voter' };
}

/** Why a refused proposal is worth waiting out, or the result that ends the attempt. */
export function refusal(outcome: Extract<ProposalOutcome, { kind: 'refused' }>, steps: readonly MemberStep[]): { readonly wait: string } | ChangeStopped {
  const reason = outcome.reason;
  switch (reason.kind) {
    case 'not_leader':
      return { kind: 'not_leader', leaderHint: reason.leaderHint, steps };
    case 'unknown_group':
      return { kind: 'unknown_group' };
    case 'conf_change_pending':
      return { wait: `another membership change is pending at index ${reason.pendingIndex}` };
    case 'transferring':
      return { wait: `leadership is moving to node ${reason.target}` };
    case 'uncommitted_full':
    case 'overloaded':
      return { wait: 'the leader is overloaded' };
    case 'superseded':
      return { wait: 'the change lost its log position to a new leader' };
    case 'conf_change_invalid':
      return { kind: 'invalid', reason: reason.reason };
    case 'entry_too_large':
      return { kind: 'invalid', reason: `membership change entry of ${reason.bytes} bytes exceeds ${reason.bytesMax}` };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The outcome, or undefined when the deadline comes first. */
export async function withDeadline<T>(promise: Promise<T>, remainingMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      resolve(undefined);
    }, Math.max(0, remainingMs));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Makes `node` a voter of `group`, which this node must lead; returns by `deadlineMs`
 * (performance.now() time) at the latest. Polls are bounded by the deadline and proposals by
 * `proposalsMax`.
 */
export async function ensureVoter(host: ApiHost, group: GroupId, node: NodeId, deadlineMs: number, limits: MemberChangeLimits = memberChangeLimitsDefault): Promise<EnsureVoterResult> {
  const steps: MemberStep[] = [];
  let waitingFor = 'the deadline passed before the first step';
  const pollsMax = Math.ceil(Math.max(0, deadlineMs - performance.now()) / limits.pollMs) + proposalsMax;
  let proposals = 0;
  for (let poll = 0; poll <= pollsMax; poll++) {
    const view = host.groupStatus(group);
    if (view === undefined) return { kind: 'unknown_group' };
    const status = view.status;
    if (status.role !== 'leader') return { kind: 'not_leader', leaderHint: status.leader, steps };
    const state = memberState(status.confState, node);
    const progress = (pending?: string): GroupMemberProgress => ({ group, leader: status.id, state, steps: [...steps], ...(pending === undefined ? {} : { pending }) });
    if (state === 'voter' && status.confState.votersOutgoing.length === 0) return { kind: 'voter', progress: progress() };
    const remainingMs = deadlineMs - performance.now();
    if (remainingMs <= 0 || proposals >= proposalsMax) return { kind: 'pending', progress: progress(waitingFor) };
    const next = nextStep(status, node, limits);
    if ('wait' in next) {
      waitingFor = next.wait;
      await sleep(Math.min(limits.pollMs, remainingMs));
      continue;
    }
    proposals++;
    const outcome = await withDeadline(host.proposeConfChange(group, { changes: [{ type: next.step, node }], transition: 'auto' }), remainingMs);
    if (outcome === undefined || outcome.kind === 'indeterminate') {
      waitingFor = `${next.step} proposed, not applied yet`;
      continue;
    }
    if (outcome.kind === 'applied') {
      steps.push(next.step);
      continue;
    }
    const refused = refusal(outcome, steps);
    if (!('wait' in refused)) return refused;
    waitingFor = refused.wait;
    await sleep(Math.min(limits.pollMs, remainingMs));
  }
  return { kind: 'pending', progress: { group, leader: host.groupStatus(group)?.status.leader ?? (0 as NodeId), state: 'unknown', steps, pending: waitingFor } };
}
