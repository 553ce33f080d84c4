// What a member does when it applies a configuration: a pure planner from the members of every
// group this node hosts (before and after one group's change) to what changed for whom. The
// removal watch (src/node/removal-watch.ts) keeps the configurations and carries the events out.
//
//  - `forget`: another node that WAS a member of the group and is not any more, and is a member
//    of no group this node hosts: it left the cluster. It is the edge that counts, not the
//    state: a node being added is recorded in the address book before it is in any
//    configuration, and must not be dropped in between;
//  - `self_removed`: this node left its last group (it serves nothing from now on);
//  - `self_left_group`: this node left one group but is still a member of another.
//
// Called by: src/node/removal-watch.ts; test/control/ (transcripts).

import type { GroupId, NodeId } from '../base/ids.ts';

export type RemovalEvent =
  | { readonly kind: 'forget'; readonly node: NodeId }
  | { readonly kind: 'self_removed' }
  | { readonly kind: 'self_left_group' };

/** Members per hosted group, this group's new members included. */
export type GroupMembers = ReadonlyMap<GroupId, ReadonlySet<NodeId>>;

export function planRemovals(
  self: NodeId,
  members: GroupMembers,
  group: GroupId,
  before: ReadonlySet<NodeId>,
): RemovalEvent[] {
  const now = members.get(group) ?? new Set<NodeId>();
  const events: RemovalEvent[] = [];
  for (const node of before) {
    if (now.has(node) || memberAnywhere(members, node)) continue;
    events.push(node === self ? { kind: 'self_removed' } : { kind: 'forget', node });
  }
  if (before.has(self) && !now.has(self) && memberAnywhere(members, self)) events.push({ kind: 'self_left_group' });
  return events;
}

/** Whether this node has been removed: some group has members, and no group has this node. */
export function removedEverywhere(self: NodeId, members: GroupMembers): boolean {
  const sets = [...members.values()];
  return sets.some((set) => set.size > 0) && !memberAnywhere(members, self);
}

function memberAnywhere(members: GroupMembers, node: NodeId): boolean {
  for (const set of members.values()) if (set.has(node)) return true;
  return false;
}
