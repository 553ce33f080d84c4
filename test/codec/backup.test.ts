// The backup file (src/codec/backup.ts): round trip with every group's timeframe; garbage, a
// truncated or corrupt file, a newer format and a group listed at another index than its
// snapshot are refused with BackupFormatError (a clear message), never half-used or crashed on.

import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, Term } from '../../src/base/ids.ts';
import { backupGroup, BackupFormatError, decodeBackup, encodeBackup, type Backup } from '../../src/codec/backup.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { ModelStack } from '../../src/models/model-stack.ts';
import { KvModel } from '../../src/models/kv.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { NodeId } from '../../src/base/ids.ts';

const checksum = (bytes: Uint8Array, previous: number): number => crc32(bytes, previous);

function envelope(group: number, index: number, term: number, voters: readonly number[] = [1, 2, 3]): Uint8Array {
  const model = new KvModel();
  model.apply(index as LogIndex, { op: 'put', key: `key-${group}`, value: new TextEncoder().encode('v') });
  const slices = new ModelStack(model, checksum).capture([
    {
      group: group as GroupId,
      index: index as LogIndex,
      term: term as Term,
      confState: confStateOf(voters as NodeId[]),
    },
  ]);
  return Buffer.concat([...{ [Symbol.iterator]: () => slices }]);
}

function sample(): Backup {
  return {
    kind: 'cluster',
    clusterId: 'prod',
    createdAtMs: 1_700_000_000_000,
    version: '0.1.0',
    groups: [
      backupGroup(0 as GroupId, envelope(0, 12, 2), checksum),
      backupGroup(1 as GroupId, envelope(1, 40, 3, [2, 4, 5]), checksum),
    ],
  };
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BackupFormatError);
    return (error as Error).message;
  }
  throw new Error('not refused');
}

describe('backup file', () => {
  it('round-trips with the timeframe each group snapshot records: index, term and configuration', () => {
    const decoded = decodeBackup(encodeBackup(sample(), checksum), checksum);
    expect(
      decoded.groups.map(({ group, index, term, confState }) => ({ group, index, term, voters: confState.voters })),
    ).toEqual([
      { group: 0, index: 12, term: 2, voters: [1, 2, 3] },
      { group: 1, index: 40, term: 3, voters: [2, 4, 5] },
    ]);
    expect({ ...decoded, groups: [] }).toEqual({ ...sample(), groups: [] });
  });

  it('refuses garbage, truncation and corruption with BackupFormatError only', () => {
    const good = encodeBackup(sample(), checksum);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(good.length - 1),
        fc.integer({ min: 1, max: 255 }),
        (junk, at, flip) => {
          refusal(() => decodeBackup(junk, checksum));
          refusal(() => decodeBackup(good.subarray(0, at), checksum));
          const corrupt = good.slice();
          corrupt[at] = (corrupt[at] ?? 0) ^ flip;
          refusal(() => decodeBackup(corrupt, checksum));
        },
      ),
      { seed: 16, numRuns: 300 },
    );
  });

  it('refuses a newer format with a message that says so', () => {
    const newer = encodeBackup(sample(), checksum);
    newer[4] = 2;
    expect(refusal(() => decodeBackup(newer, checksum))).toContain('format 2 is not one this version reads');
  });

  it('refuses a group listed at another index than its snapshot includes (checksums intact)', () => {
    const body = encode({
      kind: 'cluster',
      clusterId: 'prod',
      createdAtMs: 1,
      version: '0.1.0',
      groups: [{ group: 1, index: 41, term: 3, snapshot: envelope(1, 40, 3) }],
    });
    const file = new Uint8Array(5 + body.length + 4);
    file.set([0x44, 0x52, 0x42, 0x4b, 1], 0);
    file.set(body, 5);
    new DataView(file.buffer).setUint32(file.length - 4, crc32(file.subarray(0, file.length - 4)));
    expect(refusal(() => decodeBackup(file, checksum))).toContain('listed at index 41');
  });
});
