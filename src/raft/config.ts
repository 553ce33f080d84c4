// Configuration of one Raft group's core, with every limit named and checked once, at construction.
// Ticks are the only notion of time: the host calls tick() at its own period (e.g. 10 ms).

import { assert } from '../base/assert.ts';
import { crc32 } from '../base/crc32.ts';
import type { GroupId, NodeId } from '../base/ids.ts';
import type { Rng } from '../base/rng.ts';
import type { Snapshot } from './types.ts';

export interface RaftConfig {
  readonly id: NodeId;
  /** The group this core runs, named in its assertion messages (the multi-Raft host sets it). */
  readonly group?: GroupId;
  /** A follower that hears nothing from a leader for [T, 2T) ticks campaigns (T = this). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  /** Campaign with a pre-vote first, so a rejoining partitioned node cannot disrupt a healthy leader. */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  readonly checkQuorum: boolean;
  /** Serve lease reads without a heartbeat round; needs checkQuorum and leaseTicks < electionTimeoutTicks. */
  readonly leaseReads: boolean;
  readonly leaseTicks: number;
  /** The largest single entry payload accepted by propose. */
  readonly entryBytesMax: number;
  /** The most entry bytes in one AppendEntries (at least one entry is always sent). */
  readonly messageBytesMax: number;
  /** AppendEntries messages in flight to one follower in the replicate state. */
  readonly inflightMessagesMax: number;
  /** Entry bytes in flight to one follower (0: no byte limit). */
  readonly inflightBytesMax: number;
  /** Bytes of proposed entries not yet committed on the leader; past it proposals are refused. */
  readonly uncommittedBytesMax: number;
  /** Read requests waiting for a heartbeat round or for the leader's first commit. */
  readonly readQueueMax: number;
  /** Bytes of committed entries handed out in one Ready. */
  readonly committedBytesMax: number;
  /** Snapshot bytes per InstallSnapshot message, and chunks in flight to one follower. */
  readonly snapshotChunkBytesMax: number;
  readonly snapshotChunksInflightMax: number;
  /** Ask the host for a snapshot once this many entries were applied past the last one (0: never ask). */
  readonly snapshotIntervalEntries: number;
  /**
   * Ask for a snapshot also once the entries applied past the last one hold this many bytes, so a
   * log of large entries is compacted before it holds snapshotIntervalEntries of them (0: no
   * byte bound).
   */
  readonly snapshotLogBytes: number;
  /**
   * Checks a snapshot received from the leader before it is installed (the host verifies its
   * envelope and checksum): a message refuses it, the partial copy is dropped, and the follower
   * asks the leader for it again from the first byte (reported as a `snapshot_refused` event).
   */
  readonly snapshotCheck?: (snapshot: Snapshot) => string | undefined;
  /**
   * Asked before each snapshot chunk a leader sends (the host's rate limit and bound on
   * concurrent transfers per node): false holds the chunk back; the leader offers it again with
   * the follower's next acknowledgement, or at a heartbeat once the transfer made no progress for
   * a whole heartbeat. Without it every chunk the window allows goes out at once.
   */
  readonly snapshotSendGate?: (to: NodeId, bytes: number) => boolean;
  /**
   * Entries the host keeps behind a snapshot when it compacts the log (etcd keeps 5,000), so a
   * follower a little behind catches up from the log instead of receiving the whole snapshot.
   * At most snapshotTailEntriesMax.
   */
  readonly snapshotTailEntries: number;
  /**
   * A leader whose group has been idle (everything committed, applied and replicated, nothing
   * waiting) for this many ticks tells its followers and goes quiet: no ticks, no heartbeats,
   * until anything happens (0: never). The host must then wake a quiet follower whose leader's
   * node went silent (RaftNode.wake), since no heartbeat will say so.
   */
  readonly quiesceAfterTicks: number;
  /**
   * CRC-32 of bytes, for snapshot chunks and the identity of a snapshot's bytes (InstallSnapshot).
   * The default is the pure one in src/base/crc32.ts; the host passes zlib's, which is faster.
   */
  readonly checksum: (bytes: Uint8Array) => number;
  readonly rng: Rng;
}

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'rng'> & Partial<Omit<RaftConfig, 'id' | 'rng'>>;

export const raftConfigDefaults = {
  electionTimeoutTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  leaseReads: false,
  leaseTicks: 8,
  entryBytesMax: 1 << 20,
  messageBytesMax: 1 << 20,
  inflightMessagesMax: 256,
  inflightBytesMax: 16 << 20,
  uncommittedBytesMax: 64 << 20,
  readQueueMax: 4096,
  committedBytesMax: 4 << 20,
  snapshotChunkBytesMax: 1 << 20,
  snapshotChunksInflightMax: 4,
  snapshotIntervalEntries: 10_000,
  snapshotLogBytes: 64 << 20,
  snapshotTailEntries: 5_000,
  quiesceAfterTicks: 0,
  checksum: (bytes: Uint8Array): number => crc32(bytes),
} as const;

/** The most entries snapshotTailEntries may keep behind a snapshot (they stay in memory and on disk). */
export const snapshotTailEntriesMax = 1_000_000;

export function makeRaftConfig(input: RaftConfigInput): RaftConfig {
  const config: RaftConfig = { ...raftConfigDefaults, ...input };
  assert(Number.isSafeInteger(config.id) && config.id > 0, 'config: id must be a positive integer');
  for (const key of ['electionTimeoutTicks', 'heartbeatTicks', 'leaseTicks'] as const) {
    assert(Number.isSafeInteger(config[key]), `config: ${key} must be a whole number of ticks`);
  }
  assert(config.heartbeatTicks >= 1, 'config: heartbeatTicks must be at least 1');
  assert(
    config.electionTimeoutTicks > config.heartbeatTicks,
    'config: electionTimeoutTicks must exceed heartbeatTicks',
  );
  assert(!config.leaseReads || config.checkQuorum, 'config: leaseReads needs checkQuorum');
  assert(
    !config.leaseReads || (config.leaseTicks >= 1 && config.leaseTicks < config.electionTimeoutTicks),
    'config: leaseTicks must be in [1, electionTimeoutTicks)',
  );
  for (const key of [
    'entryBytesMax',
    'messageBytesMax',
    'inflightMessagesMax',
    'uncommittedBytesMax',
    'readQueueMax',
    'committedBytesMax',
    'snapshotChunkBytesMax',
    'snapshotChunksInflightMax',
  ] as const) {
    assert(Number.isSafeInteger(config[key]) && config[key] >= 1, `config: ${key} must be a positive integer`);
  }
  assert(config.inflightBytesMax >= 0, 'config: inflightBytesMax must not be negative');
  assert(
    Number.isSafeInteger(config.snapshotIntervalEntries) && config.snapshotIntervalEntries >= 0,
    'config: snapshotIntervalEntries must be a non-negative integer',
  );
  assert(
    Number.isSafeInteger(config.snapshotLogBytes) && config.snapshotLogBytes >= 0,
    'config: snapshotLogBytes must be a non-negative integer',
  );
  assert(
    Number.isSafeInteger(config.snapshotTailEntries) &&
      config.snapshotTailEntries >= 0 &&
      config.snapshotTailEntries <= snapshotTailEntriesMax,
    `config: snapshotTailEntries must be an integer in [0, ${snapshotTailEntriesMax}]`,
  );
  assert(
    Number.isSafeInteger(config.quiesceAfterTicks) &&
      (config.quiesceAfterTicks === 0 || config.quiesceAfterTicks >= config.heartbeatTicks),
    'config: quiesceAfterTicks must be 0 or at least heartbeatTicks',
  );
  assert(
    config.entryBytesMax <= config.uncommittedBytesMax,
    'config: entryBytesMax must not exceed uncommittedBytesMax',
  );
  return config;
}
