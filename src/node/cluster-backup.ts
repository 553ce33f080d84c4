// Backup files on disk and in S3, and the two offline tools that write a node's data dir from
// them (docs/deploy.md, "Backup and restore", "Loss of quorum"):
//  - `restoreDataDir`: a backup (src/codec/backup.ts) into an EMPTY data dir, one per member of
//    the new cluster, like etcd's `snapshot restore`: every group of the backup starts from its
//    snapshot, at the backup's index and term, with the new members as its configuration (every
//    member a voter of a kv group; the first five voters of the meta group, the rest learners).
//    Then `dram start --init` on each: --init creates only what is missing (the kv groups a
//    configuration backup does not hold), so every member agrees on every group.
//  - `recoverDataDir`: after quorum loss, a survivor's data dir rewritten into a one-node
//    cluster (etcd's --force-new-cluster): each group's model is rebuilt from its snapshot and
//    EVERY entry of its log (committed here or not: an entry the lost majority committed and
//    acknowledged may not be known committed here; like etcd, nothing in the log is dropped), and
//    stored as a snapshot at the last index with this node as the only voter. Started again,
//    the node elects itself in every group; others then join it with --join.
// Both refuse to work on a node that is running (LevelDB's lock) and write each group in one
// synced batch; a backup is verified whole before anything is written.
//
// Called by: src/cli/main.ts (`dram backup`, `dram restore`, `dram recover`).

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { GroupId, LogIndex, NodeId, Term } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import { backupGroup, decodeBackup, encodeBackup, type Backup, type BackupGroup } from '../codec/backup.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../codec/kv.ts';
import type { Checksum } from '../codec/snapshot.ts';
import { metaVotersMax } from '../control/meta-membership.ts';
import { listAll } from '../data/object-store.ts';
import { ModelStack } from '../models/model-stack.ts';
import { KvModel } from '../models/kv.ts';
import { MetaModel, metaGroupId } from '../models/meta.ts';
import type { Model } from '../models/model.ts';
import { confStateOf } from '../raft/confchange.ts';
import type { ConfState } from '../raft/types.ts';
import { S3ObjectStore, s3SettingsDefault } from '../s3/s3-object-store.ts';
import { DiskStore } from '../storage/disk-store.ts';
import type { S3Location } from './config.ts';
import { kvInitPendingFile } from './membership.ts';

export const backupChecksum: Checksum = (bytes, previous) => crc32(bytes, previous);

/** The node's storage limits (as src/node/node.ts sets them): a restore writes what a node can read. */
const storeLimits = { entryDataBytesMax: kvValueBytesMax + kvKeyBytesMax + 1024, snapshotDataBytesMax: 1 << 30 };
/** A backup file read into memory at most (every group's snapshot at its limit would not fit anyway). */
export const backupBytesMax = 2 * 2 ** 30;
/** Entries read from the log per page while rebuilding a model. */
const recoverPageBytesMax = 16 << 20;

/** A backup tool's refusal: the message says what to do. */
export class BackupError extends Error {
  override readonly name = 'BackupError';
}

export type BackupLocation =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string }
  /** The newest backup under a prefix (keys sort by version: the configuration backup's objects). */
  | { readonly kind: 's3-newest'; readonly bucket: string; readonly prefix: string };

/** `s3://bucket/key`, `s3://bucket/prefix/` (the newest backup there; reading only) or a file path. */
export function parseBackupLocation(text: string): BackupLocation {
  if (!text.startsWith('s3://')) return { kind: 'file', path: text };
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/u.exec(text);
  if (match?.[1] === undefined || match[2] === undefined)
    throw new BackupError(`${text}: expected s3://bucket/key, or s3://bucket/prefix/ for the newest backup there`);
  const path = match[2];
  if (path === '' || path.endsWith('/')) return { kind: 's3-newest', bucket: match[1], prefix: path };
  return { kind: 's3', bucket: match[1], key: path };
}

/** Backups listed under a prefix at most when looking for the newest. */
const listedBackupsMax = 100_000;

export function s3Store(location: S3Location): S3ObjectStore {
  return new S3ObjectStore({
    ...s3SettingsDefault,
    region: location.region,
    pathStyle: location.pathStyle,
    ...(location.endpoint === undefined ? {} : { endpoint: location.endpoint }),
  });
}

export async function writeBackup(where: BackupLocation, bytes: Uint8Array, s3: S3Location): Promise<void> {
  if (where.kind === 's3-newest')
    throw new BackupError(`s3://${where.bucket}/${where.prefix}: a backup is written to an object key, not a prefix`);
  if (where.kind === 'file') {
    // Whole or not at all: a crash mid-write leaves the previous file (or none), never half of one.
    mkdirSync(dirname(where.path), { recursive: true });
    const partial = `${where.path}.partial`;
    writeFileSync(partial, bytes);
    renameSync(partial, where.path);
    return;
  }
  const store = s3Store(s3);
  try {
    await store.put(where.bucket, where.key, bytes);
  } finally {
    store.close();
  }
}

export async function readBackup(where: BackupLocation, s3: S3Location): Promise<Backup> {
  let bytes: Uint8Array;
  if (where.kind === 'file') bytes = readFileSync(where.path);
  else {
    const store = s3Store(s3);
    try {
      const key = where.kind === 's3' ? where.key : await newestBackupKey(store, where.bucket, where.prefix);
      bytes = (await store.get(where.bucket, key, { bytesMax: backupBytesMax })).bytes;
    } finally {
      store.close();
    }
  }
  return decodeBackup(bytes, backupChecksum);
}

async function newestBackupKey(store: S3ObjectStore, bucket: string, prefix: string): Promise<string> {
  const keys = (await listAll(store, bucket, prefix, listedBackupsMax))
    .map((object) => object.key)
    .filter((key) => key.endsWith('.drbk'))
    .sort();
  const newest = keys.at(-1);
  if (newest === undefined) throw new BackupError(`no backup (*.drbk) under s3://${bucket}/${prefix}`);
  return newest;
}

/**
 * A backup's bytes from every group's snapshot envelope. A `cluster` backup must hold the meta
 * group and every kv group the meta group's snapshot records: one missing (no member that answered
 * hosts it) is refused with BackupError, never written as a backup that silently lacks a group.
 */
export function assembleBackup(
  kind: Backup['kind'],
  clusterId: string,
  version: string,
  createdAtMs: number,
  snapshots: ReadonlyMap<GroupId, Uint8Array>,
): Uint8Array {
  const groups: BackupGroup[] = [...snapshots].map(([group, snapshot]) => backupGroup(group, snapshot, backupChecksum));
  if (kind === 'cluster') {
    const missing = groupsMissing(groups);
    if (missing.length > 0)
      throw new BackupError(
        `no snapshot of group ${missing.join(', ')}, which the meta group records: no member that answered hosts it; ` +
          'the backup would be incomplete, so none was written (bring its replicas back, or reach every member)',
      );
  }
  return encodeBackup({ kind, clusterId, createdAtMs, version, groups }, backupChecksum);
}

/** The groups a cluster backup of `groups` lacks: the meta group, or the kv groups its model records. */
export function groupsMissing(groups: readonly BackupGroup[]): GroupId[] {
  const meta = groups.find((part) => part.group === metaGroupId);
  if (meta === undefined) return [metaGroupId];
  const held = new Set(groups.map((part) => part.group));
  return metaStackOf(meta, meta.confState)
    .model.groups()
    .filter((record) => record.kind === 'kv' && !held.has(record.id))
    .map((record) => record.id);
}

/** The meta group's part of a backup restored into a model stack, with `confState` as its configuration. */
function metaStackOf(part: BackupGroup, confState: ConfState): ModelStack<MetaModel> {
  const stack = new ModelStack<MetaModel>(new MetaModel(), backupChecksum, () => new MetaModel());
  stack.restore(part.snapshot, { group: metaGroupId, index: part.index, term: part.term, confState });
  return stack;
}

/** The configuration a restored group starts with: every member votes in a kv group; the meta group has at most five voters. */
function restoredConfState(group: GroupId, members: readonly NodeId[]): ConfState {
  const ids = [...members].sort((a, b) => a - b);
  return group === metaGroupId ? confStateOf(ids.slice(0, metaVotersMax), ids.slice(metaVotersMax)) : confStateOf(ids);
}

async function openEmptyStore(dataDir: string): Promise<DiskStore> {
  mkdirSync(dataDir, { recursive: true });
  return DiskStore.open(join(dataDir, 'raft'), storeLimits);
}

/** Writes every group of `backup` into the empty data dir of one member of the new cluster. */
export async function restoreDataDir(
  backup: Backup,
  options: { readonly dataDir: string; readonly members: readonly NodeId[] },
): Promise<{ readonly groups: readonly GroupId[] }> {
  const store = await openEmptyStore(options.dataDir);
  try {
    const held = store.groupIds();
    if (held.length > 0)
      throw new BackupError(
        `${options.dataDir} already holds groups ${held.join(', ')}: restore into an empty data dir (a new member)`,
      );
    // A configuration backup holds no kv data: its kv group records (old replicas) are dropped, and
    // `dram start --init` creates the kv groups afresh over the new members (kvInitPendingFile).
    const configuration = backup.kind === 'configuration';
    await store.write(
      backup.groups.map((part) => ({
        group: part.group,
        snapshot: {
          meta: { index: part.index, term: part.term, confState: restoredConfState(part.group, options.members) },
          data:
            configuration && part.group === metaGroupId
              ? withoutKvRecords(part, restoredConfState(part.group, options.members))
              : part.snapshot,
        },
        entries: [],
        hardState: { term: part.term, vote: NO_NODE, commit: part.index },
      })),
      { sync: true },
    );
    if (configuration) writeFileSync(join(options.dataDir, kvInitPendingFile), '{}\n');
    return { groups: backup.groups.map((part) => part.group) };
  } finally {
    await store.close();
  }
}

/** The meta group's snapshot in `part` without its kv group records (those groups are not restored). */
function withoutKvRecords(part: BackupGroup, confState: ConfState): Uint8Array {
  const frame = { group: metaGroupId, index: part.index, term: part.term, confState };
  const stack = metaStackOf(part, confState);
  const model = stack.model;
  for (const record of model.groups())
    if (record.kind === 'kv') model.apply({ type: 'group.remove', group: record.id });
  const slices: Uint8Array[] = [];
  const capture = stack.capture([frame]);
  for (let slice = capture.next(); slice.done !== true; slice = capture.next()) slices.push(slice.value);
  return Buffer.concat(slices);
}

export interface RecoveredGroup {
  readonly group: GroupId;
  readonly index: LogIndex;
  readonly term: Term;
  /** Entries past the commit index this node knew, kept (see the file header). */
  readonly uncommittedKept: number;
}

/** Rewrites a stopped survivor's data dir into a one-node cluster of `nodeId`. */
export async function recoverDataDir(options: {
  readonly dataDir: string;
  readonly nodeId: NodeId;
}): Promise<readonly RecoveredGroup[]> {
  const store = await openEmptyStore(options.dataDir);
  try {
    const groups = store.groupIds();
    if (groups.length === 0) throw new BackupError(`${options.dataDir} holds no groups: nothing to recover`);
    const recovered: RecoveredGroup[] = [];
    for (const group of groups) {
      const log = store.group(group);
      const stored = log.snapshot();
      const stack = new ModelStack<Model>(modelFor(group), backupChecksum, () => modelFor(group));
      stack.restore(stored.data, { group, ...stored.meta });
      let index = stored.meta.index;
      let term = stored.meta.term;
      for (let low = log.firstIndex(); low <= log.lastIndex(); ) {
        const page = log.entries(low, (log.lastIndex() + 1) as LogIndex, recoverPageBytesMax);
        for (const entry of page) {
          if (entry.kind === 'normal') stack.applyEntry(entry.index, entry.data);
          index = entry.index;
          term = entry.term;
        }
        low = (index + 1) as LogIndex;
      }
      if (index === 0)
        throw new BackupError(
          `${options.dataDir} holds nothing of group ${group} yet (a member that never caught up): recover another survivor`,
        );
      const confState = confStateOf([options.nodeId]);
      const slices: Uint8Array[] = [];
      const capture = stack.capture([{ group, index, term, confState }]);
      for (let slice = capture.next(); slice.done !== true; slice = capture.next()) slices.push(slice.value);
      const hardState = log.hardState();
      await store.write(
        [
          {
            group,
            snapshot: { meta: { index, term, confState }, data: Buffer.concat(slices) },
            entries: [],
            hardState: { term: Math.max(hardState.term, term) as Term, vote: NO_NODE, commit: index },
          },
        ],
        { sync: true },
      );
      recovered.push({ group, index, term, uncommittedKept: Math.max(0, index - hardState.commit) });
    }
    return recovered;
  } finally {
    await store.close();
  }
}

function modelFor(group: GroupId): Model {
  return group === metaGroupId ? new MetaModel() : new KvModel();
}
