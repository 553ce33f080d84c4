// What the placement controller knows, turned into the planner's view (pure): the meta model's
// registry, group records, moves and settings, plus a survey of the nodes (each live node's
// report of the groups it hosts) and when each node was last seen. A group's voters, learners,
// leader and the learners' catch-up come from the report of its leader (the highest term when two
// claim it); a group no leader reported has leader 0 (the planner leaves it alone).
//
// Database shard groups (kind `db`) are planned with the kv groups, each with its database's
// replication factor (`replicas` at `db add`; every ACTIVE node for "all"). A learner of a shard
// group is caught up only once the catalog records its copy `loaded` (its files downloaded and
// verified, src/data/database-downloads.ts) as well as its log: promoting it, and removing the
// replica it replaces, before then would leave the shard with one loaded copy fewer. A shard
// group's state is rebuilt from the catalog, so it is `rebuildable`: one that lost its quorum for
// good (two copies, one lost) is founded again rather than left without a quorum. While a
// registered node runs a release that does not place shard groups, every shard group is `held`
// (release-guard.ts): the planner starts no move of it.
// A shard group's `loadFailures` are the nodes whose copy of the version to load failed: recorded
// so in the catalog (a member, or any node for "all"), or remembered by the meta model from when
// the node left the shard's placement with it (src/models/meta.ts); the planner adds none of them.
//
// Called by: src/control/placement-controller.ts; test/control/.

import type { GroupId, NodeId } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { GroupRecord, NodeRecord } from '../codec/meta.ts';
import type { DatabaseRecord } from '../codec/meta-databases.ts';
import type { LoadFailure, MoveRecord, PlacementSettingsRecord } from '../codec/meta-placement.ts';
import { metaGroupId, type MetaModel } from '../models/meta.ts';
import { replicaView, shardLoadVersion } from '../models/meta-databases.ts';
import type { Status } from '../raft/types.ts';
import {
  placementDefaults,
  type LoadFailureOf,
  type PlacementGroup,
  type PlacementMove,
  type PlacementSettings,
  type PlacementView,
} from './placement-planner.ts';
import { shardPlacementHold } from './release-guard.ts';

/** A learner within this many entries of the leader's commit index is caught up (may be promoted). */
export const learnerCatchUpEntriesMax = 64;

/** One hosted group as its node reports it (GET /v1/internal/placement/report). */
export interface GroupReport {
  readonly group: GroupId;
  readonly role: string;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  /** The index of the configuration entry applied last. */
  readonly confIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** On a leader: each member's match index, and the bytes of a snapshot being sent to it. */
  readonly progress: readonly {
    readonly id: NodeId;
    readonly match: number;
    readonly snapshot?: { readonly ackedBytes: number; readonly totalBytes: number };
  }[];
}

export interface NodeReport {
  readonly node: NodeId;
  readonly groups: readonly GroupReport[];
}

/** What a node reports of one hosted group (MultiRaftHost.status() gives these). */
export interface HostedGroup {
  readonly group: GroupId;
  readonly status: Status;
  readonly appliedIndex: number;
  readonly confIndex: number;
}

/** This node's report: every hosted group but the meta group (the controller's survey; also run in the simulator). */
export function nodeReportOf(node: NodeId, hosted: readonly HostedGroup[]): NodeReport {
  return {
    node,
    groups: hosted
      .filter(({ group }) => group !== metaGroupId)
      .map(({ group, status, appliedIndex, confIndex }) => ({
        group,
        role: status.role,
        term: status.term,
        leader: status.leader,
        commit: status.commit,
        applied: appliedIndex,
        confIndex,
        voters: status.confState.voters,
        learners: status.confState.learners,
        votersOutgoing: status.confState.votersOutgoing,
        learnersNext: status.confState.learnersNext,
        progress: status.progress.map(({ id, match, snapshot }) => ({
          id,
          match,
          ...(snapshot === undefined ? {} : { snapshot: { ...snapshot } }),
        })),
      })),
  };
}

export interface PlacementInputs {
  readonly nowMs: number;
  readonly nodes: readonly NodeRecord[];
  readonly groups: readonly GroupRecord[];
  readonly moves: readonly MoveRecord[];
  readonly factor: number;
  readonly settings: Partial<PlacementSettingsRecord>;
  /** The reports of the nodes that answered the survey. */
  readonly reports: ReadonlyMap<NodeId, NodeReport>;
  /** When each node last answered (ms, the meta leader's wall clock). */
  readonly lastSeenMs: ReadonlyMap<NodeId, number>;
  /** The catalog's databases by name (shard groups' factors and load states); none: no db group is planned. */
  readonly database?: (name: string) => DatabaseRecord | undefined;
  /** The load failures the meta model remembers (nodes that left a shard's placement with a failed copy). */
  readonly loadFailures?: readonly LoadFailure[];
}

/**
 * A shard group's replication factor (its database's copies; every ACTIVE node for "all"), or
 * undefined when the group is not planned (not a shard group, or its database is gone).
 */
export function shardFactor(
  inputs: Pick<PlacementInputs, 'nodes' | 'database'>,
  record: GroupRecord,
): number | undefined {
  if (record.kind !== 'db' || record.shard === undefined) return undefined;
  const database = inputs.database?.(record.shard.database);
  if (database === undefined) return undefined;
  if (database.replicas !== 'all') return database.replicas;
  return Math.max(1, inputs.nodes.filter((node) => node.status === 'ACTIVE').length);
}

/** What shardFactor needs, from the meta model. */
export function shardInputs(model: Pick<MetaModel, 'nodes' | 'databases'>): {
  readonly nodes: readonly NodeRecord[];
  readonly database: (name: string) => DatabaseRecord | undefined;
} {
  return { nodes: model.nodes(), database: (name) => model.databases.database(name) };
}

/**
 * Whether the node's copy of the shard is loaded: in the current version when it has the shard,
 * else in the next (a shard only a reload brings).
 */
export function shardLoaded(database: DatabaseRecord, shard: string, node: NodeId): boolean {
  const version = shardLoadVersion(database, shard);
  return version !== undefined && replicaView(database, version, shard, node).state === 'loaded';
}

/**
 * The nodes whose copy of the shard's version to load failed, by node: as the catalog records it,
 * or as the meta model remembers it from when the node left the shard's placement.
 */
export function shardLoadFailures(
  database: DatabaseRecord,
  shard: string,
  remembered: readonly LoadFailure[],
): LoadFailureOf[] {
  const version = shardLoadVersion(database, shard);
  const found = new Map<NodeId, string>();
  for (const state of database.replicaStates)
    if (state.version === version && state.shard === shard && state.state === 'failed')
      found.set(state.node, state.error ?? 'failed');
  for (const failure of remembered)
    if (failure.database === database.name && failure.shard === shard && failure.version === version)
      if (!found.has(failure.node)) found.set(failure.node, failure.error);
  return [...found].sort(([a], [b]) => a - b).map(([node, error]) => ({ node, error }));
}

/** A shard group's `loadFailures` for the view (nothing for a kv group, or when there are none). */
function failuresOf(inputs: PlacementInputs, record: GroupRecord, database: DatabaseRecord | undefined) {
  const failures =
    record.shard === undefined || database === undefined
      ? []
      : shardLoadFailures(database, record.shard.shard, inputs.loadFailures ?? []);
  return failures.length === 0 ? {} : { loadFailures: failures };
}

export function settingsOf(settings: Partial<PlacementSettingsRecord>): PlacementSettings {
  return { ...placementDefaults, ...settings };
}

/** The report of each group's leader (the highest term wins), by group. */
export function leaderReports(reports: ReadonlyMap<NodeId, NodeReport>): Map<GroupId, GroupReport> {
  const leaders = new Map<GroupId, GroupReport>();
  for (const report of reports.values())
    for (const group of report.groups) {
      if (group.role !== 'leader') continue;
      const known = leaders.get(group.group);
      if (known === undefined || group.term > known.term) leaders.set(group.group, group);
    }
  return leaders;
}

/**
 * The nodes the controller surveys and plans with: the registry, and every node a group record
 * lists (a node registers itself shortly after it starts: until then it is a member all the same,
 * not a node that left the cluster).
 */
export function surveyedNodes(inputs: Pick<PlacementInputs, 'nodes' | 'groups'>): NodeId[] {
  const ids = new Set(inputs.nodes.map((node) => node.id));
  for (const group of inputs.groups) for (const node of group.replicas) ids.add(node);
  return [...ids].sort((a, b) => a - b);
}

/** The planner's nodes: live when they answered the survey, else gone since they last did; draining when leaving. */
function viewNodes(inputs: PlacementInputs): PlacementView['nodes'] {
  return surveyedNodes(inputs).map((id) => {
    const live = inputs.reports.has(id);
    const seen = inputs.lastSeenMs.get(id);
    const leaving = inputs.nodes.some((node) => node.id === id && node.status === 'LEAVING');
    return {
      id,
      live,
      ...(live || seen === undefined ? {} : { goneSinceMs: seen }),
      ...(leaving ? { draining: true } : {}),
    };
  });
}

export function placementView(inputs: PlacementInputs): PlacementView {
  const leaders = leaderReports(inputs.reports);
  const nodes = viewNodes(inputs);
  // Shard groups wait while a node runs a release that does not place them (release-guard.ts).
  const hold = shardPlacementHold(inputs.nodes);
  const groups = inputs.groups
    .map((record) => ({ record, factor: shardFactor(inputs, record) }))
    .filter(({ record, factor }) => record.kind === 'kv' || factor !== undefined)
    .map(({ record, factor }): PlacementGroup => {
      const report = leaders.get(record.id);
      const shardGroup =
        factor === undefined ? {} : { factor, rebuildable: true, ...(hold === undefined ? {} : { held: hold }) };
      const database = record.shard === undefined ? undefined : inputs.database?.(record.shard.database);
      const loaded = (node: NodeId): boolean =>
        record.shard === undefined || (database !== undefined && shardLoaded(database, record.shard.shard, node));
      const failed = failuresOf(inputs, record, database);
      if (report === undefined)
        return {
          id: record.id,
          kind: record.kind,
          ...shardGroup,
          ...failed,
          voters: record.replicas,
          learners: [],
          leader: NO_NODE,
          caughtUp: [],
          changePending: false,
        };
      const match = new Map(report.progress.map((member) => [member.id, member.match]));
      return {
        id: record.id,
        kind: record.kind,
        ...shardGroup,
        ...failed,
        voters: report.voters,
        learners: report.learners,
        leader: report.leader,
        caughtUp: report.learners.filter(
          (node) =>
            (match.get(node) ?? 0) + learnerCatchUpEntriesMax >= report.commit &&
            (match.get(node) ?? 0) > 0 &&
            loaded(node),
        ),
        changePending: report.votersOutgoing.length > 0 || report.learnersNext.length > 0,
      };
    });
  const moves = inputs.moves.map(
    (move): PlacementMove => ({
      group: move.group,
      reason: move.reason,
      startedMs: move.startedMs,
      ...(move.add === 0 ? {} : { add: move.add }),
      ...(move.remove === 0 ? {} : { remove: move.remove }),
    }),
  );
  return {
    nowMs: inputs.nowMs,
    nodes,
    groups,
    moves,
    factors: new Map([['kv', inputs.factor]]),
    settings: settingsOf(inputs.settings),
  };
}
