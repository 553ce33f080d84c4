// Wire and snapshot formats of a database shard group's model (src/models/shard.ts): the shard's
// manifest per version (its files and the database's global files, keys relative to the prefix,
// with sizes and ETags) and each replica's recorded load state. Commands are msgpack maps; every
// one carries the proposer's request id (`request`), the key by which a follower's proposal,
// forwarded to the group's leader inside Raft, is recognized when it is applied.
//
// Decoding validates every field and bounds every size (the manifest validators are the catalog's,
// src/codec/meta-databases.ts); anything else is a CodecError naming the bad field.
//
// Called by: src/models/shard.ts, src/control/shard-sync.ts (through the model), src/node/.

import type { NodeId } from '../base/ids.ts';
import {
  boundedText,
  errorTextBytesMax,
  manifestFiles,
  manifestFilesMax,
  nameOf,
  positiveNode,
  shardId,
  type ManifestFile,
  type RecordedReplicaState,
} from './meta-databases.ts';
import { decode, encode } from './msgpack.ts';
import { counter, fail, list, oneOf, record } from './validate.ts';

/** Versions a shard model holds at most (a current and a reload's next, with room to spare). */
export const shardVersionsMax = 4;
/** Nodes a shard command names at most (`shard.forget`): a shard's copies are at most the cluster's nodes. */
export const shardNodesMax = 1024;
/** Replica states a shard model holds at most (every node, for each version it holds). */
export const shardReplicaStatesMax = shardVersionsMax * shardNodesMax;
export const requestIdBytesMax = 64;

/** One version of the shard: what a replica downloads for it. */
export interface ShardVersion {
  readonly version: number;
  /** When the prefix was listed (the proposer's clock). */
  readonly listedMs: number;
  /** The shard's files (`shard=<id>/...`, or every file of an unsharded prefix). */
  readonly files: readonly ManifestFile[];
  /** The database's global files (`global/...`), downloaded with every shard. */
  readonly global: readonly ManifestFile[];
}

export interface ShardReplicaRecord {
  readonly version: number;
  readonly node: NodeId;
  readonly state: RecordedReplicaState;
  readonly error: string | null;
  readonly atMs: number;
}

export type ShardCommand =
  /** Names the shard (once) and records a version's manifest; a known version changes nothing. */
  | {
      readonly type: 'shard.version';
      readonly request: string;
      readonly database: string;
      readonly shard: string;
      readonly version: ShardVersion;
    }
  /** Keeps only these versions (and their replicas' states): the catalog dropped the others. */
  | { readonly type: 'shard.retain'; readonly request: string; readonly versions: readonly number[] }
  /** Drops these nodes' load states (of every version): they left the group (the leader's configuration). */
  | { readonly type: 'shard.forget'; readonly request: string; readonly nodes: readonly NodeId[] }
  /** A replica's load state for a version the model holds. */
  | {
      readonly type: 'shard.replica';
      readonly request: string;
      readonly version: number;
      readonly node: NodeId;
      readonly state: RecordedReplicaState;
      readonly error: string | null;
      readonly atMs: number;
    };

export const shardCommandTypes = [
  'shard.version',
  'shard.retain',
  'shard.forget',
  'shard.replica',
] as const satisfies readonly ShardCommand['type'][];

export interface ShardSnapshot {
  readonly database: string | null;
  readonly shard: string | null;
  readonly versions: readonly ShardVersion[];
  readonly replicas: readonly ShardReplicaRecord[];
}

function requestId(value: unknown, path: string): string {
  const id = boundedText(value, path, requestIdBytesMax);
  if (id.length === 0) fail(path, 'expected a request id');
  return id;
}

export function shardVersion(value: unknown, path: string): ShardVersion {
  const raw = record(value, path);
  const files = manifestFiles(raw['files'], `${path}.files`);
  const global = manifestFiles(raw['global'], `${path}.global`);
  if (files.length + global.length > manifestFilesMax) fail(path, `more than ${manifestFilesMax} files`);
  return {
    version: counter(raw['version'], `${path}.version`),
    listedMs: counter(raw['listedMs'], `${path}.listedMs`),
    files,
    global,
  };
}

function replicaRecord(value: unknown, path: string): ShardReplicaRecord {
  const raw = record(value, path);
  const error = raw['error'];
  return {
    version: counter(raw['version'], `${path}.version`),
    node: positiveNode(raw['node'], `${path}.node`),
    state: oneOf(raw['state'], `${path}.state`, ['loaded', 'failed'] as const),
    error: error === null ? null : boundedText(error, `${path}.error`, errorTextBytesMax),
    atMs: counter(raw['atMs'], `${path}.atMs`),
  };
}

export function shardCommand(value: unknown, path = 'shard'): ShardCommand {
  const raw = record(value, path);
  const type = oneOf(raw['type'], `${path}.type`, shardCommandTypes);
  const request = requestId(raw['request'], `${path}.request`);
  switch (type) {
    case 'shard.version':
      return {
        type,
        request,
        database: nameOf(raw['database'], `${path}.database`),
        shard: shardId(raw['shard'], `${path}.shard`),
        version: shardVersion(raw['version'], `${path}.version`),
      };
    case 'shard.retain':
      return {
        type,
        request,
        versions: list(raw['versions'], `${path}.versions`, shardVersionsMax).map((item, k) =>
          counter(item, `${path}.versions[${k}]`),
        ),
      };
    case 'shard.forget':
      return {
        type,
        request,
        nodes: list(raw['nodes'], `${path}.nodes`, shardNodesMax).map((item, k) =>
          positiveNode(item, `${path}.nodes[${k}]`),
        ),
      };
    case 'shard.replica':
      return { type, request, ...replicaRecord(raw, path) };
  }
}

export function encodeShardCommand(command: ShardCommand): Uint8Array {
  return encode(command);
}

export function decodeShardCommand(data: Uint8Array): ShardCommand {
  return shardCommand(decode(data));
}

/** The request id of a command's bytes, or undefined when they are not a command. */
export function shardRequestOf(data: Uint8Array): string | undefined {
  try {
    return decodeShardCommand(data).request;
  } catch {
    return undefined;
  }
}

export function encodeShardSnapshot(snapshot: ShardSnapshot): Uint8Array {
  return encode(snapshot);
}

export function decodeShardSnapshot(data: Uint8Array): ShardSnapshot {
  const raw = record(decode(data), 'shardsnap');
  return {
    database: raw['database'] === null ? null : nameOf(raw['database'], 'shardsnap.database'),
    shard: raw['shard'] === null ? null : shardId(raw['shard'], 'shardsnap.shard'),
    versions: list(raw['versions'], 'shardsnap.versions', shardVersionsMax).map((item, k) =>
      shardVersion(item, `shardsnap.versions[${k}]`),
    ),
    replicas: list(raw['replicas'], 'shardsnap.replicas', shardReplicaStatesMax).map((item, k) =>
      replicaRecord(item, `shardsnap.replicas[${k}]`),
    ),
  };
}
