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
