// Properties of the placement planner over random clusters (seeded by fast-check), driven round by
// round through the transcripts' fake controller (every step succeeds, learners catch up at once):
//  - no membership step leaves the old or the new configuration without a live majority;
//  - at most one step per group per round, and none for a group without a leader or a quorum;
//  - a new move never makes a node take part in more than movesPerNodeMax moves;
//  - a new move adding a node never makes the group's leader send more than movesPerNodeMax catch-ups;
//  - with every node live and enough of them, placement converges: every group at its factor, no
//    learners, no moves, and replicas per node within two of each other.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import { placementDefaults, type PlacementStep } from '../../src/control/placement-planner.ts';
import { PlacementEnv, type GroupState } from './placement-env.ts';

const roundsMax = 400;

interface Cluster {
  readonly nodes: number;
  readonly dead: readonly number[];
  readonly draining: readonly number[];
  readonly groups: readonly { voters: number[]; leaderPick: number }[];
  readonly moves: number;
  /** Dead nodes are within the grace period (sticky), not lost. */
  readonly sticky: boolean;
}

const clusterArb: fc.Arbitrary<Cluster> = fc.integer({ min: 3, max: 7 }).chain((nodes) =>
  fc.record({
    nodes: fc.constant(nodes),
    dead: fc.uniqueArray(fc.integer({ min: 1, max: nodes }), { maxLength: 2 }),
    draining: fc.uniqueArray(fc.integer({ min: 1, max: nodes }), { maxLength: 1 }),
    groups: fc.array(
      fc.record({
        voters: fc.uniqueArray(fc.integer({ min: 1, max: nodes }), { minLength: 1, maxLength: 5 }),
        leaderPick: fc.nat(),
      }),
      { minLength: 1, maxLength: 10 },
    ),
    moves: fc.integer({ min: 1, max: 3 }),
    sticky: fc.boolean(),
  }),
);

function build(cluster: Cluster, withFaults: boolean): PlacementEnv {
  const env = new PlacementEnv();
  env.setSettings({
    ...placementDefaults,
    nodeGoneGraceMs: cluster.sticky ? 60_000 : 1000,
    movesPerNodeMax: cluster.moves,
  });
  for (let id = 1; id <= cluster.nodes; id++) {
    const dead = withFaults && cluster.dead.includes(id);
    const draining = withFaults && cluster.draining.includes(id);
    env.putNode({
      id: id as NodeId,
      live: !dead,
      ...(dead ? { goneSinceMs: 0 } : {}),
      ...(draining ? { draining } : {}),
    });
  }
  cluster.groups.forEach((g, index) => {
    const voters = g.voters.map((v) => v as NodeId);
    const live = voters.filter((v) => !(withFaults && cluster.dead.includes(v)));
    const leader = live[g.leaderPick % Math.max(1, live.length)] ?? (0 as NodeId);
    const group: GroupState = {
      id: (index + 1) as GroupId,
      kind: 'kv',
      voters,
      learners: [],
      leader,
      caughtUp: [],
      changePending: false,
    };
    env.putGroup(group);
  });
  return env;
}

function membersAfter(step: PlacementStep, voters: readonly NodeId[]): readonly NodeId[] | undefined {
  switch (step.kind) {
    case 'promote':
      return [...voters, step.node];
    case 'replace':
      return [...voters.filter((v) => v !== step.remove), step.add];
    case 'remove':
      return voters.filter((v) => v !== step.node);
    default:
      return undefined;
  }
}

const majorityLive = (voters: readonly NodeId[], live: (n: NodeId) => boolean): boolean =>
  voters.filter(live).length >= Math.floor(voters.length / 2) + 1;

function checkRound(env: PlacementEnv, cluster: Cluster, nowMs: number, withFaults: boolean): number {
  const live = (n: NodeId): boolean => n >= 1 && n <= cluster.nodes && !(withFaults && cluster.dead.includes(n));
  const before = new Map(env.state().groups.map((g) => [g.id, { ...g, voters: [...g.voters] }]));
  const { steps } = env.plan(nowMs);
  const seen = new Set<GroupId>();
  for (const step of steps) {
    const group = step.kind === 'start_move' ? step.move.group : step.group;
    expect(seen.has(group), `two steps for group ${group}`).toBe(false);
    seen.add(group);
    const state = before.get(group);
    if (state === undefined) throw new Error(`a step for unknown group ${group}`);
    expect(state.leader).not.toBe(0);
    const after = membersAfter(step, state.voters);
    if (after !== undefined) {
      expect(majorityLive(state.voters, live), `old config of ${group} keeps a live majority`).toBe(true);
      expect(majorityLive(after, live), `new config of ${group} keeps a live majority`).toBe(true);
    }
  }
  env.round(nowMs);
  const busy = new Map<NodeId, number>();
  for (const move of env.state().moves)
    for (const node of [move.add, move.remove])
      if (node !== undefined && live(node)) busy.set(node, (busy.get(node) ?? 0) + 1);
  const started = steps.filter((s) => s.kind === 'start_move');
  for (const step of started)
    for (const node of [step.move.add, step.move.remove])
      if (node !== undefined && live(node)) expect(busy.get(node) ?? 0).toBeLessThanOrEqual(cluster.moves);
  // A node leads at most movesPerNodeMax catch-ups (moves adding a node not yet a voter, in groups
  // it led when the round was planned) once a move it sends for starts.
  const sending = new Map<NodeId, number>();
  for (const move of env.state().moves) {
    const group = before.get(move.group);
    if (group === undefined || move.add === undefined || group.voters.includes(move.add)) continue;
    sending.set(group.leader, (sending.get(group.leader) ?? 0) + 1);
  }
  for (const step of started) {
    const leader = before.get(step.move.group)?.leader ?? (0 as NodeId);
    if (step.move.add !== undefined)
      expect(sending.get(leader) ?? 0, `catch-ups led by node ${leader}`).toBeLessThanOrEqual(cluster.moves);
  }
  return steps.length;
}

describe('placement planner properties', () => {
  it('keeps a live majority in every change and respects the move bound, with failures', () => {
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const env = build(cluster, true);
        for (let round = 0; round < roundsMax; round++) if (checkRound(env, cluster, 5000, true) === 0) break;
      }),
      { numRuns: 300, seed: 20261205 },
    );
  });

  it('converges to the factor, no learners, no moves and balanced replicas when every node is live', () => {
    fc.assert(
      fc.property(clusterArb, (cluster) => {
        const env = build(cluster, false);
        let rounds = 0;
        while (rounds < roundsMax && checkRound(env, cluster, 5000, false) > 0) rounds++;
        expect(rounds, 'rounds to converge').toBeLessThan(roundsMax);
        const { groups, moves } = env.state();
        expect(moves).toEqual([]);
        const load = new Map<NodeId, number>();
        for (let id = 1; id <= cluster.nodes; id++) load.set(id as NodeId, 0);
        for (const group of groups) {
          expect(group.voters.length).toBe(3);
          expect(group.learners).toEqual([]);
          for (const v of group.voters) load.set(v, (load.get(v) ?? 0) + 1);
        }
        const counts = [...load.values()];
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(2);
      }),
      { numRuns: 300, seed: 20261205 },
    );
  });
});
