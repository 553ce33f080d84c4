// Read-only views of the host's group status that several routes need: a group's leader, the
// replication lag a leader sees, and the best target for a leadership transfer. (One group's
// whole status is the host's own groupStatus(group).)
//
// Per-request lookups cost the same whatever the number of groups: the leader through the host's
// groupLeader(group), which builds nothing.
//
// Called by the KV routes and their outcomes, the admin and membership routes, the binary server.

import type { GroupId, NodeId } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { Status } from '../raft/types.ts';
import type { ApiHost } from './ports.ts';

/** The leader this node knows of for `group`, 0 when none (or the group is not hosted here). */
export function leaderOf(host: ApiHost, group: GroupId): NodeId {
  return host.groupLeader(group) ?? NO_NODE;
}

/**
 * Replication lag in log entries as the leader sees it: the most any other member's match index
 * trails the commit index. Followers do not know their peers' progress, so they report 0.
 */
export function lagEntries(status: Status): number {
  if (status.role !== 'leader') return 0;
  let lag = 0;
  for (const member of status.progress) {
    if (member.id !== status.id) lag = Math.max(lag, status.commit - member.match);
  }
  return lag;
}

/** The other voter with the highest match index (lowest id on a tie), for a transfer without `to`. */
export function mostCaughtUpVoter(status: Status): NodeId | undefined {
  let best: { readonly id: NodeId; readonly match: number } | undefined;
  for (const member of status.progress) {
    if (member.id === status.id || member.learner || !status.confState.voters.includes(member.id)) continue;
    if (best === undefined || member.match > best.match || (member.match === best.match && member.id < best.id))
      best = member;
  }
  return best?.id;
}
