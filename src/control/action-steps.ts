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
//  - agent.replicante.io/cluster.remove {node}: removes the node from every kv group (the member
//    removal path, idempotent), then from the meta group, then from the node registry. DONE
//    `{node, groups}`; a node that is not a member is DONE and changes nothing; a removal that
//    would leave a group without a voter is FAILED; one still pending is retried.
//
// Called by: src/control/controller.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { ActionRecord, ActionState, JsonValue } from '../codec/meta.ts';
import {
  clusterRemoveKind,
  nodeOfArgs,
  objectOf,
  stepTestAction,
  testFailKind,
  testLoopKind,
  testSuccessKind,
  transferLeadershipKind,
} from './action-kinds.ts';

export const transferRetryMs = 1000;

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
  /** Removes the node from every kv group (idempotent: a node in none is ok). */
  removeFromKvGroups(node: NodeId): Promise<EffectResult>;
  /** Removes the node from the meta group when it is a member (ok when it is not). */
  removeFromMetaGroup(node: NodeId): Promise<EffectResult>;
  /** Removes the node from the meta model's registry when it is there. */
  forgetNode(node: NodeId): Promise<EffectResult>;
}

export async function runActionStep(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  switch (action.kind) {
    case testSuccessKind:
    case testFailKind:
    case testLoopKind:
      return stepTestAction(action.kind, action.args, action.state.payload);
    case transferLeadershipKind:
      return stepTransfer(action, context);
    case clusterRemoveKind:
      return stepRemove(action, context);
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

async function stepRemove(action: ActionRecord, context: StepContext): Promise<ActionState | undefined> {
  const node = nodeOfArgs(objectOf(action.args)?.['node']) as NodeId | undefined;
  if (node === undefined) return failedState(action, 'args.node must be a node id');
  for (const effect of [
    () => context.removeFromKvGroups(node),
    () => context.removeFromMetaGroup(node),
    () => context.forgetNode(node),
  ]) {
    const result = await effect();
    if (!result.ok) return result.final ? failedState(action, result.message) : undefined;
  }
  return { phase: 'DONE', payload: { node }, error: null };
}

function failedState(action: ActionRecord, message: string): ActionState {
  return { phase: 'FAILED', payload: action.state.payload, error: { error_msg: message } };
}
