// Sequential specifications for the linearizability checker, in porcupine's shape. A model is pure:
// step never mutates the state it is given, and equal states have equal hashes (the search's
// cache relies on both). partition splits a history into independent objects; that is sound only
// when no operation touches two of them, which holds for single-key operations.
// The register here is read/write/cas over JSON values, starting at null on every key.

import { groupByKey, type Operation } from './history.ts';
import { canonicalJson, describeValue, hashText } from './values.ts';

export interface StepResult<S> {
  /** Whether the operation, with its recorded output, can happen in this state. */
  ok: boolean;
  /** The state after the operation; the given state when !ok. */
  next: S;
}

/** The operations of one independent object (for a key-value store, one key). */
export interface Partition {
  key: string;
  ops: readonly Operation[];
}

export interface Model<S> {
  readonly name: string;
  init(): S;
  /** Applies op to state. For info ops the output is unknown and must not be checked. */
  step(state: S, op: Operation): StepResult<S>;
  equal(a: S, b: S): boolean;
  /** A 32-bit hash; equal states must hash equally. */
  hash(state: S): number;
  /** Splits ops into independently checkable objects, dropping ops that cannot constrain anything. */
  partition(ops: readonly Operation[]): Partition[];
  describeOperation(op: Operation): string;
  describeState(state: S): string;
}

/** Groups ops by key (ops without one under NO_KEY), keys sorted, each group in the given order. */
export function partitionByKey(ops: readonly Operation[]): Partition[] {
  return [...groupByKey(ops)].map(([key, group]) => ({ key, ops: group }));
}

/**
 * The register state is the canonical JSON text of the current value, so state equality is
 * string equality and structurally equal values are equal states.
 */
export type RegisterState = string;

const ABSENT: RegisterState = canonicalJson(null);

/**
 * A read/write/cas register per key, initially null. An ok cas applied (a cas that did not apply
 * completes with fail and never reaches the model). Info writes and cas carry their effect; the
 * search decides whether and when they took effect. partition drops info ops that cannot matter.
 */
export const registerModel: Model<RegisterState> = {
  name: 'register',
  init: () => ABSENT,
  step: stepRegister,
  equal: (a, b) => a === b,
  hash: hashText,
  partition(ops) {
    for (const op of ops) checkRegisterOp(op);
    return partitionByKey(ops).map(({ key, ops: keyOps }) => ({ key, ops: withoutSilentOps(keyOps) }));
  },
  describeOperation: describeRegisterOp,
  describeState: (state) => (state.length <= 60 ? state : `${state.slice(0, 59)}…`),
};

/**
 * Drops the ops of one key that cannot change the verdict, because each doubles the search space:
 * info reads (their result is unknown), and info writes and cas whose written value nobody ever
 * observed (no read returned it, no cas expected it). Such a write, wherever it is linearized, is
 * followed before any observation by another write or a successful cas that overwrites it, or by
 * nothing, so removing it from a linearization leaves a linearization.
 */
function withoutSilentOps(ops: readonly Operation[]): Operation[] {
  const observed = new Set<RegisterState>();
  for (const op of ops) {
    if (op.f === 'read' && op.status === 'ok') observed.add(canonicalJson(op.output));
    if (op.f === 'cas') observed.add(canonicalJson(casArguments(op)[0]));
  }
  return ops.filter((op) => {
    if (op.status === 'ok') return true;
    if (op.f === 'read') return false;
    const written = op.f === 'cas' ? casArguments(op)[1] : op.input;
    return observed.has(canonicalJson(written));
  });
}

function stepRegister(state: RegisterState, op: Operation): StepResult<RegisterState> {
  switch (op.f) {
    case 'read':
      // An info read (if one is ever stepped) constrains nothing.
      return { ok: op.status === 'info' || canonicalJson(op.output) === state, next: state };
    case 'write':
      return { ok: true, next: canonicalJson(op.input) };
    case 'cas': {
      const [expected, replacement] = casArguments(op);
      // A cas that would not apply here cannot be an ok cas; for an info cas, not linearizing it is the same as it failing.
      if (canonicalJson(expected) !== state) return { ok: false, next: state };
      return { ok: true, next: canonicalJson(replacement) };
    }
    case 'add':
    case 'append':
    case 'schedule':
      throw new Error(`register model cannot step ${op.f} (op ${op.index})`);
  }
}

function casArguments(op: Operation): [unknown, unknown] {
  const input = op.input;
  if (!Array.isArray(input) || input.length !== 2) {
    throw new Error(`cas op ${op.index} needs input [expected, new], got ${describeValue(input)}`);
  }
  return [input[0], input[1]];
}

function checkRegisterOp(op: Operation): void {
  if (op.f !== 'read' && op.f !== 'write' && op.f !== 'cas') {
    throw new Error(`register model: op ${op.index} has f ${op.f}; only read, write and cas are registers ops`);
  }
  if (op.f === 'cas') casArguments(op);
}

function describeRegisterOp(op: Operation): string {
  const unknown = op.status === 'info' ? ' ?' : '';
  switch (op.f) {
    case 'read':
      return op.status === 'info' ? 'read() → ?' : `read() → ${describeValue(op.output)}`;
    case 'cas': {
      const [expected, replacement] = casArguments(op);
      return `cas(${describeValue(expected)}, ${describeValue(replacement)})${unknown}`;
    }
    default:
      return `${op.f}(${describeValue(op.input)})${unknown}`;
  }
}
