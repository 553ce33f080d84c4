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
// Called by: src/api/member-remove-routes.ts.

import { performance } from 'node:perf_hooks';
import type { GroupId, NodeId } from '../base/ids.ts';
import type { ConfState } from '../raft/types.ts';
import { memberChangeLimitsDefault, memberState, refusal, sleep, withDeadline, type ChangeStopped, type GroupMemberProgress, type MemberChangeLimits, type MemberStep } from './member-change.ts';
import type { ApiHost } from './ports.ts';

export type EnsureAbsentResult =
  | { readonly kind: 'absent'; readonly progress: GroupMemberProgress }
  | { readonly kind: 'pending'; readonly progress: GroupMemberProgress }
  | { readonly kind: 'last_voter' }
  | ChangeStopped;

/** One proposal, possibly refused a few times for a change still pending: a bound on proposals per call. */
const proposalsMax = 8;

/** The node is the group's only voter: removing it would leave the group unable to elect anyone. */
export function lastVoter(confState: ConfState, node: NodeId): boolean {
  return confState.votersOutgoing.length === 0 && confState.voters.length === 1 && confState.voters[0] === node;
}

/**
 * Removes `node` from `group`, which this node must lead; returns by `deadlineMs`
 * (performance.now() time) at the latest. Polls are bounded by the deadline, proposals by
 * `proposalsMax`.
 */
export async function ensureAbsent(host: ApiHost, group: GroupId, node: NodeId, deadlineMs: number, limits: MemberChangeLimits = memberChangeLimitsDefault): Promise<EnsureAbsentResult> {
  const steps: MemberStep[] = [];
  let waitingFor = 'the deadline passed before the change was proposed';
  const pollsMax = Math.ceil(Math.max(0, deadlineMs - performance.now()) / limits.pollMs) + proposalsMax;
  let proposals = 0;
  for (let poll = 0; poll <= pollsMax; poll++) {
    const view = host.groupStatus(group);
    if (view === undefined) return { kind: 'unknown_group' };
    const status = view.status;
    const confState = status.confState;
    const state = memberState(confState, node);
    const joint = confState.votersOutgoing.length > 0;
    const progress = (pending?: string): GroupMemberProgress => ({ group, leader: status.role === 'leader' ? status.id : status.leader, state, steps: [...steps], voters: confState.voters, ...(pending === undefined ? {} : { pending }) });
    // A leader's applied configuration is current; so is ours right after our own removal applied.
    if (state === 'absent' && !joint && (status.role === 'leader' || steps.length > 0)) return { kind: 'absent', progress: progress() };
    if (status.role !== 'leader') return { kind: 'not_leader', leaderHint: status.leader, steps };
    if (lastVoter(confState, node)) return { kind: 'last_voter' };
    const remainingMs = deadlineMs - performance.now();
    if (remainingMs <= 0 || proposals >= proposalsMax) return { kind: 'pending', progress: progress(waitingFor) };
    if (joint) {
      // 'auto' joint configurations leave on their own once applied; a single removal never enters one.
      waitingFor = 'the group is leaving a joint configuration';
      await sleep(Math.min(limits.pollMs, remainingMs));
      continue;
    }
    proposals++;
    const outcome = await withDeadline(host.proposeConfChange(group, { changes: [{ type: 'remove_node', node }], transition: 'auto' }), remainingMs);
    if (outcome === undefined || outcome.kind === 'indeterminate') {
      waitingFor = 'remove_node proposed, not applied yet';
      continue;
    }
    if (outcome.kind === 'applied') {
      steps.push('remove_node');
      continue;
    }
    const refused = refusal(outcome, steps);
    if (!('wait' in refused)) return refused;
    waitingFor = refused.wait;
    await sleep(Math.min(limits.pollMs, remainingMs));
  }
  return { kind: 'pending', progress: { group, leader: host.groupStatus(group)?.status.leader ?? (0 as NodeId), state: 'unknown', steps, pending: waitingFor } };
}
