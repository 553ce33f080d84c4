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
// The proposal/poll loop (`changeGroup`) is shared with removing a node (src/control/member-removal.ts):
// each change passes in what differs, a `decide` that reads the group's status on every poll and
// says end, wait or propose, and the report it gives when it stops short. The loop owns what is
// the same: the deadline, the bounds on polls and proposals, the mapping of a refused proposal.
//
// A planner (each change's `decide`: the group's status in, end / step / wait out) and the small
// controller loop that carries its steps out through the host; the routes only parse and route.
//
// Called by: src/api/member-routes.ts, src/control/member-removal.ts, src/api/member-remove-routes.ts
// and src/api/member-fanout.ts (the types, the default limits, the sleep).

import { performance } from 'node:perf_hooks';
import type { GroupId, NodeId } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { ProposalOutcome } from '../multiraft/host.ts';
import type { ConfState, Status } from '../raft/types.ts';
import type { MultiRaftHost } from '../multiraft/host.ts';

/** The part of the multi-Raft host a membership change uses (MultiRaftHost satisfies it). */
export type MembershipHost = Pick<MultiRaftHost, 'groupStatus' | 'groupLeader' | 'proposeConfChange'>;

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

/** Two steps at most, each possibly proposed again after an unknown outcome: a bound on proposals the log takes per call. */
const proposalsMax = 16;

export function memberState(confState: ConfState, node: NodeId): MemberState {
  if (confState.voters.includes(node)) return 'voter';
  if (confState.learners.includes(node)) return 'learner';
  return 'absent';
}

/** The next change to propose, or why to wait. */
function nextStep(
  status: Status,
  node: NodeId,
  limits: MemberChangeLimits,
): { readonly step: MemberStep } | { readonly wait: string } {
  const confState = status.confState;
  if (confState.votersOutgoing.length > 0) return { wait: 'the group is leaving a joint configuration' };
  const state = memberState(confState, node);
  if (state === 'absent') return { step: 'add_learner' };
  const progress = status.progress.find((member) => member.id === node);
  if (progress === undefined || progress.match === 0)
    return { wait: `learner ${node} has acknowledged nothing yet (is it running, with the cluster's secret?)` };
  const behind = status.commit - progress.match;
  if (behind > limits.learnerLagEntriesMax)
    return { wait: `learner ${node} is catching up: match ${progress.match}, commit ${status.commit}` };
  return { step: 'add_voter' };
}

/** Why a refused proposal is worth waiting out, or the result that ends the attempt. */
function refusal(
  outcome: Extract<ProposalOutcome, { kind: 'refused' }>,
  steps: readonly MemberStep[],
): { readonly wait: string } | ChangeStopped {
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
    case 'stopped':
      return { wait: 'this node is stopping' };
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
async function withDeadline<T>(promise: Promise<T>, remainingMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(
      () => {
        resolve(undefined);
      },
      Math.max(0, remainingMs),
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** What one poll of a change decides from the group's status: end with a result, propose a step, or wait. */
export type ChangeDecision<End> = { readonly end: End } | { readonly step: MemberStep } | { readonly wait: string };

/** What differs between adding and removing a node; `changeGroup` is the loop they share. */
export interface ChangeSpec<End> {
  /** A bound on proposals the log takes per call (refusals, bounded by the deadline's polls, excluded). */
  readonly proposalsMax: number;
  /** Why the node is not there yet when the deadline passes before anything happened. */
  readonly waitingFirst: string;
  /** Read afresh on every poll; `steps` are the changes this call applied so far. */
  readonly decide: (status: Status, steps: readonly MemberStep[]) => ChangeDecision<End>;
  /** Where the node stands, for an answer that stops short (deadline or proposals spent). */
  readonly report: (status: Status, steps: readonly MemberStep[], pending: string) => GroupMemberProgress;
}

export interface ChangePending {
  readonly kind: 'pending';
  readonly progress: GroupMemberProgress;
}

/**
 * Drives one membership change of `node` in `group`, which this node must lead, until
 * `spec.decide` ends it; returns by `deadlineMs` (performance.now() time) at the latest. Polls are
 * bounded by the deadline and proposals by `spec.proposalsMax`.
 */
export async function changeGroup<End>(
  host: MembershipHost,
  group: GroupId,
  node: NodeId,
  deadlineMs: number,
  limits: MemberChangeLimits,
  spec: ChangeSpec<End>,
): Promise<End | ChangePending | ChangeStopped> {
  const steps: MemberStep[] = [];
  let waitingFor = spec.waitingFirst;
  const pollsMax = Math.ceil(Math.max(0, deadlineMs - performance.now()) / limits.pollMs) + spec.proposalsMax;
  let proposals = 0;
  for (let poll = 0; poll <= pollsMax; poll++) {
    const view = host.groupStatus(group);
    if (view === undefined) return { kind: 'unknown_group' };
    const status = view.status;
    const next = spec.decide(status, steps);
    if ('end' in next) return next.end;
    const remainingMs = deadlineMs - performance.now();
    if (remainingMs <= 0 || proposals >= spec.proposalsMax)
      return { kind: 'pending', progress: spec.report(status, steps, waitingFor) };
    if ('wait' in next) {
      waitingFor = next.wait;
      await sleep(Math.min(limits.pollMs, remainingMs));
      continue;
    }
    const outcome = await withDeadline(
      host.proposeConfChange(group, { changes: [{ type: next.step, node }], transition: 'auto' }),
      remainingMs,
    );
    // Only a change the log took counts: a refusal appends nothing, and one that asks to wait (a
    // change still pending, as a new leader answers until it applies its term's first entry) is
    // waited out until the deadline, one poll at a time.
    if (outcome === undefined || outcome.kind === 'indeterminate') {
      proposals++;
      waitingFor = `${next.step} proposed, not applied yet`;
      continue;
    }
    if (outcome.kind === 'applied') {
      proposals++;
      steps.push(next.step);
      continue;
    }
    const refused = refusal(outcome, steps);
    if (!('wait' in refused)) return refused;
    waitingFor = refused.wait;
    await sleep(Math.min(limits.pollMs, remainingMs));
  }
  return {
    kind: 'pending',
    progress: { group, leader: host.groupLeader(group) ?? NO_NODE, state: 'unknown', steps, pending: waitingFor },
  };
}

/**
 * Makes `node` a voter of `group`, which this node must lead; returns by `deadlineMs`
 * (performance.now() time) at the latest (see `changeGroup`).
 */
export function ensureVoter(
  host: MembershipHost,
  group: GroupId,
  node: NodeId,
  deadlineMs: number,
  limits: MemberChangeLimits = memberChangeLimitsDefault,
): Promise<EnsureVoterResult> {
  // Built only while this node leads the group, so it names itself as the leader.
  const report = (status: Status, steps: readonly MemberStep[], pending?: string): GroupMemberProgress => ({
    group,
    leader: status.id,
    state: memberState(status.confState, node),
    steps: [...steps],
    ...(pending === undefined ? {} : { pending }),
  });
  return changeGroup<EnsureVoterResult>(host, group, node, deadlineMs, limits, {
    proposalsMax,
    waitingFirst: 'the deadline passed before the first step',
    report,
    decide: (status, steps) => {
      if (status.role !== 'leader') return { end: { kind: 'not_leader', leaderHint: status.leader, steps } };
      if (memberState(status.confState, node) === 'voter' && status.confState.votersOutgoing.length === 0)
        return { end: { kind: 'voter', progress: report(status, steps) } };
      return nextStep(status, node, limits);
    },
  });
}
