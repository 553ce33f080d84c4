// The meta group's membership planner: pure, from the meta group's configuration (as its leader
// sees it) and the members of the kv groups to the next membership change of group 0.
//
// Group 0 runs on every node of the cluster: up to `metaVotersMax` (5) voters, the rest learners.
// A node is "in the cluster" when it is a member (voter or learner) of some kv group or registered
// ACTIVE. A registered node may hold no kv replica: placement re-created those of a node gone past
// the grace period elsewhere, or has not given a joined node any yet. It stays in group 0, so that
// when it comes back its meta replica catches up, its hosting loop drops the replicas it kept and
// it forwards their keys; taken out, it would be forgotten by every member, its handshakes refused
// for good. cluster.remove marks a node LEAVING and unregisters it, so that one does leave. So:
//  1. a meta member that is in no kv group any more and not registered ACTIVE (removed from the
//     cluster) leaves group 0;
//  2. a kv member or ACTIVE node that is not in group 0 yet (a node that joined) becomes a meta learner;
//  3. while there are fewer than `metaVotersMax` voters, the caught-up learner with the lowest id
//     is promoted (a learner first, because an empty voter would count toward the quorum before
//     it could acknowledge anything).
// One change at a time, removal first; nothing while the view is unknown (a kv group whose
// configuration this node has not applied yet) or while a change is pending.
//
// Called by: src/control/controller.ts; test/control/ (golden transcripts).

import type { NodeId } from '../base/ids.ts';

export const metaVotersMax = 5;
/** A learner within this many entries of the commit index counts as caught up. */
export const metaLearnerLagEntriesMax = 256;

export interface MetaMembershipView {
  readonly self: NodeId;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly commit: number;
  /** Match index per member, as the leader tracks it. */
  readonly match: ReadonlyMap<NodeId, number>;
  /** A configuration change of group 0 is proposed and not applied yet. */
  readonly changePending: boolean;
  /** Every member of every kv group as applied here; undefined when some kv group's is not known yet. */
  readonly kvMembers: ReadonlySet<NodeId> | undefined;
  /** The nodes the registry holds as ACTIVE (absent: none). */
  readonly registered?: readonly NodeId[];
}

export type MetaMembershipStep =
  | { readonly kind: 'none' }
  | { readonly kind: 'remove'; readonly node: NodeId }
  | { readonly kind: 'add_learner'; readonly node: NodeId }
  | { readonly kind: 'promote'; readonly node: NodeId };

export function planMetaMembership(view: MetaMembershipView): MetaMembershipStep {
  if (view.kvMembers === undefined || view.changePending || view.kvMembers.size === 0) return { kind: 'none' };
  const kv = new Set([...view.kvMembers, ...(view.registered ?? [])]);
  const members = [...view.voters, ...view.learners].sort((a, b) => a - b);
  const gone = members.find((node) => node !== view.self && !kv.has(node));
  if (gone !== undefined) return { kind: 'remove', node: gone };
  const inMeta = new Set(members);
  const missing = [...kv].sort((a, b) => a - b).find((node) => !inMeta.has(node));
  if (missing !== undefined) return { kind: 'add_learner', node: missing };
  if (view.voters.length < metaVotersMax) {
    const ready = [...view.learners]
      .sort((a, b) => a - b)
      .find((node) => {
        const match = view.match.get(node) ?? 0;
        return match > 0 && view.commit - match <= metaLearnerLagEntriesMax;
      });
    if (ready !== undefined) return { kind: 'promote', node: ready };
  }
  return { kind: 'none' };
}
