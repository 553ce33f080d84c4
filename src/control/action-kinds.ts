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
//  - agent.replicante.io/cluster.remove: `{node}`, idempotent (steps in src/control/action-steps.ts).
//
// Called by: src/control/executor.ts (planner), src/control/action-steps.ts (steps), src/api/ (schedule checks).

import type { ActionState, JsonValue } from '../codec/meta.ts';

export const testSuccessKind = 'agent.replicante.io/test.success';
export const testFailKind = 'agent.replicante.io/test.fail';
export const testLoopKind = 'agent.replicante.io/test.loop';
export const transferLeadershipKind = 'dram.io/group.transfer-leadership';
export const clusterRemoveKind = 'agent.replicante.io/cluster.remove';

export const actionKinds = [
  testSuccessKind,
  testFailKind,
  testLoopKind,
  transferLeadershipKind,
  clusterRemoveKind,
] as const;
export type ActionKind = (typeof actionKinds)[number];

export const testLoopTargetDefault = 10;
/** A test.loop target above this is refused: each count is a log entry. */
export const testLoopTargetMax = 10_000;
export const testFailMessage = 'Test action failed as expected';

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
    case transferLeadershipKind: {
      const fields = objectOf(args);
      if (fields === undefined) return 'args must be an object such as {"group": 1, "to": 2}';
      const unknown = Object.keys(fields).find((name) => name !== 'group' && name !== 'to');
      if (unknown !== undefined) return `unknown field args.${unknown} (only group and to)`;
      if (!isCount(fields['group'], 0, Number.MAX_SAFE_INTEGER))
        return 'args.group must be a group id (an integer >= 0)';
      const to = fields['to'];
      if (to !== undefined && to !== null && !isCount(to, 1, Number.MAX_SAFE_INTEGER))
        return 'args.to must be a node id (a positive integer)';
      return undefined;
    }
    case clusterRemoveKind: {
      const fields = objectOf(args);
      if (fields === undefined) return 'args must be an object such as {"node": 4}';
      return nodeOfArgs(fields['node']) === undefined
        ? 'args.node must be a node id (a positive integer, or its decimal string)'
        : undefined;
    }
  }
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
