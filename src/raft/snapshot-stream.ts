// Snapshot streaming for one group (raft.ts drives it; nothing else does): the leader sends a
// snapshot in chunks of at most snapshotChunkBytesMax bytes, at most snapshotChunksInflightMax of
// them unacknowledged (one until the follower first answers: it may hold part of the snapshot
// already); the follower checks each chunk's checksum, assembles them in order and answers each
// with the offset it needs next. Pure bookkeeping: raft.ts builds and sends the messages, checks
// and installs the assembled snapshot.
//
// Invariants: on the leader, ackedOffset <= sentOffset <= totalBytes; a transfer with no
// acknowledged progress for a whole heartbeat resumes from the follower's latest report. On the
// follower, chunks are only appended at exactly the offset received so far and only when their
// checksum matches; a partial copy belongs to one snapshot's bytes (index, term, size and
// checksum of the whole), so a transfer interrupted by a dropped connection or a change of leader
// resumes where it stopped when the same bytes are offered again, and a different snapshot
// starts over. Within one leader's term snapshots only move forward.

import { concatBytes } from '../base/bytes.ts';
import type { LogIndex, Term } from '../base/ids.ts';
import type { Progress, SnapshotTransfer } from './progress.ts';
import type { InstallSnapshot, InstallSnapshotResponse, Snapshot } from './types.ts';

// -------------------------------------------------------------------------------------------
// Leader

/** Puts `progress` in snapshot state for `snapshot`, nothing sent yet. */
export function beginTransfer(progress: Progress, snapshot: Snapshot, checksum: number): void {
  progress.becomeSnapshot({
    index: snapshot.meta.index,
    term: snapshot.meta.term,
    totalBytes: snapshot.data.length,
    checksum,
    probing: true,
    sentOffset: 0,
    ackedOffset: 0,
    ackedOffsetAtCheck: -1,
    heard: false,
    reportedOffset: 0,
  });
}

/** Whether `transfer` is of `snapshot` (storage may have moved on to a newer one). */
export function transferOf(transfer: SnapshotTransfer, snapshot: Snapshot): boolean {
  return snapshot.meta.index === transfer.index && snapshot.meta.term === transfer.term;
}

/**
 * The offsets of the chunks to send now, within the window and as far as `allow` lets each chunk
 * (of its byte count) go; advances sentOffset. The first chunk goes out even for an empty snapshot.
 */
export function nextChunks(
  transfer: SnapshotTransfer,
  chunkBytesMax: number,
  chunksInflightMax: number,
  allow?: (bytes: number) => boolean,
): number[] {
  // Until the follower answers, one chunk: it may already hold more of these bytes (a transfer
  // resumed after a change of leader), and the answer says where to go on from.
  const windowBytes = chunkBytesMax * (transfer.probing ? 1 : chunksInflightMax);
  const offsets: number[] = [];
  let first = transfer.sentOffset === 0 && transfer.ackedOffset === 0;
  while (
    (transfer.sentOffset < transfer.totalBytes || first) &&
    transfer.sentOffset - transfer.ackedOffset < windowBytes
  ) {
    const end = Math.min(transfer.sentOffset + chunkBytesMax, transfer.totalBytes);
    if (allow !== undefined && !allow(end - transfer.sentOffset)) break;
    offsets.push(transfer.sentOffset);
    transfer.sentOffset = end;
    first = false;
  }
  return offsets;
}

/** Takes a follower's answer; returns whether it belongs to the transfer under way (then send more). */
export function acknowledge(progress: Progress, message: InstallSnapshotResponse): boolean {
  const transfer = progress.snapshot;
  if (progress.state !== 'snapshot' || transfer === undefined) return false;
  if (transfer.index !== message.snapshotIndex || transfer.term !== message.snapshotTerm) return false;
  transfer.heard = true;
  transfer.probing = false;
  transfer.reportedOffset = message.nextOffset;
  if (message.nextOffset > transfer.totalBytes) return false;
  if (message.nextOffset === 0 && transfer.ackedOffset > 0) {
    // The follower lost its partial copy (it restarted): start over. A response is only 0 when
    // it holds nothing of this snapshot, so a late duplicate cannot cause this more than once.
    transfer.ackedOffset = 0;
    transfer.sentOffset = 0;
  } else if (message.nextOffset > transfer.ackedOffset) {
    transfer.ackedOffset = message.nextOffset;
    // The follower held more than was sent in this transfer (it resumes a partial copy).
    if (transfer.sentOffset < transfer.ackedOffset) transfer.sentOffset = transfer.ackedOffset;
  }
  return true;
}

/**
 * At each heartbeat: returns whether the transfer stalled (no acknowledged progress since the
 * last check, from a follower that answers: a dead one would just soak up chunks) and was rewound
 * to resume from the acknowledged offset.
 */
export function rewindIfStalled(transfer: SnapshotTransfer): boolean {
  const stalled = transfer.heard && transfer.ackedOffset === transfer.ackedOffsetAtCheck;
  if (stalled) {
    // No progress for a whole heartbeat: trust the follower's latest report over our count.
    transfer.ackedOffset = Math.min(transfer.ackedOffset, transfer.reportedOffset);
    transfer.sentOffset = transfer.ackedOffset;
  }
  transfer.heard = false;
  transfer.ackedOffsetAtCheck = transfer.ackedOffset;
  return stalled;
}

// -------------------------------------------------------------------------------------------
// Follower

export type ChunkOutcome =
  /** The log already holds everything the snapshot does: tell the leader where we are instead. */
  | { readonly kind: 'covered' }
  /** A late chunk of an older snapshot of the same leader: no answer. */
  | { readonly kind: 'stale' }
  /** Answer with the offset needed next; `refused` says why this chunk was not kept (bad checksum, overrun). */
  | { readonly kind: 'need'; readonly nextOffset: number; readonly refused: string | undefined }
  | { readonly kind: 'complete'; readonly snapshot: Snapshot };

interface IncomingSnapshot {
  readonly meta: Snapshot['meta'];
  readonly totalBytes: number;
  /** Undefined when its sender gave none (a peer of an older release). */
  readonly checksum: number | undefined;
  /** The newest leader term that sent chunks of it (older snapshots of that term are stale). */
  leaderTerm: Term;
  readonly chunks: Uint8Array[];
  received: number;
}

/** The follower's partial copy of the snapshot its leader is sending. */
export class SnapshotReceiver {
  private incoming: IncomingSnapshot | undefined = undefined;
  private readonly checksum: (bytes: Uint8Array) => number;

  constructor(checksum: (bytes: Uint8Array) => number) {
    this.checksum = checksum;
  }

  /** Bytes held of the snapshot being received (0: none). */
  get receivedBytes(): number {
    return this.incoming?.received ?? 0;
  }

  receive(message: InstallSnapshot, committed: LogIndex): ChunkOutcome {
    const { meta } = message;
    if (meta.index <= committed) {
      this.incoming = undefined;
      return { kind: 'covered' };
    }
    let incoming = this.incoming;
    if (incoming !== undefined && incoming.leaderTerm === message.term && meta.index < incoming.meta.index)
      return { kind: 'stale' };
    const same =
      incoming !== undefined &&
      incoming.meta.index === meta.index &&
      incoming.meta.term === meta.term &&
      incoming.totalBytes === message.totalBytes &&
      incoming.checksum === message.snapshotChecksum &&
      // Without a checksum (a peer of an older release) the bytes are known only within one term.
      (message.snapshotChecksum !== undefined || incoming.leaderTerm === message.term);
    const refused =
      message.offset + message.chunk.length > message.totalBytes
        ? `it ends past the snapshot's ${message.totalBytes} bytes`
        : message.chunkChecksum === undefined || this.checksum(message.chunk) === message.chunkChecksum
          ? undefined
          : 'its checksum does not match';
    if (refused !== undefined) return { kind: 'need', nextOffset: same ? (incoming?.received ?? 0) : 0, refused };
    if (!same || incoming === undefined) {
      if (message.offset !== 0) return { kind: 'need', nextOffset: 0, refused: undefined };
      incoming = {
        meta,
        totalBytes: message.totalBytes,
        checksum: message.snapshotChecksum,
        leaderTerm: message.term,
        chunks: [],
        received: 0,
      };
      this.incoming = incoming;
    }
    if (message.term > incoming.leaderTerm) incoming.leaderTerm = message.term;
    if (message.offset === incoming.received) {
      incoming.chunks.push(message.chunk);
      incoming.received += message.chunk.length;
    }
    if (incoming.received < incoming.totalBytes)
      return { kind: 'need', nextOffset: incoming.received, refused: undefined };
    this.incoming = undefined;
    return { kind: 'complete', snapshot: { meta, data: concatBytes(incoming.chunks, incoming.totalBytes) } };
  }
}
