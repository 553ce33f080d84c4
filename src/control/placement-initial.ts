// The first placement of a new cluster's groups, before the meta group exists: every node computes it
// from the same inputs (the --peers list and the group count), so every node agrees without talking.
// Over the nodes sorted by id, the groups' replica slots are dealt round robin: group i (in
// ascending order) goes to the `factor` consecutive nodes starting at node (i * factor) mod n. No
// node holds two replicas of a group (factor <= n), replica counts differ by at most one (so the
// planner finds nothing to balance); each group's first voter (its preferred primary) is the member
// that is first voter of the fewest groups so far, so those spread too (also when every node holds
// every group); and two
// nodes given the same peers in a different order still compute the same placement.
//
// Called by: src/node/ (cluster bootstrap); test/control/ (transcripts and tests).

import { assert } from '../base/assert.ts';
import type { GroupId, NodeId } from '../base/ids.ts';

export interface InitialReplicas {
  readonly group: GroupId;
  /** The group's voters; the first is the preferred primary. */
  readonly voters: readonly NodeId[];
}

export function initialPlacement(
  peers: readonly NodeId[],
  groups: readonly GroupId[],
  factor: number,
): InitialReplicas[] {
  assert(Number.isSafeInteger(factor) && factor >= 1, 'initial placement: a factor of at least 1');
  const nodes = [...new Set(peers)].sort((a, b) => a - b);
  assert(nodes.length >= 1, 'initial placement: at least one node');
  const copies = Math.min(factor, nodes.length);
  const firsts = new Map<NodeId, number>();
  return [...groups]
    .sort((a, b) => a - b)
    .map((group, index) => {
      const slots = Array.from({ length: copies }, (_, k) => nodes[(index * copies + k) % nodes.length] as NodeId);
      // The preferred primary: the member that is first voter of the fewest groups so far.
      const first = slots.reduce((best, node) => ((firsts.get(node) ?? 0) < (firsts.get(best) ?? 0) ? node : best));
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
      return { group, voters: [first, ...slots.filter((node) => node !== first)] };
    });
}
