// The backup file (docs/deploy.md, "Backup and restore"): the state of several groups, each as its
// snapshot envelope (src/codec/snapshot.ts), with the backup's timeframe: per group the index and
// term the snapshot includes, and the group's configuration there (read from the envelope), a
// vector like etcd's `snapshot save` records one revision.
//
//   "DRBK" | format u8 (1) | msgpack body | checksum u32 BE (CRC-32 of everything before it)
//
// body: { kind: 'cluster' | 'configuration', clusterId, createdAtMs, version (dram's),
//         groups: [{ group, index, term, snapshot: bytes }] } with groups ascending.
// A `cluster` backup holds every group (`dram backup`); a `configuration` backup only the meta
// group (group 0: databases, aliases, settings, actions), written by the configuration backup.
//
// Decoding verifies the checksum, every field, and every group's envelope (its own checksum, and
// that it includes exactly the index and term listed), and throws BackupFormatError for anything
// else; a backup is never half-used. Pure: the checksum function comes in (zlib's crc32).
// Called by: src/node/cluster-backup.ts, src/cli/main.ts.

import { readUint32BE, writeUint32BE } from '../base/bytes.ts';
import type { GroupId, LogIndex, Term } from '../base/ids.ts';
import type { ConfState } from '../raft/types.ts';
import { decode, encode } from './msgpack.ts';
import { openSnapshot, SnapshotFormatError, type Checksum } from './snapshot.ts';
import { bytes, CodecError, counter, list, oneOf, record } from './validate.ts';

export const backupFormat = 1;
const magic = Uint8Array.of(0x44, 0x52, 0x42, 0x4b);
const checksumBytes = 4;
/** Groups in one backup at most (the meta group and every kv group). */
export const backupGroupsMax = 1 << 16;
/** One group's snapshot at most (the node's own snapshot limit). */
export const backupSnapshotBytesMax = 1 << 30;
const clusterIdBytesMax = 256;
const versionBytesMax = 64;

export type BackupKind = 'cluster' | 'configuration';

export interface BackupGroup {
  readonly group: GroupId;
  /** The last index the snapshot includes, and its term: this group's part of the timeframe. */
  readonly index: LogIndex;
  readonly term: Term;
  /** The group's configuration at that index (from the envelope; not stored twice in the file). */
  readonly confState: ConfState;
  /** The snapshot envelope, as the group stores it. */
  readonly snapshot: Uint8Array;
}

export interface Backup {
  readonly kind: BackupKind;
  readonly clusterId: string;
  readonly createdAtMs: number;
  /** The dram version that wrote it. */
  readonly version: string;
  readonly groups: readonly BackupGroup[];
}

/** A backup that must not be used: not a backup, another format, truncated, corrupt. */
export class BackupFormatError extends Error {
  override readonly name = 'BackupFormatError';
}

/** A group's part of a backup from its snapshot envelope (the timeframe read from the envelope). */
export function backupGroup(group: GroupId, snapshot: Uint8Array, checksum: Checksum): BackupGroup {
  const opened = openChecked(group, snapshot, checksum);
  const own = opened.header.timeframe.find((frame) => frame.group === group);
  if (own === undefined) throw new BackupFormatError(`group ${group}: its snapshot includes nothing of it`);
  return { group, index: own.index, term: own.term, confState: own.confState, snapshot };
}

export function encodeBackup(backup: Backup, checksum: Checksum): Uint8Array {
  const body = encode({
    kind: backup.kind,
    clusterId: backup.clusterId,
    createdAtMs: backup.createdAtMs,
    version: backup.version,
    groups: [...backup.groups]
      .sort((a, b) => a.group - b.group)
      .map(({ group, index, term, snapshot }) => ({ group, index, term, snapshot })),
  });
  const out = new Uint8Array(magic.length + 1 + body.length + checksumBytes);
  out.set(magic, 0);
  out[magic.length] = backupFormat;
  out.set(body, magic.length + 1);
  writeUint32BE(out, out.length - checksumBytes, checksum(out.subarray(0, out.length - checksumBytes), 0));
  return out;
}

export function decodeBackup(data: Uint8Array, checksum: Checksum): Backup {
  if (data.length < magic.length + 1 + checksumBytes || !magic.every((byte, k) => data[k] === byte))
    throw new BackupFormatError('not a dram backup (no DRBK header)');
  const format = data[magic.length];
  if (format !== backupFormat)
    throw new BackupFormatError(
      `backup format ${String(format)} is not one this version reads (${backupFormat}): restore it with a newer dram`,
    );
  const end = data.length - checksumBytes;
  if (readUint32BE(data, end) !== checksum(data.subarray(0, end), 0))
    throw new BackupFormatError('checksum mismatch: the backup is corrupt or truncated');
  let backup: ListedBackup;
  try {
    backup = decodeBody(decode(data.subarray(magic.length + 1, end)));
  } catch (error) {
    if (error instanceof CodecError) throw new BackupFormatError(`bad backup: ${error.message}`);
    throw error;
  }
  const groups = backup.groups.map((listed) => {
    const part = backupGroup(listed.group, listed.snapshot, checksum);
    if (part.index !== listed.index || part.term !== listed.term)
      throw new BackupFormatError(
        `group ${part.group}: listed at index ${listed.index} term ${listed.term}, but its snapshot says otherwise`,
      );
    return part;
  });
  return { ...backup, groups };
}

/** The body as listed: each group's configuration is filled in from its envelope by decodeBackup. */
type ListedBackup = Omit<Backup, 'groups'> & { readonly groups: readonly Omit<BackupGroup, 'confState'>[] };

function decodeBody(value: unknown): ListedBackup {
  const raw = record(value, 'backup');
  const kind = oneOf(raw['kind'], 'backup.kind', ['cluster', 'configuration'] as const);
  const clusterId = raw['clusterId'];
  const version = raw['version'];
  if (typeof clusterId !== 'string' || clusterId.length === 0 || clusterId.length > clusterIdBytesMax)
    throw new CodecError('backup.clusterId: expected a cluster id');
  if (typeof version !== 'string' || version.length > versionBytesMax)
    throw new CodecError('backup.version: expected a version');
  let previous = -1;
  const groups = list(raw['groups'], 'backup.groups', backupGroupsMax).map((item, k) => {
    const path = `backup.groups[${k}]`;
    const part = record(item, path);
    const group = counter(part['group'], `${path}.group`);
    if (group <= previous) throw new CodecError(`${path}.group: groups must ascend`);
    previous = group;
    return {
      group: group as GroupId,
      index: counter(part['index'], `${path}.index`) as LogIndex,
      term: counter(part['term'], `${path}.term`) as Term,
      snapshot: bytes(part['snapshot'], `${path}.snapshot`, backupSnapshotBytesMax),
    };
  });
  if (groups.length === 0) throw new CodecError('backup.groups: empty');
  return { kind, clusterId, createdAtMs: counter(raw['createdAtMs'], 'backup.createdAtMs'), version, groups };
}

function openChecked(group: GroupId, snapshot: Uint8Array, checksum: Checksum) {
  try {
    const opened = openSnapshot(snapshot, checksum);
    if (opened.format === 0) throw new BackupFormatError(`group ${group}: a snapshot without its timeframe`);
    return opened;
  } catch (error) {
    if (error instanceof SnapshotFormatError) throw new BackupFormatError(`group ${group}: ${error.message}`);
    throw error;
  }
}
