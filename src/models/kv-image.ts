// The KV model's snapshot format (version 2) and its in-memory form, the same bytes: an image is
// the model's records sorted by key, one record after another, in segments (about a megabyte each,
// the slices a snapshot is written in), with the offset of every record. A snapshot restores by
// indexing the bytes it was handed (no object per key), and a snapshot is written by copying runs
// of an image's records and merging in the keys changed since (kv.ts keeps those in layers).
//
//   body    = sessions length u32 BE | sessions (msgpack list) | record*
//   record  = key length u16 BE | key (UTF-8) | createIndex u64 BE | modifyIndex u64 BE |
//             value length u32 BE | value
//
// Records are in ascending order of their key's UTF-8 bytes, each key once. Reading checks every
// length, index and the order, and throws CodecError for anything else: a snapshot passed its
// checksum before it gets here, so a failure means a writer bug, never silent garbage.
// Pure. Used by kv.ts only.

import { assert } from '../base/assert.ts';
import { readUint32BE, readUint53BE, writeUint32BE, writeUint53BE } from '../base/bytes.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../codec/kv.ts';
import { decode, encode } from '../codec/msgpack.ts';
import { fail } from '../codec/validate.ts';

export interface ImageRecord {
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Consecutive records; starts[k] is where record k begins, starts[count] where the last ends. */
export interface Segment {
  readonly data: Uint8Array;
  readonly starts: Uint32Array;
  readonly count: number;
}

const recordFixedBytes = 2 + 8 + 8 + 4;
/** A segment (and a snapshot slice) is closed once it holds this many bytes. */
export const segmentBytes = 1 << 20;

export const emptyImage: readonly Segment[] = [];

function keyLength(data: Uint8Array, at: number): number {
  return ((data[at] ?? 0) << 8) | (data[at + 1] ?? 0);
}

/** Compares the key of the record at `at` with `key` (UTF-8 bytes): negative, zero or positive. */
function compareKeyAt(data: Uint8Array, at: number, key: Uint8Array): number {
  const length = keyLength(data, at);
  const common = Math.min(length, key.length);
  for (let i = 0; i < common; i++) {
    const diff = (data[at + 2 + i] ?? 0) - (key[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return length - key.length;
}

/** Compares the keys of the records at `a` and `b` of `data`. */
function compareKeys(data: Uint8Array, a: number, b: number): number {
  const aLength = keyLength(data, a);
  const bLength = keyLength(data, b);
  const common = Math.min(aLength, bLength);
  for (let i = 0; i < common; i++) {
    const diff = (data[a + 2 + i] ?? 0) - (data[b + 2 + i] ?? 0);
    if (diff !== 0) return diff;
  }
  return aLength - bLength;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const common = Math.min(a.length, b.length);
  for (let i = 0; i < common; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return a.length - b.length;
}

function start(segment: Segment, k: number): number {
  return segment.starts[k] ?? 0;
}

/** The first record of `segment` at or after `from` whose key is >= `key` (count when none). */
function lowerBound(segment: Segment, key: Uint8Array, from: number): number {
  let low = from;
  let high = segment.count;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeyAt(segment.data, start(segment, middle), key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function readImageRecord(segment: Segment, k: number): ImageRecord {
  const { data } = segment;
  const at = start(segment, k);
  const fixed = at + 2 + keyLength(data, at);
  const valueLength = readUint32BE(data, fixed + 16);
  return {
    value: data.subarray(fixed + 20, fixed + 20 + valueLength),
    createIndex: readUint53BE(data, fixed) ?? 0,
    modifyIndex: readUint53BE(data, fixed + 8) ?? 0,
  };
}

/** The record of `key` (UTF-8 bytes) in the image, if it holds one. */
export function findInImage(image: readonly Segment[], key: Uint8Array): ImageRecord | undefined {
  // The last segment whose first key is <= key.
  let low = 0;
  let high = image.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const segment = image[middle] as Segment;
    if (compareKeyAt(segment.data, 0, key) <= 0) low = middle + 1;
    else high = middle;
  }
  const segment = image[low - 1];
  if (segment === undefined) return undefined;
  const k = lowerBound(segment, key, 0);
  if (k >= segment.count || compareKeyAt(segment.data, start(segment, k), key) !== 0) return undefined;
  return readImageRecord(segment, k);
}

export function imageCount(image: readonly Segment[]): number {
  let count = 0;
  for (const segment of image) count += segment.count;
  return count;
}

/** A change since the image: the key's new record, or null when it was deleted. */
export interface Change {
  readonly key: Uint8Array;
  readonly record: ImageRecord | null;
}

/**
 * The records of `image` with `changes` (ascending by key, each key once) merged in, as segments
 * of about segmentBytes, one per call of next(): runs of unchanged records are copied as bytes.
 */
export function* mergeImage(
  image: readonly Segment[],
  changes: readonly Change[],
  bytesMax: number = segmentBytes,
): Generator<Segment, void> {
  const out = new SegmentBuilder(bytesMax);
  let changeAt = 0;
  for (const segment of image) {
    let k = 0;
    while (k < segment.count) {
      const change = changes[changeAt];
      // Unchanged records up to the next change's key are copied as they are.
      const end = change === undefined ? segment.count : lowerBound(segment, change.key, k);
      while (k < end) {
        k = out.copy(segment, k, end);
        if (out.full()) yield out.finish();
      }
      if (change === undefined || k >= segment.count) continue;
      const same = compareKeyAt(segment.data, start(segment, k), change.key) === 0;
      if (same) k++;
      if (change.record !== null) out.put(change.key, change.record);
      changeAt++;
      if (out.full()) yield out.finish();
    }
  }
  for (; changeAt < changes.length; changeAt++) {
    const change = changes[changeAt] as Change;
    if (change.record !== null) out.put(change.key, change.record);
    if (out.full()) yield out.finish();
  }
  if (out.count > 0) yield out.finish();
}

/** Builds one segment from copied runs and single records. */
class SegmentBuilder {
  private pieces: ({ readonly segment: Segment; readonly from: number; readonly to: number } | Change)[] = [];
  private bytes = 0;
  count = 0;
  private readonly bytesMax: number;

  constructor(bytesMax: number) {
    this.bytesMax = bytesMax;
  }

  full(): boolean {
    return this.bytes >= this.bytesMax;
  }

  /** Takes records [from, end) of `segment` up to the size limit (at least one); returns where it stopped. */
  copy(segment: Segment, from: number, end: number): number {
    const base = start(segment, from);
    let to = from + 1;
    while (to < end && this.bytes + start(segment, to) - base < this.bytesMax) to++;
    this.pieces.push({ segment, from, to });
    this.bytes += start(segment, to) - base;
    this.count += to - from;
    return to;
  }

  put(key: Uint8Array, record: ImageRecord): void {
    this.pieces.push({ key, record });
    this.bytes += recordFixedBytes + key.length + record.value.length;
    this.count++;
  }

  finish(): Segment {
    const data = new Uint8Array(this.bytes);
    const starts = new Uint32Array(this.count + 1);
    let at = 0;
    let k = 0;
    for (const piece of this.pieces) {
      if ('segment' in piece) {
        const { segment, from, to } = piece;
        const base = start(segment, from);
        data.set(segment.data.subarray(base, start(segment, to)), at);
        for (let i = from; i < to; i++) starts[k++] = at + start(segment, i) - base;
        at += start(segment, to) - base;
      } else {
        starts[k++] = at;
        at = writeRecord(data, at, piece.key, piece.record as ImageRecord);
      }
    }
    starts[k] = at;
    assert(at === this.bytes && k === this.count, 'kv image: segment size');
    const segment = { data, starts, count: this.count };
    this.pieces = [];
    this.bytes = 0;
    this.count = 0;
    return segment;
  }
}

function writeRecord(data: Uint8Array, at: number, key: Uint8Array, record: ImageRecord): number {
  data[at] = key.length >>> 8;
  data[at + 1] = key.length & 0xff;
  data.set(key, at + 2);
  const fixed = at + 2 + key.length;
  writeUint53BE(data, fixed, record.createIndex);
  writeUint53BE(data, fixed + 8, record.modifyIndex);
  writeUint32BE(data, fixed + 16, record.value.length);
  data.set(record.value, fixed + 20);
  return fixed + 20 + record.value.length;
}

/** The body's first slice: the sessions, length-prefixed. */
export function sessionsSlice(sessions: readonly unknown[]): Uint8Array {
  const encoded = encode(sessions);
  const out = new Uint8Array(4 + encoded.length);
  writeUint32BE(out, 0, encoded.length);
  out.set(encoded, 4);
  return out;
}

/** Splits a version-2 body into its sessions (still to validate) and its records, indexed as one segment. */
export function readBody(body: Uint8Array): { readonly sessions: unknown; readonly image: readonly Segment[] } {
  if (body.length < 4) fail('kvsnap', 'the body ends inside the sessions length');
  const sessionsLength = readUint32BE(body, 0);
  if (body.length - 4 < sessionsLength) fail('kvsnap.sessions', 'truncated');
  const sessions = decode(body.subarray(4, 4 + sessionsLength));
  const data = body.subarray(4 + sessionsLength);
  // At most one record per recordFixedBytes + 1 bytes (a key is at least one byte).
  const starts = new Uint32Array(Math.floor(data.length / (recordFixedBytes + 1)) + 1);
  let count = 0;
  // The path is built only on failure: this loop runs once per record at every restart.
  const path = (): string => `kvsnap.records[${count}]`;
  let previous = -1;
  for (let at = 0; at < data.length; count++) {
    if (data.length - at < recordFixedBytes + 1) fail(path(), 'truncated');
    const length = keyLength(data, at);
    if (length === 0 || length > kvKeyBytesMax) fail(`${path()}.key`, `length ${length} out of range`);
    const fixed = at + 2 + length;
    if (data.length - fixed < 20) fail(path(), 'truncated');
    if (previous >= 0 && compareKeys(data, previous, at) >= 0) fail(`${path()}.key`, 'keys out of order');
    const createIndex = readUint53BE(data, fixed);
    const modifyIndex = readUint53BE(data, fixed + 8);
    if (createIndex === undefined || modifyIndex === undefined || createIndex > modifyIndex)
      fail(path(), 'bad create or modify index');
    const valueLength = readUint32BE(data, fixed + 16);
    if (valueLength > kvValueBytesMax || data.length - fixed - 20 < valueLength) fail(`${path()}.value`, 'truncated');
    starts[count] = at;
    previous = at;
    at = fixed + 20 + valueLength;
  }
  starts[count] = data.length;
  const image = count === 0 ? [] : [{ data, starts: starts.slice(0, count + 1), count }];
  return { sessions, image };
}
