// The steps of the database catalog's actions, run by the meta controller on the meta leader. Each
// step looks at the catalog before acting, so running it again (a new leader resuming, a state
// change whose answer was lost) repeats nothing that is done. Steps are short: listing a prefix and
// proposing one command; downloads are state the replicas drive (src/data/database-downloads.ts).
//
//  - db.add: lists the prefix (paged, at most manifestFilesMax objects), builds the manifest
//    (`buildManifest`), places each shard on `replicas` nodes (the least loaded ACTIVE nodes,
//    deterministic; none recorded for "all", which means every ACTIVE node, joiners included),
//    proposes db.create. DONE `{name, version, shards, files, bytes, placement}`; FAILED when the
//    name is taken (by another action), the listing fails or is empty, or there are too few nodes.
//  - db.reload: lists again; an unchanged listing (same keys, sizes, ETags) with no failed replica
//    is DONE `{unchanged: true}`; otherwise a new version (shards keep their nodes) is staged, DONE
//    `{name, version, previous}`: a failed replica is retried this way.
//  - db.remove: drops the database (and the aliases pointing at it); DONE; unknown is DONE too.
//  - alias.swap: proposes the swap (or a rollback); a refusal (not loaded, unknown) FAILS the action.
//
// Called by: src/control/action-steps.ts.

import type { NodeId } from '../base/ids.ts';
import type { ActionRecord, ActionState, JsonValue } from '../codec/meta.ts';
import {
  manifestFilesMax,
  shardIdPattern,
  isSafePath,
  type DatabasesCommand,
  type DatabaseVersion,
  type ManifestFile,
  type Replicas,
} from '../codec/meta-databases.ts';
import { nodeLoads, placeShards, type DatabasesModel } from '../models/meta-databases.ts';
import {
  aliasChangesOf,
  aliasSwapKind,
  databaseAddKind,
  databaseReloadKind,
  databaseRemoveKind,
  parseSource,
  replicasOfArgs,
  type DatabaseKind,
} from './database-kinds.ts';

/** One object of a listing (the object store's ObjectInfo). */
export interface ListedObject {
  readonly key: string;
  readonly bytes: number;
  readonly etag: string;
}

/** What a proposal of a catalog command came to. */
export type CatalogProposal =
  | { readonly kind: 'ok' }
  | { readonly kind: 'refused'; readonly reason: string; readonly message: string }
  /** Not applied, or its outcome unknown: the step is tried again. */
  | { readonly kind: 'unknown' };

export interface DatabaseStepContext {
  readonly nowMs: () => number;
  readonly catalog: DatabasesModel;
  /** The registered ACTIVE nodes, in id order. */
  activeNodes(): NodeId[];
  /** Every object under the prefix (at most `objectsMax`), or why not (an S3 error's message). */
  listObjects(bucket: string, prefix: string, objectsMax: number): Promise<readonly ListedObject[] | string>;
  propose(command: DatabasesCommand): Promise<CatalogProposal>;
}

/** A manifest without placement: the shards' files and the global files. */
export interface ListedManifest {
  readonly shards: readonly { readonly shard: string; readonly files: readonly ManifestFile[] }[];
  readonly global: readonly ManifestFile[];
  /** Objects outside `shard=<id>/` and `global/` when the prefix has shard folders (not used). */
  readonly ignored?: number;
}

/**
 * Groups a listing into shards: `<prefix>shard=<id>/...` is shard `<id>`, `<prefix>global/...` is
 * global, and a prefix without shard folders is one shard `0`. Folder markers (keys ending in `/`)
 * are skipped. Why not, when a key is unusable as a path, a shard id is bad, or there is no file.
 */
export function buildManifest(prefix: string, objects: readonly ListedObject[]): ListedManifest | string {
  const files: ManifestFile[] = [];
  for (const object of objects) {
    if (!object.key.startsWith(prefix)) return `listing returned ${object.key} outside ${prefix}`;
    if (object.key.endsWith('/')) continue;
    const path = object.key.slice(prefix.length);
    if (!isSafePath(path)) return `object key ${JSON.stringify(object.key)} cannot be stored as a file`;
    files.push({ path, bytes: object.bytes, etag: object.etag });
  }
  if (files.length > manifestFilesMax) return `more than ${manifestFilesMax} objects under the prefix`;
  const global = files.filter((file) => file.path.startsWith('global/'));
  const sharded = files.some((file) => file.path.startsWith('shard='));
  const byShard = new Map<string, ManifestFile[]>();
  let ignored = 0;
  for (const file of files) {
    if (file.path.startsWith('global/')) continue;
    const first = file.path.split('/')[0] ?? '';
    if (!sharded) {
      byShard.set('0', [...(byShard.get('0') ?? []), file]);
      continue;
    }
    if (!first.startsWith('shard=') || !file.path.includes('/')) {
      ignored++;
      continue;
    }
    const shard = first.slice('shard='.length);
    if (!shardIdPattern.test(shard)) return `"${first}" is not a shard folder (shard=<letters, digits, _ or ->)`;
    byShard.set(shard, [...(byShard.get(shard) ?? []), file]);
  }
  if (byShard.size === 0) return 'no data files under the prefix';
  const ids = [...byShard.keys()];
  const numeric = ids.every((id) => /^\d{1,15}$/u.test(id));
  ids.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  return { shards: ids.map((shard) => ({ shard, files: byShard.get(shard) ?? [] })), global, ignored };
}

/** Whether two versions list the same files (keys, sizes, ETags) in the same shards. */
export function sameFiles(a: ListedManifest, b: ListedManifest): boolean {
  const key = (version: ListedManifest): string =>
    JSON.stringify([version.shards.map((shard) => [shard.shard, shard.files]), version.global]);
  return key(a) === key(b);
}

export function failedState(action: ActionRecord, message: string): ActionState {
  return { phase: 'FAILED', payload: action.state.payload, error: { error_msg: message } };
}

function done(payload: JsonValue): ActionState {
  return { phase: 'DONE', payload, error: null };
}

function argsOf(action: ActionRecord): Readonly<Record<string, JsonValue>> {
  const args = action.args;
  return typeof args === 'object' && args !== null && !Array.isArray(args) ? (args as Record<string, JsonValue>) : {};
}

export async function runDatabaseStep(
  action: ActionRecord & { readonly kind: DatabaseKind },
  context: DatabaseStepContext | undefined,
): Promise<ActionState | undefined> {
  if (context === undefined) return failedState(action, 'this node has no object store configured');
  switch (action.kind) {
    case databaseAddKind:
      return stepAdd(action, context);
    case databaseReloadKind:
      return stepReload(action, context);
    case databaseRemoveKind:
      return stepRemove(action, context);
    case aliasSwapKind:
      return stepSwap(action, context);
  }
}

function summary(name: string, version: DatabaseVersion): JsonValue {
  const files = version.shards.reduce((sum, shard) => sum + shard.files.length, version.global.length);
  const bytes = [...version.global, ...version.shards.flatMap((shard) => shard.files)].reduce(
    (sum, file) => sum + file.bytes,
    0,
  );
  return {
    name,
    version: version.version,
    shards: version.shards.length,
    files,
    bytes,
    placement: version.shards.map((shard) => ({ shard: shard.shard, nodes: [...shard.nodes] })),
  };
}

async function listed(context: DatabaseStepContext, bucket: string, prefix: string): Promise<ListedManifest | string> {
  const objects = await context.listObjects(bucket, prefix, manifestFilesMax + 1);
  if (typeof objects === 'string') return `listing s3://${bucket}/${prefix} failed: ${objects}`;
  const manifest = buildManifest(prefix, objects);
  return typeof manifest === 'string' ? `s3://${bucket}/${prefix}: ${manifest}` : manifest;
}

function placed(
  manifest: ListedManifest,
  replicas: Replicas,
  context: DatabaseStepContext,
  version: number,
  keep?: ReadonlyMap<string, readonly NodeId[]>,
): DatabaseVersion | string {
  const active = context.activeNodes();
  const shards = manifest.shards.map((shard) => shard.shard);
  const placement =
    replicas === 'all'
      ? new Map<string, NodeId[]>()
      : placeShards(shards, replicas, active, nodeLoads(context.catalog.databases()), keep);
  if (placement === undefined) return `${replicas} replicas asked for, but only ${active.length} nodes are active`;
  return {
    version,
    listedMs: context.nowMs(),
    shards: manifest.shards.map((shard) => ({ ...shard, nodes: placement.get(shard.shard) ?? [] })),
    global: manifest.global,
  };
}

async function stepAdd(action: ActionRecord, context: DatabaseStepContext): Promise<ActionState | undefined> {
  const args = argsOf(action);
  const name = args['name'] as string;
  const source = parseSource(args['source']);
  const replicas = replicasOfArgs(args['replicas']);
  if (typeof source === 'string' || replicas === undefined) return failedState(action, 'invalid args');
  const existing = context.catalog.database(name);
  if (existing !== undefined) {
    // Created by this very action (a step whose DONE was lost): done.
    if (
      existing.createdMs === action.scheduledMs &&
      existing.bucket === source.bucket &&
      existing.prefix === source.prefix
    )
      return done(summary(name, existing.current));
    return failedState(action, `a database named ${name} exists`);
  }
  const manifest = await listed(context, source.bucket, source.prefix);
  if (typeof manifest === 'string') return failedState(action, manifest);
  const version = placed(manifest, replicas, context, 1);
  if (typeof version === 'string') return failedState(action, version);
  const pattern = args['metadataPattern'];
  const proposal = await context.propose({
    type: 'db.create',
    spec: {
      name,
      bucket: source.bucket,
      prefix: source.prefix,
      replicas,
      lazy: args['lazy'] === true,
      metadataPattern: typeof pattern === 'string' ? pattern : null,
    },
    version,
    atMs: action.scheduledMs,
  });
  if (proposal.kind === 'unknown') return undefined;
  if (proposal.kind === 'refused') return failedState(action, proposal.message);
  return done({ ...(summary(name, version) as Record<string, JsonValue>), ignored: manifest.ignored ?? 0 });
}

async function stepReload(action: ActionRecord, context: DatabaseStepContext): Promise<ActionState | undefined> {
  const name = argsOf(action)['name'] as string;
  const record = context.catalog.database(name);
  if (record === undefined) return failedState(action, `no database ${name}`);
  const manifest = await listed(context, record.bucket, record.prefix);
  if (typeof manifest === 'string') return failedState(action, manifest);
  const newest = record.next ?? record.current;
  // The same files, all loaded or loading: nothing to do. A failed replica gets a new version to retry with.
  const failed = record.replicaStates.some((state) => state.version === newest.version && state.state === 'failed');
  if (sameFiles(newest, manifest) && !failed) return done({ name, version: newest.version, unchanged: true });
  const keep = new Map(newest.shards.map((shard) => [shard.shard, shard.nodes]));
  const version = placed(manifest, record.replicas, context, newest.version + 1, keep);
  if (typeof version === 'string') return failedState(action, version);
  const proposal = await context.propose({ type: 'db.stage', name, version });
  if (proposal.kind === 'unknown') return undefined;
  if (proposal.kind === 'refused') return failedState(action, proposal.message);
  return done({ ...(summary(name, version) as Record<string, JsonValue>), previous: record.current.version });
}

async function stepRemove(action: ActionRecord, context: DatabaseStepContext): Promise<ActionState | undefined> {
  const name = argsOf(action)['name'] as string;
  if (context.catalog.database(name) === undefined) return done({ name, removed: false });
  const proposal = await context.propose({ type: 'db.drop', name });
  if (proposal.kind === 'unknown') return undefined;
  if (proposal.kind === 'refused') return failedState(action, proposal.message);
  return done({ name, removed: true });
}

async function stepSwap(action: ActionRecord, context: DatabaseStepContext): Promise<ActionState | undefined> {
  const args = argsOf(action);
  let command: DatabasesCommand;
  if (args['rollback'] === true) command = { type: 'alias.rollback' };
  else {
    const changes = aliasChangesOf(args['actions']);
    if (typeof changes === 'string') return failedState(action, changes);
    command = { type: 'alias.swap', changes };
  }
  const proposal = await context.propose(command);
  if (proposal.kind === 'unknown') return undefined;
  if (proposal.kind === 'refused') return failedState(action, proposal.message);
  return done({ aliases: context.catalog.aliases().map(({ alias, database }) => ({ alias, database })) });
}
