// A run of consecutive log entries as bytes: how the node's LevelDB stores a group's log, one
// record per run (the entries one turn appended) rather than one per entry (src/storage/records.ts
// seals it with the group and a checksum), and how AppendEntries carries its entries on the peer
// wire (src/codec/wire.ts). Layout, integers big-endian:
//
//   first index u64 | count u32 | count x ( kind u8 | term u64 | length u32 | length bytes )
//
// kind 0 is a normal entry and its bytes are its data; kind 1 is a configuration entry and its
// bytes are its change as a msgpack map. Indices are implied: the k-th entry is at first + k.
// Written in one pass into one allocation, with no per-entry map to encode, which is what a record
// per entry cost (a msgpack map, a checksum, a key and a LevelDB put for every entry).
// Decoding checks every length and field and throws a CodecError naming the entry; decoded data
// are views into the given bytes (callers that keep them pass a private copy). Pure: no I/O.

import { readUint32BE, readUint53BE, writeUint32BE, writeUint53BE } from '../base/bytes.ts';
import { assert } from '../base/assert.ts';
import type { LogIndex, Term } from '../base/ids.ts';
import type { ConfChange, Entry } from '../raft/types.ts';
import { decode, encode } from './msgpack.ts';
import { confChange, fail } from './validate.ts';

const runHeaderBytes = 8 + 4;
const entryHeaderBytes = 1 + 8 + 4;
const kindNormal = 0;
const kindConf = 1;

export interface EntryRunLimits {
  /** Bytes of one normal entry's data. */
  readonly entryDataBytesMax: number;
  /** Entries in one run (checked on the header, before anything is decoded); unbounded when absent. */
  readonly entriesMax?: number;
}

/** A configuration change's bytes inside a run (the fields listed one by one: nothing stray reaches the disk). */
function changeBytes(change: ConfChange): Uint8Array {
  return encode({ changes: change.changes.map(({ type, node }) => ({ type, node })), transition: change.transition });
}

/** The encoded payloads of a run's entries, in order (conf changes encoded once here, data as they are). */
function payloads(entries: readonly Entry[]): Uint8Array[] {
  return entries.map((entry) => (entry.kind === 'normal' ? entry.data : changeBytes(entry.change)));
}

/**
 * Encodes `entries` (at least one, consecutive indices) as a run into a new array that starts with
 * `prefixBytes` bytes left for the caller (the record's checksum and group), so a record is built
 * in one allocation.
 */
export function encodeEntryRun(entries: readonly Entry[], prefixBytes: number): Uint8Array {
  const first = entries[0];
  assert(first !== undefined, 'entry run: no entries');
  const data = payloads(entries);
  let length = prefixBytes + runHeaderBytes;
  for (const payload of data) length += entryHeaderBytes + payload.length;
  const bytes = new Uint8Array(length);
  let at = prefixBytes;
  writeUint53BE(bytes, at, first.index);
  writeUint32BE(bytes, at + 8, entries.length);
  at += runHeaderBytes;
  entries.forEach((entry, k) => {
    assert(entry.index === first.index + k, `entry run: entries not consecutive at ${entry.index}`);
    const payload = data[k] ?? new Uint8Array(0);
    bytes[at] = entry.kind === 'normal' ? kindNormal : kindConf;
    writeUint53BE(bytes, at + 1, entry.term);
    writeUint32BE(bytes, at + 9, payload.length);
    bytes.set(payload, at + entryHeaderBytes);
    at += entryHeaderBytes + payload.length;
  });
  return bytes;
}

/** Decodes the run that fills `bytes` from `offset` to the end; `path` names it in errors. */
export function decodeEntryRun(bytes: Uint8Array, offset: number, limits: EntryRunLimits, path: string): Entry[] {
  if (bytes.length - offset < runHeaderBytes)
    fail(path, `${bytes.length - offset} bytes are shorter than a run header`);
  const first = readUint53BE(bytes, offset);
  if (first === undefined || first === 0) fail(path, 'the first index is not a log index');
  const count = readUint32BE(bytes, offset + 8);
  if (count === 0) fail(path, 'a run of no entries');
  if (limits.entriesMax !== undefined && count > limits.entriesMax)
    fail(path, `${count} entries exceed ${limits.entriesMax}`);
  if (first + count - 1 > Number.MAX_SAFE_INTEGER) fail(path, 'the run ends past the largest log index');
  const entries: Entry[] = [];
  let at = offset + runHeaderBytes;
  for (let k = 0; k < count; k++) {
    const index = (first + k) as LogIndex;
    const where = `${path} entry ${index}`;
    if (bytes.length - at < entryHeaderBytes) fail(where, 'the run ends inside an entry header');
    const kind = bytes[at];
    const term = readUint53BE(bytes, at + 1);
    if (term === undefined) fail(where, 'the term is not a safe integer');
    const length = readUint32BE(bytes, at + 9);
    at += entryHeaderBytes;
    if (bytes.length - at < length) fail(where, `${length} bytes of payload, ${bytes.length - at} left in the run`);
    const payload = bytes.subarray(at, at + length);
    at += length;
    if (kind === kindNormal) {
      if (length > limits.entryDataBytesMax) fail(where, `${length} bytes exceed ${limits.entryDataBytesMax}`);
      entries.push({ kind: 'normal', term: term as Term, index, data: payload });
    } else if (kind === kindConf) {
      entries.push({ kind: 'conf', term: term as Term, index, change: confChange(decode(payload), `${where}.change`) });
    } else {
      fail(where, `unknown entry kind ${kind}`);
    }
  }
  if (at !== bytes.length) fail(path, `${bytes.length - at} bytes after the last entry`);
  return entries;
}
