// Broken placement planners, to show that the placement simulator's checks can fail (a check
// that cannot fail proves nothing). Each wraps the production planner (planPlacement) and breaks
// one rule; the simulator injects one through the placement controller's `plan` option
// (`runHostSeed(seed, { placement: true, placementPlanner })`, `npm run sim -- --placement
// --mutant NAME`). Never used by production code.
//
//  - remove-while-moving: when a move adds its learner, the planner also removes a live voter of
//    the group other than its leader in the same round (the one the move replaces, or another),
//    instead of waiting for the learner to catch up and replacing in one joint change. While
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
  const steps: PlacementStep[] = [];
  for (const step of plan.steps) {
    steps.push(step);
    if (step.kind !== 'add_learner') continue;
    const group = view.groups.find((candidate) => candidate.id === step.group);
    const live = new Set(view.nodes.filter((node) => node.live).map((node) => node.id));
    const victim = group?.voters.find((node) => node !== group.leader && live.has(node));
    if (victim !== undefined) steps.push({ kind: 'remove', group: step.group, node: victim });
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
