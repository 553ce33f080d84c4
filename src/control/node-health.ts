// A node's status and its shards' roles as the Replicante agent API reports them, computed from
// this node's own state alone (pure: the hosted groups' status in, the answer out).
//
// Node status:
//  - NOT_IN_CLUSTER: the node hosts no meta group, or is a member of no group it hosts (never
//    joined, or removed);
//  - JOINING_CLUSTER: it hosts the meta group but has not applied its configuration yet, or it is
//    in a kv group but not yet in the meta group;
//  - UNHEALTHY (with the reason): a hosted group has no known leader, or this node's replica of
//    one is more than `lagEntriesMax` entries from applying what it knows is committed;
//  - HEALTHY otherwise.
// Shard role: the leader is Primary; a candidate is Other("candidate"); a follower or learner is
// Recovering while it has not applied the group's configuration or lags by more than
// `lagEntriesMax`, Secondary otherwise. Lag, for non-primaries: commit index minus applied index
// as this node knows them (entries; a follower knows the leader's commit index from its last
// message, so this is a lower bound).
//
// Called by: src/api/agent-routes.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { Status } from '../raft/types.ts';

export const lagEntriesMax = 1000;

export interface HostedGroup {
  readonly group: GroupId;
  readonly status: Status;
  readonly appliedIndex: number;
}

export type NodeHealth =
  | { readonly status: 'NOT_IN_CLUSTER' | 'JOINING_CLUSTER' | 'HEALTHY'; readonly reason: null }
  | { readonly status: 'UNHEALTHY'; readonly reason: string };

export type ShardRole = 'Primary' | 'Secondary' | 'Recovering' | { readonly Other: string };

const metaGroup = 0 as GroupId;

function isMember(self: NodeId, status: Status): boolean {
  const conf = status.confState;
  return [...conf.voters, ...conf.learners, ...conf.votersOutgoing, ...conf.learnersNext].includes(self);
}

export function nodeHealth(self: NodeId, groups: readonly HostedGroup[]): NodeHealth {
  const meta = groups.find((g) => g.group === metaGroup);
  if (meta === undefined || !groups.some((g) => isMember(self, g.status)))
    return { status: 'NOT_IN_CLUSTER', reason: null };
  if (meta.status.confState.voters.length === 0 || !isMember(self, meta.status))
    return { status: 'JOINING_CLUSTER', reason: null };
  for (const { group, status, appliedIndex } of groups) {
    if (status.leader === 0) return { status: 'UNHEALTHY', reason: `group ${group} has no known leader` };
    const lag = lagOf(status, appliedIndex);
    if (lag !== null && lag > lagEntriesMax)
      return { status: 'UNHEALTHY', reason: `group ${group} is ${lag} entries behind (more than ${lagEntriesMax})` };
  }
  return { status: 'HEALTHY', reason: null };
}

/** Entries committed but not applied here, for a non-leader; null for the leader. */
export function lagOf(status: Status, appliedIndex: number): number | null {
  if (status.role === 'leader') return null;
  return Math.max(0, status.commit - appliedIndex);
}

export function shardRole(status: Status, appliedIndex: number): ShardRole {
  switch (status.role) {
    case 'leader':
      return 'Primary';
    case 'candidate':
    case 'pre_candidate':
      return { Other: 'candidate' };
    case 'follower': {
      const lag = lagOf(status, appliedIndex) ?? 0;
      return status.confState.voters.length === 0 || lag > lagEntriesMax ? 'Recovering' : 'Secondary';
    }
  }
}
