// The placement controller's view (src/control/placement-view.ts): what the planner is given from
// the meta model and the survey of the nodes (a shard group's factor, catch-up once loaded, and
// its failed loads); shard groups held while a node of an older release is registered
// (src/control/release-guard.ts).

import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import type { GroupRecord } from '../../src/codec/meta.ts';
import type { DatabaseRecord } from '../../src/codec/meta-databases.ts';
import { planPlacement, type PlacementView } from '../../src/control/placement-planner.ts';
import { shardGroupPlacementVersion } from '../../src/control/release-guard.ts';
import {
  placementView,
  type GroupReport,
  type NodeReport,
  type PlacementInputs,
} from '../../src/control/placement-view.ts';
import { nodeRecord } from '../support/node-record.ts';

const n = (id: number): NodeId => id as NodeId;
const g = (id: number): GroupId => id as GroupId;

function led(group: number, voters: number[], learners: number[] = [], match = 10): GroupReport {
  return {
    group: g(group),
    role: 'leader',
    term: 2,
    leader: n(voters[0] ?? 0),
    commit: 10,
    applied: 10,
    confIndex: 3,
    voters: voters.map(n),
    learners: learners.map(n),
    votersOutgoing: [],
    learnersNext: [],
    progress: [...voters, ...learners].map((id) => ({ id: n(id), match })),
  };
}

function reportsOf(live: number[], groups: GroupReport[]): Map<NodeId, NodeReport> {
  return new Map(
    live.map((id) => [n(id), { node: n(id), groups: groups.filter((report) => report.leader === n(id)) }]),
  );
}

const records: GroupRecord[] = [
  { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(3)] },
  { id: g(2), kind: 'kv', replicas: [n(3), n(4), n(5)] },
];

describe('placementView', () => {
  it('plans with a node that a group lists before it registered: a member, not a node that left', () => {
    const view = placementView({
      nowMs: 1000,
      nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3), nodeRecord(4)],
      groups: records,
      moves: [],
      factor: 3,
      settings: {},
      reports: reportsOf([1, 2, 3, 4, 5], [led(1, [1, 2, 3]), led(2, [3, 4, 5])]),
      lastSeenMs: new Map(),
    });
    expect(view.nodes.find((entry) => entry.id === 5)).toEqual({ id: 5, live: true });
    expect(planPlacement(view).steps.filter((step) => step.kind !== 'transfer')).toEqual([]);
  });

  it('takes voters, learners and catch-up from the leader, the settings with their defaults, a leaving node as draining', () => {
    const view = placementView({
      nowMs: 5000,
      nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3, 'LEAVING'), nodeRecord(4)],
      groups: records.slice(0, 1),
      moves: [{ group: g(1), add: n(4), remove: n(3), reason: 'node 3 is draining', startedMs: 10 }],
      factor: 3,
      settings: { nodeGoneGraceMs: 2000 },
      reports: reportsOf([1, 3, 4], [led(1, [1, 2, 3], [4])]),
      lastSeenMs: new Map([[n(2), 1000]]),
    });
    expect(view.nodes).toEqual([
      { id: 1, live: true },
      { id: 2, live: false, goneSinceMs: 1000 },
      { id: 3, live: true, draining: true },
      { id: 4, live: true },
    ]);
    expect(view.groups[0]).toMatchObject({ voters: [1, 2, 3], learners: [4], leader: 1, caughtUp: [4] });
    expect(view.moves).toEqual([{ group: 1, add: 4, remove: 3, reason: 'node 3 is draining', startedMs: 10 }]);
    expect(view.settings).toEqual({ nodeGoneGraceMs: 2000, movesPerNodeMax: 2, moveStalledMs: 30_000 });
  });

  it('leaves a group no leader reported without a leader (the planner gives it no step)', () => {
    const view = placementView({
      nowMs: 0,
      nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3)],
      groups: records.slice(0, 1),
      moves: [],
      factor: 3,
      settings: {},
      reports: reportsOf([1, 2, 3], []),
      lastSeenMs: new Map(),
    });
    expect(view.groups[0]).toMatchObject({ voters: [1, 2, 3], leader: 0 });
    expect(planPlacement(view).steps).toEqual([]);
  });

  it("plans database shard groups with their database's copies: a replica on a lost node is re-created", () => {
    const shard: GroupRecord = {
      id: g(1_000_000),
      kind: 'db',
      replicas: [n(1), n(2), n(5)],
      shard: { database: 'shop', shard: '0' },
    };
    const lost = (nowMs: number, replicas: number[], copies: number) =>
      placementView({
        nowMs,
        nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3), nodeRecord(4), nodeRecord(5)],
        groups: [...records, { ...shard, replicas: replicas.map(n) }],
        moves: [],
        factor: 3,
        settings: { nodeGoneGraceMs: 1000 },
        reports: reportsOf([1, 2, 3, 4], [led(1, [1, 2, 3]), led(2, [3, 4, 5]), led(1_000_000, replicas)]),
        lastSeenMs: new Map([[n(5), 0]]),
        database: (name) => (name === 'shop' ? shop(copies, []) : undefined),
      });
    const view = lost(100_000, [1, 2, 5], 3);
    expect(view.groups.map((group) => [group.id, group.factor])).toEqual([
      [1, undefined],
      [2, undefined],
      [1_000_000, 3],
    ]);
    expect(planPlacement(view).steps).toContainEqual({
      kind: 'start_move',
      move: { group: 1_000_000, add: 4, remove: 5, reason: 'node 5 gone for 100 s', startedMs: 100_000 },
    });
    // Two copies, one lost: no quorum, so the group is founded again on its live copy; within the
    // grace period nothing is done.
    expect(planPlacement(lost(100_000, [1, 5], 2)).steps).toContainEqual({
      kind: 'refound',
      group: 1_000_000,
      voters: [1],
      reason: 'quorum lost: node 5 gone for 100 s',
    });
    expect(JSON.stringify(planPlacement(lost(500, [1, 5], 2)).steps)).not.toContain('1000000');
    // Without its database (dropped) a shard group is not planned.
    expect(placementView({ ...viewInputs(shard), database: () => undefined }).groups.map((group) => group.id)).toEqual([
      1, 2,
    ]);
    // "all": every ACTIVE node.
    expect(placementView({ ...viewInputs(shard), database: () => shop('all', []) }).groups[2]?.factor).toBe(4);
  });

  it("counts a shard group's learner caught up only once its copy is loaded", () => {
    const shard: GroupRecord = {
      id: g(1_000_000),
      kind: 'db',
      replicas: [n(1), n(2), n(4)],
      shard: { database: 'shop', shard: '0' },
    };
    const inputs = {
      ...viewInputs(shard),
      reports: reportsOf([1, 2, 3, 4], [led(1, [1, 2, 3]), led(2, [3, 4, 5]), led(1_000_000, [1, 2], [4])]),
    };
    const caught = (loadedOn: number[]): readonly NodeId[] | undefined =>
      placementView({ ...inputs, database: () => shop(2, loadedOn) }).groups[2]?.caughtUp;
    expect(caught([1, 2])).toEqual([]);
    expect(caught([1, 2, 4])).toEqual([4]);
  });

  it("gives a shard group the failed loads of its version to load, the catalog's and the remembered ones", () => {
    const shard: GroupRecord = {
      id: g(1_000_000),
      kind: 'db',
      replicas: [n(1), n(2), n(4)],
      shard: { database: 'shop', shard: '0' },
    };
    const failedOn4 = shop(2, [1, 2]);
    const database = {
      ...failedOn4,
      replicaStates: [
        ...failedOn4.replicaStates,
        { version: 1, shard: '0', node: n(4), state: 'failed', error: 'disk full', atMs: 3 },
      ],
    } satisfies DatabaseRecord;
    const remembered = (node: number, version: number, shardId = '0') => ({
      database: 'shop',
      shard: shardId,
      node: n(node),
      version,
      error: `gone v${version}`,
      atMs: 1,
    });
    const view = placementView({
      ...viewInputs(shard),
      database: () => database,
      // Node 3 left this shard with a failed copy of version 1; node 5's failure was of version 0,
      // node 1's of another shard: neither stands here.
      loadFailures: [remembered(3, 1), remembered(5, 0), remembered(1, 1, '7')],
    });
    expect(view.groups[2]?.loadFailures).toEqual([
      { node: 3, error: 'gone v1' },
      { node: 4, error: 'disk full' },
    ]);
    expect(view.groups[0]?.loadFailures).toBeUndefined();
  });
});

describe('placementView in a mixed-release cluster', () => {
  /**
   * Node 5 gone past the grace period, holding a replica of kv group 1 and of the shard group
   * (`copies` copies on `replicas`); node 3 reports `version3`, every other node this checkout's.
   */
  const mixed = (version3: string, replicas: number[], copies: number) =>
    placementView({
      nowMs: 100_000,
      nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3, 'ACTIVE', version3), nodeRecord(4), nodeRecord(5)],
      groups: [
        { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(5)] },
        { id: g(1_000_000), kind: 'db', replicas: replicas.map(n), shard: { database: 'shop', shard: '0' } },
      ],
      moves: [],
      factor: 3,
      settings: { nodeGoneGraceMs: 1000 },
      reports: reportsOf([1, 2, 3, 4], [led(1, [1, 2, 5]), led(1_000_000, replicas)]),
      lastSeenMs: new Map([[n(5), 0]]),
      database: (name) => (name === 'shop' ? shop(copies, []) : undefined),
    });
  const movedGroups = (view: PlacementView): number[] =>
    planPlacement(view)
      .steps.flatMap((step) =>
        step.kind === 'start_move' ? [step.move.group] : step.kind === 'refound' ? [step.group] : [],
      )
      .sort((a, b) => a - b);
  const shardStatus = (view: PlacementView) => planPlacement(view).groups.find((status) => status.group === 1_000_000);

  it('moves kv groups but no shard group while a node reports a release before shard groups were placed', () => {
    const view = mixed('0.1.0', [1, 2, 5], 3);
    expect(movedGroups(view)).toEqual([1]);
    expect(shardStatus(view)).toMatchObject({ state: 'waiting' });
    expect(shardStatus(view)?.detail).toBe(
      `node 5 gone for 100 s; shard group moves held: node 3 runs 0.1.0, older than ${shardGroupPlacementVersion} (the first release that places shard groups); upgrade every node`,
    );
    // Nor is a shard group that lost its quorum for good founded again.
    const refound = mixed('0.1.0', [1, 5], 2);
    expect(movedGroups(refound)).toEqual([1]);
    expect(shardStatus(refound)).toMatchObject({ state: 'waiting' });
    expect(shardStatus(refound)?.detail).toMatch(
      /^quorum lost, not founded again; shard group moves held: node 3 runs/u,
    );
    // A version that cannot be parsed (not recorded yet) counts as older.
    expect(movedGroups(mixed('', [1, 2, 5], 3))).toEqual([1]);
    expect(shardStatus(mixed('', [1, 2, 5], 3))?.detail).toContain('node 3 (version not reported yet)');
  });

  it('moves shard groups too once every node reports this release or a newer one', () => {
    for (const version of [nodeRecord(3).agentVersion, shardGroupPlacementVersion, '0.12.0', '1.0.0-rc.1']) {
      expect(movedGroups(mixed(version, [1, 2, 5], 3)), version).toEqual([1, 1_000_000]);
      expect(movedGroups(mixed(version, [1, 5], 2)), version).toEqual([1, 1_000_000]);
    }
  });
});

/** Database `shop`, one shard `0` on nodes 1, 2 and 4 (version 1), loaded on `loadedOn`. */
function shop(replicas: number | 'all', loadedOn: number[]): DatabaseRecord {
  return {
    name: 'shop',
    bucket: 'b',
    prefix: '',
    replicas,
    lazy: false,
    metadataPattern: null,
    createdMs: 0,
    current: { version: 1, listedMs: 0, global: [], shards: [{ shard: '0', files: [], nodes: [n(1), n(2), n(4)] }] },
    next: null,
    replicaStates: loadedOn.map((id) => ({
      version: 1,
      shard: '0',
      node: n(id),
      state: 'loaded',
      error: null,
      atMs: 0,
    })),
  };
}

function viewInputs(shard: GroupRecord): PlacementInputs {
  return {
    nowMs: 0,
    nodes: [nodeRecord(1), nodeRecord(2), nodeRecord(3), nodeRecord(4), nodeRecord(5, 'LEAVING')],
    groups: [...records, shard],
    moves: [],
    factor: 3,
    settings: {},
    reports: reportsOf([1, 2, 3, 4, 5], [led(1, [1, 2, 3]), led(2, [3, 4, 5]), led(1_000_000, [...shard.replicas])]),
    lastSeenMs: new Map(),
  };
}
