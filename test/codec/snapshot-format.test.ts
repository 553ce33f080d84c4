// Hand-made newer-version snapshots (rolling upgrades, docs/deploy.md "Upgrading"): an envelope of
// a newer format is refused with a message naming both formats, and a restore of it is refused
// before anything is loaded, naming the group and the index.

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, Term } from '../../src/base/ids.ts';
import { openSnapshot, snapshotFormat, SnapshotFormatError } from '../../src/codec/snapshot.ts';
import { KvModel } from '../../src/models/kv.ts';
import { ModelStack, SnapshotRefusedError } from '../../src/models/model-stack.ts';
import { emptyConfState } from '../../src/raft/confchange.ts';

const checksum = (bytes: Uint8Array, previous: number): number => crc32(bytes, previous);
const frame = { group: 1 as GroupId, index: 9 as LogIndex, term: 2 as Term, confState: emptyConfState };

/** A current envelope with its format byte raised (and its checksum made right again). */
function newerEnvelope(): Uint8Array {
  const model = new KvModel();
  model.apply(9 as LogIndex, { op: 'put', key: 'k', value: new Uint8Array([1]) });
  const slices = new ModelStack(model, checksum).capture([frame]);
  const bytes = new Uint8Array(Buffer.concat([...{ [Symbol.iterator]: () => slices }]));
  bytes[4] = snapshotFormat + 1;
  new DataView(bytes.buffer).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)));
  return bytes;
}

describe('a snapshot written by a newer dram', () => {
  it('is refused by the envelope decoder, naming both formats', () => {
    expect(() => openSnapshot(newerEnvelope(), checksum)).toThrow(SnapshotFormatError);
    expect(() => openSnapshot(newerEnvelope(), checksum)).toThrow(
      `format ${snapshotFormat + 1} is not one this version reads (${snapshotFormat})`,
    );
  });

  it('is refused by a restore before anything is loaded, naming the group and the index', () => {
    const model = new KvModel();
    model.apply(1 as LogIndex, { op: 'put', key: 'mine', value: new Uint8Array([2]) });
    const stack = new ModelStack(model, checksum);
    expect(() => {
      stack.restore(newerEnvelope(), frame);
    }).toThrow(SnapshotRefusedError);
    expect(() => {
      stack.restore(newerEnvelope(), frame);
    }).toThrow(/group 1: the snapshot at index 9 is refused/u);
    expect(stack.model.get('mine')?.value).toEqual(new Uint8Array([2]));
  });
});
