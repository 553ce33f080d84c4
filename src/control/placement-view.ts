// What the placement controller knows, turned into the planner's view (pure): the meta model's
// registry, group records, moves and settings, plus a survey of the nodes (each live node's
// report of the groups it hosts) and when each node was last seen. A group's voters, learners,
// leader and the learners' catch-up come from the report of its leader (the highest term when two
// claim it); a group no leader reported has leader 0 (the planner leaves it alone).
//
// Called by: src/control/placement-controller.ts; test/control/.

import type { GroupId, NodeId } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { GroupRecord, NodeRecord } from '../codec/meta.ts';
import type { MoveRecord, PlacementSettingsRecord } from '../codec/meta-placement.ts';
import { metaGroupId } from '../models/meta.ts';
import type { Status } from '../raft/types.ts';
import {
  placementDefaults,
  type PlacementGroup,
  type PlacementMove,
  type PlacementSettings,
  type PlacementView,
} from './placement-planner.ts';

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

export function placementView(inputs: PlacementInputs): PlacementView {
  const leaders = leaderReports(inputs.reports);
  const nodes = surveyedNodes(inputs).map((id) => {
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
  const groups = inputs.groups
    .filter((record) => record.kind === 'kv')
    .map((record): PlacementGroup => {
      const report = leaders.get(record.id);
      if (report === undefined)
        return {
          id: record.id,
          kind: record.kind,
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
        voters: report.voters,
        learners: report.learners,
        leader: report.leader,
        caughtUp: report.learners.filter(
          (node) => (match.get(node) ?? 0) + learnerCatchUpEntriesMax >= report.commit && (match.get(node) ?? 0) > 0,
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
