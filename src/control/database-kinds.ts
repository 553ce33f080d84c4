// The agent action kinds of the database catalog, with their argument checks (pure). Checked when
// scheduled (a bad one is refused, the queue unchanged) and again by the executor before it starts.
//
//  - dram.io/db.add {name, source: "s3://bucket/prefix", replicas?: N | "all" (default 1), lazy?,
//    metadataPattern?}: lists the prefix, records the manifest and the placement; DONE.
//  - dram.io/db.reload {name}: lists the prefix again and records a new version (served once loaded).
//  - dram.io/db.remove {name}: drops the database from the catalog (every node deletes its files).
//  - dram.io/alias.swap {actions: [{add: {alias, database}} | {remove: {alias, database}}], rollback?}:
//    all or nothing; `{rollback: true}` alone restores the mapping before the last swap.
//
// Called by: src/control/action-kinds.ts (argsProblem), src/control/database-steps.ts, src/api/.

import type { JsonValue } from '../codec/meta.ts';
import {
  aliasActionsMax,
  bucketPattern,
  isName,
  isSafePath,
  metadataPatternBytesMax,
  prefixBytesMax,
  type AliasChange,
  type Replicas,
} from '../codec/meta-databases.ts';

export const databaseAddKind = 'dram.io/db.add';
export const databaseReloadKind = 'dram.io/db.reload';
export const databaseRemoveKind = 'dram.io/db.remove';
export const aliasSwapKind = 'dram.io/alias.swap';

export const databaseKinds = [databaseAddKind, databaseReloadKind, databaseRemoveKind, aliasSwapKind] as const;
export type DatabaseKind = (typeof databaseKinds)[number];

/** `replicas` when a request gives none. */
export const replicasDefault = 1;
/** A number of replicas above this is refused (`"all"` has no such bound). */
export const databaseReplicasMax = 1024;

export function isDatabaseKind(kind: string): kind is DatabaseKind {
  return (databaseKinds as readonly string[]).includes(kind);
}

export interface S3Source {
  readonly bucket: string;
  /** Empty (the whole bucket) or ending with `/`. */
  readonly prefix: string;
}

/** `s3://bucket/prefix` as a bucket and a normalised prefix, or why not. */
export function parseSource(value: unknown): S3Source | string {
  if (typeof value !== 'string') return 'source must be a string such as "s3://bucket/prefix"';
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/u.exec(value);
  if (match === null) return `source must look like s3://bucket/prefix, got ${JSON.stringify(value.slice(0, 200))}`;
  const bucket = match[1] ?? '';
  if (!bucketPattern.test(bucket)) return `"${bucket.slice(0, 100)}" is not an S3 bucket name`;
  const path = (match[2] ?? '').replace(/\/+$/u, '');
  if (path === '') return { bucket, prefix: '' };
  if (path.length > prefixBytesMax - 1 || !isSafePath(path))
    return `the prefix "${path.slice(0, 200)}" must be a relative key prefix (no "..", "." or empty segments)`;
  return { bucket, prefix: `${path}/` };
}

export function replicasOfArgs(value: JsonValue | undefined): Replicas | undefined {
  if (value === undefined || value === null) return replicasDefault;
  if (value === 'all') return 'all';
  if (typeof value === 'string' && /^[1-9][0-9]{0,3}$/u.test(value)) return replicasOfArgs(Number(value));
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= databaseReplicasMax
    ? value
    : undefined;
}

function fieldsOf(args: JsonValue): Readonly<Record<string, JsonValue>> | undefined {
  return typeof args === 'object' && args !== null && !Array.isArray(args)
    ? (args as Readonly<Record<string, JsonValue>>)
    : undefined;
}

function unknownField(fields: Readonly<Record<string, JsonValue>>, known: readonly string[]): string | undefined {
  const unknown = Object.keys(fields).find((name) => !known.includes(name));
  return unknown === undefined ? undefined : `unknown field ${unknown} (only ${known.join(', ')})`;
}

function nameProblem(value: JsonValue | undefined, what: string): string | undefined {
  return typeof value === 'string' && isName(value)
    ? undefined
    : `${what} must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit, without "/" or ".."`;
}

/** The alias changes of a swap's args (Elasticsearch's `actions` shape), or why not. */
export function aliasChangesOf(value: JsonValue | undefined): AliasChange[] | string {
  if (!Array.isArray(value)) return 'actions must be a list such as [{"add": {"alias": "a", "database": "d"}}]';
  if (value.length === 0 || value.length > aliasActionsMax) return `actions must hold 1..${aliasActionsMax} changes`;
  const changes: AliasChange[] = [];
  for (const [k, item] of (value as readonly JsonValue[]).entries()) {
    const fields = fieldsOf(item);
    const keys = fields === undefined ? [] : Object.keys(fields);
    const op = keys[0];
    if (fields === undefined || keys.length !== 1 || (op !== 'add' && op !== 'remove'))
      return `actions[${k}] must be {"add": {...}} or {"remove": {...}}`;
    const change = fieldsOf(fields[op] ?? null);
    if (change === undefined) return `actions[${k}].${op} must be {"alias": ..., "database": ...}`;
    const problem =
      unknownField(change, ['alias', 'database']) ??
      nameProblem(change['alias'], `actions[${k}].${op}.alias`) ??
      nameProblem(change['database'], `actions[${k}].${op}.database`);
    if (problem !== undefined) return problem;
    changes.push({ op, alias: change['alias'] as string, database: change['database'] as string });
  }
  return changes;
}

/** Why `args` do not suit the database kind, or undefined when they do. */
export function databaseArgsProblem(kind: DatabaseKind, args: JsonValue): string | undefined {
  const fields = fieldsOf(args);
  if (fields === undefined) return 'args must be an object such as {"name": "shop"}';
  switch (kind) {
    case databaseAddKind: {
      const source = parseSource(fields['source']);
      const pattern = fields['metadataPattern'];
      const lazy = fields['lazy'];
      return (
        unknownField(fields, ['name', 'source', 'replicas', 'lazy', 'metadataPattern']) ??
        nameProblem(fields['name'], 'name') ??
        (typeof source === 'string' ? source : undefined) ??
        (replicasOfArgs(fields['replicas']) === undefined
          ? `replicas must be an integer 1..${databaseReplicasMax} or "all"`
          : undefined) ??
        (lazy === undefined || lazy === null || typeof lazy === 'boolean' ? undefined : 'lazy must be true or false') ??
        (pattern === undefined ||
        pattern === null ||
        (typeof pattern === 'string' && pattern.length <= metadataPatternBytesMax)
          ? undefined
          : `metadataPattern must be a string of at most ${metadataPatternBytesMax} characters`)
      );
    }
    case databaseReloadKind:
    case databaseRemoveKind:
      return unknownField(fields, ['name']) ?? nameProblem(fields['name'], 'name');
    case aliasSwapKind: {
      const unknown = unknownField(fields, ['actions', 'rollback']);
      if (unknown !== undefined) return unknown;
      if (fields['rollback'] === true) return fields['actions'] === undefined ? undefined : 'rollback takes no actions';
      if (fields['rollback'] !== undefined && fields['rollback'] !== false) return 'rollback must be true or false';
      const changes = aliasChangesOf(fields['actions']);
      return typeof changes === 'string' ? changes : undefined;
    }
  }
}
