// The first placement of a new cluster's groups, before the meta group exists: every node computes it
// from the same inputs (the --peers list and the group count), so every node agrees without talking.
// Group i (in ascending order) goes to `factor` consecutive nodes starting at node i mod n, over the
// nodes sorted by id: replicas and first voters (the preferred primaries) spread evenly, and two
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
  return [...groups]
    .sort((a, b) => a - b)
    .map((group, index) => ({
      group,
      voters: Array.from({ length: copies }, (_, k) => nodes[(index + k) % nodes.length] as NodeId),
    }));
}
