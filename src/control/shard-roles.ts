// The roles of a database shard's replicas, as Replicante names them (pure): the shard group's
// leader is the PRIMARY, its other members SECONDARY, and a member that has not loaded the version
// (downloading, failed) or whose replica of the group lags more than `lagEntriesMax` entries is
// RECOVERING. A member that did not report its replica of the group (down, or not answering in
// time) has no role (null). Offsets are Raft log indexes of the shard's group: `commitOffset` is
// the member's applied index, `lag` how far it is behind its group's commit index (the leader's,
// when the leader reported; entries).
//
// Called by: src/api/database-routes.ts (GET /v1/databases/:name/shards), src/api/agent-routes.ts
// (info/shards: a shard group not loaded here is Recovering).

import type { GroupId, NodeId } from '../base/ids.ts';
import type { MetaModel } from '../models/meta.ts';
import { replicaView } from '../models/meta-databases.ts';
import { lagEntriesMax } from './node-health.ts';

/** One node's replica of a shard group, as that node reports it. */
export interface ShardGroupReport {
  readonly group: GroupId;
  readonly shard: string;
  /** The Raft role of this replica: leader, follower, candidate, pre_candidate. */
  readonly role: string;
  readonly leader: NodeId;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  /** What this replica's shard model holds: the versions, and the replicas' recorded states. */
  readonly versions: readonly number[];
  readonly recorded: readonly { readonly version: number; readonly node: NodeId; readonly state: string }[];
}

export type ReplicaRole = 'PRIMARY' | 'SECONDARY' | 'RECOVERING';

export interface MemberRole {
  readonly role: ReplicaRole | null;
  readonly commitOffset: number | null;
  readonly lag: number | null;
}

/**
 * A member's role for a shard whose load state (for the version asked about) is `state`, from the
 * reports of the group by every node that answered (`reports`: by node).
 */
export function memberRole(
  node: NodeId,
  state: string,
  reports: ReadonlyMap<NodeId, ShardGroupReport | undefined>,
): MemberRole {
  const own = reports.get(node);
  if (own === undefined) return { role: state === 'loaded' ? null : 'RECOVERING', commitOffset: null, lag: null };
  let leaderCommit = own.commit;
  let leaderTerm = -1;
  for (const report of reports.values())
    if (report?.role === 'leader' && report.term > leaderTerm) {
      leaderTerm = report.term;
      leaderCommit = report.commit;
    }
  const lag = Math.max(0, leaderCommit - own.applied);
  const role: ReplicaRole =
    state !== 'loaded' || (own.role !== 'leader' && lag > lagEntriesMax)
      ? 'RECOVERING'
      : own.role === 'leader'
        ? 'PRIMARY'
        : 'SECONDARY';
  return { role, commitOffset: own.applied, lag };
}

/** The leader the reports agree on (the highest term's), 0 when none reported leading. */
export function reportedLeader(reports: Iterable<ShardGroupReport | undefined>): NodeId {
  let best: ShardGroupReport | undefined;
  for (const report of reports)
    if (report !== undefined && report.leader !== 0 && (best === undefined || report.term > best.term)) best = report;
  return best?.leader ?? (0 as NodeId);
}

/**
 * Whether this node's replica of a database shard group has not loaded the shard's current version
 * (its Replicante role is then Recovering whatever its Raft role); false for any other group.
 */
export function shardGroupRecovering(meta: MetaModel, group: GroupId, node: NodeId): boolean {
  const shard = meta.group(group)?.shard;
  if (shard === undefined) return false;
  const record = meta.databases.database(shard.database);
  if (record === undefined) return false;
  return replicaView(record, record.current.version, shard.shard, node).state !== 'loaded';
}
