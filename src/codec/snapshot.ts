// The snapshot envelope: the bytes of every group snapshot, whatever model it holds, as stored by
// a compaction, loaded at restart and sent by InstallSnapshot (docs/ARCHITECTURE.md, "Snapshots").
//
//   "DRSN" | format u8 (1) | header length u32 BE | header (msgpack) | body | checksum u32 BE
//
// The header says what the snapshot includes (its timeframe: per group the last included index,
// its term and the configuration there; a vector when a snapshot spans groups) and what the body
// is: the model's own bytes (`body: 'model'`, written by its snapshot()) or, for a model without
// snapshot support, the mutations it applied since its creation (`body: 'mutations'`: repeated
// `index u64 BE | length u32 BE | data`). The checksum (CRC-32 of everything before it) is
// computed by a function the caller passes in: this layer is pure, and the host uses zlib's.
// Bytes without the magic are a format-0 snapshot: a model's bare bytes, as written before the
// envelope existed (model version 1 of its type).
//
// Decoding validates everything and throws SnapshotFormatError, never uses a bad snapshot.
// Called by src/models/model-stack.ts and src/multiraft/host.ts.

import { readUint32BE, readUint53BE, writeUint32BE, writeUint53BE } from '../base/bytes.ts';
import type { GroupId, LogIndex, Term } from '../base/ids.ts';
import type { ConfState } from '../raft/types.ts';
import { decode, encode } from './msgpack.ts';
import { CodecError, confState, counter, list, oneOf, record } from './validate.ts';

export const snapshotFormat = 1;
const magic = Uint8Array.of(0x44, 0x52, 0x53, 0x4e);
const prefixBytes = magic.length + 1 + 4;
const checksumBytes = 4;
const headerBytesMax = 1 << 20;
const timeframeGroupsMax = 1 << 16;
const modelTypeBytesMax = 256;
const mutationHeadBytes = 12;

/** CRC-32 of `bytes`, continuing from `previous` (0 to start), as zlib.crc32 computes it. */
export type Checksum = (bytes: Uint8Array, previous: number) => number;

/** What a snapshot includes of one group. */
export interface GroupTimeframe {
  readonly group: GroupId;
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface SnapshotHeader {
  /** One per group the snapshot includes, ascending by group (one for a group's own snapshot). */
  readonly timeframe: readonly GroupTimeframe[];
  readonly model: { readonly type: string; readonly version: number; readonly body: 'model' | 'mutations' };
}

export type OpenedSnapshot =
  | { readonly format: 0; readonly body: Uint8Array }
  | { readonly format: typeof snapshotFormat; readonly header: SnapshotHeader; readonly body: Uint8Array };

export interface Mutation {
  readonly index: LogIndex;
  readonly data: Uint8Array;
}

/** A snapshot that must not be used: not an envelope this version reads, truncated, or a bad checksum. */
export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
}

/** The envelope's head: magic, format, header. */
export function snapshotHead(header: SnapshotHeader): Uint8Array {
  const body = encode({
    timeframe: header.timeframe.map(({ group, index, term, confState }) => ({ group, index, term, confState })),
    model: { type: header.model.type, version: header.model.version, body: header.model.body },
  });
  const head = new Uint8Array(prefixBytes + body.length);
  head.set(magic, 0);
  head[magic.length] = snapshotFormat;
  writeUint32BE(head, magic.length + 1, body.length);
  head.set(body, prefixBytes);
  return head;
}

/** The envelope's last four bytes. */
export function snapshotTrailer(checksum: number): Uint8Array {
  const trailer = new Uint8Array(checksumBytes);
  writeUint32BE(trailer, 0, checksum);
  return trailer;
}

/** Mutations as a body: `index u64 BE | length u32 BE | data` each. */
export function encodeMutations(mutations: readonly Mutation[]): Uint8Array {
  let bytes = 0;
  for (const mutation of mutations) bytes += mutationHeadBytes + mutation.data.length;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const { index, data } of mutations) {
    writeUint53BE(out, at, index);
    writeUint32BE(out, at + 8, data.length);
    out.set(data, at + mutationHeadBytes);
    at += mutationHeadBytes + data.length;
  }
  return out;
}

export function decodeMutations(body: Uint8Array): Mutation[] {
  const mutations: Mutation[] = [];
  let previous = 0;
  for (let at = 0; at < body.length; ) {
    if (body.length - at < mutationHeadBytes) throw new SnapshotFormatError('the mutations end inside a header');
    const index = readUint53BE(body, at);
    const length = readUint32BE(body, at + 8);
    if (index === undefined || index <= previous)
      throw new SnapshotFormatError(`mutation indices must ascend (${String(index)} after ${previous})`);
    if (body.length - at - mutationHeadBytes < length) throw new SnapshotFormatError('a mutation is truncated');
    mutations.push({
      index: index as LogIndex,
      data: body.subarray(at + mutationHeadBytes, at + mutationHeadBytes + length),
    });
    previous = index;
    at += mutationHeadBytes + length;
  }
  return mutations;
}

/** Verifies and opens a snapshot's bytes; throws SnapshotFormatError for anything that must not be loaded. */
export function openSnapshot(data: Uint8Array, checksum: Checksum): OpenedSnapshot {
  if (!magic.every((byte, k) => data[k] === byte)) return { format: 0, body: data };
  if (data.length < prefixBytes + checksumBytes)
    throw new SnapshotFormatError(`truncated: ${data.length} bytes is shorter than an envelope`);
  const format = data[magic.length];
  if (format !== snapshotFormat)
    throw new SnapshotFormatError(`format ${String(format)} is not one this version reads (${snapshotFormat})`);
  const end = data.length - checksumBytes;
  const stored = readUint32BE(data, end);
  const computed = checksum(data.subarray(0, end), 0);
  if (stored !== computed)
    throw new SnapshotFormatError(
      `checksum mismatch: stored ${hex32(stored)}, computed ${hex32(computed)} over ${end} bytes (corrupt or truncated)`,
    );
  const headerLength = readUint32BE(data, magic.length + 1);
  if (headerLength > headerBytesMax || prefixBytes + headerLength > end)
    throw new SnapshotFormatError(`a header of ${headerLength} bytes does not fit`);
  try {
    const header = decodeHeader(decode(data.subarray(prefixBytes, prefixBytes + headerLength)));
    return { format: snapshotFormat, header, body: data.subarray(prefixBytes + headerLength, end) };
  } catch (error) {
    if (error instanceof CodecError) throw new SnapshotFormatError(`bad header: ${error.message}`);
    throw error;
  }
}

function decodeHeader(value: unknown): SnapshotHeader {
  const raw = record(value, 'snapshot');
  const timeframe = list(raw['timeframe'], 'snapshot.timeframe', timeframeGroupsMax).map((item, k) => {
    const path = `snapshot.timeframe[${k}]`;
    const frame = record(item, path);
    return {
      group: counter(frame['group'], `${path}.group`) as GroupId,
      index: counter(frame['index'], `${path}.index`) as LogIndex,
      term: counter(frame['term'], `${path}.term`) as Term,
      confState: confState(frame['confState'], `${path}.confState`),
    };
  });
  const model = record(raw['model'], 'snapshot.model');
  const type = model['type'];
  if (typeof type !== 'string' || type.length === 0 || type.length > modelTypeBytesMax)
    throw new CodecError(`snapshot.model.type: expected a model type, got ${String(type)}`);
  return {
    timeframe,
    model: {
      type,
      version: counter(model['version'], 'snapshot.model.version'),
      body: oneOf(model['body'], 'snapshot.model.body', ['model', 'mutations'] as const),
    },
  };
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
