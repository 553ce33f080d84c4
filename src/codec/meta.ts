// Wire and snapshot formats of the meta model (group 0): its commands, carried in Raft entries as
// msgpack maps, and its snapshot. Decoding validates every field into the model's types and
// bounds every size; anything else is a CodecError naming the bad field. The same validators check
// a command that arrives as JSON (a follower forwarding a schedule to the meta leader), so a
// command is checked the same way whichever way it came.
//
// Times are milliseconds since the Unix epoch, written by the proposer: the model never reads a
// clock. JSON values (action args, state payload and error) are plain JSON: null, booleans,
// finite numbers, strings, arrays and string-keyed maps, at most `jsonDepthMax` deep and
// `jsonBytesMax` bytes as JSON text.
//
// Called by: src/models/meta.ts (apply, snapshot, restore), src/api/ (commands proposed and
// forwarded), src/control/ (executor steps).

import type { GroupId, NodeId } from '../base/ids.ts';
import { utf8Length } from '../base/bytes.ts';
import {
  databasesCommand,
  databasesSnapshot,
  nameOf,
  shardId,
  type DatabasesCommand,
  type DatabasesSnapshot,
} from './meta-databases.ts';
import { decode, encode } from './msgpack.ts';
import { counter, fail, list, nodeId, oneOf, record } from './validate.ts';
import {
  finishedMove,
  loadFailure,
  loadFailuresMax,
  moveHistoryMax,
  moveRecord,
  placementCommand,
  placementCommandTypes,
  settingsPatch,
  type FinishedMove,
  type LoadFailure,
  type MoveRecord,
  type PlacementCommand,
  type PlacementSettingsRecord,
} from './meta-placement.ts';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type AttributeValue = string | number | boolean | null;
export type ActionPhase = 'NEW' | 'RUNNING' | 'DONE' | 'FAILED';
export const actionPhases: readonly ActionPhase[] = ['NEW', 'RUNNING', 'DONE', 'FAILED'];
export type NodeStatus = 'JOINING' | 'ACTIVE' | 'LEAVING';
/** `db`: a database shard's own group (src/models/shard.ts), named by the record's `shard`. */
export type GroupKind = 'meta' | 'kv' | 'db';
export const groupKinds: readonly GroupKind[] = ['meta', 'kv', 'db'];

export const actionKindBytesMax = 256;
export const jsonBytesMax = 64 * 1024;
export const jsonDepthMax = 32;
export const metadataEntriesMax = 64;
export const attributesEntriesMax = 64;
export const textBytesMax = 1024;
export const replicasMax = 1024;
export const clusterIdBytesMax = 256;
/** What a snapshot may hold; the model's own limits (actionsQueuedMax, actionsFinishedMax) are lower. */
const actionsInSnapshotMax = 1 << 20;
const nodesInSnapshotMax = 1 << 16;
const groupsInSnapshotMax = 1 << 20;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/u;

export interface ActionState {
  readonly phase: ActionPhase;
  readonly payload: JsonValue;
  readonly error: JsonValue;
}

/** An action as scheduled (what the request carries); the model adds the rest. */
export interface ActionRequest {
  /** A hyphenated lower-case UUID, from the caller or the proposer. */
  readonly id: string;
  readonly kind: string;
  readonly args: JsonValue;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdMs: number;
  /** The node the action was scheduled through (its agent API lists it in actions/queue and finished). */
  readonly node: NodeId;
  /** How long the action may run once started before it is FAILED. */
  readonly timeoutMs: number;
}

/** An action's invocation record (the fields of an agent action execution, plus dram's own). */
export interface ActionRecord extends ActionRequest {
  readonly scheduledMs: number;
  /** When it went RUNNING (null while NEW). */
  readonly startedMs: number | null;
  readonly finishedMs: number | null;
  readonly state: ActionState;
  /** Bumped by every state change; an update names the version it read, so a stale one is refused. */
  readonly version: number;
}

export interface NodeAddress {
  readonly member: string | null;
  readonly client: string | null;
  readonly raft: string | null;
}

export interface NodeRecord {
  readonly id: NodeId;
  readonly address: NodeAddress;
  readonly agentVersion: string;
  readonly storeVersion: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly status: NodeStatus;
}

export interface GroupRecord {
  readonly id: GroupId;
  readonly kind: GroupKind;
  readonly replicas: readonly NodeId[];
  /**
   * The log index of the group's configuration entry the replicas were taken from (absent: not
   * known, e.g. the first placement). A node drops its replica only on a record at or after the
   * configuration it applied itself (src/control/group-hosting.ts).
   */
  readonly confIndex?: number;
  /** For a `db` group: the database and the shard it holds (never changes once recorded). */
  readonly shard?: { readonly database: string; readonly shard: string };
}

export type MetaCommand =
  | { readonly type: 'cluster.set'; readonly clusterId: string }
  | { readonly type: 'node.upsert'; readonly node: NodeRecord }
  | { readonly type: 'node.remove'; readonly node: NodeId }
  | { readonly type: 'group.set'; readonly group: GroupRecord }
  | { readonly type: 'group.remove'; readonly group: GroupId }
  /**
   * A database shard's group that lost its quorum for good (its lost voters gone past the grace
   * period) is founded again: its record goes, and the shard gets a new group (the next id) on
   * these nodes, bootstrapped as a new shard's group is (its state is rebuilt from the catalog).
   */
  | {
      readonly type: 'group.refound';
      readonly group: GroupId;
      readonly replicas: readonly NodeId[];
      /** The proposer's clock (a move of the old group ends in the history at this time). */
      readonly atMs: number;
    }
  | { readonly type: 'replication.set'; readonly kind: GroupKind; readonly factor: number }
  | { readonly type: 'action.schedule'; readonly action: ActionRequest; readonly atMs: number }
  | {
      readonly type: 'action.update';
      readonly id: string;
      /** The record's version the proposer read; another one means someone else changed it first. */
      readonly version: number;
      readonly state: ActionState;
      readonly atMs: number;
    }
  | { readonly type: 'action.cancel'; readonly id: string; readonly reason: string; readonly atMs: number }
  /** The database catalog's own commands (src/codec/meta-databases.ts). */
  | { readonly type: 'databases'; readonly command: DatabasesCommand }
  | PlacementCommand;

export const metaCommandTypes = [
  'cluster.set',
  'node.upsert',
  'node.remove',
  'group.set',
  'group.remove',
  'group.refound',
  'replication.set',
  'action.schedule',
  'action.update',
  'action.cancel',
  'databases',
  ...placementCommandTypes,
] as const satisfies readonly MetaCommand['type'][];

export interface MetaSnapshot {
  readonly version: 1;
  readonly clusterId: string;
  readonly nodes: readonly NodeRecord[];
  readonly groups: readonly GroupRecord[];
  readonly replication: readonly { readonly kind: GroupKind; readonly factor: number }[];
  /** Unfinished actions in schedule order. */
  readonly queued: readonly ActionRecord[];
  /** Finished actions in finish order. */
  readonly finished: readonly ActionRecord[];
  /** The database catalog; absent in snapshots written before it existed. */
  readonly databases?: DatabasesSnapshot;
  /** Placement (absent in snapshots written before it): moves in progress, the last finished, settings. */
  /** The next id a database shard's group gets (absent in snapshots written before db groups). */
  readonly dbGroupNext?: number;
  readonly placement?: {
    readonly moves: readonly MoveRecord[];
    readonly history: readonly FinishedMove[];
    readonly settings: Partial<PlacementSettingsRecord>;
    /** Absent in snapshots written before load failures were remembered: none. */
    readonly loadFailures?: readonly LoadFailure[];
  };
}

// ---- field validators -------------------------------------------------------------------------

export function text(value: unknown, path: string, bytesMax: number): string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  if (utf8Length(value) > bytesMax) fail(path, `longer than ${bytesMax} bytes`);
  return value;
}

function nullableText(value: unknown, path: string, bytesMax: number): string | null {
  return value === null ? null : text(value, path, bytesMax);
}

function time(value: unknown, path: string): number {
  return counter(value, path);
}

function nullableTime(value: unknown, path: string): number | null {
  return value === null ? null : time(value, path);
}

/** An action id: a hyphenated UUID, lower case (the API lower-cases what callers send). */
export function actionId(value: unknown, path: string): string {
  if (typeof value !== 'string' || !uuidPattern.test(value)) fail(path, 'expected a lower-case hyphenated UUID');
  return value;
}

export function actionKind(value: unknown, path: string): string {
  const kind = text(value, path, actionKindBytesMax);
  if (!/^[a-z0-9.-]+\/[a-z0-9._-]+$/u.test(kind)) fail(path, 'expected <domain>/<name>');
  return kind;
}

/** Checks a JSON value (no undefined, functions, bytes, NaN or cycles) within depth and size limits. */
export function jsonValue(value: unknown, path: string, bytesMax = jsonBytesMax): JsonValue {
  let bytes = 0;
  const walk = (item: unknown, at: string, depth: number): void => {
    if (depth > jsonDepthMax) fail(at, `nested deeper than ${jsonDepthMax}`);
    if (item === null || typeof item === 'boolean') {
      bytes += 5;
    } else if (typeof item === 'number') {
      if (!Number.isFinite(item)) fail(at, 'expected a finite number');
      bytes += 24;
    } else if (typeof item === 'string') {
      bytes += utf8Length(item) + 2;
    } else if (Array.isArray(item)) {
      bytes += 2;
      item.forEach((element, k) => {
        walk(element, `${at}[${k}]`, depth + 1);
      });
    } else if (typeof item === 'object' && !(item instanceof Uint8Array)) {
      bytes += 2;
      for (const [key, element] of Object.entries(item)) {
        bytes += utf8Length(key) + 3;
        walk(element, `${at}.${key}`, depth + 1);
      }
    } else {
      fail(at, 'expected a JSON value');
    }
    if (bytes > bytesMax) fail(path, `larger than ${bytesMax} bytes`);
  };
  walk(value, path, 0);
  return value as JsonValue;
}

export function stringMap(value: unknown, path: string, entriesMax: number): Record<string, string> {
  const raw = record(value, path);
  const entries = Object.entries(raw);
  if (entries.length > entriesMax) fail(path, `more than ${entriesMax} entries`);
  const out: Record<string, string> = {};
  for (const [key, item] of entries) {
    text(key, `${path} key`, textBytesMax);
    out[key] = text(item, `${path}.${key}`, textBytesMax);
  }
  return out;
}

export function attributeMap(value: unknown, path: string): Record<string, AttributeValue> {
  const raw = record(value, path);
  const entries = Object.entries(raw);
  if (entries.length > attributesEntriesMax) fail(path, `more than ${attributesEntriesMax} entries`);
  const out: Record<string, AttributeValue> = {};
  for (const [key, item] of entries) {
    text(key, `${path} key`, textBytesMax);
    if (typeof item === 'string') out[key] = text(item, `${path}.${key}`, textBytesMax);
    else if (item === null || typeof item === 'boolean') out[key] = item;
    else if (typeof item === 'number' && Number.isFinite(item)) out[key] = item;
    else fail(`${path}.${key}`, 'expected a string, number, boolean or null');
  }
  return out;
}

function groupIdOf(value: unknown, path: string): GroupId {
  return counter(value, path) as GroupId;
}

function positiveNode(value: unknown, path: string): NodeId {
  const id = nodeId(value, path);
  if (id === 0) fail(path, 'expected a positive node id');
  return id;
}

export function actionState(value: unknown, path: string): ActionState {
  const raw = record(value, path);
  return {
    phase: oneOf(raw['phase'], `${path}.phase`, actionPhases),
    payload: jsonValue(raw['payload'], `${path}.payload`),
    error: jsonValue(raw['error'], `${path}.error`),
  };
}

export function actionRequest(value: unknown, path: string): ActionRequest {
  const raw = record(value, path);
  return {
    id: actionId(raw['id'], `${path}.id`),
    kind: actionKind(raw['kind'], `${path}.kind`),
    args: jsonValue(raw['args'], `${path}.args`),
    metadata: stringMap(raw['metadata'], `${path}.metadata`, metadataEntriesMax),
    createdMs: time(raw['createdMs'], `${path}.createdMs`),
    node: positiveNode(raw['node'], `${path}.node`),
    timeoutMs: time(raw['timeoutMs'], `${path}.timeoutMs`),
  };
}

function actionRecord(value: unknown, path: string): ActionRecord {
  const raw = record(value, path);
  return {
    ...actionRequest(raw, path),
    scheduledMs: time(raw['scheduledMs'], `${path}.scheduledMs`),
    startedMs: nullableTime(raw['startedMs'], `${path}.startedMs`),
    finishedMs: nullableTime(raw['finishedMs'], `${path}.finishedMs`),
    state: actionState(raw['state'], `${path}.state`),
    version: counter(raw['version'], `${path}.version`),
  };
}

function nodeRecord(value: unknown, path: string): NodeRecord {
  const raw = record(value, path);
  const address = record(raw['address'], `${path}.address`);
  return {
    id: positiveNode(raw['id'], `${path}.id`),
    address: {
      member: nullableText(address['member'], `${path}.address.member`, textBytesMax),
      client: nullableText(address['client'], `${path}.address.client`, textBytesMax),
      raft: nullableText(address['raft'], `${path}.address.raft`, textBytesMax),
    },
    agentVersion: text(raw['agentVersion'], `${path}.agentVersion`, textBytesMax),
    storeVersion: text(raw['storeVersion'], `${path}.storeVersion`, textBytesMax),
    attributes: attributeMap(raw['attributes'], `${path}.attributes`),
    status: oneOf(raw['status'], `${path}.status`, ['JOINING', 'ACTIVE', 'LEAVING'] as const),
  };
}

function groupShard(value: unknown, path: string): { database: string; shard: string } {
  const raw = record(value, path);
  return { database: nameOf(raw['database'], `${path}.database`), shard: shardId(raw['shard'], `${path}.shard`) };
}

function groupRecord(value: unknown, path: string): GroupRecord {
  const raw = record(value, path);
  return {
    id: groupIdOf(raw['id'], `${path}.id`),
    kind: oneOf(raw['kind'], `${path}.kind`, groupKinds),
    replicas: list(raw['replicas'], `${path}.replicas`, replicasMax).map((item, k) =>
      positiveNode(item, `${path}.replicas[${k}]`),
    ),
    ...(raw['confIndex'] === undefined ? {} : { confIndex: counter(raw['confIndex'], `${path}.confIndex`) }),
    ...(raw['shard'] === undefined ? {} : { shard: groupShard(raw['shard'], `${path}.shard`) }),
  };
}

// ---- commands ---------------------------------------------------------------------------------

/** Validates a decoded (msgpack) or parsed (JSON) value into a command. */
export function metaCommand(value: unknown, path = 'meta'): MetaCommand {
  const raw = record(value, path);
  const type = oneOf(raw['type'], `${path}.type`, metaCommandTypes);
  switch (type) {
    case 'cluster.set':
      return { type, clusterId: text(raw['clusterId'], `${path}.clusterId`, clusterIdBytesMax) };
    case 'node.upsert':
      return { type, node: nodeRecord(raw['node'], `${path}.node`) };
    case 'node.remove':
      return { type, node: positiveNode(raw['node'], `${path}.node`) };
    case 'group.set':
      return { type, group: groupRecord(raw['group'], `${path}.group`) };
    case 'group.remove':
      return { type, group: groupIdOf(raw['group'], `${path}.group`) };
    case 'group.refound': {
      const replicas = list(raw['replicas'], `${path}.replicas`, replicasMax).map((item, k) =>
        positiveNode(item, `${path}.replicas[${k}]`),
      );
      if (replicas.length === 0) fail(`${path}.replicas`, 'expected at least one node');
      return {
        type,
        group: groupIdOf(raw['group'], `${path}.group`),
        replicas,
        atMs: time(raw['atMs'], `${path}.atMs`),
      };
    }
    case 'replication.set': {
      const factor = counter(raw['factor'], `${path}.factor`);
      if (factor < 1 || factor > replicasMax) fail(`${path}.factor`, `expected 1..${replicasMax}`);
      return { type, kind: oneOf(raw['kind'], `${path}.kind`, ['meta', 'kv'] as const), factor };
    }
    case 'action.schedule':
      return { type, action: actionRequest(raw['action'], `${path}.action`), atMs: time(raw['atMs'], `${path}.atMs`) };
    case 'action.update':
      return {
        type,
        id: actionId(raw['id'], `${path}.id`),
        version: counter(raw['version'], `${path}.version`),
        state: actionState(raw['state'], `${path}.state`),
        atMs: time(raw['atMs'], `${path}.atMs`),
      };
    case 'action.cancel':
      return {
        type,
        id: actionId(raw['id'], `${path}.id`),
        reason: text(raw['reason'], `${path}.reason`, textBytesMax),
        atMs: time(raw['atMs'], `${path}.atMs`),
      };
    case 'databases':
      return { type, command: databasesCommand(raw['command'], `${path}.command`) };
    case 'placement.move.start':
    case 'placement.move.finish':
    case 'placement.settings':
      return placementCommand(type, raw, path);
  }
}

/**
 * The newest meta command format this version writes (`v` in every command) and reads: a committed
 * command it cannot read must not be skipped (the replicas that could would diverge from it), so a
 * newer `v`, or a command type this version does not know, throws MetaCommandTooNewError and the
 * node stops with that message. A command without `v` was written before it existed: version 1.
 *
 * Each command is written at the lowest version that carries it (commandVersionOf), so a command
 * an older dram can read is written as it always was. Version 2: `placement.settings` with
 * `moveStalledMs` (v0.11.0 reads version 1 only; its settings validator refuses an unknown field,
 * and its model applies a command it fails to validate as nothing: at version 1 it would have
 * skipped the whole command, its other settings too, and diverged silently).
 */
export const metaCommandVersion = 2;

/** The lowest command version that carries `command` (see metaCommandVersion). */
export function commandVersionOf(command: MetaCommand): number {
  if (command.type === 'placement.settings' && command.settings.moveStalledMs !== undefined) return 2;
  return 1;
}

/** A committed meta command written by a newer dram; the replica must stop, not skip it. */
export class MetaCommandTooNewError extends Error {
  override readonly name = 'MetaCommandTooNewError';
}

export function encodeMetaCommand(command: MetaCommand): Uint8Array {
  return encode({ v: commandVersionOf(command), ...command });
}

export function decodeMetaCommand(data: Uint8Array): MetaCommand {
  const raw = record(decode(data), 'meta');
  const { v: version = 1, ...command } = raw;
  if (typeof version === 'number' && Number.isSafeInteger(version) && version > metaCommandVersion)
    throw new MetaCommandTooNewError(
      `a meta command of command version ${version}: this dram reads up to ${metaCommandVersion}; a newer dram wrote it, upgrade this node`,
    );
  const type = command['type'];
  if (typeof type === 'string' && !(metaCommandTypes as readonly string[]).includes(type))
    throw new MetaCommandTooNewError(
      `a meta command of type '${type.slice(0, 64)}', which this dram (command version ${metaCommandVersion}) does not know: a newer dram wrote it, upgrade this node`,
    );
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    fail('meta.v', `expected a command version, got ${String(version)}`);
  return metaCommand(command);
}

// ---- snapshot ---------------------------------------------------------------------------------

export function encodeMetaSnapshot(snapshot: MetaSnapshot): Uint8Array {
  return encode(snapshot);
}

export function decodeMetaSnapshot(data: Uint8Array): MetaSnapshot {
  const raw = record(decode(data), 'metasnap');
  if (raw['version'] !== 1) fail('metasnap.version', `unsupported ${String(raw['version'])}`);
  const actions = (name: string): ActionRecord[] =>
    list(raw[name], `metasnap.${name}`, actionsInSnapshotMax).map((item, k) =>
      actionRecord(item, `metasnap.${name}[${k}]`),
    );
  return {
    version: 1,
    clusterId: text(raw['clusterId'], 'metasnap.clusterId', clusterIdBytesMax),
    nodes: list(raw['nodes'], 'metasnap.nodes', nodesInSnapshotMax).map((item, k) =>
      nodeRecord(item, `metasnap.nodes[${k}]`),
    ),
    groups: list(raw['groups'], 'metasnap.groups', groupsInSnapshotMax).map((item, k) =>
      groupRecord(item, `metasnap.groups[${k}]`),
    ),
    replication: list(raw['replication'], 'metasnap.replication', 16).map((item, k) => {
      const r = record(item, `metasnap.replication[${k}]`);
      return {
        kind: oneOf(r['kind'], `metasnap.replication[${k}].kind`, ['meta', 'kv'] as const),
        factor: counter(r['factor'], `metasnap.replication[${k}].factor`),
      };
    }),
    queued: actions('queued'),
    finished: actions('finished'),
    ...(raw['databases'] === undefined ? {} : { databases: databasesSnapshot(raw['databases'], 'metasnap.databases') }),
    ...(raw['placement'] === undefined ? {} : { placement: placementOf(raw['placement']) }),
    ...(raw['dbGroupNext'] === undefined ? {} : { dbGroupNext: counter(raw['dbGroupNext'], 'metasnap.dbGroupNext') }),
  };
}

function placementOf(value: unknown): NonNullable<MetaSnapshot['placement']> {
  const raw = record(value, 'metasnap.placement');
  return {
    moves: list(raw['moves'], 'metasnap.placement.moves', groupsInSnapshotMax).map((item, k) =>
      moveRecord(item, `metasnap.placement.moves[${k}]`),
    ),
    history: list(raw['history'], 'metasnap.placement.history', moveHistoryMax).map((item, k) =>
      finishedMove(item, `metasnap.placement.history[${k}]`),
    ),
    settings: settingsPatch(raw['settings'], 'metasnap.placement.settings'),
    ...(raw['loadFailures'] === undefined
      ? {}
      : {
          loadFailures: list(raw['loadFailures'], 'metasnap.placement.loadFailures', loadFailuresMax).map((item, k) =>
            loadFailure(item, `metasnap.placement.loadFailures[${k}]`),
          ),
        }),
  };
}
