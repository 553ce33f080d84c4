// Pure quorum arithmetic for majority and joint configurations. A joint configuration is two
// majorities that must both agree; a configuration whose outgoing half is empty is a plain majority.
// Used for commit indexes, vote tallies, check-quorum and the read lease.

import type { NodeId } from '../base/ids.ts';

export interface VoterSets {
  readonly incoming: readonly NodeId[];
  readonly outgoing: readonly NodeId[];
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

/**
 * The largest value a majority of `voters` has reached, given each voter's value (missing = 0).
 * An empty majority agrees on anything (it returns +Infinity) so that a joint config's empty
 * outgoing half never holds the other back.
 */
export function majorityValue(voters: readonly NodeId[], valueOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const values = voters.map(valueOf).sort((a, b) => b - a);
  return values[Math.floor(voters.length / 2)] ?? 0;
}

export function jointValue(sets: VoterSets, valueOf: (id: NodeId) => number): number {
  return Math.min(majorityValue(sets.incoming, valueOf), majorityValue(sets.outgoing, valueOf));
}

export function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const needed = Math.floor(voters.length / 2) + 1;
  if (granted >= needed) return 'won';
  if (granted + missing >= needed) return 'pending';
  return 'lost';
}

export function jointVote(sets: VoterSets, votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  const incoming = majorityVote(sets.incoming, votes);
  const outgoing = majorityVote(sets.outgoing, votes);
  if (incoming === 'won' && outgoing === 'won') return 'won';
  if (incoming === 'lost' || outgoing === 'lost') return 'lost';
  return 'pending';
}

export function isVoter(sets: VoterSets, id: NodeId): boolean {
  return sets.incoming.includes(id) || sets.outgoing.includes(id);
}

export function allVoters(sets: VoterSets): NodeId[] {
  return [...new Set([...sets.incoming, ...sets.outgoing])].sort((a, b) => a - b);
}
