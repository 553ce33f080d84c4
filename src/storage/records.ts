// The value format of every record in the node's LevelDB, and its checks on the way back in.
// A value is `crc32 of the body (u32 BE) | body`, the body a msgpack map that repeats the group
// (and, for log entries and snapshot bytes, the index) the key names. On read the checksum is
// verified first, then the body is validated into the core's types by src/codec, then the
// repeated group/index must match the key: a torn, flipped or misplaced record is reported as a
// StorageCorruptionError naming the key, and is never used. Pure apart from allocation; used by
// disk-store.ts.

import { readUint32BE, writeUint32BE } from '../base/bytes.ts';
import type { GroupId, LogIndex } from '../base/ids.ts';
import { crc32 } from '../codec/crc32.ts';
import { decode, encode } from '../codec/msgpack.ts';
import * as validate from '../codec/validate.ts';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.ts';
import { StorageCorruptionError } from './errors.ts';
import { describeKey, type ParsedKey } from './keys.ts';

const checksumBytes = 4;
/** The shortest msgpack map is one byte; anything shorter than checksum + 1 byte is torn. */
const valueBytesMin = checksumBytes + 1;

export interface RecordLimits {
  /** Largest payload of one log entry; RaftConfig.entryBytesMax is the natural value. */
  readonly entryDataBytesMax: number;
  /** Largest snapshot of one group's state machine. */
  readonly snapshotDataBytesMax: number;
}

export type StoredRecord =
  | { readonly kind: 'log'; readonly group: GroupId; readonly entry: Entry }
  | { readonly kind: 'hard'; readonly group: GroupId; readonly hardState: HardState }
  | { readonly kind: 'applied'; readonly group: GroupId; readonly applied: LogIndex }
  | { readonly kind: 'snap-meta'; readonly group: GroupId; readonly meta: SnapshotMeta }
  | { readonly kind: 'snap-data'; readonly group: GroupId; readonly index: LogIndex; readonly data: Uint8Array };

function seal(body: Uint8Array): Uint8Array {
  const value = new Uint8Array(checksumBytes + body.length);
  writeUint32BE(value, 0, crc32(body));
  value.set(body, checksumBytes);
  return value;
}

export function logEntryValue(group: GroupId, entry: Entry): Uint8Array {
  // Fields listed one by one: what reaches the disk is exactly the entry, never a stray property.
  const stored =
    entry.kind === 'normal'
      ? { kind: entry.kind, term: entry.term, index: entry.index, data: entry.data }
      : { kind: entry.kind, term: entry.term, index: entry.index, change: entry.change };
  return seal(encode({ group, entry: stored }));
}

export function hardStateValue(group: GroupId, hardState: HardState): Uint8Array {
  return seal(encode({ group, hardState: { term: hardState.term, vote: hardState.vote, commit: hardState.commit } }));
}

export function appliedValue(group: GroupId, applied: LogIndex): Uint8Array {
  return seal(encode({ group, applied }));
}

export function snapshotMetaValue(group: GroupId, meta: SnapshotMeta): Uint8Array {
  return seal(encode({ group, meta: { index: meta.index, term: meta.term, confState: meta.confState } }));
}

export function snapshotDataValue(group: GroupId, index: LogIndex, data: Uint8Array): Uint8Array {
  return seal(encode({ group, index, data }));
}

/** Verifies and decodes one stored value found under `key` (already parsed into `parsed`). */
export function readRecord(key: Uint8Array, parsed: ParsedKey, value: Uint8Array, limits: RecordLimits): StoredRecord {
  const index = parsed.kind === 'log' ? parsed.index : undefined;
  // Built only on failure: a load reads every record once, and the happy path should not format keys.
  const corrupt = (why: string): StorageCorruptionError =>
    new StorageCorruptionError({ key: describeKey(key), group: parsed.group, ...(index === undefined ? {} : { index }) }, why);
  const body = unseal(value, corrupt);
  try {
    const fields = validate.record(decode(body), 'record');
    const group = validate.counter(fields['group'], 'record.group') as GroupId;
    if (group !== parsed.group) throw corrupt(`the record belongs to group ${group}`);
    const stored = decodeFields(parsed, fields, limits);
    if (stored.kind === 'log' && stored.entry.index !== index) throw corrupt(`the record holds the entry at index ${stored.entry.index}`);
    return stored;
  } catch (error) {
    if (error instanceof validate.CodecError) throw corrupt(`undecodable record: ${error.message}`);
    throw error;
  }
}

function unseal(value: Uint8Array, corrupt: (why: string) => StorageCorruptionError): Uint8Array {
  if (value.length < valueBytesMin) throw corrupt(`value of ${value.length} bytes is shorter than a checksum and a record (torn write?)`);
  const stored = readUint32BE(value, 0);
  const body = value.subarray(checksumBytes);
  const computed = crc32(body);
  if (stored !== computed) throw corrupt(`checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)} over ${body.length} bytes`);
  return body;
}

function decodeFields(parsed: ParsedKey, fields: Record<string, unknown>, limits: RecordLimits): StoredRecord {
  const group = parsed.group;
  switch (parsed.kind) {
    case 'log': {
      const entry = validate.entry(fields['entry'], 'record.entry', limits.entryDataBytesMax);
      // A private copy: the decoded bytes are a view into LevelDB's value buffer.
      return { kind: 'log', group, entry: entry.kind === 'normal' ? { ...entry, data: new Uint8Array(entry.data) } : entry };
    }
    case 'hard':
      return { kind: 'hard', group, hardState: validate.hardState(fields['hardState'], 'record.hardState') };
    case 'applied':
      return { kind: 'applied', group, applied: validate.logIndex(fields['applied'], 'record.applied') };
    case 'snap-meta':
      return { kind: 'snap-meta', group, meta: validate.snapshotMeta(fields['meta'], 'record.meta') };
    case 'snap-data': {
      const index = validate.logIndex(fields['index'], 'record.index');
      const data = validate.bytes(fields['data'], 'record.data', limits.snapshotDataBytesMax);
      return { kind: 'snap-data', group, index, data: new Uint8Array(data) };
    }
  }
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
