// The placement planner: pure, from a view of the cluster (nodes with their liveness, groups with
// their replicas, the moves in progress, the replication factors) to the next step of every group.
// The controller that carries the steps out runs on the meta leader; it records each move in the
// meta model before its first membership change, so a move survives a leader change and the next
// meta leader continues it from the same view.
//
// A move brings one group one replica closer to where it should be: `add` a node (as a learner,
// promoted once caught up) and/or `remove` one. Its steps, one membership change at a time:
//   start_move (record) -> add_learner -> (wait for catch-up) -> [transfer] -> replace | promote | remove
//   -> finish_move
// `replace` promotes the added learner and removes the old voter in one joint change, so the group
// never has fewer voters than it started with and never a voter that cannot yet vote usefully.
//
// Why moves start (first match, per group):
//  1. a learner that no move targets (left by a cancelled move) is removed;
//  2. a voter on a node gone longer than `nodeGoneGraceMs` (or no longer in the cluster) is replaced
//     on the least-loaded eligible node; a node gone less than that keeps its replicas (sticky: a
//     quick restart moves nothing);
//  3. fewer voters than the replication factor: a node is added;
//  4. a voter on a draining node (being removed from the cluster) is replaced;
//  5. more voters than the factor: the surplus is removed (lost, then draining, then most loaded);
//  6. balance: a replica moves from the most loaded member to the least loaded non-member when
//     their loads differ by two or more.
// A group without a known leader, with a membership change pending, or without a quorum of live
// voters gets no step, but one: a group whose state can be rebuilt (a database shard's group, from
// the catalog) that lost its quorum for good (every missing voter gone past the grace period) is
// founded again on its live voters (`refound`), and then brought back to its factor as any other. No step leaves a group (in its old or new configuration) with fewer live
// voters than a majority. A node takes part in at most `movesPerNodeMax` moves at once (as the
// added node or a live removed one), and leads at most that many catch-ups (moves adding a node
// to a group it leads: the log or snapshot comes from it). When a group has nothing to move, leadership is balanced: a
// transfer from a node holding two or more primaries more than a caught-up fellow voter.
// A group the view marks `held` (database shard groups in a mixed-release cluster:
// release-guard.ts) starts no move and is not founded again; its status says why.
// No move stays open for ever: one whose `progressMs` (the controller's: placement-progress.ts) is
// `moveStalledMs` old is cancelled with the reason, its learner then removed as unwanted.
// A node that failed to load the group's data (`loadFailures`: a database shard's copy recorded
// `failed`) never catches up: a move adding it is cancelled at once, naming the node and the error,
// and no move adds it to the group while its failure stands; with no other eligible node the group
// stays under-replicated, the failure in its detail.
//
// Called by: src/control/ (the placement controller); test/control/placement-*.ts (golden transcripts).

import type { GroupId, NodeId } from '../base/ids.ts';

export interface PlacementSettings {
  /** A node gone less than this keeps its replicas. */
  readonly nodeGoneGraceMs: number;
  /** Moves a node takes part in at once. */
  readonly movesPerNodeMax: number;
  /** A move that made no progress for this long is cancelled (its learner then removed), so none stays open. */
  readonly moveStalledMs: number;
}

export const placementDefaults: PlacementSettings = {
  nodeGoneGraceMs: 60_000,
  movesPerNodeMax: 2,
  moveStalledMs: 30_000,
};

export interface PlacementNode {
  readonly id: NodeId;
  readonly live: boolean;
  /** When the node was last seen, for a node that is not live (ms, the meta leader's clock). */
  readonly goneSinceMs?: number;
  /** Being removed from the cluster: its replicas go elsewhere, nothing new comes to it. */
  readonly draining?: boolean;
}

export interface PlacementGroup {
  readonly id: GroupId;
  readonly kind: string;
  /** This group's replication factor, when it has its own (a database shard's copies); else its kind's. */
  readonly factor?: number;
  /**
   * Its state can be rebuilt from elsewhere (a database shard's group: from the catalog), so a
   * group that lost its quorum for good may be founded again on its live voters (`refound`).
   */
  readonly rebuildable?: boolean;
  /**
   * Why no move of this group starts and it is not founded again, when it is held (a database
   * shard's group while a node runs a release that does not place them: release-guard.ts). A move
   * in progress goes on; leadership transfers go on.
   */
  readonly held?: string;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** NO_NODE (0) when unknown. */
  readonly leader: NodeId;
  /** Learners within the catch-up bound of the leader's commit index. */
  readonly caughtUp: readonly NodeId[];
  readonly changePending: boolean;
  /**
   * Nodes whose copy of the group's data failed to load (a database shard's: the download
   * controller recorded it `failed`), with the error: such a node never catches up, so no move
   * adds it to the group.
   */
  readonly loadFailures?: readonly LoadFailureOf[];
}

export interface LoadFailureOf {
  readonly node: NodeId;
  readonly error: string;
}

/** How much of a load error a reason quotes (a move's reason is at most moveReasonBytesMax, 512 bytes). */
export const loadErrorCharsMax = 100;

function loadFailureOf(group: PlacementGroup, node: NodeId): string | undefined {
  const failure = group.loadFailures?.find((entry) => entry.node === node);
  if (failure === undefined) return undefined;
  const error =
    failure.error.length > loadErrorCharsMax ? `${failure.error.slice(0, loadErrorCharsMax)}...` : failure.error;
  return `node ${node} failed to load the shard: ${error}`;
}

export interface PlacementMove {
  readonly group: GroupId;
  readonly add?: NodeId;
  readonly remove?: NodeId;
  readonly reason: string;
  readonly startedMs: number;
  /**
   * When the move last made progress (its group's configuration or leader changed, or its learner
   * caught up further), as the controller saw it; the start when absent.
   */
  readonly progressMs?: number;
}

export interface PlacementView {
  readonly nowMs: number;
  readonly nodes: readonly PlacementNode[];
  readonly groups: readonly PlacementGroup[];
  readonly moves: readonly PlacementMove[];
  /** Replication factor per group kind. */
  readonly factors: ReadonlyMap<string, number>;
  readonly settings: PlacementSettings;
}

export type PlacementStep =
  | { readonly kind: 'start_move'; readonly move: PlacementMove }
  | { readonly kind: 'add_learner'; readonly group: GroupId; readonly node: NodeId }
  | { readonly kind: 'promote'; readonly group: GroupId; readonly node: NodeId }
  | { readonly kind: 'replace'; readonly group: GroupId; readonly add: NodeId; readonly remove: NodeId }
  | { readonly kind: 'remove'; readonly group: GroupId; readonly node: NodeId }
  | { readonly kind: 'transfer'; readonly group: GroupId; readonly to: NodeId; readonly reason: string }
  | { readonly kind: 'finish_move'; readonly group: GroupId }
  | { readonly kind: 'cancel_move'; readonly group: GroupId; readonly reason: string }
  | { readonly kind: 'refound'; readonly group: GroupId; readonly voters: readonly NodeId[]; readonly reason: string };

export type GroupPlacementState =
  | 'ok'
  | 'moving'
  | 'waiting'
  | 'under_replicated'
  | 'blocked'
  | 'quorum_lost'
  | 'unknown';

export interface GroupPlacementStatus {
  readonly group: GroupId;
  readonly desired: number;
  readonly voters: number;
  readonly state: GroupPlacementState;
  /** Why the group is not ok, in words (empty when ok). */
  readonly detail: string;
}

export interface PlacementPlan {
  readonly steps: readonly PlacementStep[];
  readonly groups: readonly GroupPlacementStatus[];
}

/** The replication factor used for a kind the view does not name. */
export const replicationFactorDefault = 3;

interface Ledger {
  readonly view: PlacementView;
  readonly nodes: ReadonlyMap<NodeId, PlacementNode>;
  /** Replicas per node, counting moves as if done (planned in this round too). */
  readonly load: Map<NodeId, number>;
  readonly primaries: Map<NodeId, number>;
  /** Moves each node takes part in (recorded and planned in this round). */
  readonly busy: Map<NodeId, number>;
  /**
   * Catch-ups each node sends as a group's leader: moves whose added node is not a voter yet
   * (its log or snapshot comes from the leader), recorded and planned in this round.
   */
  readonly sending: Map<NodeId, number>;
}

export function planPlacement(view: PlacementView): PlacementPlan {
  const ledger = openLedger(view);
  const moves = new Map(view.moves.map((move) => [move.group, move]));
  const steps: PlacementStep[] = [];
  const statuses = new Map<GroupId, GroupPlacementStatus>();
  // Most urgent first: the fewest live voters relative to the factor, then by id.
  const order = [...view.groups].sort((a, b) => urgency(ledger, a) - urgency(ledger, b) || a.id - b.id);
  for (const group of order) {
    const { step, status } = planGroup(ledger, group, moves.get(group.id));
    if (step !== undefined) steps.push(step);
    statuses.set(group.id, status);
  }
  return { steps, groups: view.groups.flatMap((group) => statuses.get(group.id) ?? []) };
}

function openLedger(view: PlacementView): Ledger {
  const nodes = new Map(view.nodes.map((node) => [node.id, node]));
  const load = new Map<NodeId, number>();
  const primaries = new Map<NodeId, number>();
  const busy = new Map<NodeId, number>();
  const sending = new Map<NodeId, number>();
  for (const node of view.nodes) {
    load.set(node.id, 0);
    primaries.set(node.id, 0);
    busy.set(node.id, 0);
    sending.set(node.id, 0);
  }
  const bump = (map: Map<NodeId, number>, node: NodeId, by: number): void => {
    if (map.has(node)) map.set(node, (map.get(node) ?? 0) + by);
  };
  for (const group of view.groups) {
    for (const node of [...group.voters, ...group.learners]) bump(load, node, 1);
    bump(primaries, group.leader, 1);
  }
  const ledger: Ledger = { view, nodes, load, primaries, busy, sending };
  for (const move of view.moves) {
    const group = view.groups.find((g) => g.id === move.group);
    const members = new Set([...(group?.voters ?? []), ...(group?.learners ?? [])]);
    if (move.add !== undefined && !members.has(move.add)) bump(load, move.add, 1);
    if (move.remove !== undefined && members.has(move.remove)) bump(load, move.remove, -1);
    countBusy(ledger, move);
    if (group !== undefined && move.add !== undefined && !group.voters.includes(move.add))
      bump(sending, group.leader, 1);
  }
  return ledger;
}

/**
 * The group's leader may send one more catch-up: snapshot catch-ups are what a move costs its
 * sender (the host rate-limits the bytes; this bounds how many a node serves at once), so a node
 * leads at most movesPerNodeMax catch-ups, as it takes part in at most that many moves.
 */
function senderHasRoom(ledger: Ledger, group: PlacementGroup): boolean {
  return count(ledger.sending, group.leader) < ledger.view.settings.movesPerNodeMax;
}

function countBusy(ledger: Ledger, move: PlacementMove): void {
  for (const node of busyNodes(ledger, move)) ledger.busy.set(node, (ledger.busy.get(node) ?? 0) + 1);
}

function busyNodes(ledger: Ledger, move: PlacementMove): NodeId[] {
  const nodes: NodeId[] = [];
  if (move.add !== undefined) nodes.push(move.add);
  if (move.remove !== undefined && ledger.nodes.get(move.remove)?.live === true) nodes.push(move.remove);
  return nodes;
}

function factorOf(view: PlacementView, group: PlacementGroup): number {
  return group.factor ?? view.factors.get(group.kind) ?? replicationFactorDefault;
}

function isLive(ledger: Ledger, node: NodeId): boolean {
  return ledger.nodes.get(node)?.live === true;
}

/** Gone past the grace period, or no longer in the cluster at all. */
function isLost(ledger: Ledger, node: NodeId): boolean {
  const entry = ledger.nodes.get(node);
  if (entry === undefined) return true;
  if (entry.live) return false;
  const since = entry.goneSinceMs ?? ledger.view.nowMs;
  return ledger.view.nowMs - since >= ledger.view.settings.nodeGoneGraceMs;
}

function isEligible(ledger: Ledger, node: NodeId): boolean {
  const entry = ledger.nodes.get(node);
  return entry !== undefined && entry.live && entry.draining !== true;
}

function urgency(ledger: Ledger, group: PlacementGroup): number {
  const kept = group.voters.filter((node) => !isLost(ledger, node) && isLive(ledger, node)).length;
  return kept - factorOf(ledger.view, group);
}

function liveMajority(ledger: Ledger, voters: readonly NodeId[]): boolean {
  const live = voters.filter((node) => isLive(ledger, node)).length;
  return live >= Math.floor(voters.length / 2) + 1;
}

/** A membership change from `before` to `after` keeps a live majority in both configurations. */
function keepsQuorum(ledger: Ledger, before: readonly NodeId[], after: readonly NodeId[]): boolean {
  return liveMajority(ledger, before) && liveMajority(ledger, after);
}

interface GroupPlan {
  readonly step?: PlacementStep | undefined;
  readonly status: GroupPlacementStatus;
}

function statusOf(
  ledger: Ledger,
  group: PlacementGroup,
  state: GroupPlacementState,
  detail: string,
): GroupPlacementStatus {
  return { group: group.id, desired: factorOf(ledger.view, group), voters: group.voters.length, state, detail };
}

function planGroup(ledger: Ledger, group: PlacementGroup, move: PlacementMove | undefined): GroupPlan {
  const refound = planRefound(ledger, group);
  if (refound !== undefined) return refound;
  if (group.leader === 0) return { status: statusOf(ledger, group, 'unknown', 'no known leader') };
  if (!liveMajority(ledger, group.voters))
    return { status: statusOf(ledger, group, 'quorum_lost', 'fewer live voters than a majority') };
  if (group.changePending) return { status: statusOf(ledger, group, 'moving', 'membership change pending') };
  if (move !== undefined) return continueMove(ledger, group, move);
  const next = chooseMove(ledger, group);
  if (next !== undefined && 'move' in next && group.held !== undefined)
    return { status: statusOf(ledger, group, 'waiting', `${next.move.reason}; ${group.held}`) };
  if (next !== undefined && 'move' in next) {
    countBusy(ledger, next.move);
    if (next.move.add !== undefined) ledger.sending.set(group.leader, count(ledger.sending, group.leader) + 1);
    adjustLoad(ledger, next.move);
    return {
      step: { kind: 'start_move', move: next.move },
      status: statusOf(ledger, group, 'moving', next.move.reason),
    };
  }
  if (next !== undefined)
    return { status: statusOf(ledger, group, next.short ? 'under_replicated' : 'blocked', next.blocked) };
  const transfer = balanceLeadership(ledger, group);
  return { step: transfer, status: statusOf(ledger, group, 'ok', '') };
}

/**
 * A rebuildable group without a live majority, all of whose missing voters are gone past the
 * grace period (a quick restart founds nothing again), is founded again on its live voters, or,
 * with none left, on the least loaded eligible node; the usual moves then bring it back to its
 * factor. No membership change could help it: none commits without a quorum.
 */
function planRefound(ledger: Ledger, group: PlacementGroup): GroupPlan | undefined {
  if (group.rebuildable !== true || group.voters.length === 0 || liveMajority(ledger, group.voters)) return undefined;
  const down = group.voters.filter((node) => !isLive(ledger, node));
  if (!down.every((node) => isLost(ledger, node))) return undefined;
  if (group.held !== undefined)
    return { status: statusOf(ledger, group, 'waiting', `quorum lost, not founded again; ${group.held}`) };
  const live = group.voters.filter((node) => isLive(ledger, node));
  const target = live.length > 0 ? undefined : leastLoaded(ledger, group);
  const voters = target === undefined ? live : [target];
  if (voters.length === 0)
    return { status: statusOf(ledger, group, 'quorum_lost', 'every copy lost, and no eligible node to found it on') };
  for (const node of down) if (ledger.load.has(node)) ledger.load.set(node, count(ledger.load, node) - 1);
  if (target !== undefined) ledger.load.set(target, count(ledger.load, target) + 1);
  const reason = `quorum lost: ${down.map((node) => goneReason(ledger, node)).join(', ')}`;
  return {
    step: { kind: 'refound', group: group.id, voters, reason },
    status: statusOf(ledger, group, 'moving', reason),
  };
}

function adjustLoad(ledger: Ledger, move: PlacementMove): void {
  if (move.add !== undefined) ledger.load.set(move.add, (ledger.load.get(move.add) ?? 0) + 1);
  if (move.remove !== undefined && ledger.load.has(move.remove))
    ledger.load.set(move.remove, (ledger.load.get(move.remove) ?? 0) - 1);
}

function continueMove(ledger: Ledger, group: PlacementGroup, move: PlacementMove): GroupPlan {
  const moving = (detail: string, step?: PlacementStep): GroupPlan => ({
    step,
    status: statusOf(ledger, group, step === undefined ? 'waiting' : 'moving', detail),
  });
  const plan = nextMoveStep(ledger, group, move, moving);
  // A move that stopped making progress (a learner that never catches up, a step refused every
  // round, a wait nothing ends) is cancelled rather than left open: any learner it left is then
  // removed as unwanted, and the group is planned afresh.
  const stalledMs = ledger.view.nowMs - (move.progressMs ?? move.startedMs);
  if (plan.step?.kind === 'finish_move' || plan.step?.kind === 'cancel_move') return plan;
  if (stalledMs < ledger.view.settings.moveStalledMs) return plan;
  const reason = `no progress for ${Math.round(stalledMs / 1000)} s (${plan.status.detail})`;
  return moving(move.reason, { kind: 'cancel_move', group: group.id, reason });
}

function nextMoveStep(
  ledger: Ledger,
  group: PlacementGroup,
  move: PlacementMove,
  moving: (detail: string, step?: PlacementStep) => GroupPlan,
): GroupPlan {
  const { add, remove } = move;
  const isVoter = (node: NodeId): boolean => group.voters.includes(node);
  const isLearner = (node: NodeId): boolean => group.learners.includes(node);
  const failed = add === undefined || isVoter(add) ? undefined : loadFailureOf(group, add);
  if (failed !== undefined) return moving(move.reason, { kind: 'cancel_move', group: group.id, reason: failed });
  if (add !== undefined && !isVoter(add) && !isEligible(ledger, add))
    return moving(move.reason, { kind: 'cancel_move', group: group.id, reason: `node ${add} is no longer eligible` });
  if (add !== undefined && !isVoter(add) && !isLearner(add))
    return moving(move.reason, { kind: 'add_learner', group: group.id, node: add });
  if (add !== undefined && isLearner(add) && !group.caughtUp.includes(add))
    return moving(`${move.reason}: node ${add} catching up`);
  const removing = remove !== undefined && (isVoter(remove) || isLearner(remove));
  if (removing && remove === group.leader) {
    const to = transferTarget(ledger, group, [remove, ...(add === undefined ? [] : [add])]);
    if (to === undefined) return moving(`${move.reason}: no voter to take over leadership`);
    return moving(move.reason, { kind: 'transfer', group: group.id, to, reason: `node ${remove} leaves the group` });
  }
  return finishMove(ledger, group, move, moving);
}

function finishMove(
  ledger: Ledger,
  group: PlacementGroup,
  move: PlacementMove,
  moving: (detail: string, step?: PlacementStep) => GroupPlan,
): GroupPlan {
  const { add, remove } = move;
  const promote = add !== undefined && group.learners.includes(add) ? add : undefined;
  const removeVoter = remove !== undefined && group.voters.includes(remove) ? remove : undefined;
  const removeLearner = remove !== undefined && group.learners.includes(remove) ? remove : undefined;
  const after = group.voters.filter((node) => node !== removeVoter).concat(promote === undefined ? [] : [promote]);
  const changesVoters = promote !== undefined || removeVoter !== undefined;
  if (changesVoters && !keepsQuorum(ledger, group.voters, after))
    return moving(`${move.reason}: the change would leave fewer live voters than a majority`);
  const id = group.id;
  if (promote !== undefined && removeVoter !== undefined)
    return moving(move.reason, { kind: 'replace', group: id, add: promote, remove: removeVoter });
  if (promote !== undefined) return moving(move.reason, { kind: 'promote', group: id, node: promote });
  const removing = removeVoter ?? removeLearner;
  if (removing !== undefined) return moving(move.reason, { kind: 'remove', group: id, node: removing });
  return moving(move.reason, { kind: 'finish_move', group: id });
}

/** A live, caught-up voter (not one of `except`) with the fewest primaries, then the lowest id. */
function transferTarget(ledger: Ledger, group: PlacementGroup, except: readonly NodeId[]): NodeId | undefined {
  const candidates = group.voters.filter((node) => !except.includes(node) && isEligible(ledger, node));
  return candidates.sort((a, b) => count(ledger.primaries, a) - count(ledger.primaries, b) || a - b)[0];
}

function count(map: ReadonlyMap<NodeId, number>, node: NodeId): number {
  return map.get(node) ?? 0;
}

type Choice = { readonly move: PlacementMove } | { readonly blocked: string; readonly short: boolean };

function chooseMove(ledger: Ledger, group: PlacementGroup): Choice | undefined {
  const { nowMs } = ledger.view;
  const factor = factorOf(ledger.view, group);
  const start = (reason: string, add?: NodeId, remove?: NodeId): Choice => ({
    move: {
      group: group.id,
      reason,
      startedMs: nowMs,
      ...(add === undefined ? {} : { add }),
      ...(remove === undefined ? {} : { remove }),
    },
  });
  const stray = group.learners[0];
  if (stray !== undefined && mayMove(ledger, undefined, stray))
    return start(`learner on node ${stray} not wanted`, undefined, stray);
  const target = leastLoaded(ledger, group);
  const lost = group.voters.filter((node) => isLost(ledger, node));
  const draining = group.voters.filter((node) => ledger.nodes.get(node)?.draining === true && !lost.includes(node));
  if (group.voters.length > factor) {
    const surplus = lost[0] ?? draining[0] ?? mostLoaded(ledger, group.voters, group.leader);
    if (surplus !== undefined && mayMove(ledger, undefined, surplus))
      return start(`${group.voters.length} voters, factor ${factor}`, undefined, surplus);
    return undefined;
  }
  const replaceable = lost[0] ?? draining[0];
  const short = group.voters.length < factor;
  if (replaceable === undefined && !short) return balanceReplicas(ledger, group, target, start);
  const blocked = (why: string): Choice => ({ blocked: why, short: short || lost.length > 0 });
  if (target === undefined) return blocked(noTargetReason(ledger, group));
  if (!senderHasRoom(ledger, group))
    return blocked(`its leader, node ${group.leader}, already sends ${count(ledger.sending, group.leader)} catch-ups`);
  if (!mayMove(ledger, undefined, replaceable)) return blocked(`node ${replaceable} is busy with other moves`);
  if (short || replaceable === undefined) return start(`${group.voters.length} voters, factor ${factor}`, target);
  const why = lost.includes(replaceable) ? goneReason(ledger, replaceable) : `node ${replaceable} is draining`;
  return start(why, target, replaceable);
}

function goneReason(ledger: Ledger, node: NodeId): string {
  const entry = ledger.nodes.get(node);
  if (entry === undefined) return `node ${node} left the cluster`;
  const goneMs = ledger.view.nowMs - (entry.goneSinceMs ?? ledger.view.nowMs);
  return `node ${node} gone for ${Math.round(goneMs / 1000)} s`;
}

function balanceReplicas(
  ledger: Ledger,
  group: PlacementGroup,
  target: NodeId | undefined,
  start: (reason: string, add?: NodeId, remove?: NodeId) => Choice,
): Choice | undefined {
  if (target === undefined || !senderHasRoom(ledger, group)) return undefined;
  const source = mostLoaded(ledger, group.voters, group.leader);
  if (source === undefined) return undefined;
  if (count(ledger.load, source) - count(ledger.load, target) < 2) return undefined;
  if (!mayMove(ledger, target, source)) return undefined;
  return start(
    `balance: node ${source} holds ${count(ledger.load, source)}, node ${target} ${count(ledger.load, target)}`,
    target,
    source,
  );
}

/** Why no node can take a replica of the group, naming the eligible nodes its load failures keep out. */
function noTargetReason(ledger: Ledger, group: PlacementGroup): string {
  const members = new Set([...group.voters, ...group.learners]);
  const failed = ledger.view.nodes
    .filter((node) => !members.has(node.id) && isEligible(ledger, node.id))
    .flatMap((node) => loadFailureOf(group, node.id) ?? []);
  const reason = 'no eligible node with room for a replica';
  if (failed.length === 0) return reason;
  const more = failed.length > 3 ? `; ${failed.length - 3} more` : '';
  return `${reason} (${failed.slice(0, 3).join('; ')}${more})`;
}

/**
 * The eligible node outside the group with room for one more move and the least load, then the fewest
 * primaries, then the lowest id; never one that failed to load the group's data.
 */
function leastLoaded(ledger: Ledger, group: PlacementGroup): NodeId | undefined {
  const members = new Set([...group.voters, ...group.learners]);
  const max = ledger.view.settings.movesPerNodeMax;
  const candidates = ledger.view.nodes
    .map((node) => node.id)
    .filter(
      (id) =>
        !members.has(id) &&
        isEligible(ledger, id) &&
        count(ledger.busy, id) < max &&
        loadFailureOf(group, id) === undefined,
    );
  return candidates.sort(
    (a, b) =>
      count(ledger.load, a) - count(ledger.load, b) || count(ledger.primaries, a) - count(ledger.primaries, b) || a - b,
  )[0];
}

/** The live voter with the most load (the leader last, so it keeps serving), then the highest id. */
function mostLoaded(ledger: Ledger, voters: readonly NodeId[], leader: NodeId): NodeId | undefined {
  const candidates = voters.filter((node) => isLive(ledger, node));
  return candidates.sort(
    (a, b) => Number(a === leader) - Number(b === leader) || count(ledger.load, b) - count(ledger.load, a) || b - a,
  )[0];
}

/** Both nodes of a new move have room for it (a lost node being removed costs nothing). */
function mayMove(ledger: Ledger, add: NodeId | undefined, remove: NodeId | undefined): boolean {
  const max = ledger.view.settings.movesPerNodeMax;
  const nodes = busyNodes(ledger, {
    group: 0 as GroupId,
    reason: '',
    startedMs: 0,
    ...(add === undefined ? {} : { add }),
    ...(remove === undefined ? {} : { remove }),
  });
  return nodes.every((node) => count(ledger.busy, node) < max);
}

function balanceLeadership(ledger: Ledger, group: PlacementGroup): PlacementStep | undefined {
  const held = count(ledger.primaries, group.leader);
  const to = transferTarget(ledger, group, [group.leader]);
  if (to === undefined || held - count(ledger.primaries, to) < 2) return undefined;
  ledger.primaries.set(group.leader, held - 1);
  ledger.primaries.set(to, count(ledger.primaries, to) + 1);
  return { kind: 'transfer', group: group.id, to, reason: `balance primaries: node ${group.leader} holds ${held}` };
}
