// Which kv and database shard groups this node hosts: pure, from what the meta model says (each group's replicas as
// its leader last recorded them from an applied configuration, and the placement moves in
// progress) and what the node hosts now, to the groups to start and to stop.
//
//  - start a group the node does not host when a move adds this node to it (the controller
//    records the move before its add_learner, so the node is ready when the leader's first
//    message comes), or when its record lists this node (a restart that lost nothing keeps its
//    storage, so this is a node added while it was down). The group starts with empty storage and
//    catches up by log or snapshot from its leader.
//  - stop a hosted group (and delete its data) only when its record, written from a configuration
//    the group applied, no longer lists this node, no move adds it, and that configuration is at
//    or after the last one this node applied itself (its log index, `confIndex`): the removal is
//    applied, so this replica counts for nothing. Never before: a replica still in a
//    configuration may be needed for a quorum, and a record older than what this node applied
//    (a node added while its leader had not recorded it yet) says nothing about it. A group without a record is left alone, and so is a replica that has not
//    applied a configuration yet (started empty by a join, waiting for its first snapshot), unless
//    placement is on and neither a record nor a move places it here (`placed`: a cancelled move's).
//    A replica that applied its own removal (`removedHere`) is stopped when no record or move
//    places it here, whatever the record's confIndex (its leader may not have recorded the newer
//    configuration yet).
// Database shard groups (kind `db`) follow the same rules, and two more:
//  - a brand-new shard group (its record lists this node and no leader has recorded a
//    configuration of it yet: no `confIndex`) starts bootstrapped with the record's replicas as its
//    voters, as kv groups are at --init: every replica writes the same first entry, so the group
//    elects a leader without anyone adding it. A node a move adds starts empty, as for kv;
//  - a hosted shard group without a record is stopped and deleted: the meta model drops the record
//    of a shard when its database is removed or no longer has the shard (checked again after a
//    linearizable read of the meta group, like every stop), and never records it again.
// The meta group (0) is never started or stopped here.
//
// Called by: src/node/group-hosting.ts.

import type { GroupId, NodeId } from '../base/ids.ts';

export interface HostingView {
  readonly self: NodeId;
  /** The kv groups hosted here now. */
  readonly hosted: readonly GroupId[];
  /**
   * The hosted groups whose configuration this node has applied (a replica started empty, e.g. by
   * a join, has none until its first snapshot or entries): only these may be stopped.
   */
  readonly configured: readonly GroupId[];
  /** The index of the configuration entry each hosted group applied last here. */
  readonly confIndex: ReadonlyMap<GroupId, number>;
  /** The kv groups the meta model records, with their replicas and the configuration they come from. */
  readonly recorded: readonly {
    readonly id: GroupId;
    /** Absent: kv. */
    readonly kind?: 'kv' | 'db';
    readonly replicas: readonly NodeId[];
    readonly confIndex?: number | undefined;
  }[];
  /** The hosted groups that are database shard groups (a hosted one without a record was dropped). */
  readonly hostedShards?: readonly GroupId[];
  /** The moves in progress (group and the node each adds; 0 for none). */
  readonly moves: readonly { readonly group: GroupId; readonly add: NodeId }[];
  /**
   * Placement is on (the meta model has a kv replication factor): a node hosts a group only where
   * a record or a move places it (a joining node starts with none), so an empty replica (no
   * configuration applied) that neither places here any more is stopped too: the move that
   * started it was cancelled, or its learner removed, before its leader sent it anything; it
   * would never hear from the group again. Off (every node hosts every group, and a joining node
   * waits empty for cluster.add), an empty replica is never stopped.
   */
  readonly placed?: boolean;
  /**
   * The hosted groups whose configuration, as applied here, leaves this node out: it applied its
   * own removal, so the removal is committed. Such a replica is stopped when no record or move
   * places it here, whatever the record's `confIndex`: its own applied configuration is proof
   * enough, and the leader may not have recorded the newer configuration yet.
   */
  readonly removedHere?: readonly GroupId[];
}

export interface HostingPlan {
  readonly start: readonly GroupId[];
  readonly stop: readonly GroupId[];
  /** The groups of `start` to bootstrap, with their first voters (brand-new shard groups). */
  readonly bootstrap: ReadonlyMap<GroupId, readonly NodeId[]>;
}

const metaGroup = 0;

/**
 * Whether a group's record says this node's replica was removed from it: the record leaves `self`
 * out, no move adds it (`added`), and it comes from a configuration at or after the one the replica
 * applied last (`confIndexHere`; undefined: nothing applied, never removed). Such a replica counts for
 * nothing: planHosting stops it, and the API sends its requests to the recorded replicas instead
 * (it may not know the group's leader any more, its leader having stopped talking to it).
 */
export function removedByRecord(
  self: NodeId,
  record: { readonly replicas: readonly NodeId[]; readonly confIndex?: number | undefined },
  confIndexHere: number | undefined,
  added: boolean,
): boolean {
  if (record.replicas.includes(self) || added || confIndexHere === undefined) return false;
  return (record.confIndex ?? 0) >= confIndexHere;
}

export function planHosting(view: HostingView): HostingPlan {
  const hosted = new Set(view.hosted);
  const configured = new Set(view.configured);
  const added = new Set(view.moves.filter((move) => move.add === view.self).map((move) => move.group));
  const start: GroupId[] = [];
  const stop: GroupId[] = [];
  const bootstrap = new Map<GroupId, readonly NodeId[]>();
  for (const record of view.recorded) {
    if (record.id === metaGroup) continue;
    const listed = record.replicas.includes(view.self);
    const placedHere = listed || added.has(record.id);
    if (placedHere && !hosted.has(record.id)) {
      start.push(record.id);
      if (record.kind === 'db' && listed && record.confIndex === undefined) bootstrap.set(record.id, record.replicas);
    }
    const here = view.confIndex.get(record.id);
    if (
      hosted.has(record.id) &&
      configured.has(record.id) &&
      removedByRecord(view.self, record, here, added.has(record.id))
    )
      stop.push(record.id);
  }
  for (const group of added) if (!hosted.has(group) && !start.includes(group)) start.push(group);
  const recorded = new Set(view.recorded.map((record) => record.id));
  for (const group of view.hostedShards ?? []) if (!recorded.has(group) && hosted.has(group)) stop.push(group);
  for (const group of view.removedHere ?? []) {
    const record = view.recorded.find((candidate) => candidate.id === group);
    if (record === undefined || group === metaGroup || !hosted.has(group) || stop.includes(group)) continue;
    if (!record.replicas.includes(view.self) && !added.has(group)) stop.push(group);
  }
  if (view.placed === true)
    for (const record of view.recorded)
      if (record.id !== metaGroup && hosted.has(record.id) && !configured.has(record.id))
        if (!record.replicas.includes(view.self) && !added.has(record.id)) stop.push(record.id);
  return { start: start.sort((a, b) => a - b), stop: stop.sort((a, b) => a - b), bootstrap };
}
