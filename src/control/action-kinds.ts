// The agent action kinds this version runs, with their argument checks and, for the ones that need
// no effect outside the meta log, their steps (pure). A kind's args are checked when it is
// scheduled (a bad one is refused with the reason, the queue unchanged) and again by the executor
// before it starts (a record written by another version is failed, not run).
//
// Kinds (docs/agent-api.md documents each: args, payload, errors):
//  - agent.replicante.io/test.success: DONE at once; args ignored.
//  - agent.replicante.io/test.fail: FAILED at once with "Test action failed as expected"; args ignored.
//  - agent.replicante.io/test.loop: one count per step; `args.target` (default 10; the payload's
//    `target` wins once set); payload `{count, target}`; RUNNING until count >= target, then DONE.
//  - dram.io/group.transfer-leadership: `{group, to?}` (steps in src/control/action-steps.ts).
//  - dram.io/group.compact: `{group, node?}`: one node's replica of the group snapshots now and
//    compacts its log (node: default the node the action was scheduled through).
//  - agent.replicante.io/cluster.remove: `{node}`, idempotent (steps in src/control/action-steps.ts).
//  - agent.replicante.io/cluster.init: args ignored (Replicante passes the user's own, default null);
//    runs on a node not in a cluster, which creates one (src/node/membership.ts).
//  - agent.replicante.io/cluster.join: `{node: "<a member's http URL>"}`, runs on a node not in a
//    cluster, which joins through that member.
//  - agent.replicante.io/cluster.add: `{node: "<the new node's http URL>"}`, runs on a member.
//  - dram.io/replication.set: `{kind: "kv" | "meta", factor: 1..replicationFactorMax}`.
//  - dram.io/db.add, db.reload, db.remove, alias.swap: the database catalog's (database-kinds.ts).
//
// Called by: src/control/executor.ts (planner), src/control/action-steps.ts (steps), src/api/ (schedule checks).

import type { ActionState, JsonValue } from '../codec/meta.ts';
import { databaseArgsProblem, databaseKinds } from './database-kinds.ts';

export const testSuccessKind = 'agent.replicante.io/test.success';
export const testFailKind = 'agent.replicante.io/test.fail';
export const testLoopKind = 'agent.replicante.io/test.loop';
export const transferLeadershipKind = 'dram.io/group.transfer-leadership';
export const clusterRemoveKind = 'agent.replicante.io/cluster.remove';
export const clusterInitKind = 'agent.replicante.io/cluster.init';
export const clusterJoinKind = 'agent.replicante.io/cluster.join';
export const clusterAddKind = 'agent.replicante.io/cluster.add';
export const replicationSetKind = 'dram.io/replication.set';
export const compactKind = 'dram.io/group.compact';

export const actionKinds = [
  testSuccessKind,
  testFailKind,
  testLoopKind,
  transferLeadershipKind,
  compactKind,
  clusterRemoveKind,
  clusterInitKind,
  clusterJoinKind,
  clusterAddKind,
  replicationSetKind,
  ...databaseKinds,
] as const;
export type ActionKind = (typeof actionKinds)[number];

export const testLoopTargetDefault = 10;
/** A test.loop target above this is refused: each count is a log entry. */
export const testLoopTargetMax = 10_000;
export const testFailMessage = 'Test action failed as expected';
/** A replication factor above this is refused: the meta group has at most 5 voters, kv groups no more than 7. */
export const replicationFactorMax = 7;
/** A node URL in cluster.add / cluster.join args is at most this long. */
export const nodeUrlCharsMax = 1024;

/** The kinds a node that is not in a cluster runs (everything else needs the cluster). */
export const bootstrapKinds: readonly ActionKind[] = [clusterInitKind, clusterJoinKind];

export function isActionKind(kind: string): kind is ActionKind {
  return (actionKinds as readonly string[]).includes(kind);
}

/** Why `args` do not suit `kind`, or undefined when they do. */
export function argsProblem(kind: ActionKind, args: JsonValue): string | undefined {
  switch (kind) {
    case testSuccessKind:
    case testFailKind:
      return undefined;
    case testLoopKind: {
      if (args === null) return undefined;
      const fields = objectOf(args);
      if (fields === undefined) return 'args must be null or an object such as {"target": 3}';
      const target = fields['target'];
      if (target === undefined || target === null) return undefined;
      return isCount(target, 0, testLoopTargetMax)
        ? undefined
        : `args.target must be an integer 0..${testLoopTargetMax}`;
    }
    case transferLeadershipKind:
      return groupArgsProblem(args, 'to');
    case compactKind:
      return groupArgsProblem(args, 'node');
    case clusterRemoveKind: {
      const fields = objectOf(args);
      if (fields === undefined) return 'args must be an object such as {"node": 4}';
      return nodeOfArgs(fields['node']) === undefined
        ? 'args.node must be a node id (a positive integer, or its decimal string)'
        : undefined;
    }
    case clusterInitKind:
      return undefined;
    case clusterJoinKind:
    case clusterAddKind: {
      const fields = objectOf(args);
      const example = kind === clusterAddKind ? "the new node's" : "a member's";
      if (fields === undefined)
        return `args must be an object such as {"node": "http://10.0.0.4:8080"} (${example} URL)`;
      const unknown = Object.keys(fields).find((name) => name !== 'node');
      if (unknown !== undefined) return `unknown field args.${unknown} (only node)`;
      return nodeUrlOfArgs(fields['node']) === undefined
        ? `args.node must be ${example} http:// or https:// URL (at most ${nodeUrlCharsMax} characters, no query)`
        : undefined;
    }
    case replicationSetKind: {
      const fields = objectOf(args);
      if (fields === undefined) return 'args must be an object such as {"kind": "kv", "factor": 3}';
      const unknown = Object.keys(fields).find((name) => name !== 'kind' && name !== 'factor');
      if (unknown !== undefined) return `unknown field args.${unknown} (only kind and factor)`;
      if (fields['kind'] !== 'kv' && fields['kind'] !== 'meta') return 'args.kind must be "kv" or "meta"';
      return isCount(fields['factor'], 1, replicationFactorMax)
        ? undefined
        : `args.factor must be an integer 1..${replicationFactorMax}`;
    }
    case 'dram.io/db.add':
    case 'dram.io/db.reload':
    case 'dram.io/db.remove':
    case 'dram.io/alias.swap':
      return databaseArgsProblem(kind, args);
  }
}

/** `{group, <nodeField>?}`: a group id and, optionally, a node (transfer's `to`, compact's `node`). */
function groupArgsProblem(args: JsonValue, nodeField: 'to' | 'node'): string | undefined {
  const fields = objectOf(args);
  if (fields === undefined) return `args must be an object such as {"group": 1, "${nodeField}": 2}`;
  const unknown = Object.keys(fields).find((name) => name !== 'group' && name !== nodeField);
  if (unknown !== undefined) return `unknown field args.${unknown} (only group and ${nodeField})`;
  if (!isCount(fields['group'], 0, Number.MAX_SAFE_INTEGER)) return 'args.group must be a group id (an integer >= 0)';
  const node = fields[nodeField];
  if (node !== undefined && node !== null && !isCount(node, 1, Number.MAX_SAFE_INTEGER))
    return `args.${nodeField} must be a node id (a positive integer)`;
  return undefined;
}

/** What the scheduling node knows of the cluster when it checks an action against it. */
export interface ScheduleView {
  /** Whether this node is in a cluster (false: it waits for cluster.init or cluster.join). */
  readonly inCluster: boolean;
  /** A group's voters as this node has applied them; undefined when the group is not hosted here. */
  groupVoters(group: number): readonly number[] | undefined;
}

/** Why the action cannot run in the cluster as this node sees it (nothing is scheduled then). */
export type ScheduleProblem =
  | { readonly kind: 'not_in_cluster' | 'in_cluster' | 'invalid_args'; readonly message: string }
  | { readonly kind: 'unknown_group'; readonly message: string; readonly group: number };

export function scheduleProblem(kind: ActionKind, args: JsonValue, view: ScheduleView): ScheduleProblem | undefined {
  const bootstrap = bootstrapKinds.includes(kind);
  if (!view.inCluster && !bootstrap)
    return {
      kind: 'not_in_cluster',
      message: `this node is not in a cluster: only ${bootstrapKinds.join(' and ')} run on it`,
    };
  if (view.inCluster && bootstrap)
    return {
      kind: 'in_cluster',
      message: `this node is already in a cluster: ${kind} runs only on a node that is not`,
    };
  if (kind !== transferLeadershipKind) return undefined;
  const fields = objectOf(args) ?? {};
  const group = fields['group'];
  if (typeof group !== 'number') return undefined;
  const voters = view.groupVoters(group);
  if (voters === undefined) return { kind: 'unknown_group', message: `group ${group} does not exist`, group };
  const to = fields['to'];
  if (typeof to === 'number' && !voters.includes(to))
    return {
      kind: 'invalid_args',
      message: `node ${to} is not a voter of group ${group} (voters: ${voters.join(', ')})`,
    };
  return undefined;
}

/** A node's base URL as cluster.add / cluster.join take it (trailing slashes dropped), or undefined. */
export function nodeUrlOfArgs(value: JsonValue | undefined): string | undefined {
  if (typeof value !== 'string' || value.length > nodeUrlCharsMax) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return undefined;
  return url.origin + url.pathname.replace(/\/+$/u, '');
}

/** A node id given as a number or its decimal string (Replicante passes strings). */
export function nodeOfArgs(value: JsonValue | undefined): number | undefined {
  if (typeof value === 'number') return isCount(value, 1, Number.MAX_SAFE_INTEGER) ? value : undefined;
  if (typeof value === 'string' && /^[1-9][0-9]{0,15}$/u.test(value)) {
    const id = Number(value);
    return Number.isSafeInteger(id) ? id : undefined;
  }
  return undefined;
}

export function objectOf(value: JsonValue | undefined): Readonly<Record<string, JsonValue>> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Readonly<Record<string, JsonValue>>)
    : undefined;
}

function isCount(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** One step of a test action: pure, from its args and current payload to its next state. */
export function stepTestAction(
  kind: typeof testSuccessKind | typeof testFailKind | typeof testLoopKind,
  args: JsonValue,
  payload: JsonValue,
): ActionState {
  switch (kind) {
    case testSuccessKind:
      return { phase: 'DONE', payload: null, error: null };
    case testFailKind:
      return { phase: 'FAILED', payload: null, error: { error_msg: testFailMessage } };
    case testLoopKind: {
      const previous = objectOf(payload);
      const fromPayload = previous?.['target'];
      const fromArgs = objectOf(args)?.['target'];
      const target =
        typeof fromPayload === 'number' ? fromPayload : typeof fromArgs === 'number' ? fromArgs : testLoopTargetDefault;
      const before = previous?.['count'];
      const count = (typeof before === 'number' ? before : 0) + 1;
      return { phase: count >= target ? 'DONE' : 'RUNNING', payload: { count, target }, error: null };
    }
  }
}
