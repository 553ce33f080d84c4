// Broken placement planners, to show that the placement simulator's checks can fail (a check
// that cannot fail proves nothing). Each wraps the production planner (planPlacement) and breaks
// one rule; the simulator injects one through the placement controller's `plan` option
// (`runHostSeed(seed, { placement: true, placementPlanner })`, `npm run sim -- --placement
// --mutant NAME`). Never used by production code.
//
//  - remove-while-moving: while a move's learner is in its group and the round has no other step
//    for the group, the planner also removes a live voter of the group other than its leader (the
//    one the move replaces, or another), instead of waiting for the learner to catch up and
//    replacing in one joint change. While
//    another voter is down (within the grace period, or the one the move replaces), the group is
//    left with one reachable voter of two: the quorum check ("no move costs a quorum") must fail;
//  - never-finish: the planner never finishes a move (its finish_move steps are dropped): moves
//    stay in progress and the convergence check ("every group converges to N copies") must fail.
//
// Called by: test/sim/cli.ts (--mutant), test/sim/host-placement.test.ts.

import { planPlacement, type PlacementStep } from '../../src/control/placement-planner.ts';

export type PlacementPlanner = typeof planPlacement;

export const removeWhileMoving: PlacementPlanner = (view) => {
  const plan = planPlacement(view);
  const steps: PlacementStep[] = [...plan.steps];
  const live = new Set(view.nodes.filter((node) => node.live).map((node) => node.id));
  // A round after the learner's addition (a step of the same round would be planned from the
  // configuration before it, and refused once the addition changed it).
  for (const move of view.moves) {
    const group = view.groups.find((candidate) => candidate.id === move.group);
    if (group === undefined || move.add === undefined || !group.learners.includes(move.add)) continue;
    if (plan.steps.some((step) => 'group' in step && step.group === group.id)) continue;
    const victim = group.voters.find((node) => node !== group.leader && live.has(node));
    if (victim !== undefined) steps.push({ kind: 'remove', group: group.id, node: victim });
  }
  return { ...plan, steps };
};

export const neverFinish: PlacementPlanner = (view) => {
  const plan = planPlacement(view);
  return { ...plan, steps: plan.steps.filter((step) => step.kind !== 'finish_move') };
};

export const placementMutants: Readonly<Record<string, PlacementPlanner>> = {
  'remove-while-moving': removeWhileMoving,
  'never-finish': neverFinish,
};
