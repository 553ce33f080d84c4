// The value format of every record in the node's LevelDB, and its checks on the way back in.
// A value is `crc32 of the body (u32 BE) | body`. For group records the body is a msgpack map
// that repeats the group (and, for snapshot bytes, the index) the key names. A log record holds a
// run of consecutive entries, the ones a turn appended (src/codec/entry-run.ts), and its body is
// `format u8 (1) | group u32 BE | run`, the run starting at the index the key names. On read the
// checksum is verified first, then the body is validated into the core's types by src/codec, then
// the repeated group/index must match the key: a torn, flipped or misplaced record is reported as
// a StorageCorruptionError naming the key, and is never used. The checksum is zlib's CRC-32
// (native: 4 us for a 20 KB run against 50 us for the table-driven TypeScript one it replaced,
// same values). A snapshot's bytes are a file (snapshot-files.ts) that snap-meta names with its
// size and checksum. Data directories of the earlier layouts hold them as chunk records of
// snapshotChunkBytes, each `format u8 (1) | group u32 BE | index u64 BE | chunk u32 BE | bytes`,
// or as one snap-data record: both are read, never written. Pure apart from allocation; used by
// disk-store.ts.

import { crc32 } from 'node:zlib';
import { readUint32BE, readUint53BE, writeUint32BE, writeUint53BE } from '../base/bytes.ts';
import type { GroupId, LogIndex } from '../base/ids.ts';
import { decodeEntryRun, encodeEntryRun } from '../codec/entry-run.ts';
import { decode, encode } from '../codec/msgpack.ts';
import * as validate from '../codec/validate.ts';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.ts';
import { StorageCorruptionError } from './errors.ts';
import { describeKey, type ParsedKey, type SnapshotSlot } from './keys.ts';
import { isSnapshotFileName, type SnapshotFileRef } from './snapshot-files.ts';

const checksumBytes = 4;
/** The shortest msgpack map is one byte; anything shorter than checksum + 1 byte is torn. */
const valueBytesMin = checksumBytes + 1;
/** The first body byte of a log record. Records of the earlier layout (one msgpack map per entry) start with a map header (0xde as msgpackr writes it). */
const logRunFormat = 1;
const logRunPrefixBytes = checksumBytes + 1 + 4;
const snapshotChunkFormat = 1;
const chunkPrefixBytes = checksumBytes + 1 + 4 + 8 + 4;
/** Bytes of a snapshot per chunk record (the chunk layout). */
export const snapshotChunkBytes = 1 << 20;

export interface RecordLimits {
  /** Largest payload of one log entry; RaftConfig.entryBytesMax is the natural value. */
  readonly entryDataBytesMax: number;
  /** Largest snapshot of one group's state machine. */
  readonly snapshotDataBytesMax: number;
}

export type StoredRecord =
  /** A run of entries, the first at the index the key names. */
  | { readonly kind: 'log'; readonly group: GroupId; readonly entries: readonly Entry[] }
  | { readonly kind: 'hard'; readonly group: GroupId; readonly hardState: HardState }
  | { readonly kind: 'applied'; readonly group: GroupId; readonly applied: LogIndex }
  /**
   * `file`: the file holding the bytes (snapshot-files.ts); without it, the earlier layouts:
   * `chunks` chunk records hold them (undefined: one snap-data record, written before chunks).
   */
  | {
      readonly kind: 'snap-meta';
      readonly group: GroupId;
      readonly meta: SnapshotMeta;
      readonly file?: SnapshotFileRef;
      readonly chunks?: number;
      /** The chunk slot in use (keys.ts); 0 when absent. */
      readonly slot: SnapshotSlot;
    }
  | { readonly kind: 'snap-data'; readonly group: GroupId; readonly index: LogIndex; readonly data: Uint8Array }
  | {
      readonly kind: 'snap-chunk';
      readonly group: GroupId;
      readonly index: LogIndex;
      readonly chunk: number;
      readonly slot: SnapshotSlot;
      readonly data: Uint8Array;
    };

function seal(body: Uint8Array): Uint8Array {
  const value = new Uint8Array(checksumBytes + body.length);
  value.set(body, checksumBytes);
  return sealInPlace(value);
}

/** Writes the checksum of everything after the first four bytes into them. */
function sealInPlace(value: Uint8Array): Uint8Array {
  writeUint32BE(value, 0, crc32(value.subarray(checksumBytes)));
  return value;
}

/** The record of a run of consecutive entries (at least one), stored under the first one's log key. */
export function logRunValue(group: GroupId, entries: readonly Entry[]): Uint8Array {
  const value = encodeEntryRun(entries, logRunPrefixBytes);
  value[checksumBytes] = logRunFormat;
  writeUint32BE(value, checksumBytes + 1, group);
  return sealInPlace(value);
}

export function hardStateValue(group: GroupId, hardState: HardState): Uint8Array {
  return seal(encode({ group, hardState: { term: hardState.term, vote: hardState.vote, commit: hardState.commit } }));
}

export function appliedValue(group: GroupId, applied: LogIndex): Uint8Array {
  return seal(encode({ group, applied }));
}

/** The metadata of a snapshot whose bytes are in `file`, the record that makes the file the group's snapshot. */
export function snapshotMetaValue(group: GroupId, meta: SnapshotMeta, file: SnapshotFileRef): Uint8Array {
  const fields = { index: meta.index, term: meta.term, confState: meta.confState };
  return seal(encode({ group, meta: fields, file: { name: file.name, bytes: file.bytes, checksum: file.checksum } }));
}

/**
 * The metadata as the chunk layout wrote it (no longer written; tests build data directories of
 * that layout with it). Slot 0 is left out (records written before slots existed read as slot 0).
 */
export function chunkedSnapshotMetaValue(
  group: GroupId,
  meta: SnapshotMeta,
  chunks: number,
  slot: SnapshotSlot,
): Uint8Array {
  const fields = { index: meta.index, term: meta.term, confState: meta.confState };
  return seal(encode(slot === 0 ? { group, meta: fields, chunks } : { group, meta: fields, chunks, slot }));
}

export function snapshotDataValue(group: GroupId, index: LogIndex, data: Uint8Array): Uint8Array {
  return seal(encode({ group, index, data }));
}

/**
 * The record of chunk `chunk` of the snapshot at `index`, holding `bytes` (at most
 * snapshotChunkBytes): the chunk layout, read and no longer written (tests build it with this).
 */
export function snapshotChunkRecord(group: GroupId, index: LogIndex, chunk: number, bytes: Uint8Array): Uint8Array {
  const value = new Uint8Array(chunkPrefixBytes + bytes.length);
  value[checksumBytes] = snapshotChunkFormat;
  writeUint32BE(value, checksumBytes + 1, group);
  writeUint53BE(value, checksumBytes + 5, index);
  writeUint32BE(value, checksumBytes + 13, chunk);
  value.set(bytes, chunkPrefixBytes);
  return sealInPlace(value);
}

/** Verifies and decodes one stored value found under `key` (already parsed into `parsed`). */
export function readRecord(key: Uint8Array, parsed: ParsedKey, value: Uint8Array, limits: RecordLimits): StoredRecord {
  const index = parsed.kind === 'log' ? parsed.index : undefined;
  if (parsed.kind === 'snap-chunk') return readSnapshotChunk(key, parsed, value);
  // Built only on failure: a load reads every record once, and the happy path should not format keys.
  const corrupt = (why: string): StorageCorruptionError =>
    new StorageCorruptionError(
      { key: describeKey(key), group: parsed.group, ...(index === undefined ? {} : { index }) },
      why,
    );
  const body = unseal(value, corrupt);
  try {
    if (parsed.kind === 'log') return readLogRun(parsed.group, parsed.index, body, limits, corrupt);
    const fields = validate.record(decode(body), 'record');
    const group = validate.counter(fields['group'], 'record.group') as GroupId;
    if (group !== parsed.group) throw corrupt(`the record belongs to group ${group}`);
    return decodeFields(parsed, fields, limits);
  } catch (error) {
    if (error instanceof validate.CodecError) throw corrupt(`undecodable record: ${error.message}`);
    throw error;
  }
}

function unseal(value: Uint8Array, corrupt: (why: string) => StorageCorruptionError): Uint8Array {
  if (value.length < valueBytesMin)
    throw corrupt(`value of ${value.length} bytes is shorter than a checksum and a record (torn write?)`);
  const stored = readUint32BE(value, 0);
  const body = value.subarray(checksumBytes);
  const computed = crc32(body);
  if (stored !== computed)
    throw corrupt(`checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)} over ${body.length} bytes`);
  return body;
}

function readLogRun(
  group: GroupId,
  index: LogIndex,
  body: Uint8Array,
  limits: RecordLimits,
  corrupt: (why: string) => StorageCorruptionError,
): StoredRecord {
  if (body[0] !== logRunFormat)
    throw corrupt(
      `a log record of another layout (first byte 0x${(body[0] ?? 0).toString(16)}, expected a run of format ${logRunFormat}); was this data directory written by an older dram? This version cannot read it: move it away to start the node afresh`,
    );
  if (body.length < 5) throw corrupt('the log record ends inside its header');
  const stored = readUint32BE(body, 1);
  if (stored !== group) throw corrupt(`the record belongs to group ${stored}`);
  // One private copy of the whole run: the value is a view into LevelDB's buffer, and the
  // entries' data are views into the copy.
  const entries = decodeEntryRun(new Uint8Array(body), 5, limits, 'record');
  const first = entries[0]?.index;
  if (first !== index) throw corrupt(`the record holds a run that starts at index ${first}`);
  return { kind: 'log', group, entries };
}

function readSnapshotChunk(
  key: Uint8Array,
  parsed: Extract<ParsedKey, { kind: 'snap-chunk' }>,
  value: Uint8Array,
): StoredRecord {
  const corrupt = (why: string): StorageCorruptionError =>
    new StorageCorruptionError({ key: describeKey(key), group: parsed.group }, why);
  const body = unseal(value, corrupt);
  if (body.length < chunkPrefixBytes - checksumBytes) throw corrupt('the snapshot chunk ends inside its header');
  if (body[0] !== snapshotChunkFormat) throw corrupt(`a snapshot chunk of format ${String(body[0])}`);
  const group = readUint32BE(body, 1);
  const index = readUint53BE(body, 5);
  const chunk = readUint32BE(body, 13);
  if (group !== parsed.group) throw corrupt(`the record belongs to group ${group}`);
  if (chunk !== parsed.chunk) throw corrupt(`the record holds chunk ${chunk}`);
  if (index === undefined) throw corrupt('the snapshot index is not a safe integer');
  return {
    kind: 'snap-chunk',
    group: parsed.group,
    index: index as LogIndex,
    chunk,
    slot: parsed.slot,
    data: body.subarray(chunkPrefixBytes - checksumBytes),
  };
}

function decodeFields(
  parsed: Exclude<ParsedKey, { kind: 'log' } | { kind: 'snap-chunk' }>,
  fields: Record<string, unknown>,
  limits: RecordLimits,
): StoredRecord {
  const group = parsed.group;
  switch (parsed.kind) {
    case 'hard':
      return { kind: 'hard', group, hardState: validate.hardState(fields['hardState'], 'record.hardState') };
    case 'applied':
      return { kind: 'applied', group, applied: validate.logIndex(fields['applied'], 'record.applied') };
    case 'snap-meta':
      return {
        kind: 'snap-meta',
        group,
        meta: validate.snapshotMeta(fields['meta'], 'record.meta'),
        ...(fields['file'] === undefined ? {} : { file: snapshotFileRef(fields['file']) }),
        ...(fields['chunks'] === undefined ? {} : { chunks: validate.counter(fields['chunks'], 'record.chunks') }),
        slot: fields['slot'] === undefined ? 0 : snapshotSlot(validate.counter(fields['slot'], 'record.slot')),
      };
    case 'snap-data': {
      const index = validate.logIndex(fields['index'], 'record.index');
      const data = validate.bytes(fields['data'], 'record.data', limits.snapshotDataBytesMax);
      return { kind: 'snap-data', group, index, data: new Uint8Array(data) };
    }
  }
}

function snapshotFileRef(value: unknown): SnapshotFileRef {
  const fields = validate.record(value, 'record.file');
  const name = fields['name'];
  if (typeof name !== 'string' || !isSnapshotFileName(name))
    throw new validate.CodecError(`record.file.name: not a snapshot file name: ${JSON.stringify(name)}`);
  const checksum = validate.counter(fields['checksum'], 'record.file.checksum');
  if (checksum > 0xffff_ffff) throw new validate.CodecError(`record.file.checksum: ${checksum} is not a u32`);
  return { name, bytes: validate.counter(fields['bytes'], 'record.file.bytes'), checksum };
}

function snapshotSlot(value: number): SnapshotSlot {
  if (value !== 0 && value !== 1) throw new validate.CodecError(`record.slot: expected 0 or 1, got ${value}`);
  return value;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
