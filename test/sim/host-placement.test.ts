// The host simulator with placement (./host-placement.ts): the production placement controller on
// the meta leader makes every membership change of the kv groups while nodes are killed, paused,
// cut off and join. Checked: no change the controller asks for takes a group from a quorum of
// reachable voters to fewer, and every group converges to the replication factor once the faults
// stop (besides every invariant of the plain and control-plane runs). A failure names the seed and
// the command that replays it.

import { describe, expect, it } from 'vitest';
import { runHostSeed } from './host-simulator.ts';
import { neverFinish, removeWhileMoving } from './placement-mutants.ts';

const seedCount = Number(process.env['HOST_SIM_PLACEMENT_SEEDS'] ?? 30);
const batches = 2;

describe('host simulation with placement', () => {
  for (let batch = 0; batch < batches; batch++) {
    const from = 1 + Math.floor((batch * seedCount) / batches);
    const to = 1 + Math.floor(((batch + 1) * seedCount) / batches);
    it(`seeds ${from}..${to - 1}: moves keep a quorum, every group converges to the factor`, async () => {
      const failures: string[] = [];
      const totals = { movesFinished: 0, changesChecked: 0, joins: 0, goneReplaced: 0, writesOk: 0 };
      for (let seed = from; seed < to; seed++) {
        const result = await runHostSeed(seed, { placement: true });
        totals.movesFinished += result.stats.placement.movesFinished;
        totals.changesChecked += result.stats.placement.changesChecked;
        totals.joins += result.stats.placement.joins;
        totals.goneReplaced += result.stats.placement.goneReplaced;
        totals.writesOk += result.stats.writesOk;
        if (!result.ok)
          failures.push(
            `seed ${seed} (at ${result.atMs} ms): ${result.error ?? ''}\n  replay: npm run sim -- --seeds 1 --from ${seed} --verbose --placement`,
          );
      }
      expect(failures).toEqual([]);
      // Placement did real work: nodes joined and were given replicas, nodes gone past the grace
      // period were replaced, and the clients wrote meanwhile.
      expect(totals.joins).toBeGreaterThan(0);
      expect(totals.movesFinished).toBeGreaterThan(10);
      expect(totals.changesChecked).toBeGreaterThan(20);
      expect(totals.goneReplaced).toBeGreaterThan(0);
      expect(totals.writesOk).toBeGreaterThan(0);
    });
  }

  // 57: the end check took the core's applied index for the meta replica that applied the most,
  // which can trail what its model already applied (a checker artifact, not a bug of placement).
  // 8: an empty replica started for a cancelled move was never stopped, and its node, leading
  // group 0, never added the joining node 4 to it (placement stalled). 253: a record whose
  // replicas did not change kept an old confIndex, so nodes 4 and 5 kept removed replicas for
  // good. 413: node 4 deleted group 2's data, decided before a move made it a voter again
  // (src/control/group-hosting.ts, src/node/group-hosting.ts, docs/testing.md). 131: node 4
  // applied its addition to group 1 as a learner and never heard of its removal, while the
  // group's record, whose replicas had not changed, kept an older confIndex: the idle replica was
  // never stopped (records now follow every newer configuration). 210 and 384: with that, a
  // leader recorded its old replicas under the new configuration's index, taken while its turn's
  // write was in flight (the host's confIndex ran ahead of the core's configuration), and node 4
  // deleted the data of a learner its group still listed. 1777: a meta leader paused mid-round
  // carried on with a step planned before the next leader's round promoted node 4, and its
  // add_learner demoted the voter (membership changes now name the configuration they were
  // planned from). 1347: two meta voters without their state machines (bit rot), holding the
  // longest logs, would not campaign while a learner's addition was committed but not applied:
  // no leader for good. 952: the quorum check blamed a replace for a crash 19 ms after its plan
  // (a checker artifact: it now judges by the controller's survey). 953: node 1, removed from
  // group 2 (its data deleted) and being added back, voted from its empty replica for node 2,
  // back from a kill with the membership before both changes: node 2 led term 4 without the
  // group's committed entries (empty replicas vote for nobody now).
  it.each([57, 8, 253, 413, 131, 210, 384, 1777, 1347, 952, 953])('regression seed %i', async (seed) => {
    const result = await runHostSeed(seed, { placement: true });
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
  });

  // The checks can fail: a broken planner injected through the controller's `plan` option
  // (./placement-mutants.ts) fails the seed, which passes with the production planner (seeds
  // 1..30 above). Until the quorum check reported through the simulator instead of throwing
  // inside the port call (where the controller took it for a failed call), it could not fail.
  it('a planner that removes a voter while its move is open fails the quorum check (seed 1)', async () => {
    const result = await runHostSeed(1, { placement: true, placementPlanner: removeWhileMoving });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^placement: group \d+ at node \d+: the change .*remove_node.* fewer than a quorum$/);
  });

  it('a planner that never finishes a move fails the convergence check (seed 3)', async () => {
    const result = await runHostSeed(3, { placement: true, placementPlanner: neverFinish });
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(
      /^placement did not converge within \d+ ms after the faults ended: .*move in progress/,
    );
  });

  it('replays a seed exactly (same trace, same figures)', async () => {
    const first = await runHostSeed(5, { placement: true });
    const second = await runHostSeed(5, { placement: true });
    expect(second).toEqual(first);
    expect(first.stats.placement.movesStarted).toBeGreaterThan(0);
  });
});
