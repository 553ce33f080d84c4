// Membership changes as pure functions on ConfState: single-step changes (at most one voter added
// or removed), entering a joint configuration (C_old,new: both majorities must agree), and leaving
// it. Invariants of a valid ConfState: at least one incoming voter; no node is both a voter of the
// incoming config and a learner; learnersNext holds outgoing voters that become learners on leave.

import type { NodeId } from '../base/ids.ts';
import type { ConfChange, ConfState } from './types.ts';

export type ConfChangeOutcome =
  | { readonly ok: true; readonly confState: ConfState }
  | { readonly ok: false; readonly reason: string };

export const emptyConfState: ConfState = {
  voters: [],
  votersOutgoing: [],
  learners: [],
  learnersNext: [],
  autoLeave: false,
};

export function isJoint(confState: ConfState): boolean {
  return confState.votersOutgoing.length > 0;
}

export function confStateOf(voters: readonly NodeId[], learners: readonly NodeId[] = []): ConfState {
  return { ...emptyConfState, voters: sorted(voters), learners: sorted(learners) };
}

export function applyConfChange(current: ConfState, change: ConfChange): ConfChangeOutcome {
  if (change.changes.length === 0) return leaveJoint(current);
  if (isJoint(current)) return { ok: false, reason: 'already in a joint configuration: leave it first' };
  const voters = new Set(current.voters);
  const learners = new Set(current.learners);
  for (const item of change.changes) {
    if (!Number.isSafeInteger(item.node) || item.node <= 0)
      return { ok: false, reason: `invalid node id ${item.node}` };
    voters.delete(item.node);
    learners.delete(item.node);
    if (item.type === 'add_voter') voters.add(item.node);
    else if (item.type === 'add_learner') learners.add(item.node);
  }
  if (voters.size === 0) return { ok: false, reason: 'the change would remove every voter' };
  const changedVoters = symmetricDifference(current.voters, voters);
  // The first configuration of a group (bootstrap) has no old majority to overlap with.
  if ((change.transition === 'auto' && changedVoters <= 1) || current.voters.length === 0) {
    return { ok: true, confState: { ...emptyConfState, voters: sorted(voters), learners: sorted(learners) } };
  }
  // Joint: the outgoing half is the old voter set. An outgoing voter demoted to learner cannot be a
  // learner yet (it still votes in the outgoing half), so it waits in learnersNext.
  const learnersNext = [...learners].filter((id) => current.voters.includes(id));
  const learnersNow = [...learners].filter((id) => !current.voters.includes(id));
  return {
    ok: true,
    confState: {
      voters: sorted(voters),
      votersOutgoing: sorted(current.voters),
      learners: sorted(learnersNow),
      learnersNext: sorted(learnersNext),
      autoLeave: true,
    },
  };
}

function leaveJoint(current: ConfState): ConfChangeOutcome {
  if (!isJoint(current)) return { ok: false, reason: 'not in a joint configuration' };
  return {
    ok: true,
    confState: {
      ...emptyConfState,
      voters: current.voters,
      learners: sorted([...current.learners, ...current.learnersNext]),
    },
  };
}

/** Every member that receives replication: voters of either half and learners. */
export function members(confState: ConfState): NodeId[] {
  return sorted(
    new Set([...confState.voters, ...confState.votersOutgoing, ...confState.learners, ...confState.learnersNext]),
  );
}

function symmetricDifference(before: readonly NodeId[], after: ReadonlySet<NodeId>): number {
  let count = 0;
  for (const id of before) if (!after.has(id)) count++;
  for (const id of after) if (!before.includes(id)) count++;
  return count;
}

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
