// The placement controller (src/control/placement-controller.ts) on a real meta model with fake
// ports: a node gone past the grace period is replaced by a recorded move, each membership change
// at the group's leader, the record brought in step before the move finishes; a move whose learner
// stops catching up is cancelled moveStalledMs (as recorded in the meta model) after its last
// progress; a move whose added node failed to load its shard is cancelled at once and that node
// not chosen again (the meta model remembers the failure); nothing is done while this node does
// not lead the meta group; a hold of the shard groups' moves (a node of an older release) is
// logged once, and its end, and cluster.remove's drain does not wait for a held shard group.

import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import type { MetaCommand } from '../../src/codec/meta.ts';
import {
  PlacementController,
  type PlacementControllerOptions,
  type PlacementPorts,
} from '../../src/control/placement-controller.ts';
import type { GroupReport, NodeReport } from '../../src/control/placement-view.ts';
import { shardPlacementHold } from '../../src/control/release-guard.ts';
import { MetaModel } from '../../src/models/meta.ts';
import type { ConfChange, Status } from '../../src/raft/types.ts';
import { idleClock } from '../support/idle-clock.ts';
import { nodeRecord } from '../support/node-record.ts';

const n = (id: number): NodeId => id as NodeId;
const g = (id: number): GroupId => id as GroupId;

function groupReport(voters: number[], learners: number[], confIndex: number): GroupReport {
  return {
    group: g(1),
    role: 'leader',
    term: 2,
    leader: n(1),
    commit: 20,
    applied: 20,
    confIndex,
    voters: voters.map(n),
    learners: learners.map(n),
    votersOutgoing: [],
    learnersNext: [],
    progress: [...voters, ...learners].map((id) => ({ id: n(id), match: 20 })),
  };
}

type Log = NonNullable<PlacementControllerOptions['log']>;

function setup(leading: boolean, log?: Log) {
  const model = new MetaModel();
  const events: string[] = [];
  const propose = (command: MetaCommand): Promise<boolean> => {
    events.push(command.type);
    return Promise.resolve(model.apply(command).ok);
  };
  for (const id of [1, 2, 3, 4]) model.apply({ type: 'node.upsert', node: nodeRecord(id) });
  model.apply({ type: 'replication.set', kind: 'kv', factor: 3 });
  model.apply({ type: 'group.set', group: { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(3)] } });
  model.apply({ type: 'placement.settings', settings: { nodeGoneGraceMs: 0 } });
  const state = { report: groupReport([1, 2, 3], [], 1), extra: [] as GroupReport[], nowMs: 1000, live: [1, 2, 4] };
  const ports: PlacementPorts = {
    survey: () => {
      // Node 3 is down (unless a test says otherwise); node 1 leads group 1.
      const reports = new Map<NodeId, NodeReport>();
      for (const id of state.live)
        reports.set(n(id), { node: n(id), groups: id === 1 ? [state.report, ...state.extra] : [] });
      return Promise.resolve(reports);
    },
    confChange: (node: NodeId, group: GroupId, change: ConfChange) => {
      events.push(`conf@${node} g${group} ${change.changes.map((c) => `${c.type}:${c.node}`).join(',')}`);
      return Promise.resolve({ ok: true });
    },
    transfer: (node, group, to) => {
      events.push(`transfer@${node} g${group} to ${to}`);
      return Promise.resolve({ ok: true });
    },
  };
  const status = { role: leading ? 'leader' : 'follower' } as Status;
  const controller = new PlacementController({
    host: { groupStatus: () => ({ status }) },
    model,
    clock: idleClock,
    wallNowMs: () => state.nowMs,
    ports,
    propose,
    ...(log === undefined ? {} : { log }),
  });
  return { model, events, state, controller };
}

describe('PlacementController', () => {
  it('replaces a lost voter: records the move first, changes at the leader, updates the record, then finishes', async () => {
    const { model, events, state, controller } = setup(true);
    await controller.tick();
    expect(model.moves()).toMatchObject([{ group: 1, add: 4, remove: 3 }]);
    await controller.tick();
    state.report = groupReport([1, 2, 3], [4], 7);
    await controller.tick();
    state.report = groupReport([1, 2, 4], [], 9);
    await controller.tick();
    expect(events).toEqual([
      'placement.move.start',
      'conf@1 g1 add_learner:4',
      'conf@1 g1 add_voter:4,remove_node:3',
      'group.set',
      'placement.move.finish',
    ]);
    expect(model.groups()).toEqual([{ id: 1, kind: 'kv', replicas: [1, 2, 4] }]);
    expect(model.groupConfIndex(g(1))).toBe(9);
    expect(model.moves()).toEqual([]);
    expect(model.moveHistory()).toMatchObject([{ group: 1, add: 4, remove: 3, outcome: 'finished' }]);
  });

  it('does nothing while this node does not lead the meta group', async () => {
    const { events, controller } = setup(false);
    await controller.tick();
    expect(events).toEqual([]);
    expect(controller.lastRound()).toBeUndefined();
  });
});

describe('PlacementController and a move that makes no progress', () => {
  it('cancels it moveStalledMs after its learner last caught up further, into the history with the reason', async () => {
    const { model, events, state, controller } = setup(true);
    await controller.tick();
    await controller.tick();
    const behind = (match: number): GroupReport => {
      const report = groupReport([1, 2, 3], [4], 7);
      const progress = report.progress.map((p) => ({ ...p, match: p.id === n(4) ? match : 500 }));
      return { ...report, commit: 500, applied: 500, progress };
    };
    const at = async (nowMs: number, match: number): Promise<void> => {
      state.nowMs = nowMs;
      state.report = behind(match);
      await controller.tick();
    };
    await at(2000, 0);
    await at(20_000, 0);
    await at(25_000, 5); // progress
    await at(54_000, 5);
    expect(model.moves()).toMatchObject([{ group: 1, add: 4, remove: 3 }]);
    await at(55_000, 5);
    expect(model.moves()).toEqual([]);
    expect(model.moveHistory()).toMatchObject([{ group: 1, add: 4, outcome: 'cancelled' }]);
    expect(model.moveHistory()[0]?.detail).toMatch(/^no progress for 30 s \(.*node 4 catching up\)$/);
    expect(events.filter((event) => event.startsWith('conf'))).toEqual(['conf@1 g1 add_learner:4']);
  });
});

/** Database shop: one shard on nodes 1, 2 and 4, in its own group (no leader reports it: no step for it). */
function createShop(model: MetaModel): void {
  model.apply({
    type: 'databases',
    command: {
      type: 'db.create',
      spec: { name: 'shop', bucket: 'b', prefix: '', replicas: 3, lazy: false, metadataPattern: null },
      version: { version: 1, listedMs: 0, global: [], shards: [{ shard: '0', files: [], nodes: [n(1), n(2), n(4)] }] },
      atMs: 1,
    },
  });
}

describe('PlacementController with the settings the meta model records', () => {
  it('cancels a move that makes no progress after the recorded moveStalledMs', async () => {
    const { model, state, controller } = setup(true);
    model.apply({ type: 'placement.settings', settings: { moveStalledMs: 10_000 } });
    await controller.tick();
    await controller.tick();
    const report = groupReport([1, 2, 3], [4], 7);
    state.report = {
      ...report,
      commit: 500,
      progress: report.progress.map((p) => ({ ...p, match: p.id === n(4) ? 0 : 500 })),
    };
    state.nowMs = 2000;
    await controller.tick();
    state.nowMs = 11_999;
    await controller.tick();
    expect(model.moves()).toMatchObject([{ group: 1, add: 4, remove: 3 }]);
    state.nowMs = 12_000;
    await controller.tick();
    expect(model.moves()).toEqual([]);
    expect(model.moveHistory()[0]?.detail).toMatch(/^no progress for 10 s /);
  });
});

describe('PlacementController in a mixed-release cluster', () => {
  it('logs once that shard groups are not moved while a node reports an older release, and once when that ends', async () => {
    const logged: string[] = [];
    const { model, state, controller } = setup(true, (level, message, fields) => {
      if (message.includes('shard groups')) logged.push(`${level} ${message} ${JSON.stringify(fields)}`);
    });
    createShop(model);
    expect(model.groups().map((group) => group.kind)).toEqual(['kv', 'db']);
    model.apply({ type: 'node.upsert', node: nodeRecord(2, 'ACTIVE', '0.1.0') });
    for (let round = 0; round < 3; round++) {
      state.nowMs += 1000;
      await controller.tick();
    }
    expect(logged).toEqual([
      `warn placement: shard groups are not moved ${JSON.stringify({ reason: shardPlacementHold(model.nodes()) })}`,
    ]);
    expect(logged[0]).toContain('node 2 runs 0.1.0');
    model.apply({ type: 'node.upsert', node: nodeRecord(2) });
    for (let round = 0; round < 3; round++) {
      state.nowMs += 1000;
      await controller.tick();
    }
    expect(logged).toHaveLength(2);
    expect(logged[1]).toMatch(/^info placement: shard groups are moved again /);
  });

  it("cluster.remove's drain does not wait for a shard group while their moves are held", async () => {
    const { model, state, controller } = setup(true);
    model.apply({ type: 'placement.settings', settings: { nodeGoneGraceMs: 60_000 } });
    createShop(model);
    const leaving = (version: string) => {
      model.apply({ type: 'node.upsert', node: nodeRecord(4, 'LEAVING', version) });
    };
    leaving(nodeRecord(4).agentVersion);
    state.nowMs += 1000;
    await controller.tick();
    // The shard group on node 4 can move to node 3: the drain waits for it.
    expect(controller.drain(n(4))?.draining).toBe(true);
    leaving('0.1.0');
    expect(controller.drain(n(4))?.draining).toBe(false);
  });
});

describe('PlacementController before every group is recorded', () => {
  it('plans nothing while a node reports a group the meta model does not record yet', async () => {
    const { model, events, state, controller } = setup(true);
    state.extra = [{ ...groupReport([1, 2, 4], [], 1), group: g(2) }];
    await controller.tick();
    expect(events).toEqual([]);
    expect(model.moves()).toEqual([]);
    // Once recorded, the lost voter of group 1 is replaced as usual.
    model.apply({ type: 'group.set', group: { id: g(2), kind: 'kv', replicas: [n(1), n(2), n(4)] } });
    await controller.tick();
    expect(events).toContain('placement.move.start');
  });
});

describe('PlacementController and a node that fails to load a shard', () => {
  it('cancels the move at once, removes its learner, and adds another node', async () => {
    const { model, events, state, controller } = setup(true);
    // Every node live; a database whose shard 0 has two copies of three.
    state.live = [1, 2, 3, 4];
    model.apply({ type: 'group.set', group: { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(4)] } });
    model.apply({
      type: 'databases',
      command: {
        type: 'db.create',
        spec: { name: 'shop', bucket: 'b', prefix: 'p/', replicas: 3, lazy: false, metadataPattern: null },
        version: { version: 1, listedMs: 0, global: [], shards: [{ shard: '0', files: [], nodes: [n(1), n(2)] }] },
        atMs: 1,
      },
    });
    const shard = g(1_000_000);
    expect(model.group(shard)?.replicas).toEqual([1, 2]);
    const shardReport = (learners: number[]): GroupReport => ({ ...groupReport([1, 2], learners, 2), group: shard });
    state.report = groupReport([1, 2, 4], [], 1);
    state.extra = [shardReport([])];
    await controller.tick();
    expect(model.move(shard)).toMatchObject({ add: 3 });
    await controller.tick();
    state.extra = [shardReport([3])];
    model.apply({
      type: 'databases',
      command: {
        type: 'db.replica',
        name: 'shop',
        version: 1,
        node: n(3),
        shards: ['0'],
        state: 'failed',
        error: 'disk full',
        atMs: 3,
      },
    });
    await controller.tick();
    expect(model.move(shard)).toBeUndefined();
    expect(model.moveHistory().at(-1)).toMatchObject({
      group: shard,
      add: 3,
      outcome: 'cancelled',
      detail: 'node 3 failed to load the shard: disk full',
    });
    expect(model.loadFailures()).toMatchObject([{ database: 'shop', shard: '0', node: 3, version: 1 }]);
    // The learner left is removed; the next move adds node 4, not node 3 again.
    for (let round = 0; round < 3; round++) {
      await controller.tick();
      if (events.includes(`conf@1 g${shard} remove_node:3`)) state.extra = [shardReport([])];
    }
    expect(events).toContain(`conf@1 g${shard} remove_node:3`);
    await controller.tick();
    expect(model.move(shard)).toMatchObject({ add: 4 });
    await controller.tick();
    expect(events.filter((event) => event.startsWith(`conf@1 g${shard} add_learner`))).toEqual([
      `conf@1 g${shard} add_learner:3`,
      `conf@1 g${shard} add_learner:4`,
    ]);
  });
});
