// One step of each action kind, run by the controller on the meta leader for a RUNNING action.
// A step looks at the cluster before acting, so running it again (a new leader resuming, a step
// whose state change was lost) repeats nothing that is done: that is what makes an action's
// effect happen once. A step returns the action's next state, or undefined for "nothing changed,
// ask again later" (no log entry is written then).
//
//  - test.*: pure (action-kinds.ts).
//  - dram.io/group.transfer-leadership {group, to?}: asks the group's leader to hand over (to
//    `to`, or its most caught-up other voter), then waits until the group's leader is the target;
//    asks again every `transferRetryMs` while it is not. DONE `{group, from, to}` when `to` leads
//    (at once when it already did); FAILED when the group is unknown or the target is refused.
//  - dram.io/group.compact {group, node?}: asks `node` (default: the node the action was
//    scheduled through) to snapshot its replica of the group now and compact its log behind the
//    snapshot (POST /v1/internal/groups/:group/compact there). Asking twice is harmless (the node
//    answers `in_progress` or `up_to_date`), so a resumed action may ask again. DONE `{group,
//    node, index, state}` with the node's answer; FAILED when the node does not host the group;
//    an unreachable node is asked again on the next step, until the timeout.
//  - agent.replicante.io/cluster.remove {node}: removes the node from every kv group (the member
//    removal path, idempotent), then from the meta group, then from the node registry. DONE
//    `{node, groups, warnings}` (the kv removal's per-group report; `{node}` without one); a node that is not a member is DONE and changes nothing; a removal that
//    would leave a group without a voter is FAILED; one still pending is retried. The node's
//    registry record (when it has one) says LEAVING while it goes.
//  - agent.replicante.io/cluster.init: run on a node that was not in a cluster, which created
//    the cluster before it could record the action here: DONE `{cluster_id, node_id}` at once.
//  - agent.replicante.io/cluster.join {node}: the new node joined through `node` before it could
//    record the action here (a node learns the log only once it is in the cluster); DONE
//    `{node, node_id}` once the node it was run on has joined (registered ACTIVE where placement
//    is on, else a voter of every kv group), waited for until then; FAILED when cluster.remove
//    takes the node out first (the join, recorded late, would otherwise hold the queue until its
//    timeout).
//  - agent.replicante.io/cluster.add {node}: asks the node at that URL who it is (its agent API);
//    records it in the registry as JOINING; then, until it has joined (as for cluster.join), looks at
//    it every `askRetryMs` and, while it is NOT_IN_CLUSTER, asks it to run cluster.join through
//    this node (a new leader resuming the action asks through itself: a join through a leader that
//    died fails on the new node, which then waits to be asked again). RUNNING payload
//    `{node, node_id, asked_ms?, join_action?}` (the last cluster.join asked for); DONE
//    `{node, node_id}`; FAILED when the node belongs to another cluster or its id is taken by a
//    registered node at another address, or when it refuses the join for good (its JOINING
//    record is dropped then; one left by a timeout stays until the node joins or is removed), or
//    when cluster.remove takes the node out meanwhile.
//  - dram.io/replication.set {kind, factor}: records the factor; FAILED when it is larger than
//    the number of registered nodes. DONE `{kind, factor}`.
//  - dram.io/db.*, dram.io/alias.swap: the database catalog's (src/control/database-steps.ts).
//
// Called by: src/control/controller.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { ActionRecord, ActionState, GroupKind, JsonValue, NodeRecord } from '../codec/meta.ts';
import {
  clusterAddKind,
  clusterInitKind,
  clusterJoinKind,
  clusterRemoveKind,
  compactKind,
  nodeUrlOfArgs,
  replicationSetKind,
  nodeOfArgs,
  objectOf,
  stepTestAction,
  testFailKind,
  testLoopKind,
  testSuccessKind,
  transferLeadershipKind,
} from './action-kinds.ts';
import { runDatabaseStep, type DatabaseStepContext } from './database-steps.ts';

export const transferRetryMs = 1000;
/** How often cluster.add looks at a node that is not a voter everywhere yet (and asks it to join again). */
export const askRetryMs = 5000;

export type EffectResult =
  | { readonly ok: true; readonly detail: JsonValue }
  /** `final`: retrying cannot help (bad target, last voter); otherwise the step is tried again. */
  | { readonly ok: false; readonly final: boolean; readonly message: string };

/** What the steps may look at and do; src/node/ implements it over the host and the node's own API. */
export interface StepContext {
  readonly nowMs: () => number;
  /** The group's leader as this node knows it (0: none), undefined when the group is not hosted here. */
  groupLeader(group: GroupId): NodeId | undefined;
  /** Asks the group's leader to hand leadership to `to` (or its best other voter); detail: the target chosen. */
  transferLeadership(group: GroupId, to: NodeId | undefined): Promise<EffectResult>;
  /** Asks `node` to snapshot its replica of the group now; detail: its answer `{node, state, index}`. */
  compactGroup(group: GroupId, node: NodeId): Promise<EffectResult>;
  /** Removes the node from every kv group (idempotent: a node in none is ok). */
  removeFromKvGroups(node: NodeId): Promise<EffectResult>;
  /** Removes the node from the meta group when it is a member (ok when it is not). */
  removeFromMetaGroup(node: NodeId): Promise<EffectResult>;
  /** Removes the node from the meta model's registry when it is there. */
  forgetNode(node: NodeId): Promise<EffectResult>;
  /** The cluster's id (the meta model's). */
  clusterId(): string;
  /** This node's HTTP URL: the member a new node is asked to join through. */
  readonly selfUrl: string;
  /**
   * Whether the node has joined (cluster.add and cluster.join are done): where the cluster places
   * its groups (a kv replication factor recorded), registered ACTIVE (the member it joined through
   * registered it; placement then hands it groups); otherwise a voter of every kv group hosted here.
   */
  hasJoined(node: NodeId): boolean;
  /** The registry's record of the node, when it has one. */
  registered(node: NodeId): NodeRecord | undefined;
  /** The actions the meta model holds: the queue, then the finished ones it keeps. */
  actionRecords(): readonly ActionRecord[];
  /** How many nodes the registry holds. */
  registeredCount(): number;
  /** Proposes the node's registry record (status JOINING or LEAVING while it joins or leaves). */
  recordNode(node: NodeRecord): Promise<EffectResult>;
  /** Proposes a replication factor for a group kind. */
  setReplication(kind: GroupKind, factor: number): Promise<EffectResult>;
  /** What the node at `url` says of itself (GET info/node and info/store), or why it did not answer. */
  describeNode(url: string): Promise<NodeDescription | string>;
  /** Asks the node at `url` to run cluster.join through `via`, as action `id` (409: already asked). */
  askToJoin(url: string, id: string, via: string): Promise<EffectResult>;
  /** A fresh action id (a UUID). */
  newActionId(): string;
  /** The database catalog's steps; undefined where no object store is configured (they fail). */
  readonly databases?: DatabaseStepContext | undefined;
  /**
   * Draining a LEAVING node before cluster.remove takes it out (placement, when it is on): whether
   * moves are still taking its replicas elsewhere, and what moved so far. Absent: nothing to drain.
   */
  drain?(node: NodeId): { readonly draining: boolean; readonly moved: JsonValue } | undefined;
}

/** A node as its agent API describes it. */
export interface NodeDescription {
  readonly nodeId: NodeId;
  readonly status: string;
  readonly clusterId: string;
}

export async function runActionStep(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  switch (action.kind) {
    case testSuccessKind:
    case testFailKind:
    case testLoopKind:
      return stepTestAction(action.kind, action.args, action.state.payload);
    case transferLeadershipKind:
      return stepTransfer(action, context);
    case compactKind:
      return stepCompact(action, context);
    case clusterRemoveKind:
      return stepRemove(action, context);
    case clusterInitKind:
      return { phase: 'DONE', payload: { cluster_id: context.clusterId(), node_id: action.node }, error: null };
    case clusterJoinKind:
      return stepJoin(action, context);
    case clusterAddKind:
      return stepAdd(action, context);
    case replicationSetKind:
      return stepReplication(action, context);
    case 'dram.io/db.add':
    case 'dram.io/db.reload':
    case 'dram.io/db.remove':
    case 'dram.io/alias.swap':
      return runDatabaseStep({ ...action, kind: action.kind }, context.databases);
    default:
      return failedState(action, `unknown action kind ${action.kind}`);
  }
}

async function stepTransfer(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const args = objectOf(action.args) ?? {};
  const group = args['group'] as GroupId;
  const wanted = typeof args['to'] === 'number' ? (args['to'] as NodeId) : undefined;
  const leader = context.groupLeader(group);
  if (leader === undefined) return failedState(action, `group ${group} does not exist`);
  const payload = objectOf(action.state.payload);
  const target = typeof payload?.['to'] === 'number' ? (payload['to'] as NodeId) : wanted;
  if (target !== undefined && leader === target)
    return {
      phase: 'DONE',
      payload: { group, from: (payload?.['from'] ?? leader) as number, to: target },
      error: null,
    };
  const requestedMs = payload?.['requestedMs'];
  if (typeof requestedMs === 'number' && context.nowMs() - requestedMs < transferRetryMs) return undefined;
  const result = await context.transferLeadership(group, target);
  if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
  const chosen = typeof result.detail === 'number' ? result.detail : target;
  const attempts = typeof payload?.['attempts'] === 'number' ? payload['attempts'] + 1 : 1;
  return {
    phase: 'RUNNING',
    payload: {
      group,
      from: (payload?.['from'] ?? leader) as number,
      to: chosen ?? null,
      requestedMs: context.nowMs(),
      attempts,
    },
    error: null,
  };
}

async function stepCompact(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const args = objectOf(action.args) ?? {};
  const group = args['group'] as GroupId;
  const node = typeof args['node'] === 'number' ? (args['node'] as NodeId) : action.node;
  const result = await context.compactGroup(group, node);
  if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
  // The answer names the node that compacted: the payload says who did, not who was asked.
  const answer = objectOf(result.detail) ?? {};
  return {
    phase: 'DONE',
    payload: { group, node: answer['node'] ?? null, index: answer['index'] ?? null, state: answer['state'] ?? null },
    error: null,
  };
}

async function stepRemove(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const node = nodeOfArgs(objectOf(action.args)?.['node']) as NodeId | undefined;
  if (node === undefined) return failedState(action, 'args.node must be a node id');
  const record = context.registered(node);
  if (record !== undefined && record.status !== 'LEAVING') {
    const result = await context.recordNode({ ...record, status: 'LEAVING' });
    if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
  }
  // With room in the cluster, its replicas move elsewhere first (the placement controller sees it
  // LEAVING); the step waits while moves remain, then removes it from whatever could not move.
  const drained = context.drain?.(node);
  if (drained?.draining === true) {
    const payload = { node, draining: true, moved: drained.moved };
    // Proposed only when it changed: the step runs every poll while the moves take their time.
    if (JSON.stringify(payload) === JSON.stringify(action.state.payload)) return undefined;
    return { phase: 'RUNNING', payload, error: null };
  }
  let report: JsonValue = null;
  for (const effect of [
    () => context.removeFromKvGroups(node),
    () => context.removeFromMetaGroup(node),
    () => context.forgetNode(node),
  ]) {
    const result = await effect();
    if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
    report ??= result.detail;
  }
  // The kv removal's report (per group: leader, steps, voters left; warnings), when it gave one.
  const detail = objectOf(report);
  return {
    phase: 'DONE',
    payload: {
      node,
      ...(drained === undefined ? {} : { moved: drained.moved }),
      ...(detail === undefined ? {} : { groups: detail['groups'] ?? null, warnings: detail['warnings'] ?? null }),
    },
    error: null,
  };
}

/**
 * cluster.join: DONE once the node has joined. A node that cluster.remove takes out first (its join
 * recorded late, behind the removal) never will: FAILED then, rather than RUNNING until its timeout
 * with every action queued behind it waiting too (a cluster.add once waited a minute so).
 */
function stepJoin(action: ActionRecord, context: StepContext): ActionState | undefined {
  if (context.hasJoined(action.node))
    return {
      phase: 'DONE',
      payload: { node: objectOf(action.args)?.['node'] ?? null, node_id: action.node },
      error: null,
    };
  if (leftCluster(context, action.node))
    return failedState(action, `node ${action.node} left the cluster (cluster.remove) before it was seen joined`);
  return undefined;
}

/** Whether cluster.remove is taking or took the node out: registered LEAVING, or a removal of it started. */
function leftCluster(context: StepContext, node: NodeId): boolean {
  if (context.registered(node)?.status === 'LEAVING') return true;
  return context
    .actionRecords()
    .some(
      (record) =>
        record.kind === clusterRemoveKind &&
        (record.state.phase === 'RUNNING' || record.state.phase === 'DONE') &&
        nodeOfArgs(objectOf(record.args)?.['node']) === node,
    );
}

/**
 * cluster.add, one effect per step: who is it (once), register it as JOINING, then until it votes
 * everywhere: every `askRetryMs`, look at it again and, while it is still NOT_IN_CLUSTER (never
 * asked, or its join through a member that died failed), ask it to join through this node.
 */
async function stepAdd(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const url = nodeUrlOfArgs(objectOf(action.args)?.['node']);
  if (url === undefined) return failedState(action, 'args.node must be a node URL');
  const payload = objectOf(action.state.payload) ?? {};
  const known = payload['node_id'];
  if (typeof known !== 'number') {
    const described = await context.describeNode(url);
    if (typeof described === 'string') return undefined; // not answering yet: asked again until the timeout
    const problem = addProblem(context, url, described);
    if (problem !== undefined) return failedState(action, problem);
    return { phase: 'RUNNING', payload: { node: url, node_id: described.nodeId }, error: null };
  }
  const node = known as NodeId;
  if (context.hasJoined(node)) return { phase: 'DONE', payload: { node: url, node_id: node }, error: null };
  // Taken out meanwhile: registering it again (JOINING) would bring a removed node back.
  if (leftCluster(context, node))
    return failedState(action, `node ${node} was removed (cluster.remove) while being added`);
  if (context.registered(node) === undefined) {
    const result = await context.recordNode(joiningRecord(node, url));
    return result.ok || !result.final ? undefined : failedState(action, result.message);
  }
  const askedMs = payload['asked_ms'];
  if (typeof askedMs === 'number' && context.nowMs() - askedMs < askRetryMs) return undefined;
  const described = await context.describeNode(url);
  if (typeof described === 'string') return undefined;
  const running: Record<string, JsonValue> = { ...payload, asked_ms: context.nowMs() };
  if (described.status === 'NOT_IN_CLUSTER') {
    const id = context.newActionId();
    const result = await context.askToJoin(url, id, context.selfUrl);
    if (!result.ok && !result.final) return undefined;
    if (!result.ok) {
      // Refused for good: the JOINING record this action wrote goes too (retried until it does).
      if (context.registered(node)?.status === 'JOINING' && !(await context.forgetNode(node)).ok) return undefined;
      return failedState(action, result.message);
    }
    running['join_action'] = id;
  }
  return { phase: 'RUNNING', payload: running, error: null };
}

function addProblem(context: StepContext, url: string, described: NodeDescription): string | undefined {
  if (described.status !== 'NOT_IN_CLUSTER' && described.clusterId !== context.clusterId())
    return `the node at ${url} belongs to cluster ${JSON.stringify(described.clusterId)}, not ${JSON.stringify(context.clusterId())}`;
  const registered = context.registered(described.nodeId);
  if (registered !== undefined && registered.address.member !== null && registered.address.member !== url)
    return `node id ${described.nodeId} is already registered at ${registered.address.member}; the node at ${url} needs another --node-id`;
  return undefined;
}

/** What the registry says of a node cluster.add is bringing in, until it records itself. */
function joiningRecord(node: NodeId, url: string): NodeRecord {
  return {
    id: node,
    address: { member: url, client: url, raft: null },
    agentVersion: '',
    storeVersion: '',
    attributes: {},
    status: 'JOINING',
  };
}

async function stepReplication(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const args = objectOf(action.args) ?? {};
  const kind = args['kind'] === 'meta' ? 'meta' : 'kv';
  const factor = args['factor'];
  if (typeof factor !== 'number') return failedState(action, 'args.factor must be a number');
  const nodes = context.registeredCount();
  if (factor > nodes)
    return failedState(action, `replication factor ${factor} is more than the ${nodes} registered nodes`);
  const result = await context.setReplication(kind, factor);
  if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
  return { phase: 'DONE', payload: { kind, factor }, error: null };
}

function failedState(action: ActionRecord, message: string): ActionState {
  return { phase: 'FAILED', payload: action.state.payload, error: { error_msg: message } };
}
