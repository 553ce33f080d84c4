// The vocabulary of one Raft group: log entries, configuration, persistent state, the messages
// peers exchange (named as in the Raft paper), and the Ready a host drains after each input.
// Everything here is plain, immutable-by-convention data; the core never shares a mutable object
// with its host. Bytes (entry data, snapshot data) belong to the application and are opaque here.

import type { LogIndex, NodeId, Term } from '../base/ids.ts';

// ---------------------------------------------------------------------------------------------
// Log entries and configuration

export type ConfChangeType = 'add_voter' | 'add_learner' | 'remove_node';

export interface ConfChangeItem {
  readonly type: ConfChangeType;
  readonly node: NodeId;
}

/**
 * A membership change. Items that together change at most one voter are applied in one step
 * (with 'auto'); anything else enters a joint configuration, which the leader leaves by itself once
 * the entry is applied. The first configuration of a group is always applied in one step.
 * An empty `changes` list means "leave the joint configuration".
 * `transition`: 'auto' picks single-step when safe; 'joint' always goes through joint consensus.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeItem[];
  readonly transition: 'auto' | 'joint';
}

/** A group's membership. `votersOutgoing` is non-empty only in a joint configuration. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Voters of the outgoing configuration that become learners when the joint config is left. */
  readonly learnersNext: readonly NodeId[];
  readonly autoLeave: boolean;
}

interface EntryHeader {
  readonly term: Term;
  readonly index: LogIndex;
}

/** An application entry. The entry a new leader appends on election has empty data. */
export interface NormalEntry extends EntryHeader {
  readonly kind: 'normal';
  readonly data: Uint8Array;
}

export interface ConfEntry extends EntryHeader {
  readonly kind: 'conf';
  readonly change: ConfChange;
}

export type Entry = NormalEntry | ConfEntry;

/** What must be on disk before a node answers anything: Raft's persistent state. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

/** A snapshot's timeframe: the log position it includes, and the membership at that position. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Messages

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term; for a pre-vote request, the term the candidate would campaign in. */
  readonly term: Term;
}

export interface RequestVote extends Envelope {
  readonly type: 'RequestVote';
  readonly preVote: boolean;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  /** Set when the campaign was started by TimeoutNow: voters skip the leader-lease check. */
  readonly transfer: boolean;
}

export interface RequestVoteResponse extends Envelope {
  readonly type: 'RequestVoteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

export interface AppendEntries extends Envelope {
  readonly type: 'AppendEntries';
  readonly prevLogIndex: LogIndex;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
}

export interface AppendEntriesResponse extends Envelope {
  readonly type: 'AppendEntriesResponse';
  readonly success: boolean;
  /** On success, the last index now matching the leader; on rejection, the rejected prevLogIndex. */
  readonly index: LogIndex;
  /** On rejection, a hint for fast backtracking: the largest index at or below `index` whose term is at most `hintTerm`. */
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

/** Sent by the leader to keep authority and, with a `readRound`, to confirm it for ReadIndex. */
export interface Heartbeat extends Envelope {
  readonly type: 'Heartbeat';
  readonly commit: LogIndex;
  /** The read round this heartbeat confirms (0: none). */
  readonly readRound: number;
  /** The leader's tick clock when sent, echoed back for the lease. */
  readonly sentTick: number;
  /** The group is idle: stop ticking until anything else arrives (see RaftNode.quiesced). */
  readonly quiesce: boolean;
}

export interface HeartbeatResponse extends Envelope {
  readonly type: 'HeartbeatResponse';
  readonly readRound: number;
  readonly sentTick: number;
}

/**
 * One chunk of the leader's snapshot. `snapshotChecksum` (RaftConfig.checksum of all its bytes)
 * says which bytes these are: a follower resumes a partial copy only for the same index, term,
 * size and checksum, whichever leader sends it. `chunkChecksum` covers `chunk`: a chunk that does
 * not match is refused and asked for again, never kept. Both are absent from a peer of an older
 * release (they were added within protocol version 4): its chunks are taken as TCP delivered them,
 * and its partial copy is resumed only from the same leader term, as that release did.
 */
export interface InstallSnapshot extends Envelope {
  readonly type: 'InstallSnapshot';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly snapshotChecksum: number | undefined;
  readonly chunk: Uint8Array;
  readonly chunkChecksum: number | undefined;
}

/**
 * Acknowledges snapshot bytes: the receiver has every byte before `nextOffset`. With
 * `needSnapshot`, the receiver has no state machine (RaftNode.awaitSnapshot) and asks for a
 * snapshot at or after `snapshotIndex` (`snapshotTerm` 0, `nextOffset` 0). A peer of an older
 * release sends no `needSnapshot` (read as false) and ignores it.
 */
export interface InstallSnapshotResponse extends Envelope {
  readonly type: 'InstallSnapshotResponse';
  readonly snapshotIndex: LogIndex;
  readonly snapshotTerm: Term;
  readonly nextOffset: number;
  readonly needSnapshot: boolean;
}

/** Leadership transfer: the receiver campaigns at once, skipping pre-vote. */
export interface TimeoutNow extends Envelope {
  readonly type: 'TimeoutNow';
}

/** A follower asks the leader for a read index on behalf of its own client. */
export interface ReadIndexRequest extends Envelope {
  readonly type: 'ReadIndex';
  readonly requestId: number;
}

export interface ReadIndexResponse extends Envelope {
  readonly type: 'ReadIndexResponse';
  readonly requestId: number;
  /** 0 when the leader could not serve the read (it is not leader any more, or its queue is full). */
  readonly index: LogIndex;
}

/**
 * A follower hands its own clients' proposals to the leader over the peer connection (etcd's
 * MsgProp with proposal forwarding on). Nothing answers it: the leader appends the payloads as
 * if proposed locally, or drops them (it no longer leads, a transfer is under way, the group is
 * over its uncommitted limit); the follower learns what happened from the entries it applies.
 */
export interface Propose extends Envelope {
  readonly type: 'Propose';
  readonly payloads: readonly Uint8Array[];
}

export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse
  | Propose;

export type MessageType = Message['type'];

// ---------------------------------------------------------------------------------------------
// Ready: what the host must do after feeding inputs

export type Role = 'follower' | 'pre_candidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId;
}

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: LogIndex;
}

/** A read the core could not serve; the host answers its client with an error. */
export interface ReadFailure {
  readonly requestId: number;
  readonly reason: 'not_leader' | 'no_leader' | 'read_queue_full' | 'leader_changed';
}

export type RaftEvent =
  /** The target started its election (at `term`) on our TimeoutNow and we stepped down; whether it wins shows in the next leader. */
  | { readonly kind: 'transfer_handed_off'; readonly target: NodeId; readonly term: Term }
  /**
   * An election at `term` was started by a leadership transfer (the candidate got TimeoutNow):
   * reported by the candidate itself and by every voter its vote request reaches, so a host can
   * tell an admin transfer from an automatic failover when `candidate` then leads in `term`.
   */
  | { readonly kind: 'transfer_campaign'; readonly candidate: NodeId; readonly term: Term }
  | {
      readonly kind: 'transfer_aborted';
      readonly target: NodeId;
      readonly reason: 'timeout' | 'stepped_down' | 'target_removed';
    }
  | { readonly kind: 'conf_applied'; readonly index: LogIndex; readonly confState: ConfState }
  | { readonly kind: 'snapshot_installed'; readonly index: LogIndex; readonly term: Term }
  /**
   * A snapshot received from the leader failed RaftConfig.snapshotCheck (dropped, asked for again
   * from its first byte), or one chunk of it failed its checksum (not kept, asked for again).
   */
  | { readonly kind: 'snapshot_refused'; readonly index: LogIndex; readonly term: Term; readonly reason: string };

/**
 * The contract (see docs/ARCHITECTURE.md):
 * 1. persist `snapshot` (if any), then `entries` (replacing any persisted entries at or above the
 *    first one's index), then `hardState`, durably when `mustSync`;
 * 2. `messages` may be sent at once (a leader's requests: it may replicate in parallel with its
 *    own fsync; a follower's Propose and ReadIndex); `messagesAfterPersist` only after step 1 is durable;
 * 3. restore the state machine from `snapshot`, then apply `committedEntries` in order;
 *    serve `readStates` once applied >= their index. Without a `snapshot`, the committed entries
 *    may be applied while step 1 is still in flight: committed means durable on a quorum (a
 *    leader counts its own log only once advance() reported it stored), so nothing applied can be
 *    lost by this node's crash;
 * 4. call `advance(ready)`.
 * A `snapshotRequest` may be served at any time after step 3 began (the index is already applied).
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
  readonly events: readonly RaftEvent[];
  readonly mustSync: boolean;
  /**
   * The core asks for a snapshot: `snapshotIntervalEntries` entries were applied since the last
   * one. Take it of the state machine as it stands before applying this Ready's committedEntries
   * (that is, at this index), store it, and compact the log behind it.
   */
  readonly snapshotRequest: LogIndex | undefined;
}

// ---------------------------------------------------------------------------------------------
// Outcomes returned to callers (expected protocol outcomes are values, not exceptions)

export type ProposeResult =
  | { readonly kind: 'accepted'; readonly index: LogIndex; readonly term: Term }
  | { readonly kind: 'not_leader'; readonly leaderHint: NodeId }
  | { readonly kind: 'transferring'; readonly target: NodeId }
  | { readonly kind: 'entry_too_large'; readonly bytes: number; readonly bytesMax: number }
  | { readonly kind: 'uncommitted_full'; readonly bytes: number; readonly bytesMax: number }
  | { readonly kind: 'conf_change_pending'; readonly pendingIndex: LogIndex }
  | { readonly kind: 'conf_change_invalid'; readonly reason: string };

/** What proposeOrForward did: appended here (the leader), handed to the leader, or why neither. */
export type ProposeOrForwardResult =
  | ProposeResult
  | { readonly kind: 'forwarded'; readonly leader: NodeId; readonly term: Term };

export type ReadResult =
  | { readonly kind: 'queued' }
  | { readonly kind: 'forwarded'; readonly leader: NodeId }
  | { readonly kind: 'not_leader'; readonly leaderHint: NodeId }
  | { readonly kind: 'read_queue_full'; readonly queued: number; readonly queuedMax: number };

export type TransferResult =
  | { readonly kind: 'started'; readonly target: NodeId }
  | { readonly kind: 'already_leader' }
  | { readonly kind: 'not_leader'; readonly leaderHint: NodeId }
  | { readonly kind: 'invalid_target'; readonly reason: string }
  | { readonly kind: 'in_progress'; readonly target: NodeId };

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface FollowerStatus {
  readonly id: NodeId;
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: ProgressState;
  readonly learner: boolean;
  readonly recentActive: boolean;
  readonly inflightMessages: number;
  /** While a snapshot is being sent (state 'snapshot'): the bytes the follower acknowledged, of the total. */
  readonly snapshot?: { readonly ackedBytes: number; readonly totalBytes: number };
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  readonly firstIndex: LogIndex;
  readonly confState: ConfState;
  readonly transferTarget: NodeId;
  readonly leaseValid: boolean;
  /** Quiet: idle, not ticking (see RaftConfig.quiesceAfterTicks). */
  readonly quiesced: boolean;
  /** Per-member replication progress; only on the leader (empty elsewhere). */
  readonly progress: readonly FollowerStatus[];
}
