// The binary key layout of the node's LevelDB. Every key of a group starts with the same five
// bytes, so a group is one contiguous key range, and log indices are big-endian, so a range scan
// visits a group's log in index order:
//
//   0x67 'g' | group u32 BE | 0x61 'a'                     applied index       g/<group>/applied
//   0x67 'g' | group u32 BE | 0x63 'c' | chunk u32 BE      snapshot bytes, one g/<group>/snap-chunk/<chunk>
//                                                          chunk of snapshotChunkBytes (records.ts);
//                                                          slot 1: bit 31 set   g/<group>/snap-chunk/1/<chunk>
//   0x67 'g' | group u32 BE | 0x68 'h'                     hard state          g/<group>/hard
//   0x67 'g' | group u32 BE | 0x6c 'l' | index u64 BE      one log entry       g/<group>/log/<index>
//   0x67 'g' | group u32 BE | 0x6d 'm'                     snapshot metadata   g/<group>/snap-meta
//   0x67 'g' | group u32 BE | 0x73 's'                     snapshot bytes      g/<group>/snap-data
//                                                          (one record: read, no longer written)
//
// 6 bytes for a group record, 14 for a log entry (the readable `g/<group>/log/<index>` without the
// separators, which would only add bytes to every key). Keys outside the 'g' prefix are reserved
// for node-wide records to come; inside it, a key that does not parse is corruption. The readable
// form on the right is what error messages print. Pure functions; used by disk-store.ts and tests.
//
// snap-meta points at the file holding the snapshot's bytes (snapshot-files.ts). The chunk and
// snap-data keys are the earlier layouts': read, and deleted by the next snapshot stored. Chunks
// lived in two slots (the top bit of the chunk number), the one snap-meta named and a spare one a
// snapshot being written went to.

import { readUint32BE, readUint53BE, writeUint32BE, writeUint53BE } from '../base/bytes.ts';
import type { GroupId, LogIndex } from '../base/ids.ts';

const groupPrefixByte = 0x67;
const groupPrefixBytes = 5;
const recordKeyBytes = groupPrefixBytes + 1;
const logKeyBytes = recordKeyBytes + 8;
const chunkKeyBytes = recordKeyBytes + 4;
/** Group ids are stored as u32. */
export const groupIdMax = 0xffff_ffff;

const tagByKind = {
  applied: 0x61,
  'snap-chunk': 0x63,
  hard: 0x68,
  log: 0x6c,
  'snap-meta': 0x6d,
  'snap-data': 0x73,
} as const;
export type RecordKind = keyof typeof tagByKind;
type GroupRecordKind = Exclude<RecordKind, 'log' | 'snap-chunk'>;

export type ParsedKey =
  | { readonly kind: GroupRecordKind; readonly group: GroupId }
  | { readonly kind: 'log'; readonly group: GroupId; readonly index: LogIndex }
  | { readonly kind: 'snap-chunk'; readonly group: GroupId; readonly chunk: number; readonly slot: SnapshotSlot };

/** Which of a group's two sets of snapshot chunk keys (see above). */
export type SnapshotSlot = 0 | 1;
const slotBit = 0x8000_0000;
/** Chunks per snapshot: the chunk number must leave the slot bit free. */
export const snapshotChunksMax = slotBit;

// Built for every entry of every storage batch: no DataView per key (src/base/bytes.ts says why).
function prefixed(group: GroupId, kind: RecordKind, length: number): Uint8Array {
  const key = new Uint8Array(length);
  key[0] = groupPrefixByte;
  writeUint32BE(key, 1, group);
  key[groupPrefixBytes] = tagByKind[kind];
  return key;
}

export function groupRecordKey(group: GroupId, kind: GroupRecordKind): Uint8Array {
  return prefixed(group, kind, recordKeyBytes);
}

export function logKey(group: GroupId, index: LogIndex): Uint8Array {
  const key = prefixed(group, 'log', logKeyBytes);
  writeUint53BE(key, recordKeyBytes, index);
  return key;
}

export function snapshotChunkKey(group: GroupId, chunk: number, slot: SnapshotSlot = 0): Uint8Array {
  const key = prefixed(group, 'snap-chunk', chunkKeyBytes);
  writeUint32BE(key, recordKeyBytes, slot === 1 ? chunk + slotBit : chunk);
  return key;
}

/** Bounds of every key of every group: the whole 'g' prefix. */
export function allGroupsRange(): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: Uint8Array.of(groupPrefixByte), lt: Uint8Array.of(groupPrefixByte + 1) };
}

export function parseKey(key: Uint8Array): ParsedKey | undefined {
  if (key.length < recordKeyBytes || key[0] !== groupPrefixByte) return undefined;
  const group = readUint32BE(key, 1) as GroupId;
  const tag = key[groupPrefixBytes];
  if (tag === tagByKind.log) {
    if (key.length !== logKeyBytes) return undefined;
    // Log indices above 2^53 - 1 cannot be numbers: such a key does not parse.
    const index = readUint53BE(key, recordKeyBytes);
    return index === undefined ? undefined : { kind: 'log', group, index: index as LogIndex };
  }
  if (tag === tagByKind['snap-chunk']) {
    if (key.length !== chunkKeyBytes) return undefined;
    const number = readUint32BE(key, recordKeyBytes);
    return number >= slotBit
      ? { kind: 'snap-chunk', group, chunk: number - slotBit, slot: 1 }
      : { kind: 'snap-chunk', group, chunk: number, slot: 0 };
  }
  if (key.length !== recordKeyBytes) return undefined;
  for (const kind of ['applied', 'hard', 'snap-meta', 'snap-data'] as const) {
    if (tag === tagByKind[kind]) return { kind, group };
  }
  return undefined;
}

/** The readable form for messages: `g/3/log/17`, `g/3/hard`, or the raw bytes in hex. */
export function describeKey(key: Uint8Array): string {
  const parsed = parseKey(key);
  if (parsed === undefined) return `0x${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}`;
  if (parsed.kind === 'log') return `g/${parsed.group}/log/${parsed.index}`;
  if (parsed.kind === 'snap-chunk')
    return `g/${parsed.group}/snap-chunk/${parsed.slot === 1 ? '1/' : ''}${parsed.chunk}`;
  return `g/${parsed.group}/${parsed.kind}`;
}
