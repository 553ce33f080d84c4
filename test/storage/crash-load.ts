// The write load crash-writer.ts runs and crash.test.ts checks, in one place so both agree on it.
// Every entry's data says who wrote it (group, index, term, turn) and ends in filler derived from
// those, so a reader can tell an intact entry from a damaged or misplaced one. Snapshot bytes are
// derived from (group, index) the same way.

import type { GroupId, LogIndex, Term } from '../../src/base/ids.ts';

export const crashGroups: readonly GroupId[] = [1, 2, 3, 4].map((group) => group as GroupId);
/** Entries appended to each group per turn: 1..this many. */
export const entriesPerTurnMax = 4;
/** Every this many turns one group (in rotation) compacts its log behind a snapshot. */
export const compactEveryTurns = 20;

const headerBytes = 16;
/** Filler lengths vary (0..fillerBytesModulus-1) so records of many sizes hit the disk. */
const fillerBytesModulus = 97;

export interface EntryStamp {
  readonly group: number;
  readonly index: number;
  readonly term: number;
  readonly turn: number;
}

function filler(seed: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, k) => (seed * 31 + k * 7) & 0xff);
}

export function entryPayload(stamp: EntryStamp): Uint8Array {
  const length = (stamp.index * 7) % fillerBytesModulus;
  const data = new Uint8Array(headerBytes + length);
  const view = new DataView(data.buffer);
  [stamp.group, stamp.index, stamp.term, stamp.turn].forEach((value, k) => {
    view.setUint32(4 * k, value);
  });
  data.set(filler(stamp.group + stamp.index + stamp.term, length), headerBytes);
  return data;
}

/** The stamp an intact payload carries, or undefined when the bytes are not one of ours. */
export function readPayload(data: Uint8Array): EntryStamp | undefined {
  if (data.length < headerBytes) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const [group, index, term, turn] = [0, 1, 2, 3].map((k) => view.getUint32(4 * k)) as [number, number, number, number];
  const stamp = { group, index, term, turn };
  const expected = entryPayload(stamp);
  return expected.length === data.length && expected.every((byte, k) => byte === data[k]) ? stamp : undefined;
}

export function snapshotPayload(group: GroupId, index: LogIndex): Uint8Array {
  return filler(group * 1_000_003 + index, 64 + (index % 64));
}

/** One acknowledged write of one group, as the writer prints it: `ack <turn> <group> <first> <last> <term>`. */
export interface Acknowledgement {
  readonly turn: number;
  readonly group: GroupId;
  readonly first: LogIndex;
  readonly last: LogIndex;
  readonly term: Term;
}

export function formatAck(ack: Acknowledgement): string {
  return `ack ${ack.turn} ${ack.group} ${ack.first} ${ack.last} ${ack.term}\n`;
}

export function parseAck(line: string): Acknowledgement | undefined {
  const match = /^ack (\d+) (\d+) (\d+) (\d+) (\d+)$/.exec(line);
  if (match === null) return undefined;
  const [turn, group, first, last, term] = match.slice(1).map(Number) as [number, number, number, number, number];
  return { turn, group: group as GroupId, first: first as LogIndex, last: last as LogIndex, term: term as Term };
}
