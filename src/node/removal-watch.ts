// Notices, from the configurations this node applies, that a node left the cluster. Fed by the
// host's `onConfApplied(group, confState)` (a configuration entry applied here, or a snapshot
// installed); keeps the last configuration seen per group.
//
//  - Another node that WAS a member of the group and is not any more, and is a member of no
//    group this node hosts, is forgotten (address book, transport, forwarding). It is the edge
//    that counts, not the state: a node being added is recorded in the address book before it is
//    in any configuration, and must not be dropped in between. Every member reacts to what it
//    applies, so a member that was down during the removal forgets the node when it catches up.
//  - This node itself leaving a group is logged; leaving the last one is logged as a warning: the
//    node keeps running but serves nothing (its requests are refused or forwarded with a stale
//    leader hint), and it cannot campaign (the core's `promotable()` is false outside the voters).
//    It does not exit: a supervisor would only restart it. The operator stops it.
//
// Called by: src/node/node.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import { members } from '../raft/confchange.ts';
import type { ConfState } from '../raft/types.ts';

export interface RemovalWatchOptions {
  readonly self: NodeId;
  /** Forget a node that is in no hosted group's configuration any more. Must not throw. */
  readonly forget: (node: NodeId) => void;
  readonly log: (level: 'info' | 'warn', message: string, fields: Readonly<Record<string, unknown>>) => void;
}

export class RemovalWatch {
  private readonly options: RemovalWatchOptions;
  private readonly last = new Map<GroupId, ReadonlySet<NodeId>>();

  constructor(options: RemovalWatchOptions, initial: ReadonlyMap<GroupId, ConfState>) {
    this.options = options;
    for (const [group, confState] of initial) this.last.set(group, new Set(members(confState)));
  }

  /** Whether this node has been removed: some group has members, and no group has this node. */
  removed(): boolean {
    const sets = [...this.last.values()];
    return sets.some((set) => set.size > 0) && !sets.some((set) => set.has(this.options.self));
  }

  confApplied(group: GroupId, confState: ConfState): void {
    const before = this.last.get(group) ?? new Set<NodeId>();
    const now = new Set(members(confState));
    this.last.set(group, now);
    const { self, forget, log } = this.options;
    for (const node of before) {
      if (now.has(node) || this.memberAnywhere(node)) continue;
      if (node === self) {
        log(
          'warn',
          'this node was removed from every group: it serves nothing and can be stopped (reuse its id only with an empty data dir)',
          { group },
        );
        continue;
      }
      log('info', 'node removed from every group: forgetting it', { peer: node, group });
      forget(node);
    }
    if (before.has(self) && !now.has(self) && this.memberAnywhere(self))
      log('info', 'this node was removed from a group', { group });
  }

  private memberAnywhere(node: NodeId): boolean {
    for (const set of this.last.values()) if (set.has(node)) return true;
    return false;
  }
}
