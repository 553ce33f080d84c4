// The Raft state machine for ONE group: pure and synchronous. Inputs are tick(), step(message),
// propose*(), readIndex(), transferLeadership(); outputs accumulate until the host calls ready(),
// performs the I/O the Ready describes, and calls advance(). No clock, no I/O, no global
// randomness: the election jitter comes from the seeded rng in the config.
//
// Layout follows etcd-io/raft: step() handles terms and votes for every role, then dispatches to
// stepLeader / stepCandidate / stepFollower. Membership is applied when its entry is applied (as
// etcd does), one pending change at a time. The leader counts its own log only after the host has
// persisted it (advance), so a commit never rests on an unsynced leader write.

import { assert, unreachable } from '../base/assert.ts';
import { NO_NODE, type LogIndex, type NodeId, type Term } from '../base/ids.ts';
import { makeRaftConfig, type RaftConfig, type RaftConfigInput } from './config.ts';
import { applyConfChange, isJoint, members } from './confchange.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { Lease } from './lease.ts';
import { groupIdle, keepsQuiet, Quiescence } from './quiescence.ts';
import { allVoters, isVoter, jointValue, jointVote, type VoterSets } from './quorum.ts';
import { ReadQueue } from './read-queue.ts';
import {
  acknowledge,
  beginTransfer,
  nextChunks,
  rewindIfStalled,
  SnapshotReceiver,
  transferOf,
} from './snapshot-stream.ts';
import { entryBytes, type LogStorage } from './storage.ts';
import type {
  AppendEntries,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Heartbeat,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  ProposeOrForwardResult,
  ProposeResult,
  RaftEvent,
  ReadFailure,
  ReadResult,
  ReadState,
  Ready,
  RequestVote,
  Role,
  Snapshot,
  SoftState,
  Status,
  TransferResult,
} from './types.ts';

// Sent with a Ready's early `messages` (before its write is durable): a leader's requests, and
// any member's Propose and ReadIndex, which ask nothing of the receiver that rests on the
// sender's disk (etcd sends MsgProp and MsgReadIndex at once as well): a follower's read or
// forwarded write then does not wait for the fsync of whatever the follower is storing in the
// same turn. Everything else waits for the write (messagesAfterPersist).
const memberRequestTypes: ReadonlySet<Message['type']> = new Set(['Propose', 'ReadIndex']);
const leaderRequestTypes: ReadonlySet<Message['type']> = new Set([
  'AppendEntries',
  'Heartbeat',
  'InstallSnapshot',
  'TimeoutNow',
  'ReadIndexResponse',
]);

export class RaftNode {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;

  private term: Term;
  private vote: NodeId;
  private role: Role = 'follower';
  private leader: NodeId = NO_NODE;
  private confState: ConfState;
  /** The log index of what confState comes from: the configuration entry applied last, or the snapshot restored last. */
  private confIndex: LogIndex;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Local tick count: a heartbeat carries it (sentTick) so its acknowledgements name it. */
  private clockTicks = 0;
  /**
   * The host's monotonic clock, in ticks, at the last tick (the host passes it; without it every
   * tick is one unit of time, as in the transcripts). The lease is measured in it, never in tick
   * counts: a stalled event loop drops ticks, and real time would then outrun the lease.
   */
  private nowTicks = 0;
  private readonly lease: Lease;
  /**
   * With lease reads, a restarted voter refuses votes for one election timeout as if it had just
   * heard from a leader: it may have acknowledged a lease before the restart. (leaseReads must be
   * set alike on every member.)
   */
  private startupGuard: boolean;

  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private transferTarget: NodeId = NO_NODE;
  private transferElapsed = 0;
  private pendingConfIndex: LogIndex = 0 as LogIndex;
  /** The applied index of the last snapshot asked for, so one is not asked for twice. */
  private snapshotRequestedAt = 0;
  /** requestSnapshot() was called: the next Ready asks for a snapshot whatever the thresholds. */
  private snapshotWanted = false;
  /** Bytes of the entries applied since the last snapshot asked for or installed (snapshotLogBytes). */
  private appliedBytesSinceSnapshot = 0;
  private uncommittedBytes = 0;
  /** The Ready handed out and not advanced yet (the host holds at most one). */
  private outstandingReady: Ready | undefined = undefined;
  /** The Ready handed out and not advanced yet restores a snapshot or applies a configuration entry. */
  private readyOrdersApply = false;
  /**
   * The index of a snapshot restored since the last ready() (0: none). advance() must not apply
   * that Ready's committed entries at or below it: the snapshot already holds their effect, and
   * a configuration entry applied again would roll the membership back.
   */
  private restoredSinceReady: LogIndex = 0 as LogIndex;
  private appendPending = false;
  private readonly reads = new ReadQueue();
  private readonly forwardedReads = new Set<number>();
  private readonly incomingSnapshot: SnapshotReceiver;
  /**
   * Set by awaitSnapshot() (0: not waiting): the host has no state machine for this group (its
   * stored snapshot is corrupt and the log cannot rebuild it), so a snapshot at or after this
   * index is needed before anything is applied.
   */
  private snapshotAwaitedFrom: LogIndex = 0 as LogIndex;
  /** The checksum of the stored snapshot's bytes, computed once per snapshot a leader sends. */
  private sentSnapshotChecksum: { readonly data: Uint8Array; readonly checksum: number } | undefined = undefined;
  private readonly quiescence = new Quiescence();

  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private readFailures: ReadFailure[] = [];
  private events: RaftEvent[] = [];
  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(configInput: RaftConfigInput, storage: LogStorage) {
    this.config = makeRaftConfig(configInput);
    this.id = this.config.id;
    this.startupGuard = this.config.leaseReads;
    this.lease = new Lease(this.config.leaseTicks);
    this.log = new RaftLog(storage);
    this.incomingSnapshot = new SnapshotReceiver(this.config.checksum);
    const { hardState, confState } = storage.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.confState = confState;
    this.confIndex = this.log.snapshotIndex();
    if (hardState.commit > this.log.committed) this.log.commitTo(hardState.commit);
    this.prevHardState = hardState;
    this.prevSoftState = { role: this.role, leader: this.leader };
    this.resetRandomizedElectionTimeout();
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /**
   * One tick. `nowTicks` is the host's monotonic clock divided by its tick period (a fraction is
   * fine); leave it out only where every tick is exactly one period apart (tests, simulators).
   */
  tick(nowTicks?: number): void {
    this.nowTicks = Math.max(this.nowTicks, nowTicks ?? this.nowTicks + 1);
    if (this.quiescence.quiet) return;
    this.clockTicks++;
    this.recordTickStart();
    this.electionElapsed++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    if (this.electionElapsed >= this.config.electionTimeoutTicks) this.startupGuard = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign();
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    if (this.transferTarget !== NO_NODE && ++this.transferElapsed >= this.config.electionTimeoutTicks) {
      this.abortTransfer('timeout');
    }
    if (this.electionElapsed >= this.config.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NO_NODE);
        return;
      }
    }
    this.maybeAutoLeave();
    this.handOverWithoutState();
    const idle = this.config.quiesceAfterTicks > 0 && this.groupIdle();
    const heartbeatDue = this.heartbeatElapsed >= this.config.heartbeatTicks;
    if (heartbeatDue) this.heartbeatElapsed = 0;
    if (this.quiescence.leaderTick(idle, this.config.quiesceAfterTicks, heartbeatDue)) {
      this.broadcastHeartbeat(0, true);
      return;
    }
    if (heartbeatDue) {
      this.broadcastHeartbeat(this.reads.size > 0 ? this.reads.latestRound : 0);
      this.retryStalledSnapshots();
    }
  }

  private groupIdle(): boolean {
    return groupIdle({
      committed: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      appendPending: this.appendPending,
      busy:
        this.reads.size > 0 ||
        this.forwardedReads.size > 0 ||
        this.transferTarget !== NO_NODE ||
        isJoint(this.confState) ||
        this.pendingConfIndex > this.log.applied,
      progress: this.progress.values(),
    });
  }

  /** Remembers when the current tick count began (see lease.ts). */
  private recordTickStart(): void {
    if (this.role !== 'leader' || !this.config.leaseReads) return;
    this.lease.recordTickStart(this.clockTicks, this.nowTicks);
  }

  /** Whether the group is quiet (its ticks are ignored); the host may skip ticking it. */
  quiesced(): boolean {
    return this.quiescence.quiet;
  }

  /**
   * The host lost its connection to `node` (e.g. the peer's process died and the kernel closed
   * its sockets). If that node is our leader, stop waiting out the rest of an election timeout:
   * count it as expired, so this follower campaigns within the randomized part of the timeout
   * and grants pre-votes to others at once. Only a hint: with a live leader, its next message
   * restores everything, and without a quorum agreeing nothing is elected. Ignored with lease
   * reads, whose safety rests on voters waiting out a full timeout after the last heartbeat.
   */
  leaderUnreachable(node: NodeId): void {
    if (this.config.leaseReads || this.role !== 'follower' || this.leader !== node || node === NO_NODE) return;
    this.wake();
    this.electionElapsed = Math.max(this.electionElapsed, this.config.electionTimeoutTicks);
  }

  /** The current term: status().term without building a status. */
  currentTerm(): Term {
    return this.term;
  }

  /** The leader this node knows of, itself included (NO_NODE: none): status().leader without building a status. */
  knownLeader(): NodeId {
    return this.leader;
  }

  /** The leader this node follows (NO_NODE: none known, or this node leads or campaigns). */
  followedLeader(): NodeId {
    return this.role === 'follower' ? this.leader : NO_NODE;
  }

  /**
   * Ends quiet: ticks count again. Every input but a tick does this by itself; the host calls it
   * for a quiet follower whose leader's node went silent. A leader's lease does not survive a
   * quiet spell (its clock stopped, so old acknowledgements are pushed out of the lease window),
   * and it heartbeats at once so its followers wake too.
   */
  wake(): void {
    if (!this.quiescence.wake() || this.role !== 'leader') return;
    this.clockTicks += this.config.electionTimeoutTicks;
    this.recordTickStart();
    this.electionElapsed = 0;
    for (const progress of this.progress.values()) progress.recentActive = progress.id === this.id;
    this.heartbeatElapsed = 0;
    this.broadcastHeartbeat(this.reads.size > 0 ? this.reads.latestRound : 0);
  }

  /**
   * Start an election now (pre-vote first when configured). Ignored by learners and non-members,
   * and while a committed configuration change of the voters is not yet applied: votes would be
   * counted in a membership that is already out of date (etcd's hasUnappliedConfChanges; a
   * change of learners only does not stop it, see hasUnappliedVoterChanges).
   */
  campaign(): void {
    this.wake();
    if (!this.promotable() || this.role === 'leader' || this.hasUnappliedVoterChanges()) return;
    if (this.config.preVote) this.startElection('pre_vote');
    else this.startElection('election');
  }

  step(message: Message): void {
    if (message.to !== this.id) return;
    if (this.quiescence.quiet && !keepsQuiet(message, this.term, this.role, this.leader)) this.wake();
    if (message.term > this.term) {
      if (!this.acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.answerStaleTerm(message);
      return;
    }
    switch (message.type) {
      case 'RequestVote':
        this.handleRequestVote(message);
        return;
      case 'ReadIndex':
        // Only a leader serves reads; anyone else answers "no index" so the follower fails fast.
        if (this.role === 'leader') this.enqueueRead(message.requestId, message.from);
        else
          this.send({
            type: 'ReadIndexResponse',
            from: this.id,
            term: this.term,
            to: message.from,
            requestId: message.requestId,
            index: 0 as LogIndex,
          });
        return;
      case 'ReadIndexResponse':
        this.forwardedReadAnswered(message.requestId, message.index);
        return;
      case 'Propose':
        // Appended as if proposed here, or dropped without an answer, as etcd's leader does: the
        // follower learns the outcome from the entries it applies. Not forwarded again by a
        // non-leader (two nodes with stale views of each other would pass it back and forth);
        // the follower sends it again once it learns of another leader.
        if (this.role === 'leader') this.proposeBatch(message.payloads);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'candidate':
      case 'pre_candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
      default:
        unreachable(this.role);
    }
  }

  /** Handles a message from a higher term; returns false when the message is to be ignored. */
  private acceptHigherTerm(message: Message): boolean {
    if (message.type === 'RequestVote') {
      const heardFromLeader =
        (this.leader !== NO_NODE || this.startupGuard) && this.electionElapsed < this.config.electionTimeoutTicks;
      // Check-quorum lease: while we hear from a leader, a (pre-)candidate cannot unseat it,
      // unless the leader itself asked for the election (transfer).
      if (this.config.checkQuorum && heardFromLeader && !message.transfer) return false;
      if (message.preVote) return true; // a pre-vote never changes our term
    }
    if (message.type === 'RequestVoteResponse' && message.preVote && message.granted) return true;
    if (this.role === 'leader' && this.transferTarget !== NO_NODE) {
      if (message.from === this.transferTarget)
        this.events.push({ kind: 'transfer_handed_off', target: this.transferTarget, term: message.term });
      else this.abortTransfer('stepped_down');
      this.transferTarget = NO_NODE;
    }
    const fromLeader =
      message.type === 'AppendEntries' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot';
    this.becomeFollower(message.term, fromLeader ? message.from : NO_NODE);
    return true;
  }

  private answerStaleTerm(message: Message): void {
    if (message.type === 'AppendEntries' || message.type === 'Heartbeat') {
      // A stale leader (e.g. partitioned away and back) learns the new term from this and steps
      // down; without it, pre-vote + check-quorum could leave the cluster without a leader.
      this.answerAppend(message.from, false, 0 as LogIndex);
    } else if (message.type === 'RequestVote' && message.preVote) {
      this.send({
        type: 'RequestVoteResponse',
        from: this.id,
        term: this.term,
        to: message.from,
        preVote: true,
        granted: false,
      });
    }
  }

  private handleRequestVote(message: RequestVote): void {
    if (message.transfer && !message.preVote && message.term === this.term)
      this.events.push({ kind: 'transfer_campaign', candidate: message.from, term: message.term });
    const canVote =
      this.vote === message.from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (message.preVote && message.term > this.term);
    // An empty replica (no entry, no snapshot: started to be caught up, as placement starts a node
    // a move adds) votes for nobody. It may be a node removed from the group and added back, its
    // old data deleted: a member that missed both changes (down meanwhile) still counts it as a
    // voter, and its vote, given for want of a log to compare, would elect that stale member
    // against the group's committed entries (simulator seed 953). A replica becomes a voter only
    // once caught up, so no election needs an empty one.
    const granted =
      canVote && this.log.lastIndex() > 0 && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    // A granted pre-vote answers in the term the candidate asked for, so it can count it.
    this.send({
      type: 'RequestVoteResponse',
      from: this.id,
      term: granted ? message.term : this.term,
      to: message.from,
      preVote: message.preVote,
      granted,
    });
    if (granted && !message.preVote) {
      this.electionElapsed = 0;
      this.vote = message.from;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Role transitions

  private becomeFollower(term: Term, leader: NodeId): void {
    const leaderChanged = term !== this.term || leader !== this.leader;
    const wasLeader = this.role === 'leader';
    if (leaderChanged) this.failForwardedReads();
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
    // Answered in the new term: a follower still in the old one learns the new term from it.
    if (wasLeader) {
      this.failPendingReads('leader_changed');
      this.failUndeliveredReadStates();
    }
  }

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.leader = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.progress.clear();
    this.transferTarget = NO_NODE;
    this.transferElapsed = 0;
    this.lease.revoked = false;
    this.appendPending = false;
    this.uncommittedBytes = 0;
    this.quiescence.reset();
  }

  private startElection(kind: 'pre_vote' | 'election' | 'transfer'): void {
    const preVote = kind === 'pre_vote';
    if (preVote) {
      // The term does not move: a pre-candidate only asks whether it could win.
      this.role = 'pre_candidate';
      this.leader = NO_NODE;
      this.votes.clear();
    } else {
      this.failForwardedReads();
      this.reset((this.term + 1) as Term);
      this.role = 'candidate';
      this.vote = this.id;
      if (kind === 'transfer') this.events.push({ kind: 'transfer_campaign', candidate: this.id, term: this.term });
    }
    const campaignTerm = (this.term + (preVote ? 1 : 0)) as Term;
    this.votes.set(this.id, true);
    if (this.tallyVotes() === 'won') return;
    for (const voter of allVoters(this.voterSets())) {
      if (voter === this.id) continue;
      this.send({
        type: 'RequestVote',
        from: this.id,
        term: campaignTerm,
        to: voter,
        preVote,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        transfer: kind === 'transfer',
      });
    }
  }

  /** Counts votes; acts on a decided outcome. */
  private tallyVotes(): 'won' | 'lost' | 'pending' {
    const outcome = jointVote(this.voterSets(), this.votes);
    if (outcome === 'won') {
      if (this.role === 'pre_candidate') this.startElection('election');
      else this.becomeLeader();
    } else if (outcome === 'lost') {
      this.becomeFollower(this.term, NO_NODE);
    }
    return outcome;
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'becomeLeader from a role other than candidate');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.reads.drain();
    this.lease.clear();
    this.recordTickStart();
    const lastIndex = this.log.lastIndex();
    for (const member of members(this.confState)) this.progress.set(member, this.newProgress(member, lastIndex));
    const self = this.progress.get(this.id);
    assert(self !== undefined, 'leader is not a member');
    self.match = this.persistedLastIndex();
    self.becomeReplicate();
    // A configuration change in the uncommitted tail may not be applied yet: wait for it.
    this.pendingConfIndex = lastIndex;
    this.appendEntries([
      { kind: 'normal', term: this.term, index: (lastIndex + 1) as LogIndex, data: new Uint8Array(0) },
    ]);
  }

  private newProgress(member: NodeId, lastIndex: LogIndex): Progress {
    const learner = !isVoter(this.voterSets(), member);
    const progress = new Progress(
      member,
      (lastIndex + 1) as LogIndex,
      learner,
      this.config.inflightMessagesMax,
      this.config.inflightBytesMax,
    );
    progress.recentActive = member === this.id;
    return progress;
  }

  private persistedLastIndex(): LogIndex {
    return (this.log.unstableOffsetIndex() - 1) as LogIndex;
  }

  // -------------------------------------------------------------------------------------------
  // Per-role message handling

  private stepLeader(message: Message): void {
    const progress = this.progress.get(message.from);
    switch (message.type) {
      case 'AppendEntriesResponse':
        if (progress !== undefined)
          this.handleAppendResponse(progress, message.success, message.index, message.hintIndex, message.hintTerm);
        return;
      case 'HeartbeatResponse':
        if (progress !== undefined) this.handleHeartbeatResponse(progress, message.readRound, message.sentTick);
        return;
      case 'InstallSnapshotResponse':
        if (progress !== undefined) this.handleSnapshotResponse(progress, message);
        return;
      case 'RequestVote':
      case 'RequestVoteResponse':
      case 'AppendEntries':
      case 'Heartbeat':
      case 'InstallSnapshot':
      case 'TimeoutNow':
      case 'ReadIndex':
      case 'ReadIndexResponse':
      case 'Propose':
        return;
      default:
        unreachable(message);
    }
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case 'AppendEntries':
      case 'Heartbeat':
      case 'InstallSnapshot':
        // Someone won this term; follow it.
        this.becomeFollower(this.term, message.from);
        this.stepFollower(message);
        return;
      case 'RequestVoteResponse':
        if (message.preVote !== (this.role === 'pre_candidate')) return;
        this.votes.set(message.from, message.granted);
        this.tallyVotes();
        return;
      case 'RequestVote':
      case 'AppendEntriesResponse':
      case 'HeartbeatResponse':
      case 'InstallSnapshotResponse':
      case 'TimeoutNow':
      case 'ReadIndex':
      case 'ReadIndexResponse':
      case 'Propose':
        return;
      default:
        unreachable(message);
    }
  }

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'AppendEntries':
        this.heardFromLeader(message.from);
        // Waiting for a snapshot: the log must not grow past the index asked for.
        if (this.snapshotAwaitedFrom > 0) this.askForSnapshot(message.from);
        else this.handleAppendEntries(message);
        return;
      case 'Heartbeat':
        this.heardFromLeader(message.from);
        this.handleHeartbeat(message);
        if (this.snapshotAwaitedFrom > 0) this.askForSnapshot(message.from);
        if (message.quiesce) this.quiescence.quiet = true;
        return;
      case 'InstallSnapshot':
        this.heardFromLeader(message.from);
        if (this.snapshotAwaitedFrom > 0 && message.meta.index < this.snapshotAwaitedIndex())
          this.askForSnapshot(message.from);
        else this.handleSnapshotChunk(message);
        return;
      case 'TimeoutNow':
        if (this.promotable() && !this.hasUnappliedVoterChanges()) this.startElection('transfer');
        return;
      case 'RequestVote':
      case 'RequestVoteResponse':
      case 'AppendEntriesResponse':
      case 'HeartbeatResponse':
      case 'InstallSnapshotResponse':
      case 'ReadIndex':
      case 'ReadIndexResponse':
      case 'Propose':
        return;
      default:
        unreachable(message);
    }
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    if (this.leader !== leader) {
      this.failForwardedReads();
      this.leader = leader;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Follower: replication

  /**
   * The one AppendEntriesResponse constructor. Success: this follower's log matches the leader's
   * up to `index`. Rejection: `index` is the rejected prevLogIndex (0 from a stale term: no
   * position), with the backtracking hint.
   */
  private answerAppend(
    to: NodeId,
    success: boolean,
    index: LogIndex,
    hintIndex = 0 as LogIndex,
    hintTerm = 0 as Term,
  ): void {
    this.send({
      type: 'AppendEntriesResponse',
      from: this.id,
      term: this.term,
      to,
      success,
      index,
      hintIndex,
      hintTerm,
    });
  }

  private acceptAppend(to: NodeId, index: LogIndex): void {
    this.answerAppend(to, true, index);
  }

  private handleAppendEntries(message: AppendEntries): void {
    if (message.prevLogIndex < this.log.committed) {
      this.acceptAppend(message.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.commit, message.entries);
    if (lastNew !== undefined) {
      this.acceptAppend(message.from, lastNew);
      return;
    }
    const hint = this.log.findConflictByTerm(message.prevLogIndex, message.prevLogTerm);
    this.answerAppend(message.from, false, message.prevLogIndex, hint.index, hint.term);
  }

  private handleHeartbeat(message: Heartbeat): void {
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()) as LogIndex);
    this.send({
      type: 'HeartbeatResponse',
      from: this.id,
      term: this.term,
      to: message.from,
      readRound: message.readRound,
      sentTick: message.sentTick,
    });
  }

  private handleSnapshotChunk(message: InstallSnapshot): void {
    // Without a state machine, a snapshot the log covers is still needed.
    const covered = this.snapshotAwaitedFrom > 0 ? (0 as LogIndex) : this.log.committed;
    const outcome = this.incomingSnapshot.receive(message, covered);
    switch (outcome.kind) {
      case 'covered':
        this.acceptAppend(message.from, this.log.committed);
        return;
      case 'stale':
        return;
      case 'need':
        // A refused chunk is asked for again by the offset: the leader resends from it once the
        // transfer stalls (at its next heartbeat).
        if (outcome.refused !== undefined) {
          const { index, term } = message.meta;
          const reason = `group ${this.config.group ?? '(unnamed)'}: the chunk at offset ${message.offset} of the snapshot at index ${index} received from the leader is refused: ${outcome.refused}`;
          this.events.push({ kind: 'snapshot_refused', index, term, reason });
        }
        this.ackSnapshotBytes(message, outcome.nextOffset);
        return;
      case 'complete':
        break;
      default:
        unreachable(outcome);
    }
    const { snapshot } = outcome;
    const refused = this.config.snapshotCheck?.(snapshot);
    if (refused !== undefined) {
      const { index, term } = snapshot.meta;
      this.events.push({ kind: 'snapshot_refused', index, term, reason: refused });
      this.ackSnapshotBytes(message, 0);
      return;
    }
    this.installSnapshot(snapshot);
    this.acceptAppend(message.from, this.log.lastIndex());
  }

  private ackSnapshotBytes(message: InstallSnapshot, nextOffset: number): void {
    this.send({
      type: 'InstallSnapshotResponse',
      from: this.id,
      term: this.term,
      to: message.from,
      snapshotIndex: message.meta.index,
      snapshotTerm: message.meta.term,
      nextOffset,
      needSnapshot: false,
    });
  }

  /**
   * The host has no state machine for this group: its stored snapshot failed its checks and the
   * log does not reach back to index 1 to rebuild it. Until a leader sends a snapshot at or after
   * both that snapshot's index and the last log index, this node applies nothing, appends nothing
   * as a follower, answers its leader's messages by asking for such a snapshot, and, elected,
   * hands leadership to a caught-up voter (handOverWithoutState);
   * it installs it whole (even where its log holds the position). Its log and hard state stay as
   * they are, so its votes still count everything it acknowledged. Call before the first ready().
   */
  awaitSnapshot(): void {
    this.snapshotAwaitedFrom = Math.max(1, this.log.snapshotIndex(), this.log.lastIndex()) as LogIndex;
  }

  /**
   * A leader without its state machine (awaitSnapshot) can replicate and commit, but neither
   * apply nor send a snapshot: it hands leadership to a voter whose log has caught up and that
   * has not asked for a snapshot itself. It may still campaign: when the voters that kept their
   * state hold shorter logs, only such a node can be elected (their votes go to longer logs).
   */
  private handOverWithoutState(): void {
    if (this.snapshotAwaitedFrom === 0 || this.transferTarget !== NO_NODE) return;
    const lastIndex = this.log.lastIndex();
    for (const progress of this.progress.values()) {
      if (progress.id === this.id || progress.learner || progress.snapshotNeededFrom > 0) continue;
      if (progress.match !== lastIndex || !this.voterSets().incoming.includes(progress.id)) continue;
      this.transferLeadership(progress.id);
      return;
    }
  }

  /**
   * The oldest snapshot a node without its state machine takes: at or after its last log index
   * now (which grows while it leads), so installing it never moves its commit index back nor
   * drops an entry it acknowledged.
   */
  private snapshotAwaitedIndex(): LogIndex {
    return Math.max(this.snapshotAwaitedFrom, this.log.lastIndex()) as LogIndex;
  }

  private askForSnapshot(leader: NodeId): void {
    this.send({
      type: 'InstallSnapshotResponse',
      from: this.id,
      term: this.term,
      to: leader,
      snapshotIndex: this.snapshotAwaitedIndex(),
      snapshotTerm: 0 as Term,
      nextOffset: 0,
      needSnapshot: true,
    });
  }

  private installSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    const awaited = this.snapshotAwaitedFrom > 0;
    this.snapshotAwaitedFrom = 0 as LogIndex;
    if (!awaited && this.log.matchTerm(index, term)) {
      // Our log already holds the snapshot's position: just move commit forward.
      this.log.commitTo(index);
      return;
    }
    this.log.restore(snapshot);
    this.appliedBytesSinceSnapshot = 0;
    this.restoredSinceReady = index;
    this.confState = snapshot.meta.confState;
    this.confIndex = index;
    this.events.push({ kind: 'snapshot_installed', index, term });
  }

  // -------------------------------------------------------------------------------------------
  // Leader: replication

  private handleAppendResponse(
    progress: Progress,
    success: boolean,
    index: LogIndex,
    hintIndex: LogIndex,
    hintTerm: Term,
  ): void {
    progress.recentActive = true;
    if (!success) {
      if (index === 0) return; // a stale-term answer carries no position
      const probeFrom = hintTerm > 0 ? this.log.findConflictByTerm(hintIndex, hintTerm).index : hintIndex;
      if (progress.maybeDecreaseTo(index, probeFrom)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(progress, true);
      }
      return;
    }
    const updated = progress.maybeUpdate(index);
    if (progress.state === 'snapshot' && progress.match + 1 >= this.log.firstIndex()) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (updated && progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(index);
    }
    if (updated && this.maybeCommit()) this.broadcastAppend();
    else {
      while (this.sendAppend(progress, false));
      // An acknowledgement that arrives after the commit moved: tell this follower now rather than
      // at the next heartbeat.
      if (progress.sentCommit < Math.min(this.log.committed, progress.next - 1)) this.sendAppend(progress, true);
    }
    if (progress.id === this.transferTarget && progress.match === this.log.lastIndex())
      this.sendTimeoutNow(progress.id);
  }

  private handleHeartbeatResponse(progress: Progress, readRound: number, sentTick: number): void {
    progress.recentActive = true;
    progress.probeSent = false;
    if (progress.snapshot !== undefined) progress.snapshot.heard = true;
    if (sentTick > progress.ackedTick) progress.ackedTick = sentTick;
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirstOne();
    if (progress.match < this.log.lastIndex()) this.sendAppend(progress, true);
    if (readRound > 0 && !progress.learner) {
      this.reads.acknowledge(progress.id, readRound);
      this.releaseReads();
    }
  }

  private handleSnapshotResponse(progress: Progress, message: InstallSnapshotResponse): void {
    progress.recentActive = true;
    if (message.needSnapshot) this.sendNeededSnapshot(progress, message.snapshotIndex);
    else if (acknowledge(progress, message)) this.sendSnapshotChunks(progress);
  }

  /**
   * A follower without its state machine needs a snapshot at or after `index` (awaitSnapshot):
   * send the stored one if it is recent enough, else ask the host for a new one and look again
   * at each heartbeat until it is stored.
   */
  private sendNeededSnapshot(progress: Progress, index: LogIndex): void {
    if (progress.state === 'snapshot' && (progress.snapshot?.index ?? 0) >= index) return;
    if (this.log.storage.snapshot().meta.index >= index) {
      progress.snapshotNeededFrom = 0 as LogIndex;
      this.startSnapshotTransfer(progress);
      return;
    }
    progress.snapshotNeededFrom = index;
    if (this.log.applied >= index) this.requestSnapshot();
  }

  /** Sends the next AppendEntries to one member if flow control allows; returns whether one went out. */
  private sendAppend(progress: Progress, sendIfEmpty: boolean): boolean {
    if (progress.id === this.id || progress.isPaused()) return false;
    const prevLogIndex = (progress.next - 1) as LogIndex;
    const prevLogTerm = this.log.term(prevLogIndex);
    const lastIndex = this.log.lastIndex();
    const entries =
      prevLogTerm === undefined
        ? undefined
        : this.log.slice(progress.next, (lastIndex + 1) as LogIndex, this.config.messageBytesMax);
    if (prevLogTerm === undefined || entries === undefined) {
      this.startSnapshotTransfer(progress);
      return false;
    }
    const last = entries[entries.length - 1];
    if (last === undefined && !sendIfEmpty) return false;
    this.send({
      type: 'AppendEntries',
      from: this.id,
      term: this.term,
      to: progress.id,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.committed,
    });
    progress.sentCommit = this.log.committed;
    if (last === undefined) return false;
    if (progress.state === 'replicate') {
      progress.next = (last.index + 1) as LogIndex;
      progress.inflights.add(
        last.index,
        entries.reduce((sum, entry) => sum + entryBytes(entry), 0),
      );
    } else {
      progress.probeSent = true;
    }
    return true;
  }

  private broadcastAppend(): void {
    this.appendPending = false;
    for (const progress of this.progress.values()) {
      if (progress.id === this.id) continue;
      if (this.sendAppend(progress, true)) while (this.sendAppend(progress, false));
    }
  }

  private broadcastHeartbeat(readRound: number, quiesce = false): void {
    for (const progress of this.progress.values()) {
      if (progress.id === this.id) continue;
      const commit = Math.min(progress.match, this.log.committed) as LogIndex;
      this.send({
        type: 'Heartbeat',
        from: this.id,
        term: this.term,
        to: progress.id,
        commit,
        readRound,
        sentTick: this.clockTicks,
        quiesce,
      });
      if (commit > progress.sentCommit) progress.sentCommit = commit;
    }
  }

  private startSnapshotTransfer(progress: Progress): void {
    const snapshot = this.log.storage.snapshot();
    assert(
      snapshot.meta.index > 0,
      `leader ${this.id}: follower ${progress.id} needs compacted entries but there is no snapshot`,
    );
    beginTransfer(progress, snapshot, this.snapshotChecksum(snapshot));
    this.sendSnapshotChunks(progress);
  }

  private sendSnapshotChunks(progress: Progress): void {
    const transfer = progress.snapshot;
    if (transfer === undefined) return;
    const snapshot = this.log.storage.snapshot();
    if (!transferOf(transfer, snapshot)) {
      this.startSnapshotTransfer(progress); // storage moved on to a newer snapshot
      return;
    }
    const chunkMax = this.config.snapshotChunkBytesMax;
    const gate = this.config.snapshotSendGate;
    const allow = gate === undefined ? undefined : (bytes: number) => gate(progress.id, bytes);
    for (const offset of nextChunks(transfer, chunkMax, this.config.snapshotChunksInflightMax, allow)) {
      const chunk = snapshot.data.subarray(offset, Math.min(offset + chunkMax, transfer.totalBytes));
      this.send({
        type: 'InstallSnapshot',
        from: this.id,
        term: this.term,
        to: progress.id,
        meta: snapshot.meta,
        offset,
        totalBytes: transfer.totalBytes,
        snapshotChecksum: transfer.checksum,
        chunk,
        chunkChecksum: this.config.checksum(chunk),
      });
    }
  }

  /** The checksum of a stored snapshot's bytes (their identity in InstallSnapshot), once per snapshot. */
  private snapshotChecksum(snapshot: Snapshot): number {
    if (this.sentSnapshotChecksum?.data !== snapshot.data)
      this.sentSnapshotChecksum = { data: snapshot.data, checksum: this.config.checksum(snapshot.data) };
    return this.sentSnapshotChecksum.checksum;
  }

  /** At each heartbeat: a transfer with no acknowledged progress since the last one resumes from the acknowledged offset. */
  private retryStalledSnapshots(): void {
    for (const progress of this.progress.values()) {
      if (progress.snapshotNeededFrom > 0 && progress.state !== 'snapshot')
        this.sendNeededSnapshot(progress, progress.snapshotNeededFrom);
      const transfer = progress.snapshot;
      if (progress.state !== 'snapshot' || transfer === undefined) continue;
      if (rewindIfStalled(transfer)) this.sendSnapshotChunks(progress);
    }
  }

  private maybeCommit(): boolean {
    const index = jointValue(this.voterSets(), (id) => this.progress.get(id)?.match ?? 0) as LogIndex;
    // Only entries of the current term are committed by counting replicas (Raft §5.4.2).
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    if (this.reads.hasUnassigned()) this.startReadRound();
    return true;
  }

  private quorumActive(): boolean {
    const active =
      jointValue(this.voterSets(), (id) => (id === this.id || this.progress.get(id)?.recentActive === true ? 1 : 0)) >=
      1;
    for (const progress of this.progress.values()) progress.recentActive = progress.id === this.id;
    return active;
  }

  // -------------------------------------------------------------------------------------------
  // Proposals

  propose(data: Uint8Array): ProposeResult {
    return this.proposeBatch([data]);
  }

  /** Appends several application entries at once (one AppendEntries carries them all). */
  proposeBatch(payloads: readonly Uint8Array[]): ProposeResult {
    this.wake();
    const refused = this.checkProposable();
    if (refused !== undefined) return refused;
    let bytes = 0;
    for (const data of payloads) {
      if (data.length > this.config.entryBytesMax)
        return { kind: 'entry_too_large', bytes: data.length, bytesMax: this.config.entryBytesMax };
      bytes += data.length + 16;
    }
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.uncommittedBytesMax) {
      return { kind: 'uncommitted_full', bytes: this.uncommittedBytes, bytesMax: this.config.uncommittedBytesMax };
    }
    let index = this.log.lastIndex();
    const entries = payloads.map(
      (data): Entry => ({ kind: 'normal', term: this.term, index: (index = (index + 1) as LogIndex), data }),
    );
    this.appendEntries(entries);
    return { kind: 'accepted', index, term: this.term };
  }

  /**
   * Proposes application entries from any member: the leader appends them (as proposeBatch); a
   * follower that knows the leader sends them to it in Propose messages of at most
   * messageBytesMax bytes each (one payload at least), which go out with the next Ready's early
   * messages, beside everything else for that peer. A forwarded proposal gets no index and no
   * answer: the caller matches the entries it applies to what it proposed (by a request id in the
   * payload) and sends again when the leader changes. Without a known leader: not_leader, hint 0.
   */
  proposeOrForward(payloads: readonly Uint8Array[]): ProposeOrForwardResult {
    if (this.role === 'leader') return this.proposeBatch(payloads);
    this.wake();
    if (this.leader === NO_NODE || this.role !== 'follower') return { kind: 'not_leader', leaderHint: NO_NODE };
    for (const data of payloads)
      if (data.length > this.config.entryBytesMax)
        return { kind: 'entry_too_large', bytes: data.length, bytesMax: this.config.entryBytesMax };
    let chunk: Uint8Array[] = [];
    let chunkBytes = 0;
    for (const data of payloads) {
      if (chunk.length > 0 && chunkBytes + data.length > this.config.messageBytesMax) {
        this.sendProposals(chunk);
        chunk = [];
        chunkBytes = 0;
      }
      chunk.push(data);
      chunkBytes += data.length;
    }
    if (chunk.length > 0) this.sendProposals(chunk);
    return { kind: 'forwarded', leader: this.leader, term: this.term };
  }

  private sendProposals(payloads: readonly Uint8Array[]): void {
    this.send({ type: 'Propose', from: this.id, to: this.leader, term: this.term, payloads });
  }

  /** Proposes a membership change, validated against the latest configuration (one pending at a time). */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.wake();
    const refused = this.checkProposable();
    if (refused !== undefined) return refused;
    if (this.pendingConfIndex > this.log.applied)
      return { kind: 'conf_change_pending', pendingIndex: this.pendingConfIndex };
    const outcome = applyConfChange(this.confState, change);
    if (!outcome.ok) return { kind: 'conf_change_invalid', reason: outcome.reason };
    const index = (this.log.lastIndex() + 1) as LogIndex;
    this.appendEntries([{ kind: 'conf', term: this.term, index, change }]);
    this.pendingConfIndex = index;
    return { kind: 'accepted', index, term: this.term };
  }

  private checkProposable(): ProposeResult | undefined {
    if (this.role !== 'leader') return { kind: 'not_leader', leaderHint: this.leader };
    if (this.transferTarget !== NO_NODE) return { kind: 'transferring', target: this.transferTarget };
    return undefined;
  }

  private appendEntries(entries: readonly Entry[]): void {
    this.log.appendNew(entries);
    for (const entry of entries) this.uncommittedBytes += entryBytes(entry);
    // Replication is sent at the next ready(): proposals made in between share AppendEntries.
    this.appendPending = true;
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  /** A linearizable read: the Ready will carry a ReadState (or a ReadFailure) for `requestId`. */
  readIndex(requestId: number): ReadResult {
    this.wake();
    if (this.role !== 'leader') {
      if (this.leader === NO_NODE) return { kind: 'not_leader', leaderHint: NO_NODE };
      if (this.forwardedReads.size >= this.config.readQueueMax)
        return { kind: 'read_queue_full', queued: this.forwardedReads.size, queuedMax: this.config.readQueueMax };
      this.forwardedReads.add(requestId);
      this.send({ type: 'ReadIndex', from: this.id, term: this.term, to: this.leader, requestId });
      return { kind: 'forwarded', leader: this.leader };
    }
    if (this.reads.size >= this.config.readQueueMax)
      return { kind: 'read_queue_full', queued: this.reads.size, queuedMax: this.config.readQueueMax };
    this.enqueueRead(requestId, this.id);
    return { kind: 'queued' };
  }

  /**
   * A read served from the leader's lease when it holds one; otherwise a ReadIndex round.
   * `nowTicks`: the host's monotonic clock (in ticks, as for tick()) read at the moment of the
   * read; without it, the time of the last tick.
   */
  leaseRead(requestId: number, nowTicks?: number): ReadResult {
    this.wake();
    const now = Math.max(this.nowTicks, nowTicks ?? this.nowTicks);
    if (this.role === 'leader' && this.leaseValid(now) && this.committedInTerm()) {
      this.readStates.push({ requestId, index: this.log.committed });
      return { kind: 'queued' };
    }
    return this.readIndex(requestId);
  }

  private enqueueRead(requestId: number, from: NodeId): void {
    if (this.reads.size >= this.config.readQueueMax) {
      this.answerRead(from, requestId, 0 as LogIndex);
      return;
    }
    this.reads.push(requestId, from);
    if (this.committedInTerm() && allVoters(this.voterSets()).length === 1) {
      this.reads.startRound(this.log.committed);
      this.releaseReads();
    }
  }

  private startReadRound(): void {
    const round = this.reads.startRound(this.log.committed);
    this.reads.acknowledge(this.id, round);
    this.broadcastHeartbeat(round);
  }

  private releaseReads(): void {
    const self = this.id;
    const latest = this.reads.latestRound;
    const round = jointValue(this.voterSets(), (id) => (id === self ? latest : this.reads.ackedRoundOf(id)));
    for (const read of this.reads.release(round)) this.answerRead(read.from, read.requestId, read.index);
  }

  private answerRead(from: NodeId, requestId: number, index: LogIndex): void {
    if (from === this.id) {
      if (index > 0) this.readStates.push({ requestId, index });
      else this.readFailures.push({ requestId, reason: 'read_queue_full' });
    } else {
      this.send({ type: 'ReadIndexResponse', from: this.id, term: this.term, to: from, requestId, index });
    }
  }

  /**
   * The host gave up on a read (its timeout): forget it, so a forwarded read the leader never
   * answered stops counting against readQueueMax. A late answer for it is then ignored.
   */
  cancelRead(requestId: number): void {
    this.forwardedReads.delete(requestId);
  }

  private forwardedReadAnswered(requestId: number, index: LogIndex): void {
    if (!this.forwardedReads.delete(requestId)) return;
    if (index > 0) this.readStates.push({ requestId, index });
    else this.readFailures.push({ requestId, reason: 'not_leader' });
  }

  private failPendingReads(reason: ReadFailure['reason']): void {
    for (const read of this.reads.drain()) {
      if (read.from === this.id) this.readFailures.push({ requestId: read.requestId, reason });
      else
        this.send({
          type: 'ReadIndexResponse',
          from: this.id,
          term: this.term,
          to: read.from,
          requestId: read.requestId,
          index: 0 as LogIndex,
        });
    }
  }

  /**
   * A leader stepping down withdraws the read states it has not handed out yet (lease reads, and
   * released ReadIndex reads): the host learns of them only at the next Ready, by when another
   * leader may have acknowledged writes. Failing a read is always safe; the client retries.
   */
  private failUndeliveredReadStates(): void {
    for (const { requestId } of this.readStates) this.readFailures.push({ requestId, reason: 'leader_changed' });
    this.readStates = [];
  }

  private failForwardedReads(): void {
    for (const requestId of this.forwardedReads) this.readFailures.push({ requestId, reason: 'leader_changed' });
    this.forwardedReads.clear();
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /**
   * The lease holds while a quorum acknowledged a heartbeat sent less than leaseTicks ago, judged
   * at `nowTicks` (the host's clock read at the moment of the read) from when each heartbeat was
   * sent at the latest: the start of the tick it carries. See docs/ARCHITECTURE.md for the clock
   * assumption (followers wait out electionTimeoutTicks of their own ticks, which never run fast).
   */
  private leaseValid(nowTicks: number): boolean {
    if (this.role !== 'leader' || !this.config.leaseReads || this.quiescence.quiet) return false;
    return this.lease.holds(
      this.voterSets(),
      this.id,
      this.clockTicks,
      nowTicks,
      (id) => this.progress.get(id)?.ackedTick,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Leadership transfer

  transferLeadership(target: NodeId): TransferResult {
    this.wake();
    if (this.role !== 'leader') return { kind: 'not_leader', leaderHint: this.leader };
    if (target === this.id) return { kind: 'already_leader' };
    if (!this.voterSets().incoming.includes(target))
      return { kind: 'invalid_target', reason: `node ${target} is not a voter` };
    if (this.transferTarget === target) return { kind: 'in_progress', target };
    if (this.transferTarget !== NO_NODE) this.abortTransfer('stepped_down');
    const progress = this.progress.get(target);
    assert(progress !== undefined, 'voter without progress');
    this.transferTarget = target;
    this.transferElapsed = 0;
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(progress, true);
    return { kind: 'started', target };
  }

  private sendTimeoutNow(target: NodeId): void {
    this.lease.revoked = true;
    this.send({ type: 'TimeoutNow', from: this.id, term: this.term, to: target });
  }

  private abortTransfer(reason: 'timeout' | 'stepped_down' | 'target_removed'): void {
    if (this.transferTarget === NO_NODE) return;
    this.events.push({ kind: 'transfer_aborted', target: this.transferTarget, reason });
    this.transferTarget = NO_NODE;
    this.transferElapsed = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Configuration

  private voterSets(): VoterSets {
    return { incoming: this.confState.voters, outgoing: this.confState.votersOutgoing };
  }

  private promotable(): boolean {
    return isVoter(this.voterSets(), this.id);
  }

  /**
   * Whether a committed configuration entry not applied here yet changes the voters: this node
   * must not campaign then, or it would count votes in a configuration the group has left. One
   * that changes only learners does not stop it: the votes are counted the same way. That matters
   * to a node without its state machine (awaitSnapshot), which applies nothing until a leader
   * sends it a snapshot: two such voters holding the longest logs, a learner's addition committed
   * but not applied on either, left the meta group without a leader for good (simulator seed
   * 1347; the voter with its state had a shorter log, so neither would vote for it).
   */
  private hasUnappliedVoterChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const pending =
      this.log.slice((this.log.applied + 1) as LogIndex, (this.log.committed + 1) as LogIndex, Infinity) ?? [];
    let conf = this.confState;
    for (const entry of pending) {
      if (entry.kind !== 'conf') continue;
      const outcome = applyConfChange(conf, entry.change);
      if (!outcome.ok || !sameVoters(conf, outcome.confState)) return true;
      conf = outcome.confState;
    }
    return false;
  }

  private applyConfEntry(change: ConfChange, index: LogIndex): void {
    const outcome = applyConfChange(this.confState, change);
    assert(
      outcome.ok,
      `node ${this.id}: committed configuration change at ${index} is invalid: ${outcome.ok ? '' : outcome.reason}`,
    );
    this.confState = outcome.confState;
    this.confIndex = index;
    this.events.push({ kind: 'conf_applied', index, confState: outcome.confState });
    if (this.role === 'leader') this.leaderSwitchConfig();
    // A (pre-)candidate removed mid-election must not win it in the new configuration.
    else if (this.role !== 'follower' && !this.promotable()) this.becomeFollower(this.term, NO_NODE);
  }

  private leaderSwitchConfig(): void {
    const lastIndex = this.log.lastIndex();
    const wanted = new Set(members(this.confState));
    for (const id of this.progress.keys()) if (!wanted.has(id)) this.progress.delete(id);
    const added: Progress[] = [];
    for (const id of wanted) {
      const existing = this.progress.get(id);
      if (existing === undefined) {
        const progress = this.newProgress(id, lastIndex);
        this.progress.set(id, progress);
        added.push(progress);
      } else {
        existing.learner = !isVoter(this.voterSets(), id);
      }
    }
    if (this.transferTarget !== NO_NODE && !this.voterSets().incoming.includes(this.transferTarget))
      this.abortTransfer('target_removed');
    if (!this.promotable()) {
      this.stepDownRemoved();
      return;
    }
    // Probe new members at once; the others need no empty append for this.
    if (this.maybeCommit()) this.broadcastAppend();
    else for (const progress of added) this.sendAppend(progress, true);
  }

  /** The leader left the configuration: hand over to the most caught-up voter, then follow. */
  private stepDownRemoved(): void {
    let best: Progress | undefined;
    for (const progress of this.progress.values()) {
      if (progress.learner || progress.id === this.id) continue;
      if (best === undefined || progress.match > best.match) best = progress;
    }
    if (best !== undefined && best.match === this.log.lastIndex()) this.sendTimeoutNow(best.id);
    this.becomeFollower(this.term, NO_NODE);
  }

  // -------------------------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    return (
      this.appendPending ||
      this.snapshotDue() ||
      (this.role === 'leader' && this.reads.hasUnassigned() && this.committedInTerm()) ||
      this.messages.length > 0 ||
      this.messagesAfterPersist.length > 0 ||
      this.readStates.length > 0 ||
      this.readFailures.length > 0 ||
      this.events.length > 0 ||
      this.log.unstableSnapshot !== undefined ||
      this.log.unstableEntries().length > 0 ||
      (this.snapshotAwaitedFrom === 0 && this.log.hasNextCommittedEntries()) ||
      !sameSoftState(this.softState(), this.prevSoftState) ||
      !sameHardState(this.hardState(), this.prevHardState)
    );
  }

  ready(): Ready {
    assert(
      this.outstandingReady === undefined,
      `raft group ${this.groupName()}: ready() called again before advance() of the Ready it handed out`,
    );
    if (this.role === 'leader') {
      if (this.appendPending) this.broadcastAppend();
      if (this.reads.hasUnassigned() && this.committedInTerm()) this.startReadRound();
    }
    const softState = this.softState();
    const hardState = this.hardState();
    const hardChanged = !sameHardState(hardState, this.prevHardState);
    const termChanged = hardState.term !== this.prevHardState.term || hardState.vote !== this.prevHardState.vote;
    const entries = [...this.log.unstableEntries()];
    const committedEntries =
      this.snapshotAwaitedFrom > 0 ? [] : this.log.nextCommittedEntries(this.config.committedBytesMax);
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) this.log.acceptApplying(lastCommitted.index);
    const appliesConf = committedEntries.some((entry) => entry.kind === 'conf');
    // A leader's requests may go out before its own fsync, but not while its term or vote is unsynced.
    const messagesEarly = termChanged ? [] : this.messages;
    const messagesAfterPersist = termChanged
      ? [...this.messages, ...this.messagesAfterPersist]
      : this.messagesAfterPersist;
    const ready: Ready = {
      softState: sameSoftState(softState, this.prevSoftState) ? undefined : softState,
      // The commit-durability rule (docs/ARCHITECTURE.md): a Ready that applies a configuration
      // entry carries the hard state, synced, so no restart forgets that the entry is committed.
      hardState: hardChanged || appliesConf ? hardState : undefined,
      snapshot: this.log.unstableSnapshot,
      entries,
      committedEntries,
      messages: messagesEarly,
      messagesAfterPersist,
      readStates: this.readStates,
      readFailures: this.readFailures,
      events: this.events,
      mustSync: termChanged || entries.length > 0 || this.log.unstableSnapshot !== undefined || appliesConf,
      snapshotRequest: this.takeSnapshotRequest(),
    };
    this.readyOrdersApply = ready.snapshot !== undefined || appliesConf;
    this.restoredSinceReady = 0 as LogIndex;
    this.prevSoftState = softState;
    this.prevHardState = hardState;
    this.messages = [];
    this.messagesAfterPersist = [];
    this.readStates = [];
    this.readFailures = [];
    this.events = [];
    this.outstandingReady = ready;
    return ready;
  }

  /** The group named in assertion messages. */
  private groupName(): string {
    return this.config.group === undefined ? `(unnamed) on node ${this.id}` : `${this.config.group} on node ${this.id}`;
  }

  /**
   * Asks for a snapshot at the applied index with the next Ready, whatever snapshotIntervalEntries
   * and snapshotLogBytes say (an operator's "compact now"). Returns false when there is nothing
   * to compact: no entry was applied since the last snapshot stored or asked for.
   */
  requestSnapshot(): boolean {
    if (this.log.applied <= this.lastSnapshotAt()) return false;
    this.snapshotWanted = true;
    return true;
  }

  /** The index of the last snapshot stored or asked for. */
  private lastSnapshotAt(): number {
    // An installed snapshot counts from when it is restored, not once stored: the host must not
    // snapshot the state it was just handed and write it back.
    return Math.max(this.log.snapshotIndex(), this.snapshotRequestedAt);
  }

  private snapshotDue(): boolean {
    if (this.snapshotAwaitedFrom > 0) return false;
    const interval = this.config.snapshotIntervalEntries;
    const last = this.lastSnapshotAt();
    if (this.log.applied <= last) return false;
    const bytesMax = this.config.snapshotLogBytes;
    return (
      this.snapshotWanted ||
      (interval > 0 && this.log.applied - last >= interval) ||
      (bytesMax > 0 && this.appliedBytesSinceSnapshot >= bytesMax)
    );
  }

  private takeSnapshotRequest(): LogIndex | undefined {
    if (!this.snapshotDue()) return undefined;
    this.snapshotWanted = false;
    this.snapshotRequestedAt = this.log.applied;
    this.appliedBytesSinceSnapshot = 0;
    return this.log.applied;
  }

  /**
   * Committed entries that no Ready handed out yet, for a host whose last Ready's writes are
   * still in flight: committed means durable on a quorum, so the host may apply them (and answer
   * their callers) at once instead of after its own write and the next Ready; it then reports
   * them with `appliedEarly`. Normal entries only, in order: none while the outstanding Ready
   * restores a snapshot or applies a configuration entry, and none from a configuration entry on
   * (the core applies those in advance(), and later entries must not overtake them).
   */
  takeCommittedEntries(): Entry[] {
    if (this.readyOrdersApply || this.snapshotAwaitedFrom > 0 || !this.log.hasNextCommittedEntries()) return [];
    const committed = this.log.nextCommittedEntries(this.config.committedBytesMax);
    const conf = committed.findIndex((entry) => entry.kind === 'conf');
    const entries = conf === -1 ? committed : committed.slice(0, conf);
    const last = entries[entries.length - 1];
    if (last !== undefined) this.log.acceptApplying(last.index);
    return entries;
  }

  /** The host applied what takeCommittedEntries() returned. */
  appliedEarly(entries: readonly Entry[]): void {
    const last = entries[entries.length - 1];
    if (last === undefined) return;
    this.log.appliedTo(last.index);
    for (const entry of entries) {
      this.appliedBytesSinceSnapshot += entryBytes(entry);
      assert(entry.kind === 'normal', 'raft: a configuration entry was applied early');
      this.releaseUncommitted(entry);
    }
  }

  /** An applied entry of this leader's term no longer counts against uncommittedBytesMax. */
  private releaseUncommitted(entry: Entry): void {
    if (this.role === 'leader' && entry.term === this.term)
      this.uncommittedBytes = Math.max(0, this.uncommittedBytes - entryBytes(entry));
  }

  /** The host finished the Ready: its writes are durable and its committed entries applied. */
  advance(ready: Ready): void {
    assert(
      this.outstandingReady !== undefined,
      `raft group ${this.groupName()}: advance() without a Ready handed out (advanced twice?)`,
    );
    assert(
      ready === this.outstandingReady,
      `raft group ${this.groupName()}: advance() given a Ready other than the one ready() handed out`,
    );
    this.outstandingReady = undefined;
    this.readyOrdersApply = false;
    if (ready.snapshot !== undefined) this.log.stableSnapshotTo(ready.snapshot.meta.index);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) {
      this.log.stableTo(lastEntry.index, lastEntry.term);
      this.leaderPersisted(lastEntry);
    }
    // Entries a snapshot restored since ready() covers were superseded by it: never applied.
    const restored = this.restoredSinceReady;
    this.restoredSinceReady = 0 as LogIndex;
    const committed =
      restored > 0 ? ready.committedEntries.filter((entry) => entry.index > restored) : ready.committedEntries;
    const lastCommitted = committed[committed.length - 1];
    if (lastCommitted === undefined) return;
    this.log.appliedTo(lastCommitted.index);
    for (const entry of committed) {
      this.appliedBytesSinceSnapshot += entryBytes(entry);
      this.releaseUncommitted(entry);
      if (entry.kind === 'conf') this.applyConfEntry(entry.change, entry.index);
    }
    this.maybeAutoLeave();
  }

  /** A leader leaves a joint configuration by itself once entering it is applied (retried each tick while refused). */
  private maybeAutoLeave(): void {
    if (
      this.role !== 'leader' ||
      !isJoint(this.confState) ||
      !this.confState.autoLeave ||
      this.pendingConfIndex > this.log.applied
    )
      return;
    const result = this.proposeConfChange({ changes: [], transition: 'auto' });
    assert(
      result.kind === 'accepted' || result.kind === 'transferring',
      `auto-leave of joint configuration refused: ${result.kind}`,
    );
  }

  /** The leader's own log counts toward commit only once durable. */
  private leaderPersisted(lastEntry: Entry): void {
    if (this.role !== 'leader' || this.log.term(lastEntry.index) !== lastEntry.term) return;
    const self = this.progress.get(this.id);
    if (self === undefined) return;
    self.maybeUpdate(Math.min(lastEntry.index, this.persistedLastIndex()) as LogIndex);
    if (this.maybeCommit()) this.broadcastAppend();
  }

  // -------------------------------------------------------------------------------------------
  // Views

  private softState(): SoftState {
    return { role: this.role, leader: this.leader };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  currentConfState(): ConfState {
    return this.confState;
  }

  /** The log index of the configuration entry (or snapshot) currentConfState() and status().confState come from. */
  currentConfIndex(): LogIndex {
    return this.confIndex;
  }

  status(): Status {
    const progress =
      this.role !== 'leader'
        ? []
        : [...this.progress.values()]
            .sort((a, b) => a.id - b.id)
            .map((p) => ({
              id: p.id,
              match: p.match,
              next: p.next,
              state: p.state,
              learner: p.learner,
              recentActive: p.recentActive,
              inflightMessages: p.inflights.count,
              ...(p.state === 'snapshot' && p.snapshot !== undefined
                ? { snapshot: { ackedBytes: p.snapshot.ackedOffset, totalBytes: p.snapshot.totalBytes } }
                : {}),
            }));
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      confState: this.confState,
      transferTarget: this.transferTarget,
      leaseValid: this.leaseValid(this.nowTicks),
      quiesced: this.quiescence.quiet,
      progress,
    };
  }

  // -------------------------------------------------------------------------------------------

  /** Call sites build whole messages (no spread here: this is the hottest function of the core). */
  private send(message: Message): void {
    if ((this.role === 'leader' && leaderRequestTypes.has(message.type)) || memberRequestTypes.has(message.type))
      this.messages.push(message);
    else this.messagesAfterPersist.push(message);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout =
      this.config.electionTimeoutTicks + this.config.rng.int(this.config.electionTimeoutTicks);
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameVoters(a: ConfState, b: ConfState): boolean {
  const key = (voters: readonly NodeId[]): string => [...voters].sort((x, y) => x - y).join(',');
  return key(a.voters) === key(b.voters) && key(a.votersOutgoing) === key(b.votersOutgoing);
}
