// config.ts makeRaftConfig: defaults, overrides, and every documented invalid configuration rejected.

import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../../src/base/assert.ts';
import { createRng } from '../../../src/base/rng.ts';
import { makeRaftConfig, raftConfigDefaults, type RaftConfigInput } from '../../../src/raft/config.ts';
import { nid } from './helpers.ts';

const base = (): RaftConfigInput => ({ id: nid(1), rng: createRng(1) });

describe('makeRaftConfig', () => {
  it('fills in the defaults', () => {
    const input = base();
    const config = makeRaftConfig(input);
    expect(config).toEqual({ ...raftConfigDefaults, id: 1, rng: input.rng });
    expect(config.rng).toBe(input.rng);
  });

  it('keeps overrides', () => {
    const config = makeRaftConfig({
      ...base(),
      electionTimeoutTicks: 20,
      heartbeatTicks: 2,
      leaseReads: true,
      leaseTicks: 19,
      inflightBytesMax: 0,
    });
    expect(config.electionTimeoutTicks).toBe(20);
    expect(config.heartbeatTicks).toBe(2);
    expect(config.leaseReads).toBe(true);
    expect(config.leaseTicks).toBe(19);
    expect(config.inflightBytesMax).toBe(0);
  });

  it('accepts lease reads with checkQuorum and leaseTicks in [1, electionTimeoutTicks)', () => {
    expect(makeRaftConfig({ ...base(), leaseReads: true, checkQuorum: true, leaseTicks: 1 }).leaseTicks).toBe(1);
    expect(makeRaftConfig({ ...base(), leaseReads: true, leaseTicks: 9, electionTimeoutTicks: 10 }).leaseTicks).toBe(9);
  });

  it('ignores leaseTicks when lease reads are off', () => {
    expect(makeRaftConfig({ ...base(), leaseReads: false, checkQuorum: false, leaseTicks: 50 }).leaseTicks).toBe(50);
  });

  const invalid: [string, Partial<RaftConfigInput>, RegExp][] = [
    ['id 0', { id: nid(0) }, /id must be a positive integer/],
    [
      'fractional election timeout',
      { electionTimeoutTicks: 10.5 },
      /electionTimeoutTicks must be a whole number of ticks/,
    ],
    ['infinite heartbeat', { heartbeatTicks: Infinity }, /heartbeatTicks must be a whole number of ticks/],
    ['heartbeatTicks 0', { heartbeatTicks: 0 }, /heartbeatTicks/],
    [
      'electionTimeoutTicks equal to heartbeatTicks',
      { electionTimeoutTicks: 3, heartbeatTicks: 3 },
      /electionTimeoutTicks must exceed/,
    ],
    [
      'electionTimeoutTicks below heartbeatTicks',
      { electionTimeoutTicks: 2, heartbeatTicks: 3 },
      /electionTimeoutTicks must exceed/,
    ],
    ['lease reads without checkQuorum', { leaseReads: true, checkQuorum: false }, /leaseReads needs checkQuorum/],
    [
      'leaseTicks equal to electionTimeoutTicks',
      { leaseReads: true, leaseTicks: 10, electionTimeoutTicks: 10 },
      /leaseTicks/,
    ],
    [
      'leaseTicks above electionTimeoutTicks',
      { leaseReads: true, leaseTicks: 12, electionTimeoutTicks: 10 },
      /leaseTicks/,
    ],
    ['leaseTicks 0', { leaseReads: true, leaseTicks: 0 }, /leaseTicks/],
    ['default leaseTicks with a short election timeout', { leaseReads: true, electionTimeoutTicks: 5 }, /leaseTicks/],
    ['entryBytesMax 0', { entryBytesMax: 0 }, /entryBytesMax must be a positive integer/],
    ['messageBytesMax 0', { messageBytesMax: 0 }, /messageBytesMax/],
    ['inflightMessagesMax 0', { inflightMessagesMax: 0 }, /inflightMessagesMax/],
    ['uncommittedBytesMax 0', { uncommittedBytesMax: 0, entryBytesMax: 1 }, /uncommittedBytesMax/],
    ['readQueueMax 0', { readQueueMax: 0 }, /readQueueMax/],
    ['committedBytesMax 0', { committedBytesMax: 0 }, /committedBytesMax/],
    ['snapshotChunkBytesMax 0', { snapshotChunkBytesMax: 0 }, /snapshotChunkBytesMax/],
    ['snapshotChunksInflightMax 0', { snapshotChunksInflightMax: 0 }, /snapshotChunksInflightMax/],
    ['a fractional limit', { readQueueMax: 2.5 }, /readQueueMax/],
    ['a NaN limit', { messageBytesMax: Number.NaN }, /messageBytesMax/],
    ['an infinite limit', { committedBytesMax: Infinity }, /committedBytesMax/],
    ['negative inflightBytesMax', { inflightBytesMax: -1 }, /inflightBytesMax/],
    [
      'entryBytesMax above uncommittedBytesMax',
      { entryBytesMax: 100, uncommittedBytesMax: 99 },
      /entryBytesMax must not exceed/,
    ],
  ];

  it.each(invalid)('rejects %s', (_name, override, message) => {
    const input = { ...base(), ...override } as RaftConfigInput;
    expect(() => makeRaftConfig(input)).toThrow(AssertionError);
    expect(() => makeRaftConfig(input)).toThrow(message);
  });
});
