// Validation of decoded bytes into the core's types. Everything that comes from disk or the
// network passes here once, at the edge; a value that does not fit throws a CodecError naming the
// path of the bad field, and is never half-used. Pure: no I/O.

import type { LogIndex, NodeId, Term } from '../base/ids.ts';
import type { ConfChange, ConfChangeItem, ConfState, Entry, HardState, SnapshotMeta } from '../raft/types.ts';

export class CodecError extends Error {
  override readonly name = 'CodecError';
  readonly code = 'DRAM_ERR_CODEC';
}

export function fail(path: string, why: string): never {
  throw new CodecError(`${path}: ${why}`);
}

export function record(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    fail(path, 'expected a map');
  return value as Record<string, unknown>;
}

export function list(value: unknown, path: string, lengthMax: number): unknown[] {
  if (!Array.isArray(value)) fail(path, 'expected an array');
  if (value.length > lengthMax) fail(path, `array of ${value.length} exceeds ${lengthMax}`);
  return value;
}

export function counter(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    fail(path, 'expected a non-negative integer');
  return value;
}

export function integer(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(path, 'expected an integer');
  return value;
}

export function boolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, 'expected a boolean');
  return value;
}

export function bytes(value: unknown, path: string, lengthMax: number): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(path, 'expected bytes');
  if (value.length > lengthMax) fail(path, `${value.length} bytes exceed ${lengthMax}`);
  return value;
}

export function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    fail(path, `expected one of ${allowed.join(', ')}`);
  return value as T;
}

export const term = (value: unknown, path: string): Term => counter(value, path) as Term;
export const logIndex = (value: unknown, path: string): LogIndex => counter(value, path) as LogIndex;
export const nodeId = (value: unknown, path: string): NodeId => counter(value, path) as NodeId;

const nodesMax = 1024;

function nodeIds(value: unknown, path: string): NodeId[] {
  return list(value, path, nodesMax).map((item, k) => nodeId(item, `${path}[${k}]`));
}

export function confChange(value: unknown, path: string): ConfChange {
  const raw = record(value, path);
  const changes = list(raw['changes'], `${path}.changes`, nodesMax).map((item, k): ConfChangeItem => {
    const change = record(item, `${path}.changes[${k}]`);
    return {
      type: oneOf(change['type'], `${path}.changes[${k}].type`, ['add_voter', 'add_learner', 'remove_node'] as const),
      node: nodeId(change['node'], `${path}.changes[${k}].node`),
    };
  });
  return { changes, transition: oneOf(raw['transition'], `${path}.transition`, ['auto', 'joint'] as const) };
}

export function confState(value: unknown, path: string): ConfState {
  const raw = record(value, path);
  return {
    voters: nodeIds(raw['voters'], `${path}.voters`),
    votersOutgoing: nodeIds(raw['votersOutgoing'], `${path}.votersOutgoing`),
    learners: nodeIds(raw['learners'], `${path}.learners`),
    learnersNext: nodeIds(raw['learnersNext'], `${path}.learnersNext`),
    autoLeave: boolean(raw['autoLeave'], `${path}.autoLeave`),
  };
}

export function entry(value: unknown, path: string, dataBytesMax: number): Entry {
  const raw = record(value, path);
  const kind = oneOf(raw['kind'], `${path}.kind`, ['normal', 'conf'] as const);
  const header = { term: term(raw['term'], `${path}.term`), index: logIndex(raw['index'], `${path}.index`) };
  if (kind === 'normal') return { kind, ...header, data: bytes(raw['data'], `${path}.data`, dataBytesMax) };
  return { kind, ...header, change: confChange(raw['change'], `${path}.change`) };
}

export function hardState(value: unknown, path: string): HardState {
  const raw = record(value, path);
  return {
    term: term(raw['term'], `${path}.term`),
    vote: nodeId(raw['vote'], `${path}.vote`),
    commit: logIndex(raw['commit'], `${path}.commit`),
  };
}

export function snapshotMeta(value: unknown, path: string): SnapshotMeta {
  const raw = record(value, path);
  return {
    index: logIndex(raw['index'], `${path}.index`),
    term: term(raw['term'], `${path}.term`),
    confState: confState(raw['confState'], `${path}.confState`),
  };
}
