// Notices, from the configurations this node applies, that a node left the cluster. Fed by the
// host's `onConfApplied(group, confState)` (a configuration entry applied here, or a snapshot
// installed); keeps the last configuration seen per group and carries out what the removal
// planner (src/control/removal-planner.ts) says:
//  - another node in no hosted group any more is forgotten (address book, transport,
//    forwarding). Every member reacts to what it applies, so a member that was down during the
//    removal forgets the node when it catches up;
//  - this node itself leaving a group is logged; leaving the last one is logged as a warning: the
//    node keeps running but serves nothing (its requests are refused or forwarded with a stale
//    leader hint), and it cannot campaign (the core's `promotable()` is false outside the voters).
//    It does not exit: a supervisor would only restart it. The operator stops it.
//
// Called by: src/node/node.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import { planRemovals, removedEverywhere } from '../control/removal-planner.ts';
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
    return removedEverywhere(this.options.self, this.last);
  }

  /** This node stopped hosting the group (src/node/group-hosting.ts): its members no longer count here. */
  groupStopped(group: GroupId): void {
    this.last.delete(group);
  }

  confApplied(group: GroupId, confState: ConfState): void {
    const before = this.last.get(group) ?? new Set<NodeId>();
    this.last.set(group, new Set(members(confState)));
    const { self, forget, log } = this.options;
    for (const event of planRemovals(self, this.last, group, before)) {
      switch (event.kind) {
        case 'self_removed':
          log(
            'warn',
            'this node was removed from every group: it serves nothing and can be stopped (reuse its id only with an empty data dir)',
            { group },
          );
          break;
        case 'forget':
          log('info', 'node removed from every group: forgetting it', { peer: event.node, group });
          forget(event.node);
          break;
        case 'self_left_group':
          log('info', 'this node was removed from a group', { group });
          break;
      }
    }
  }
}
