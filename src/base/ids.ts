// Branded number types for the identities and positions the Raft core deals in. Values enter these
// types once, at the edge (codec, config, tests), and are trusted inside. They are plain numbers at
// run time, so they cost nothing.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A Raft term. 0 means "no term yet". */
export type Term = Brand<number, 'Term'>;
/** A position in a group's log; also the commit offset reported to Replicante. 0 means "before the first entry". */
export type LogIndex = Brand<number, 'LogIndex'>;
/** A member of a group. 0 means "none" (no leader, no vote). */
export type NodeId = Brand<number, 'NodeId'>;
/** A Raft group (a shard). */
export type GroupId = Brand<number, 'GroupId'>;

export const NO_NODE = 0 as NodeId;

export function asTerm(value: number): Term {
  checkCounter(value, 'term');
  return value as Term;
}

export function asIndex(value: number): LogIndex {
  checkCounter(value, 'log index');
  return value as LogIndex;
}

export function asNodeId(value: number): NodeId {
  checkCounter(value, 'node id');
  return value as NodeId;
}

export function asGroupId(value: number): GroupId {
  checkCounter(value, 'group id');
  return value as GroupId;
}

function checkCounter(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
}
