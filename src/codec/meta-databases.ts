// Wire and snapshot formats of the database catalog: the part of the meta model (group 0) that
// holds databases (their S3 source, manifests and replica placement), the replicas' load states and
// the aliases. Kept apart from src/codec/meta.ts so the catalog can move into per-shard groups later
// (each shard's manifest and replica states become that group's model) without touching the rest of
// the meta model: the meta command `databases` only carries one of the commands below.
//
// Decoding validates every field and bounds every size; anything else is a CodecError naming the
// bad field. Names (databases, aliases), shard ids and manifest keys are checked here once, so a
// key can be used as a relative path on disk: no `..`, no empty or absolute segments.
//
// Called by: src/codec/meta.ts (the `databases` command and the snapshot part), src/models/
// meta-databases.ts, src/control/database-steps.ts, src/data/ (downloads), src/api/ (routes).

import type { NodeId } from '../base/ids.ts';
import { utf8Length } from '../base/bytes.ts';
import { boolean, counter, fail, list, nodeId, oneOf, record } from './validate.ts';

/** A database or alias name: letters, digits, `.`, `_`, `-`; no `..`; starts with a letter or digit. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/u;
/** A shard id, from the folder name `shard=<id>`. */
export const shardIdPattern = /^[A-Za-z0-9_-]{1,64}$/u;
export const nameBytesMax = 128;
/** An S3 bucket name (the rules S3 applies to new buckets). */
export const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/u;
export const prefixBytesMax = 512;
export const keyBytesMax = 1024;
export const etagBytesMax = 128;
/** Files in one manifest (every shard and global together); a larger listing fails the action. */
export const manifestFilesMax = 4000;
export const shardsMax = 1024;
export const errorTextBytesMax = 1024;
/** Databases in the catalog and aliases at most (the model refuses one more). */
export const databasesMax = 1000;
export const aliasesMax = 1000;
/** Alias changes in one swap. */
export const aliasActionsMax = 64;
export const metadataPatternBytesMax = 256;

export type ReplicaState = 'loading' | 'loaded' | 'failed' | 'evicted';
export const replicaStates: readonly ReplicaState[] = ['loading', 'loaded', 'failed', 'evicted'];
/** The states a replica records through the log; `loading` is implied by an assignment without one. */
export type RecordedReplicaState = 'loaded' | 'failed';

/** One S3 object of a manifest. `path` is its key relative to the database's prefix. */
export interface ManifestFile {
  readonly path: string;
  readonly bytes: number;
  readonly etag: string;
}

export interface ShardManifest {
  readonly shard: string;
  readonly files: readonly ManifestFile[];
  /** The nodes holding a copy; empty for `replicas: "all"` (every registered node, joiners included). */
  readonly nodes: readonly NodeId[];
}

/** One version of a database: what was listed under its prefix, and where each shard is placed. */
export interface DatabaseVersion {
  readonly version: number;
  /** When the prefix was listed (the proposer's clock). */
  readonly listedMs: number;
  readonly shards: readonly ShardManifest[];
  /** The files under `<prefix>/global/`, on every node holding a shard. */
  readonly global: readonly ManifestFile[];
}

export type Replicas = number | 'all';

export interface DatabaseSpec {
  readonly name: string;
  readonly bucket: string;
  /** Empty, or ending with `/`. */
  readonly prefix: string;
  readonly replicas: Replicas;
  readonly lazy: boolean;
  readonly metadataPattern: string | null;
}

export interface ReplicaRecord {
  readonly version: number;
  readonly shard: string;
  readonly node: NodeId;
  readonly state: RecordedReplicaState;
  readonly error: string | null;
  readonly atMs: number;
}

export interface DatabaseRecord extends DatabaseSpec {
  readonly createdMs: number;
  /** The version queries use. */
  readonly current: DatabaseVersion;
  /** A reload's version, loading until it is loaded on enough copies; then it becomes current. */
  readonly next: DatabaseVersion | null;
  readonly replicaStates: readonly ReplicaRecord[];
}

export interface AliasChange {
  readonly op: 'add' | 'remove';
  readonly alias: string;
  readonly database: string;
}

export type DatabasesCommand =
  | {
      readonly type: 'db.create';
      readonly spec: DatabaseSpec;
      readonly version: DatabaseVersion;
      readonly atMs: number;
    }
  | { readonly type: 'db.stage'; readonly name: string; readonly version: DatabaseVersion }
  | { readonly type: 'db.drop'; readonly name: string }
  | {
      readonly type: 'db.replica';
      readonly name: string;
      readonly version: number;
      readonly node: NodeId;
      readonly shards: readonly string[];
      readonly state: RecordedReplicaState;
      readonly error: string | null;
      readonly atMs: number;
    }
  | { readonly type: 'alias.swap'; readonly changes: readonly AliasChange[] }
  | { readonly type: 'alias.rollback' };

export const databasesCommandTypes = [
  'db.create',
  'db.stage',
  'db.drop',
  'db.replica',
  'alias.swap',
  'alias.rollback',
] as const satisfies readonly DatabasesCommand['type'][];

export interface DatabasesSnapshot {
  readonly databases: readonly DatabaseRecord[];
  readonly aliases: readonly { readonly alias: string; readonly database: string }[];
  /** The mapping before the last swap (what a rollback restores), or null. */
  readonly previousAliases: readonly { readonly alias: string; readonly database: string }[] | null;
}

// ---- field validators -------------------------------------------------------------------------

export function boundedText(value: unknown, path: string, bytesMax: number): string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  if (utf8Length(value) > bytesMax) fail(path, `longer than ${bytesMax} bytes`);
  return value;
}

/** Whether `name` is a valid database or alias name. */
export function isName(name: string): boolean {
  return namePattern.test(name) && !name.includes('..');
}

export function nameOf(value: unknown, path: string): string {
  const name = boundedText(value, path, nameBytesMax);
  if (!isName(name)) fail(path, 'expected letters, digits, ".", "_" or "-" (no "/", no "..")');
  return name;
}

/** Whether a key relative to a prefix can be a relative path on disk. */
export function isSafePath(path: string): boolean {
  if (path.length === 0 || utf8Length(path) > keyBytesMax || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

function manifestFile(value: unknown, path: string): ManifestFile {
  const raw = record(value, path);
  const file = boundedText(raw['path'], `${path}.path`, keyBytesMax);
  if (!isSafePath(file)) fail(`${path}.path`, 'expected a relative path without "..", "." or empty segments');
  return {
    path: file,
    bytes: counter(raw['bytes'], `${path}.bytes`),
    etag: boundedText(raw['etag'], `${path}.etag`, etagBytesMax),
  };
}

export function manifestFiles(value: unknown, path: string): ManifestFile[] {
  return list(value, path, manifestFilesMax).map((item, k) => manifestFile(item, `${path}[${k}]`));
}

export function positiveNode(value: unknown, path: string): NodeId {
  const id = nodeId(value, path);
  if (id === 0) fail(path, 'expected a positive node id');
  return id;
}

export function shardId(value: unknown, path: string): string {
  const shard = boundedText(value, path, 64);
  if (!shardIdPattern.test(shard)) fail(path, 'expected a shard id (letters, digits, "_", "-")');
  return shard;
}

export function databaseVersion(value: unknown, path: string): DatabaseVersion {
  const raw = record(value, path);
  const shards = list(raw['shards'], `${path}.shards`, shardsMax).map((item, k): ShardManifest => {
    const shard = record(item, `${path}.shards[${k}]`);
    return {
      shard: shardId(shard['shard'], `${path}.shards[${k}].shard`),
      files: manifestFiles(shard['files'], `${path}.shards[${k}].files`),
      nodes: list(shard['nodes'], `${path}.shards[${k}].nodes`, 1024).map((node, j) =>
        positiveNode(node, `${path}.shards[${k}].nodes[${j}]`),
      ),
    };
  });
  const global = manifestFiles(raw['global'], `${path}.global`);
  const total = shards.reduce((sum, shard) => sum + shard.files.length, global.length);
  if (total > manifestFilesMax) fail(path, `more than ${manifestFilesMax} files`);
  if (new Set(shards.map((shard) => shard.shard)).size !== shards.length) fail(`${path}.shards`, 'repeated shard id');
  return {
    version: counter(raw['version'], `${path}.version`),
    listedMs: counter(raw['listedMs'], `${path}.listedMs`),
    shards,
    global,
  };
}

export function replicasOf(value: unknown, path: string): Replicas {
  if (value === 'all') return 'all';
  const count = counter(value, path);
  if (count < 1 || count > 1024) fail(path, 'expected 1..1024 or "all"');
  return count;
}

export function databaseSpec(value: unknown, path: string): DatabaseSpec {
  const raw = record(value, path);
  const bucket = boundedText(raw['bucket'], `${path}.bucket`, 63);
  if (!bucketPattern.test(bucket)) fail(`${path}.bucket`, 'expected an S3 bucket name');
  const prefix = boundedText(raw['prefix'], `${path}.prefix`, prefixBytesMax);
  if (prefix !== '' && (!prefix.endsWith('/') || !isSafePath(prefix.slice(0, -1))))
    fail(`${path}.prefix`, 'expected "" or a relative key prefix ending with "/"');
  const pattern = raw['metadataPattern'];
  return {
    name: nameOf(raw['name'], `${path}.name`),
    bucket,
    prefix,
    replicas: replicasOf(raw['replicas'], `${path}.replicas`),
    lazy: boolean(raw['lazy'], `${path}.lazy`),
    metadataPattern: pattern === null ? null : boundedText(pattern, `${path}.metadataPattern`, metadataPatternBytesMax),
  };
}

function replicaRecord(value: unknown, path: string): ReplicaRecord {
  const raw = record(value, path);
  const error = raw['error'];
  return {
    version: counter(raw['version'], `${path}.version`),
    shard: shardId(raw['shard'], `${path}.shard`),
    node: positiveNode(raw['node'], `${path}.node`),
    state: oneOf(raw['state'], `${path}.state`, ['loaded', 'failed'] as const),
    error: error === null ? null : boundedText(error, `${path}.error`, errorTextBytesMax),
    atMs: counter(raw['atMs'], `${path}.atMs`),
  };
}

function databaseRecord(value: unknown, path: string): DatabaseRecord {
  const raw = record(value, path);
  return {
    ...databaseSpec(raw, path),
    createdMs: counter(raw['createdMs'], `${path}.createdMs`),
    current: databaseVersion(raw['current'], `${path}.current`),
    next: raw['next'] === null ? null : databaseVersion(raw['next'], `${path}.next`),
    replicaStates: list(raw['replicaStates'], `${path}.replicaStates`, shardsMax * 1024).map((item, k) =>
      replicaRecord(item, `${path}.replicaStates[${k}]`),
    ),
  };
}

function aliasChange(value: unknown, path: string): AliasChange {
  const raw = record(value, path);
  return {
    op: oneOf(raw['op'], `${path}.op`, ['add', 'remove'] as const),
    alias: nameOf(raw['alias'], `${path}.alias`),
    database: nameOf(raw['database'], `${path}.database`),
  };
}

function aliasList(value: unknown, path: string): { alias: string; database: string }[] {
  return list(value, path, aliasesMax).map((item, k) => {
    const raw = record(item, `${path}[${k}]`);
    return {
      alias: nameOf(raw['alias'], `${path}[${k}].alias`),
      database: nameOf(raw['database'], `${path}[${k}].database`),
    };
  });
}

// ---- commands and snapshot --------------------------------------------------------------------

export function databasesCommand(value: unknown, path: string): DatabasesCommand {
  const raw = record(value, path);
  const type = oneOf(raw['type'], `${path}.type`, databasesCommandTypes);
  switch (type) {
    case 'db.create':
      return {
        type,
        spec: databaseSpec(raw['spec'], `${path}.spec`),
        version: databaseVersion(raw['version'], `${path}.version`),
        atMs: counter(raw['atMs'], `${path}.atMs`),
      };
    case 'db.stage':
      return {
        type,
        name: nameOf(raw['name'], `${path}.name`),
        version: databaseVersion(raw['version'], `${path}.version`),
      };
    case 'db.drop':
      return { type, name: nameOf(raw['name'], `${path}.name`) };
    case 'db.replica': {
      const error = raw['error'];
      return {
        type,
        name: nameOf(raw['name'], `${path}.name`),
        version: counter(raw['version'], `${path}.version`),
        node: positiveNode(raw['node'], `${path}.node`),
        shards: list(raw['shards'], `${path}.shards`, shardsMax).map((item, k) =>
          shardId(item, `${path}.shards[${k}]`),
        ),
        state: oneOf(raw['state'], `${path}.state`, ['loaded', 'failed'] as const),
        error: error === null ? null : boundedText(error, `${path}.error`, errorTextBytesMax),
        atMs: counter(raw['atMs'], `${path}.atMs`),
      };
    }
    case 'alias.swap':
      return {
        type,
        changes: list(raw['changes'], `${path}.changes`, aliasActionsMax).map((item, k) =>
          aliasChange(item, `${path}.changes[${k}]`),
        ),
      };
    case 'alias.rollback':
      return { type };
  }
}

export function databasesSnapshot(value: unknown, path: string): DatabasesSnapshot {
  const raw = record(value, path);
  return {
    databases: list(raw['databases'], `${path}.databases`, databasesMax).map((item, k) =>
      databaseRecord(item, `${path}.databases[${k}]`),
    ),
    aliases: aliasList(raw['aliases'], `${path}.aliases`),
    previousAliases:
      raw['previousAliases'] === null ? null : aliasList(raw['previousAliases'], `${path}.previousAliases`),
  };
}
