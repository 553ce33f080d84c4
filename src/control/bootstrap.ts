// How a starting node comes to be in a cluster: a pure planner from what the node finds at start
// (its flags, its data dir, an action it took while waiting) to what it does next. Every way in
// goes through the same two paths of src/node/membership.ts: creating the cluster (`--init`, or
// the action agent.replicante.io/cluster.init) and joining through a member (`--join`, or
// cluster.join, which cluster.add on a member asks the new node to run).
//
//  - `restart`: the data dir holds groups, or a join record (a finished or unfinished join):
//    start from it (an unfinished join continues; membership.ts decides the details);
//  - `create`: `--init`, or a cluster.init taken while waiting and not carried out yet (a crash
//    between taking it and writing the groups restarts into the same step);
//  - `join`: `--join`, or a cluster.join taken while waiting;
//  - `wait`: none of these: the node reports NOT_IN_CLUSTER and waits for cluster.init or
//    cluster.join (run on it, or asked of it by cluster.add on a member).
// The data dir wins over the flags, as before: a node that is in a cluster ignores --init/--join.
//
// Called by: src/node/node.ts; test/control/ (transcripts).

/** What the node was told while waiting (kept in its data dir until it is in the cluster). */
export type HeldDecision = { readonly kind: 'create' } | { readonly kind: 'join'; readonly via: string };

export interface StartView {
  /** `--init` */
  readonly init: boolean;
  /** `--join <url>` */
  readonly join: string | undefined;
  /** The data dir holds Raft groups. */
  readonly holdsGroups: boolean;
  /** The data dir holds a join record (finished or not). */
  readonly joinRecorded: boolean;
  /** An action taken while waiting, not carried out yet. */
  readonly held: HeldDecision | undefined;
}

export type StartStep =
  | { readonly kind: 'restart' }
  | { readonly kind: 'create' }
  | { readonly kind: 'join'; readonly via: string }
  | { readonly kind: 'wait' };

export function planBootstrap(view: StartView): StartStep {
  if (view.holdsGroups || view.joinRecorded) return { kind: 'restart' };
  if (view.init) return { kind: 'create' };
  if (view.join !== undefined) return { kind: 'join', via: view.join };
  if (view.held !== undefined) return view.held;
  return { kind: 'wait' };
}

/** What a waiting node does with a bootstrap action: carry it out, or refuse it (one at a time). */
export function planBootstrapAction(
  kind: 'init' | 'join',
  via: string | undefined,
  busy: boolean,
): HeldDecision | { readonly kind: 'refuse'; readonly reason: string } {
  if (busy)
    return { kind: 'refuse', reason: 'this node is already carrying out a cluster.init or cluster.join: wait for it' };
  if (kind === 'init') return { kind: 'create' };
  return via === undefined ? { kind: 'refuse', reason: 'cluster.join needs args.node' } : { kind: 'join', via };
}

/** Which groups a starting node hosts, and whether a join is to be started or finished. */
export interface GroupsView {
  /** The join record, when the data dir has one. */
  readonly record: { readonly via: string; readonly complete: boolean } | undefined;
  /** `--join <url>` (or a held cluster.join). */
  readonly join: string | undefined;
  readonly holdsGroups: boolean;
}

export type GroupsStep =
  /** A finished join: host the recorded groups (`ignoredJoin`: --join was given and is ignored). */
  | { readonly kind: 'joined'; readonly ignoredJoin: boolean }
  /** An unfinished join: host the recorded groups and finish the join through `via`. */
  | { readonly kind: 'resume_join'; readonly via: string }
  /** A first join: learn the cluster through `via`, record it, then host its groups empty. */
  | { readonly kind: 'learn'; readonly via: string }
  /** Host the configured groups (creating what is missing with --init). */
  | { readonly kind: 'configured'; readonly ignoredJoin: boolean };

export function planGroups(view: GroupsView): GroupsStep {
  if (view.record !== undefined) {
    if (view.record.complete) return { kind: 'joined', ignoredJoin: view.join !== undefined };
    return { kind: 'resume_join', via: view.join ?? view.record.via };
  }
  if (view.join !== undefined && !view.holdsGroups) return { kind: 'learn', via: view.join };
  return { kind: 'configured', ignoredJoin: view.join !== undefined };
}

/** Why this node cannot join the cluster a member described, or undefined when it can. */
export function joinProblem(
  self: { readonly nodeId: number; readonly clusterId: string; readonly raft: string },
  view: { readonly clusterId: string; readonly members: readonly { readonly nodeId: number; readonly raft: string }[] },
  via: string,
): string | undefined {
  if (view.clusterId !== self.clusterId)
    return `${via} belongs to cluster ${JSON.stringify(view.clusterId)}, and this node is configured for ${JSON.stringify(self.clusterId)} (--cluster-id)`;
  const clash = view.members.find((member) => member.nodeId === self.nodeId && member.raft !== self.raft);
  if (clash !== undefined)
    return `node id ${self.nodeId} is already in the cluster at raft address ${clash.raft}; pick another --node-id`;
  return undefined;
}

/**
 * What a joining node does with a member's answer: 2xx done; 4xx the cluster refusing us, which
 * no retry fixes; anything else (a 5xx: no leader, a change pending) retried.
 */
export function joinAnswer(status: number): 'done' | 'refused' | 'retry' {
  if (status >= 200 && status < 300) return 'done';
  if (status >= 400 && status < 500) return 'refused';
  return 'retry';
}
