// Removing a node from one group, run on that group's leader: one `remove_node` change through the
// host (a single-step change, `transition: 'auto'`), proposed only while the group's applied
// configuration still holds the node, so a retried request is a no-op once it is out.
//
// Limits of what may be removed: a group keeps at least one voter (the core refuses a change that
// would leave none; we refuse it first with a clear answer, DRAM_ERR_LAST_VOTER). Fewer voters is
// allowed but weaker: three voters tolerate one failure, two tolerate none (both must answer), one
// is a single copy. The report carries the remaining voters so the caller can say so.
//
// When the node to remove leads the group, it proposes its own removal; once applied it hands
// leadership to the most caught-up voter (TimeoutNow) and steps down (src/raft/raft.ts
// leaderSwitchConfig). Its own applied configuration then proves the removal committed, so the
// answer is `absent` even though it no longer leads. Any other "not the leader" goes back to the
// caller, which retries at the new leader within the request deadline.
//
// The proposal/poll loop is the one adding a node uses (src/control/member-change.ts changeGroup);
// this file says only what a removal decides on each poll.
//
// Called by: src/api/member-remove-routes.ts (the route parses and routes; this decides).

import type { GroupId, NodeId } from '../base/ids.ts';
import type { ConfState, Status } from '../raft/types.ts';
import {
  changeGroup,
  memberChangeLimitsDefault,
  memberState,
  type ChangeStopped,
  type GroupMemberProgress,
  type MemberChangeLimits,
  type MemberStep,
  type MembershipHost,
} from './member-change.ts';

export type EnsureAbsentResult =
  | { readonly kind: 'absent'; readonly progress: GroupMemberProgress }
  | { readonly kind: 'pending'; readonly progress: GroupMemberProgress }
  | { readonly kind: 'last_voter' }
  | ChangeStopped;

/** One step, possibly proposed again after an unknown outcome: a bound on proposals the log takes per call. */
const proposalsMax = 8;

/** The node is the group's only voter: removing it would leave the group unable to elect anyone. */
export function lastVoter(confState: ConfState, node: NodeId): boolean {
  return confState.votersOutgoing.length === 0 && confState.voters.length === 1 && confState.voters[0] === node;
}

/**
 * Removes `node` from `group`, which this node must lead; returns by `deadlineMs`
 * (performance.now() time) at the latest (see `changeGroup`).
 */
export function ensureAbsent(
  host: MembershipHost,
  group: GroupId,
  node: NodeId,
  deadlineMs: number,
  limits: MemberChangeLimits = memberChangeLimitsDefault,
): Promise<EnsureAbsentResult> {
  const report = (status: Status, steps: readonly MemberStep[], pending?: string): GroupMemberProgress => ({
    group,
    leader: status.role === 'leader' ? status.id : status.leader,
    state: memberState(status.confState, node),
    steps: [...steps],
    voters: status.confState.voters,
    ...(pending === undefined ? {} : { pending }),
  });
  return changeGroup<EnsureAbsentResult>(host, group, node, deadlineMs, limits, {
    proposalsMax,
    waitingFirst: 'the deadline passed before the change was proposed',
    report,
    decide: (status, steps) => {
      const confState = status.confState;
      const joint = confState.votersOutgoing.length > 0;
      // A leader's applied configuration is current; so is ours right after our own removal applied.
      if (memberState(confState, node) === 'absent' && !joint && (status.role === 'leader' || steps.length > 0))
        return { end: { kind: 'absent', progress: report(status, steps) } };
      if (status.role !== 'leader') return { end: { kind: 'not_leader', leaderHint: status.leader, steps } };
      if (lastVoter(confState, node)) return { end: { kind: 'last_voter' } };
      // 'auto' joint configurations leave on their own once applied; a single removal never enters one.
      if (joint) return { wait: 'the group is leaving a joint configuration' };
      return { step: 'remove_node' };
    },
  });
}
