// The multi-Raft host: one per process, hosting every group this node has a replica of. It owns
// the turn loop (docs/ARCHITECTURE.md, key decision 3): collect the Ready of every group, send the leaders'
// early messages (a leader replicates while its own fsync runs), write every group's entries and
// hard state in ONE synced storage batch, send the remaining messages grouped per peer (one frame
// per peer per turn, which also coalesces heartbeats; in a turn with nothing to write they go in
// the early frame, so one socket write per peer), apply committed entries to the models,
// resolve proposals and reads, and advance. Messages keep arriving while the write is in flight;
// they are stepped at once (the core allows it) but no group's ready() is taken again before its
// advance(). Committed entries do not wait for the write: the Ready's are applied while it is in
// flight, and what arriving acknowledgements commit meanwhile is applied on arrival (committed
// means durable on a quorum, which need not include this node).
//
// Callers (the HTTP API) never touch a group directly: proposals are queued (bounded; a full queue
// refuses at once) and proposed in batches at the start of a turn; reads wait for their read index
// to be applied. A proposal's outcome is known for certain once its index is applied locally (the
// entry there is ours or not); until then it is pending, and a caller that gives up reports it
// as indeterminate.
//
// Snapshots (docs/ARCHITECTURE.md, "Snapshots"): each group's model sits in a ModelStack. When
// the core asks for a snapshot, the stack captures the model between two entries, at exactly the
// applied index, and the envelope's slices are drained one per deferred callback, between turns,
// while entries keep being applied; the first turn after it, once that turn's write is done (so
// its index is durable here), hands the slices to storage.compact, unless a restore made it stale
// or a newer snapshot is stored already. No turn waits for that compaction: the store writes it
// chunk by chunk between the turns' writes. One capture per group at a time, from capture until
// stored; a request that comes meanwhile is dropped (the core asks again an interval later).
// A snapshot received from a leader is staged first (HostStorage.stageSnapshot: the store makes
// its bytes durable outside the turns), its group's Ready held out of the turns meanwhile; the
// first turn after that writes the rest of that Ready with everyone else's, so installing a large
// snapshot never holds up the node's other groups.
// A proposal made with a request key (a client's request id inside the data, which the model can
// read back: ReplicatedModel.requestKey) can be made on any member: a follower hands it to the
// leader through the core (RaftNode.proposeOrForward: a Propose message in this turn's frame to
// that peer). It has no index then, so it is matched by key: it is answered by the first applied
// entry that carries its key, or indeterminate at its deadline. When the leader changes (or the
// term, or the connection to it is lost) every keyed proposal not yet applied is handed to the
// new leader again: a copy may then be applied twice in the log, and the model's sessions make
// the second a no-op (the request key is the exactly-once stamp), so it is never applied twice.

import { crc32 } from 'node:zlib';
import { assert } from '../base/assert.ts';
import type { GroupId, LogIndex, NodeId, Term } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { Rng } from '../base/rng.ts';
import { raftConfigDefaults, type RaftConfigInput } from '../raft/config.ts';
import { RaftNode } from '../raft/raft.ts';
import type { LogStorage } from '../raft/storage.ts';
import type { Checksum } from '../codec/snapshot.ts';
import type { Model, SnapshotSlices } from '../models/model.ts';
import { ModelStack, SnapshotRefusedError } from '../models/model-stack.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  ProposeResult,
  ReadResult,
  Ready,
  Snapshot,
  Status,
  TransferResult,
} from '../raft/types.ts';
import type {
  GroupMessage,
  GroupWrite,
  HostClock,
  HostStorage,
  HostTransport,
  ReplicatedModel,
  TimerHandle,
} from './ports.ts';
import { SnapshotSendLimiter, snapshotSendDefaults, type SnapshotSendLimits } from './snapshot-send-limiter.ts';
import { systemClock } from './system-clock.ts';

export type ProposalOutcome =
  | { readonly kind: 'applied'; readonly index: LogIndex; readonly result: unknown }
  /** Definitely not applied: refused by the core, or another entry took its index. */
  | {
      readonly kind: 'refused';
      readonly reason:
        | Exclude<ProposeResult, { kind: 'accepted' }>
        | { readonly kind: 'superseded' }
        | { readonly kind: 'overloaded'; readonly queued: number; readonly queuedMax: number }
        | { readonly kind: 'unknown_group' }
        /** The host is stopped (shut down, or stopped by a fatal error). */
        | { readonly kind: 'stopped' };
    }
  /** The caller stopped waiting before the outcome was known: it may or may not be applied. */
  | { readonly kind: 'indeterminate' };

export type ReadOutcome =
  | { readonly kind: 'ready'; readonly index: LogIndex }
  | {
      readonly kind: 'refused';
      readonly reason:
        | 'not_leader'
        | 'no_leader'
        | 'read_queue_full'
        | 'leader_changed'
        | 'unknown_group'
        | 'timeout'
        | 'stopped';
      readonly leaderHint: NodeId;
    };

/**
 * The last time this node saw a group's leader change (to a leader other than the last one it
 * knew). `cause` is this node's best knowledge: 'transfer' when it saw the new leader's election
 * start as a leadership transfer (it was the old leader, the candidate, or a voter the vote
 * request reached), else 'automatic'; a learner, or a voter cut off during a transfer, takes a
 * transfer for automatic. The new leader itself always knows.
 */
export interface LeaderChange {
  /**
   * Wall-clock time (ms since the epoch) at which this node noticed the change: Date.now, not the
   * host's clock (monotonic in production, virtual in the simulator), as it is only reported.
   */
  readonly atMs: number;
  /** The leader this node knew before (0: none since it started). */
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly cause: 'transfer' | 'automatic';
}

export interface HostOptions {
  readonly nodeId: NodeId;
  readonly storage: HostStorage;
  readonly transport: HostTransport;
  readonly rng: Rng;
  /** Every clock reading and timer of the host (default: Node's; the simulator passes a virtual one). */
  readonly clock?: HostClock;
  /** Core settings shared by every group (limits, timeouts in ticks). */
  readonly raft: Omit<RaftConfigInput, 'id' | 'rng'>;
  readonly tickMs: number;
  /** Proposals waiting for the next turn, over all groups. */
  readonly proposalQueueMax: number;
  /** How long propose() and read() wait before answering indeterminate / timeout. */
  readonly requestTimeoutMs: number;
  /** How often a peer that got nothing else from this node gets an empty batch (a ping). */
  readonly pingMs: number;
  /** A quiet follower whose leader's node has been silent this long is woken. */
  readonly peerSilenceMs: number;
  /** How often commit indexes that changed alone are written (they are kept in memory between). */
  readonly commitFlushMs: number;
  /** Told when a group's membership changed here (a turn after its entry was applied, or with an installed snapshot). */
  readonly onConfApplied?: (group: GroupId, confState: ConfState) => void;
  /** Told when a snapshot received from a leader was refused (corrupt); the reason names the group and index. */
  readonly onSnapshotRefused?: (group: GroupId, reason: string) => void;
  /** Told how long each turn took, for metrics. */
  readonly observeTurn?: (seconds: number) => void;
  /** Node-wide limits on sending snapshots to followers (snapshot-send-limiter.ts; default: none). */
  readonly snapshotSend?: SnapshotSendLimits;
  /**
   * Told when a peer sent a message for a group this node does not host (once per group and peer
   * per `unknownGroupReportMs`): the node may be being added to it (src/node/group-hosting.ts).
   */
  readonly onUnknownGroup?: (group: GroupId, from: NodeId) => void;
}

/** A message for an unhosted group is reported at most this often per group and peer. */
export const unknownGroupReportMs = 1000;

interface PendingProposal {
  readonly term: number;
  readonly resolve: (outcome: ProposalOutcome) => void;
  readonly timer: TimerHandle;
}

interface QueuedProposal {
  readonly data: Uint8Array;
  readonly resolve: (outcome: ProposalOutcome) => void;
  /** Set for a proposal that may be forwarded (matched by key, not by index). */
  readonly key: string | undefined;
}

/** A keyed proposal handed to the core (appended here, or forwarded), waiting for its key to be applied. */
interface KeyedProposal {
  readonly key: string;
  readonly data: Uint8Array;
  readonly resolve: (outcome: ProposalOutcome) => void;
  readonly timer: TimerHandle;
  /** The leader (this node when it led) and term it was last handed to. */
  sentTo: NodeId;
  sentTerm: number;
}

/** One ReadIndex request of the core, and every read it serves (a turn's linearizable reads share one). */
interface WaitingRead {
  readonly resolves: readonly ((outcome: ReadOutcome) => void)[];
  readonly timer: TimerHandle;
  index: LogIndex;
}

/** A group's Ready taken by a turn, with the configuration at its applied index. */
interface TurnReady {
  readonly group: HostedGroup;
  readonly ready: Ready;
  readonly confState: ConfState;
  /** Its early messages went out already (when its snapshot was handed to stageSnapshot). */
  readonly earlySent?: boolean;
}

/** Distinct (group, peer) pairs remembered for rate-limiting unknown-group reports. */
const unknownReportsMax = 4096;

/** The checksum of every snapshot envelope: zlib's CRC-32, continued across slices. */
const snapshotChecksum: Checksum = (bytes, previous) => crc32(bytes, previous);

/** A snapshot being captured: its slices drained between turns, then stored by a turn. */
interface SnapshotInFlight {
  readonly index: LogIndex;
  readonly confState: ConfState;
  /** The stack's restore generation at capture: a restore since makes the capture stale. */
  readonly generation: number;
  readonly slices: SnapshotSlices;
  readonly taken: Uint8Array[];
  /** All slices taken: the bytes wait for the next turn to store them. */
  done: boolean;
  /** Handed to storage.compact, which has not finished. */
  storing: boolean;
}

interface HostedGroup {
  readonly id: GroupId;
  readonly raft: RaftNode;
  readonly stack: ModelStack;
  appliedIndex: LogIndex;
  /** The term of the entry at appliedIndex (a snapshot's timeframe names it). */
  appliedTerm: number;
  snapshotInFlight: SnapshotInFlight | undefined;
  /** The stored snapshot failed its checks and the state was rebuilt from the log: replace it at its own index. */
  replaceStoredSnapshot: boolean;
  /**
   * A Ready that installs a snapshot from the leader, held out of the turns while the store makes
   * the snapshot's bytes durable (HostStorage.stageSnapshot); `staged`: done, the next turn
   * writes the rest of the Ready (the pointer, entries, hard state), restores and advances.
   */
  installing: { readonly turn: TurnReady; staged: boolean } | undefined;
  /** A commit-only hard state not written yet (see turn()). */
  unsavedHardState: HardState | undefined;
  readonly queued: QueuedProposal[];
  readonly pending: Map<number, PendingProposal>;
  /** Keyed proposals by key (two callers may wait on one key), in the order they were first sent. */
  readonly keyed: Map<string, KeyedProposal[]>;
  /** Where the keyed proposals were last handed (leader and term); a change sends them again. */
  keyedLeader: NodeId;
  keyedTerm: number;
  readonly reads: Map<number, WaitingRead>;
  /** Linearizable reads that arrived since the last turn: the next turn asks the core for one read index for all. */
  readonly readsQueued: ((outcome: ReadOutcome) => void)[];
  /** The last non-zero leader seen, and the last change of it (see LeaderChange). */
  knownLeader: NodeId;
  lastLeaderChange: LeaderChange | undefined;
  /** The last election this node saw start as a transfer (its candidate and term). */
  transferCampaign: { readonly candidate: NodeId; readonly term: number } | undefined;
  /** Automatic failovers this node won: it became leader by an election no transfer started, after another leader. */
  failoversWon: number;
}

/** What status() reports per group. */
export interface HostedGroupStatus {
  readonly group: GroupId;
  readonly status: Status;
  readonly appliedIndex: LogIndex;
  /** The term of the entry at appliedIndex: a leader that applied one of its own term has applied all that was committed before it. */
  readonly appliedTerm: number;
  /**
   * The index of the configuration entry status.confState comes from (or of the snapshot that
   * brought it: at or after it). Taken from the core with confState, never from the model's
   * apply: the host applies a turn's entries before its write and the core its configuration
   * changes after, so an index taken at apply could name a configuration the status does not show yet.
   */
  readonly confIndex: number;
  readonly lastLeaderChange: LeaderChange | undefined;
  readonly failoversWon: number;
}

export class MultiRaftHost {
  private readonly options: HostOptions;
  private readonly groups = new Map<GroupId, HostedGroup>();
  private queuedCount = 0;
  /**
   * ReadIndex request ids start at a random point of the 53-bit range at every start, so a late
   * answer to a read sent before a restart cannot be taken for a new read's (two runs' ranges
   * overlap with a chance of about ids used / 2^52).
   */
  private nextRequestId: number;
  private turnScheduled = false;
  private turnRunning = false;
  private readonly snapshotSends: SnapshotSendLimiter;
  /** storage.compact and storage.stageSnapshot calls not finished (stop waits for them). */
  private readonly compactions = new Set<Promise<void>>();
  /** The turn is waiting for its storage write: arriving commits are applied at once (applyEarly). */
  private writeInFlight = false;
  private readonly clock: HostClock;
  private ticker: TimerHandle | undefined;
  /** Settles when the running turn loop (runTurns) ends; stop() waits on it. */
  private turnsDone: Promise<void> = Promise.resolve();
  private stopped = false;
  private fatal: Error | undefined;
  /** The next turn writes every group's unsaved commit index (set by the ticker, and by stop()). */
  private commitFlushDue = false;
  /** Membership changes applied in the running turn, answered once the core has taken them (after its write). */
  private confAnswers: { group: HostedGroup; index: number; term: number; pending: PendingProposal }[] = [];
  private lastCommitFlushMs = 0;
  /** Quiescence: when each peer was last heard from (any frame, pings included). */
  private readonly lastHeardMs = new Map<NodeId, number>();
  private readonly startedMs: number;
  private lastPingMs = 0;
  private readonly sentSincePing = new Set<NodeId>();
  /** When a message for an unhosted group was last reported, per `group:peer`. */
  private readonly unknownReported = new Map<string, number>();

  constructor(options: HostOptions) {
    assert(
      options.proposalQueueMax >= 1 &&
        options.tickMs >= 1 &&
        options.requestTimeoutMs >= 1 &&
        options.commitFlushMs >= 1 &&
        options.pingMs >= 1 &&
        options.peerSilenceMs > options.pingMs,
      'host: limits must be positive',
    );
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.snapshotSends = new SnapshotSendLimiter(options.snapshotSend ?? snapshotSendDefaults, () =>
      this.clock.nowMs(),
    );
    this.nextRequestId = options.rng.int(2 ** 20) * 2 ** 32 + options.rng.int(2 ** 32) + 1;
    this.startedMs = this.clock.nowMs();
  }

  /**
   * Hosts a group whose storage is already initialized (bootstrapped, or empty for a joiner), and
   * restores its model from the stored snapshot (loadStoredSnapshot). A snapshot that fails its
   * checks (corrupt, truncated, or damaged in the store) or that the model cannot read (a newer
   * version's) is never loaded: the state is rebuilt from the log when the log reaches back to
   * the group's first entry, and the bad snapshot is replaced at once; otherwise a corrupt one's
   * state is fetched from the leader (the core's awaitSnapshot), and an unreadable one stands as
   * a SnapshotRefusedError naming the group and index. `create` makes a fresh model of the same
   * kind: needed only for a model without snapshot support that may be handed a snapshot by its leader.
   */
  addGroup(id: GroupId, model: ReplicatedModel, create?: () => Model): void {
    assert(!this.groups.has(id), `host: group ${id} added twice`);
    const storage = this.options.storage.group(id);
    const stored = storage.snapshot();
    const stack = new ModelStack(model, snapshotChecksum, create);
    const loaded = loadStoredSnapshot(id, stack, storage, this.options.storage.snapshotDamage?.(id));
    if (loaded.refusal !== undefined) this.options.onSnapshotRefused?.(id, loaded.refusal);
    const raft = new RaftNode(
      {
        ...this.options.raft,
        id: this.options.nodeId,
        group: id,
        rng: this.options.rng.fork(),
        snapshotCheck: (snapshot) => checkSnapshot(id, stack, snapshot),
        checksum: (bytes) => crc32(bytes),
        ...(this.options.snapshotSend === undefined
          ? {}
          : { snapshotSendGate: (to: NodeId, bytes: number) => this.snapshotSends.allow(id, to, bytes) }),
      },
      storage,
    );
    if (loaded.outcome === 'await') raft.awaitSnapshot();
    const missing = loaded.outcome === 'await';
    const group: HostedGroup = {
      id,
      raft,
      stack,
      appliedIndex: missing ? (0 as LogIndex) : stored.meta.index,
      appliedTerm: missing ? 0 : stored.meta.term,
      snapshotInFlight: undefined,
      replaceStoredSnapshot: loaded.outcome === 'rebuilt',
      installing: undefined,
      unsavedHardState: undefined,
      queued: [],
      pending: new Map(),
      keyed: new Map(),
      keyedLeader: NO_NODE,
      keyedTerm: 0,
      reads: new Map(),
      readsQueued: [],
      knownLeader: NO_NODE,
      lastLeaderChange: undefined,
      transferCampaign: undefined,
      failoversWon: 0,
    };
    this.groups.set(id, group);
    // A snapshot this model wrote, at the same index, replaces the one that failed its checks.
    if (group.replaceStoredSnapshot) this.startSnapshot(group, stored.meta.confState);
    this.scheduleTurn();
  }

  start(): void {
    this.ticker = this.clock.setRepeating(() => {
      this.tick();
    }, this.options.tickMs);
  }

  /**
   * Ticks every group that is not quiet. A quiet group costs nothing here but a look at when its
   * leader's node was last heard from: no heartbeat will say that the leader died, so a quiet
   * follower whose leader's node has been silent for an election timeout is woken (and then
   * elects a leader as usual). Nodes ping each other every heartbeat interval when nothing else
   * went to a peer, which keeps "silent" meaning "unreachable".
   */
  private tick(): void {
    const nowMs = this.clock.nowMs();
    const nowTicks = nowMs / this.options.tickMs;
    // Silence is judged once per ping interval (it cannot change faster than pings arrive).
    const pingDue = nowMs - this.lastPingMs >= this.options.pingMs;
    let ticked = false;
    for (const group of this.groups.values()) {
      if (!group.raft.quiesced()) {
        group.raft.tick(nowTicks);
        ticked = true;
        continue;
      }
      if (!pingDue) continue;
      const leader = group.raft.followedLeader();
      if (leader !== 0 && nowMs - (this.lastHeardMs.get(leader) ?? this.startedMs) > this.options.peerSilenceMs)
        group.raft.wake();
    }
    if (nowMs - this.lastCommitFlushMs >= this.options.commitFlushMs) {
      this.lastCommitFlushMs = nowMs;
      this.commitFlushDue = true;
    }
    if (pingDue) {
      this.lastPingMs = nowMs;
      this.pingQuietPeers();
    }
    if (ticked || this.commitFlushDue) this.scheduleTurn();
  }

  /** An empty batch to every member of any hosted group that got nothing from us since the last ping. */
  private pingQuietPeers(): void {
    const peers = new Set<NodeId>();
    for (const group of this.groups.values()) {
      const confState = group.raft.currentConfState();
      for (const list of [confState.voters, confState.votersOutgoing, confState.learners])
        for (const id of list) peers.add(id);
    }
    peers.delete(this.options.nodeId);
    for (const peer of peers) if (!this.sentSincePing.has(peer)) this.options.transport.send(peer, []);
    this.sentSincePing.clear();
  }

  /** Stops ticking, lets the running turn finish, and answers everything still waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearTimer(this.ticker);
    await this.turnsDone;
    await Promise.all(this.compactions);
    // Save the commit indexes the turns kept in memory, so a restart replays to where we were.
    this.commitFlushDue = true;
    if (this.fatal === undefined) await this.runTurns();
    this.settleWaiting();
  }

  /** Answers everything still waiting once the host stopped: queued never proposed, proposed maybe applied. */
  private settleWaiting(): void {
    for (const group of this.groups.values()) this.settleGroup(group, 'stopped');
  }

  /** Answers everything waiting on one group: queued never proposed (refused), proposed maybe applied. */
  private settleGroup(group: HostedGroup, reason: 'stopped' | 'unknown_group'): void {
    for (const queued of group.queued) queued.resolve({ kind: 'refused', reason: { kind: reason } });
    this.queuedCount -= group.queued.length;
    group.queued.length = 0;
    for (const [index, pending] of group.pending) this.settle(group, index, pending, { kind: 'indeterminate' });
    for (const key of [...group.keyed.keys()]) this.settleKeyed(group, key, { kind: 'indeterminate' });
    for (const [id, read] of group.reads)
      this.finishRead(group, id, read, { kind: 'refused', reason, leaderHint: NO_NODE });
    for (const resolve of group.readsQueued.splice(0)) resolve({ kind: 'refused', reason, leaderHint: NO_NODE });
  }

  /**
   * The transport lost its connection to `peer`: every group that follows it as leader stops
   * waiting out the election timeout (RaftNode.leaderUnreachable), so a crashed leader is
   * replaced within the randomized part of the timeout rather than a whole one.
   */
  peerLost(peer: NodeId): void {
    if (this.stopped) return;
    for (const group of this.groups.values()) {
      group.raft.leaderUnreachable(peer);
      // The frame that carried them may be lost with the connection: send them again (a copy
      // that did arrive is a no-op when applied twice).
      if (group.keyedLeader === peer) {
        group.keyedLeader = NO_NODE;
        this.scheduleTurn();
      }
    }
  }

  /** A batch from a peer: step every message into its group. Unknown groups are ignored. An empty batch is a ping. */
  receive(batch: readonly GroupMessage[], from: NodeId): void {
    if (this.stopped) return;
    this.lastHeardMs.set(from, this.clock.nowMs());
    if (batch.length === 0) return;
    try {
      for (const { group, message } of batch) {
        const hosted = this.groups.get(group);
        if (hosted === undefined) this.reportUnknown(group, from);
        else hosted.raft.step(message);
      }
      if (this.writeInFlight) {
        for (const { group } of batch) {
          const hosted = this.groups.get(group);
          if (hosted !== undefined) this.applyEarly(hosted);
        }
      }
    } catch (error) {
      // An assertion in the core or a model that threw: as fatal as in a turn (and the
      // transport's caller must not see a throw).
      this.fail(error);
      return;
    }
    this.scheduleTurn();
  }

  private reportUnknown(group: GroupId, from: NodeId): void {
    const report = this.options.onUnknownGroup;
    if (report === undefined) return;
    const key = `${group}:${from}`;
    const nowMs = this.clock.nowMs();
    if (nowMs - (this.unknownReported.get(key) ?? -Infinity) < unknownGroupReportMs) return;
    if (this.unknownReported.size >= unknownReportsMax) this.unknownReported.clear();
    this.unknownReported.set(key, nowMs);
    report(group, from);
  }

  /**
   * Stops hosting a group and deletes its storage (the node was removed from it: the caller
   * checked that the removal is applied). Waits for the running turn, so no turn sees the group
   * half gone; every caller still waiting on it is answered (refused, or indeterminate for a
   * proposal handed to the core). `stillRemoved` is asked once that turn is over, with nothing
   * running in between until the group is gone: a turn may have applied an entry that places the
   * group here again (a move of the meta group), so the caller's decision is checked there.
   */
  async removeGroup(groupId: GroupId, stillRemoved?: () => boolean): Promise<void> {
    while (this.turnRunning) await this.turnsDone;
    const group = this.groups.get(groupId);
    if (group === undefined || stillRemoved?.() === false) return;
    this.groups.delete(groupId);
    group.snapshotInFlight?.slices.return?.();
    group.snapshotInFlight = undefined;
    group.installing = undefined;
    this.settleGroup(group, 'unknown_group');
    await this.options.storage.deleteGroup?.(groupId);
  }

  /** Whether this node hosts the group. */
  hosts(groupId: GroupId): boolean {
    return this.groups.has(groupId);
  }

  /**
   * Proposes `data` to the group. Without a key only the leader can (a follower refuses:
   * not_leader); with one (the request key the model reads back from `data`, unique to this
   * request and exactly-once in the model) any member can, forwarding it to the leader.
   */
  propose(groupId: GroupId, data: Uint8Array, key?: string): Promise<ProposalOutcome> {
    const group = this.groups.get(groupId);
    if (this.stopped) return Promise.resolve({ kind: 'refused', reason: { kind: 'stopped' } });
    if (group === undefined) return Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } });
    if (this.queuedCount >= this.options.proposalQueueMax) {
      return Promise.resolve({
        kind: 'refused',
        reason: { kind: 'overloaded', queued: this.queuedCount, queuedMax: this.options.proposalQueueMax },
      });
    }
    assert(
      key === undefined || group.stack.model.requestKey?.(data) === key,
      `host: a proposal to group ${groupId} with a key its data does not carry`,
    );
    return new Promise((resolve) => {
      group.queued.push({ data, resolve, key });
      this.queuedCount++;
      this.scheduleTurn();
    });
  }

  /** Waits until a read at this moment is safe to serve locally (linearizable, or from the lease). */
  read(groupId: GroupId, mode: 'linearizable' | 'lease'): Promise<ReadOutcome> {
    const group = this.groups.get(groupId);
    if (this.stopped) return Promise.resolve({ kind: 'refused', reason: 'stopped', leaderHint: NO_NODE });
    if (group === undefined) return Promise.resolve({ kind: 'refused', reason: 'unknown_group', leaderHint: NO_NODE });
    if (mode === 'linearizable') {
      // Joins this turn's batch: one ReadIndex request (on a follower, one message to the leader
      // and one answer) serves every linearizable read that arrived before it was made.
      if (group.readsQueued.length >= group.raft.config.readQueueMax)
        return Promise.resolve({ kind: 'refused', reason: 'read_queue_full', leaderHint: group.raft.knownLeader() });
      return new Promise((resolve) => {
        group.readsQueued.push(resolve);
        this.scheduleTurn();
      });
    }
    // The lease is judged on the clock read now, at the moment of the read (not at the last tick).
    const requestId = this.nextRequestId++;
    const result = group.raft.leaseRead(requestId, this.clock.nowMs() / this.options.tickMs);
    return new Promise((resolve) => {
      this.waitForReadIndex(group, requestId, result, [resolve]);
    });
  }

  /** Asks the core for one read index for the reads queued since the last turn. */
  private readQueued(group: HostedGroup): void {
    if (group.readsQueued.length === 0) return;
    const resolves = group.readsQueued.splice(0);
    const requestId = this.nextRequestId++;
    this.waitForReadIndex(group, requestId, group.raft.readIndex(requestId), resolves);
  }

  /** Answers at once what the core refused; otherwise waits (bounded) for the request's read index. */
  private waitForReadIndex(
    group: HostedGroup,
    requestId: number,
    result: ReadResult,
    resolves: readonly ((outcome: ReadOutcome) => void)[],
  ): void {
    const refuse = (outcome: ReadOutcome): void => {
      for (const resolve of resolves) resolve(outcome);
    };
    if (result.kind === 'not_leader') {
      refuse({
        kind: 'refused',
        reason: result.leaderHint === 0 ? 'no_leader' : 'not_leader',
        leaderHint: result.leaderHint,
      });
      return;
    }
    if (result.kind === 'read_queue_full') {
      refuse({ kind: 'refused', reason: 'read_queue_full', leaderHint: group.raft.knownLeader() });
      return;
    }
    const timer = this.clock.setTimer(() => {
      const read = group.reads.get(requestId);
      if (read !== undefined)
        this.finishRead(group, requestId, read, {
          kind: 'refused',
          reason: 'timeout',
          leaderHint: group.raft.knownLeader(),
        });
    }, this.options.requestTimeoutMs);
    assert(!group.reads.has(requestId), `host: group ${group.id} read ${requestId} registered twice`);
    group.reads.set(requestId, { resolves, timer, index: 0 as LogIndex });
    this.scheduleTurn();
  }

  /**
   * Proposes a membership change to a group this node leads. Resolves like propose(): applied
   * (the new configuration is in effect here: status() shows it, with its confIndex), refused
   * (not leader, a change already pending, invalid), or indeterminate.
   */
  proposeConfChange(groupId: GroupId, change: ConfChange): Promise<ProposalOutcome> {
    const group = this.groups.get(groupId);
    if (this.stopped) return Promise.resolve({ kind: 'refused', reason: { kind: 'stopped' } });
    if (group === undefined) return Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } });
    const result = group.raft.proposeConfChange(change);
    if (result.kind !== 'accepted') return Promise.resolve({ kind: 'refused', reason: result });
    return new Promise((resolve) => {
      this.trackPending(group, result.index, result.term, resolve);
      this.scheduleTurn();
    });
  }

  transferLeadership(groupId: GroupId, to: NodeId): TransferResult | { kind: 'unknown_group' } {
    const group = this.groups.get(groupId);
    if (group === undefined) return { kind: 'unknown_group' };
    const result = group.raft.transferLeadership(to);
    this.scheduleTurn();
    return result;
  }

  /**
   * Compacts this node's replica of the group now (an operator's call): the core asks for a
   * snapshot at the applied index with the group's next Ready, and it is captured and stored as
   * any other (storeSnapshots). `in_progress`: a snapshot is being captured or stored already (at
   * `index`); `up_to_date`: nothing was applied since the last snapshot (at `index`).
   */
  compactNow(
    groupId: GroupId,
  ): { kind: 'started' | 'in_progress' | 'up_to_date'; index: LogIndex } | { kind: 'unknown_group' } {
    const group = this.groups.get(groupId);
    if (group === undefined) return { kind: 'unknown_group' };
    const capture = group.snapshotInFlight;
    if (capture !== undefined) return { kind: 'in_progress', index: capture.index };
    if (!group.raft.requestSnapshot())
      return { kind: 'up_to_date', index: this.options.storage.group(groupId).snapshot().meta.index };
    this.scheduleTurn();
    return { kind: 'started', index: group.appliedIndex };
  }

  model(groupId: GroupId): ReplicatedModel | undefined {
    return this.groups.get(groupId)?.stack.model;
  }

  /** The leader this node knows of for the group (0: none), or undefined when the group is not hosted: the API's per-request lookup. */
  groupLeader(groupId: GroupId): NodeId | undefined {
    return this.groups.get(groupId)?.raft.knownLeader();
  }

  /** One group's status (O(1), not O(groups)); builds the whole status, so not for every request. */
  groupStatus(groupId: GroupId): HostedGroupStatus | undefined {
    const group = this.groups.get(groupId);
    return group === undefined ? undefined : hostedGroupStatus(group);
  }

  status(): HostedGroupStatus[] {
    return [...this.groups.values()].map(hostedGroupStatus);
  }

  /**
   * The group's model as a snapshot envelope captured now, between entries, at its applied index
   * (a backup's part, src/api/backup-routes.ts); undefined when the group is not hosted. Drain the
   * slices soon: a restore meanwhile ends them early, and the envelope then fails its checksum.
   */
  backupSnapshot(groupId: GroupId): SnapshotSlices | undefined {
    const group = this.groups.get(groupId);
    if (group === undefined) return undefined;
    const frame = {
      group: group.id,
      index: group.appliedIndex,
      term: group.appliedTerm as Term,
      confState: group.raft.currentConfState(),
    };
    return modelCall(group.id, 'snapshot', () => group.stack.capture([frame]));
  }

  /** The error that stopped the host (a storage failure is fatal), if any. */
  failure(): Error | undefined {
    return this.fatal;
  }

  // ---------------------------------------------------------------------------------------------
  // The turn loop

  private scheduleTurn(): void {
    if (this.turnScheduled || this.turnRunning || this.fatal !== undefined) return;
    this.turnScheduled = true;
    this.clock.defer(() => {
      this.turnScheduled = false;
      void this.runTurns();
    });
  }

  private async runTurns(): Promise<void> {
    if (this.turnRunning) return this.turnsDone;
    this.turnRunning = true;
    let finished = (): void => {};
    this.turnsDone = new Promise((resolve) => {
      finished = resolve;
    });
    try {
      // A fatal error met outside the loop (in receive()) ends it too.
      while (this.fatal === undefined) {
        const startedMs = this.clock.nowMs();
        if (!(await this.turn())) break;
        this.options.observeTurn?.((this.clock.nowMs() - startedMs) / 1000);
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.turnRunning = false;
      finished();
    }
  }

  /** One turn over every group; returns whether there was anything to do. */
  private async turn(): Promise<boolean> {
    if (!this.stopped)
      for (const group of this.groups.values()) {
        this.proposeQueued(group);
        this.readQueued(group);
      }
    const readies = this.takeReadies();
    const flushCommits = this.commitFlushDue;
    if (readies.length === 0 && !flushCommits) return false;
    this.commitFlushDue = false;
    const writes = this.turnWrites(readies, flushCommits);
    // With nothing to write, what waits for the write may go at once, in the same frame per peer:
    // one socket write per peer instead of two (on loopback the sender's write does the
    // receiver's TCP work too, and was the biggest item in a leader's profile).
    this.sendGrouped(
      readies.flatMap(({ group, ready, earlySent }) =>
        [...(earlySent === true ? [] : ready.messages), ...(writes.length > 0 ? [] : ready.messagesAfterPersist)].map(
          (message) => ({ group: group.id, message }),
        ),
      ),
    );
    const writing =
      writes.length > 0
        ? this.options.storage.write(writes, { sync: readies.some(({ ready }) => ready.mustSync) })
        : undefined;
    // Committed entries are durable on a quorum already, so they are applied (and their callers
    // answered) while this node's own write is in flight, as etcd's server does: a write's answer
    // then waits for one fsync, not for the next batch's too. A Ready with a snapshot is applied
    // after the write (the model is restored from what is stored).
    for (const { group, ready, confState } of readies)
      if (ready.snapshot === undefined) this.apply(group, ready, confState);
    if (writing !== undefined) {
      await this.awaitWrite(writing);
      this.sendGrouped(
        readies.flatMap(({ group, ready }) =>
          ready.messagesAfterPersist.map((message) => ({ group: group.id, message })),
        ),
      );
    }
    for (const { group, ready, confState } of readies) {
      if (ready.snapshot !== undefined) this.apply(group, ready, confState);
      group.raft.advance(ready);
    }
    this.answerConfChanges();
    this.storeSnapshots();
    return true;
  }

  /**
   * Takes the Ready of every group that has one. The configuration at each Ready's applied index
   * is read now: after the write's await the core may have moved on (an installed snapshot), and
   * a model snapshot must carry its own.
   */
  private takeReadies(): TurnReady[] {
    const readies: TurnReady[] = [];
    for (const group of this.groups.values()) {
      if (group.installing !== undefined) {
        // Held until its snapshot is staged; no new Ready before this one is advanced.
        if (!group.installing.staged) continue;
        readies.push(group.installing.turn);
        group.installing = undefined;
        continue;
      }
      if (!group.raft.hasReady()) continue;
      const ready = group.raft.ready();
      this.noteLeadership(group, ready);
      const turn = { group, ready, confState: group.raft.currentConfState() };
      if (ready.snapshot !== undefined && this.options.storage.stageSnapshot !== undefined)
        this.stageSnapshot(turn, ready.snapshot);
      else readies.push(turn);
    }
    return readies;
  }

  /**
   * A Ready that installs a snapshot from the leader: its early messages go now, its snapshot's
   * bytes to the store (stageSnapshot, not awaited), and the rest waits for a turn after that,
   * so a large snapshot holds up only its own group (docs/ARCHITECTURE.md, "Snapshots").
   */
  private stageSnapshot(turn: TurnReady, snapshot: Snapshot): void {
    const { group, ready } = turn;
    const installing = { turn: { ...turn, earlySent: true }, staged: false };
    group.installing = installing;
    this.sendGrouped(ready.messages.map((message) => ({ group: group.id, message })));
    const staging = (this.options.storage.stageSnapshot?.(group.id, snapshot) ?? Promise.resolve())
      .then(
        () => {
          installing.staged = true;
          this.scheduleTurn();
        },
        (error: unknown) => {
          this.fail(error);
        },
      )
      .finally(() => this.compactions.delete(staging));
    this.compactions.add(staging);
  }

  /** What the turn's one storage batch holds: every Ready's snapshot, entries and hard state, and the due commit flush. */
  private turnWrites(readies: readonly TurnReady[], flushCommits: boolean): GroupWrite[] {
    const writes: GroupWrite[] = [];
    for (const { group, ready } of readies) {
      if (
        ready.snapshot === undefined &&
        ready.entries.length === 0 &&
        !ready.mustSync &&
        ready.hardState !== undefined
      ) {
        // Only the commit index changed. Raft never needs it durable (a restart replays up to the
        // last one saved and learns the rest from the leader), and writing it on every commit put
        // a storage write between each commit and its answer: keep it for the group's next write
        // or the periodic flush.
        group.unsavedHardState = ready.hardState;
        continue;
      }
      const hardState = ready.hardState ?? group.unsavedHardState;
      group.unsavedHardState = undefined;
      if (ready.snapshot !== undefined || ready.entries.length > 0 || hardState !== undefined) {
        writes.push({
          group: group.id,
          ...(ready.snapshot === undefined ? {} : { snapshot: ready.snapshot }),
          entries: ready.entries,
          ...(hardState === undefined ? {} : { hardState }),
        });
      }
    }
    if (flushCommits) {
      for (const group of this.groups.values()) {
        if (group.unsavedHardState === undefined) continue;
        writes.push({ group: group.id, entries: [], hardState: group.unsavedHardState });
        group.unsavedHardState = undefined;
      }
    }
    return writes;
  }

  /** Waits for the turn's storage write; meanwhile arriving commits are applied at once (applyEarly). */
  private async awaitWrite(writing: Promise<void>): Promise<void> {
    this.writeInFlight = true;
    try {
      await writing;
    } finally {
      this.writeInFlight = false;
    }
  }

  /**
   * Hands the captured snapshots whose slices are all taken to the store, without waiting. Called
   * after the turn's write: a snapshot's index is applied, and on a follower that applied entries
   * early it may be among that very write's entries. A tail of snapshotTailEntries stays behind
   * each snapshot, for followers a little behind.
   */
  private storeSnapshots(): void {
    const tail = this.options.raft.snapshotTailEntries ?? raftConfigDefaults.snapshotTailEntries;
    for (const group of this.groups.values()) {
      const capture = group.snapshotInFlight;
      if (capture?.done !== true || capture.storing) continue;
      // Stale (a snapshot was restored since) or superseded (a newer one is stored): dropped.
      const storedIndex = this.options.storage.group(group.id).snapshot().meta.index;
      if (
        capture.generation !== group.stack.restoreGeneration ||
        storedIndex > capture.index ||
        (storedIndex === capture.index && !group.replaceStoredSnapshot)
      ) {
        group.snapshotInFlight = undefined;
        continue;
      }
      capture.storing = true;
      const logFrom = Math.max(1, capture.index + 1 - tail) as LogIndex;
      const compaction = this.options.storage
        .compact(group.id, capture.index, capture.confState, capture.taken, logFrom, group.replaceStoredSnapshot)
        .then(
          () => {
            if (group.snapshotInFlight === capture) group.snapshotInFlight = undefined;
            group.replaceStoredSnapshot = false;
          },
          (error: unknown) => {
            this.fail(error);
          },
        )
        .finally(() => this.compactions.delete(compaction));
      this.compactions.add(compaction);
    }
  }

  /** Captures the group's model now (between entries, at its applied index) and starts draining the slices. */
  private startSnapshot(group: HostedGroup, confState: ConfState): void {
    if (group.snapshotInFlight !== undefined) return;
    const frame = {
      group: group.id,
      index: group.appliedIndex,
      term: group.appliedTerm as Term,
      confState,
    };
    const slices = modelCall(group.id, 'snapshot', () => group.stack.capture([frame]));
    const capture: SnapshotInFlight = {
      index: frame.index,
      confState,
      generation: group.stack.restoreGeneration,
      slices,
      taken: [],
      done: false,
      storing: false,
    };
    group.snapshotInFlight = capture;
    this.clock.defer(() => {
      this.drainSnapshot(group, capture);
    });
  }

  /** Takes one slice of a capture, then yields to turns and I/O until the next. */
  private drainSnapshot(group: HostedGroup, capture: SnapshotInFlight): void {
    if (group.snapshotInFlight !== capture || this.fatal !== undefined) return;
    if (this.stopped) {
      capture.slices.return?.();
      group.snapshotInFlight = undefined;
      return;
    }
    let next;
    try {
      next = modelCall(group.id, 'snapshot', () => capture.slices.next());
    } catch (error) {
      this.fail(error);
      return;
    }
    if (next.done === true) {
      capture.done = true;
      this.scheduleTurn();
      return;
    }
    capture.taken.push(next.value);
    this.clock.defer(() => {
      this.drainSnapshot(group, capture);
    });
  }

  /** Records a change of the group's leader, and whether a transfer started it (see LeaderChange). */
  private noteLeadership(group: HostedGroup, ready: Ready): void {
    for (const event of ready.events) {
      if (event.kind === 'transfer_campaign') group.transferCampaign = { candidate: event.candidate, term: event.term };
      else if (event.kind === 'transfer_handed_off')
        group.transferCampaign = { candidate: event.target, term: event.term };
    }
    const leader = ready.softState?.leader ?? 0;
    if (leader === 0 || leader === group.knownLeader) return;
    const term = group.raft.status().term;
    const campaign = group.transferCampaign;
    const cause = campaign?.candidate === leader && campaign.term === term ? 'transfer' : 'automatic';
    const from = group.knownLeader;
    group.lastLeaderChange = { atMs: Date.now(), from, to: leader, term, cause };
    group.knownLeader = leader;
    if (leader === this.options.nodeId && cause === 'automatic' && from !== 0) group.failoversWon++;
  }

  /**
   * Storage errors, assertions and model errors are fatal: stop rather than run on a log or a
   * state we can no longer trust, and answer every waiting caller at once (not at its deadline).
   */
  private fail(error: unknown): void {
    this.fatal ??= error instanceof Error ? error : new Error(String(error));
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearTimer(this.ticker);
    this.settleWaiting();
  }

  private proposeQueued(group: HostedGroup): void {
    this.resendKeyed(group);
    if (group.queued.length === 0) return;
    const all = group.queued.splice(0, group.queued.length);
    this.queuedCount -= all.length;
    const batch = all.filter((queued) => queued.key === undefined);
    const keyed = all.filter((queued) => queued.key !== undefined);
    if (keyed.length > 0) this.proposeKeyed(group, keyed);
    if (batch.length === 0) return;
    const result = group.raft.proposeBatch(batch.map((queued) => queued.data));
    if (result.kind !== 'accepted') {
      for (const queued of batch) queued.resolve({ kind: 'refused', reason: result });
      return;
    }
    const first = result.index - batch.length + 1;
    batch.forEach((queued, k) => {
      this.trackPending(group, first + k, result.term, queued.resolve);
    });
  }

  /** Hands new keyed proposals to the leader (this node, or through the core to another). */
  private proposeKeyed(group: HostedGroup, batch: readonly QueuedProposal[]): void {
    const result = group.raft.proposeOrForward(batch.map((queued) => queued.data));
    if (result.kind !== 'accepted' && result.kind !== 'forwarded') {
      // Definitely not applied: no leader known, or the core refused the batch.
      for (const queued of batch) queued.resolve({ kind: 'refused', reason: result });
      return;
    }
    const sentTo = result.kind === 'forwarded' ? result.leader : this.options.nodeId;
    // With older ones waiting, resendKeyed decides when the group's target moves (it may have
    // failed to send them to this leader).
    if (group.keyed.size === 0) {
      group.keyedLeader = sentTo;
      group.keyedTerm = result.term;
    }
    for (const { key, data, resolve } of batch) {
      assert(key !== undefined, 'host: an unkeyed proposal among keyed ones');
      const proposal: KeyedProposal = {
        key,
        data,
        resolve,
        sentTo,
        sentTerm: result.term,
        timer: this.clock.setTimer(() => {
          const waiting = group.keyed.get(key);
          const at = waiting?.indexOf(proposal) ?? -1;
          if (waiting === undefined || at < 0) return;
          waiting.splice(at, 1);
          if (waiting.length === 0) group.keyed.delete(key);
          resolve({ kind: 'indeterminate' });
        }, this.options.requestTimeoutMs),
      };
      const waiting = group.keyed.get(key);
      if (waiting === undefined) group.keyed.set(key, [proposal]);
      else waiting.push(proposal);
    }
  }

  /**
   * Sends every keyed proposal not yet applied again when the leader (or its term) is not the
   * one they were last handed to, or the connection to it was lost: a leader change may have
   * dropped them (a deposed leader's uncommitted entries, a Propose to a leader that stepped
   * down). A copy that was not lost is applied as a no-op (the model's session has its stamp).
   */
  private resendKeyed(group: HostedGroup): void {
    if (group.keyed.size === 0) return;
    const leader = group.raft.knownLeader();
    const term = group.raft.currentTerm();
    if (leader === 0 || (leader === group.keyedLeader && term === group.keyedTerm)) return;
    const again: KeyedProposal[] = [];
    for (const waiting of group.keyed.values())
      for (const proposal of waiting)
        if (group.keyedLeader === 0 || proposal.sentTo !== leader || proposal.sentTerm !== term) {
          again.push(proposal);
          break; // one copy per key is enough
        }
    const result = again.length === 0 ? undefined : group.raft.proposeOrForward(again.map(({ data }) => data));
    // Refused (a transfer under way, over the uncommitted limit): they wait for the next change or their deadline.
    if (result !== undefined && result.kind !== 'accepted' && result.kind !== 'forwarded') return;
    const sentTo = result?.kind === 'forwarded' ? result.leader : leader;
    for (const waiting of group.keyed.values())
      for (const proposal of waiting) {
        proposal.sentTo = sentTo;
        proposal.sentTerm = term;
      }
    group.keyedLeader = sentTo;
    group.keyedTerm = term;
  }

  /** Waits for the entry proposed at (index, term): answered when applied, or indeterminate at the deadline. */
  private trackPending(
    group: HostedGroup,
    index: number,
    term: number,
    resolve: (outcome: ProposalOutcome) => void,
  ): void {
    // The core appends above its commit index, which is at or above what this host applied.
    assert(
      index > group.appliedIndex,
      `host: group ${group.id} proposal at ${index}, already applied to ${group.appliedIndex}`,
    );
    // A caller still waiting at this index proposed it in an earlier term, and the entry there is
    // gone from this leader's log (a leader never overwrites its own): it was never committed.
    const superseded = group.pending.get(index);
    if (superseded !== undefined) {
      assert(superseded.term < term, `host: group ${group.id} two proposals at ${index} in term ${term}`);
      this.settle(group, index, superseded, { kind: 'refused', reason: { kind: 'superseded' } });
    }
    const pending: PendingProposal = {
      term,
      resolve,
      timer: this.clock.setTimer(() => {
        // Only this caller's own entry: the index may since hold a later term's proposal.
        if (group.pending.get(index) === pending) this.settle(group, index, pending, { kind: 'indeterminate' });
      }, this.options.requestTimeoutMs),
    };
    group.pending.set(index, pending);
  }

  /**
   * Restores a Ready's snapshot (once stored), applies its committed entries, answers their
   * callers and its reads; the model snapshot the core asked for is captured before the entries
   * are applied (at the index it asked for) and drained and stored later (startSnapshot).
   */
  private apply(group: HostedGroup, ready: Ready, confState: ConfState): void {
    const snapshot = ready.snapshot;
    if (snapshot !== undefined) {
      modelCall(group.id, 'restore', () => {
        group.stack.restore(snapshot.data, { group: group.id, ...snapshot.meta });
      });
      group.appliedIndex = snapshot.meta.index;
      group.appliedTerm = snapshot.meta.term;
      for (const [index, pending] of group.pending)
        if (index <= group.appliedIndex) this.settle(group, index, pending, { kind: 'indeterminate' });
    }
    if (ready.snapshotRequest !== undefined && ready.snapshotRequest === group.appliedIndex)
      this.startSnapshot(group, confState);
    this.applyEntries(group, ready.committedEntries);
    for (const event of ready.events) {
      if (event.kind === 'conf_applied') this.options.onConfApplied?.(group.id, event.confState);
      else if (event.kind === 'snapshot_installed')
        this.options.onConfApplied?.(group.id, ready.snapshot?.meta.confState ?? confState);
      else if (event.kind === 'snapshot_refused') this.options.onSnapshotRefused?.(group.id, event.reason);
    }
    for (const readState of ready.readStates) {
      const read = group.reads.get(readState.requestId);
      if (read === undefined) continue;
      assert(read.index === 0, `host: group ${group.id} read ${readState.requestId} given a read index twice`);
      read.index = readState.index;
    }
    for (const failure of ready.readFailures) {
      const read = group.reads.get(failure.requestId);
      if (read !== undefined)
        this.finishRead(group, failure.requestId, read, {
          kind: 'refused',
          reason: failure.reason,
          leaderHint: group.raft.knownLeader(),
        });
    }
    this.serveReads(group);
  }

  /** Applies committed entries to the model and answers the proposals among them. */
  private applyEntries(group: HostedGroup, entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index <= group.appliedIndex) continue;
      // Applied in order without a gap: every index a proposal waits at is visited, so none is
      // left pending at or below the applied index (a snapshot restore settles those it skips).
      assert(
        entry.index === group.appliedIndex + 1,
        `host: group ${group.id} applies ${entry.index} after ${group.appliedIndex}`,
      );
      const result =
        entry.kind === 'normal'
          ? modelCall(group.id, `applyEntry ${entry.index}`, () => group.stack.applyEntry(entry.index, entry.data))
          : undefined;
      group.appliedIndex = entry.index;
      group.appliedTerm = entry.term;
      if (group.keyed.size > 0 && entry.kind === 'normal') {
        const key = group.stack.model.requestKey?.(entry.data);
        if (key !== undefined && group.keyed.has(key))
          this.settleKeyed(group, key, { kind: 'applied', index: entry.index, result });
      }
      const pending = group.pending.get(entry.index);
      if (pending === undefined) continue;
      if (entry.kind === 'conf') {
        // Answered once the core has taken the change (after this turn's write): the caller
        // then finds the new configuration in status(), as its answer says.
        this.confAnswers.push({ group, index: entry.index, term: entry.term, pending });
        continue;
      }
      this.settle(
        group,
        entry.index,
        pending,
        entry.term === pending.term
          ? { kind: 'applied', index: entry.index, result }
          : { kind: 'refused', reason: { kind: 'superseded' } },
      );
    }
  }

  /** Answers the membership changes applied in this turn, now that the core has taken them. */
  private answerConfChanges(): void {
    const answers = this.confAnswers;
    this.confAnswers = [];
    for (const { group, index, term, pending } of answers) {
      // Settled meanwhile (timed out, or the host stopped): nothing to answer.
      if (group.pending.get(index) !== pending) continue;
      this.settle(
        group,
        index,
        pending,
        term === pending.term
          ? { kind: 'applied', index: index as LogIndex, result: undefined }
          : { kind: 'refused', reason: { kind: 'superseded' } },
      );
    }
  }

  /** Answers the reads whose read index is applied. */
  private serveReads(group: HostedGroup): void {
    for (const [requestId, read] of group.reads) {
      if (read.index > 0 && read.index <= group.appliedIndex)
        this.finishRead(group, requestId, read, { kind: 'ready', index: read.index });
    }
  }

  /**
   * While the turn's write is in flight, what a peer's message committed is applied and answered
   * at once (RaftNode.takeCommittedEntries): a leader's answer then waits for its followers'
   * fsyncs only, not also for the rest of its own.
   */
  private applyEarly(group: HostedGroup): void {
    const entries = group.raft.takeCommittedEntries();
    if (entries.length === 0) return;
    this.applyEntries(group, entries);
    group.raft.appliedEarly(entries);
    this.serveReads(group);
  }

  private settle(group: HostedGroup, index: number, pending: PendingProposal, outcome: ProposalOutcome): void {
    // Settled at most once, and only the caller registered at that index.
    assert(group.pending.get(index) === pending, `host: group ${group.id} proposal at ${index} settled twice`);
    this.clock.clearTimer(pending.timer);
    group.pending.delete(index);
    pending.resolve(outcome);
  }

  /** Answers every caller waiting on `key` (the first applied entry with it decides; a later copy is a no-op). */
  private settleKeyed(group: HostedGroup, key: string, outcome: ProposalOutcome): void {
    const waiting = group.keyed.get(key);
    if (waiting === undefined) return;
    group.keyed.delete(key);
    for (const proposal of waiting) {
      this.clock.clearTimer(proposal.timer);
      proposal.resolve(outcome);
    }
  }

  private finishRead(group: HostedGroup, requestId: number, read: WaitingRead, outcome: ReadOutcome): void {
    assert(group.reads.get(requestId) === read, `host: group ${group.id} read ${requestId} answered twice`);
    this.clock.clearTimer(read.timer);
    group.reads.delete(requestId);
    // A forwarded read the leader never answered stops counting against the core's readQueueMax.
    if (outcome.kind === 'refused') group.raft.cancelRead(requestId);
    for (const resolve of read.resolves) resolve(outcome);
  }

  /** One transport call (one frame) per peer for everything of this turn's stage. */
  private sendGrouped(messages: readonly GroupMessage[]): void {
    if (messages.length === 0) return;
    const perPeer = new Map<NodeId, GroupMessage[]>();
    for (const item of messages) {
      let list = perPeer.get(item.message.to);
      if (list === undefined) perPeer.set(item.message.to, (list = []));
      list.push(item);
    }
    for (const [peer, batch] of perPeer) {
      this.options.transport.send(peer, batch);
      this.sentSincePing.add(peer);
    }
  }
}

function hostedGroupStatus(group: HostedGroup): HostedGroupStatus {
  return {
    group: group.id,
    status: group.raft.status(),
    appliedIndex: group.appliedIndex,
    appliedTerm: group.appliedTerm,
    confIndex: group.raft.currentConfIndex(),
    lastLeaderChange: group.lastLeaderChange,
    failoversWon: group.failoversWon,
  };
}

/** A replicated model threw: a bug in the model, not in Raft or storage, and the fatal error says so. */
export class ModelError extends Error {
  override readonly name = 'ModelError';
}

/**
 * Loads the group's stored snapshot into `stack`, or says how else the state comes:
 *  - `restored`: the snapshot checked out and is loaded (or there is none);
 *  - `rebuilt`: it failed its checks (`damage` from the store, a bad envelope) or was written by
 *    a newer version of the model, and the log reaches back to the group's first entry (a group
 *    smaller than snapshotTailEntries keeps it): its entries up to the snapshot's index were
 *    applied instead, and the host replaces the stored snapshot with one of its own;
 *  - `await`: it is corrupt and the log is compacted: the state comes from the leader
 *    (RaftNode.awaitSnapshot), the model stays empty meanwhile.
 * A newer version's snapshot with a compacted log stands refused (SnapshotRefusedError naming the
 * group and index): the leader's snapshot would be of that version too. `refusal` is the message
 * to report when the snapshot was not loaded. The snapshot's bytes are never used when refused.
 */
function loadStoredSnapshot(
  group: GroupId,
  stack: ModelStack,
  storage: LogStorage,
  damage: string | undefined,
): { readonly outcome: 'restored' | 'rebuilt' | 'await'; readonly refusal?: string } {
  const { meta, data } = storage.snapshot();
  let refusal: SnapshotRefusedError;
  try {
    if (damage !== undefined)
      throw new SnapshotRefusedError(`group ${group}: the snapshot at index ${meta.index} is refused: ${damage}`);
    stack.restore(data, { group, ...meta });
    return { outcome: 'restored' };
  } catch (error) {
    if (!(error instanceof SnapshotRefusedError)) throw error;
    refusal = error;
  }
  if (storage.firstIndex() <= 1) {
    for (const entry of storage.entries(1 as LogIndex, (meta.index + 1) as LogIndex, Infinity))
      if (entry.kind === 'normal')
        modelCall(group, `applyEntry ${entry.index}`, () => stack.applyEntry(entry.index, entry.data));
    return { outcome: 'rebuilt', refusal: `${refusal.message}; the state is rebuilt from the log` };
  }
  const compacted = `the log before index ${storage.firstIndex()} is compacted, so it cannot be rebuilt from the log`;
  if (refusal.unreadable) throw new SnapshotRefusedError(`${refusal.message}; ${compacted} either`, true);
  return { outcome: 'await', refusal: `${refusal.message}; ${compacted}: the state is fetched from the leader` };
}

/**
 * The check a follower makes of a snapshot received from its leader before installing it, the
 * same restore() makes (ModelStack.check), so nothing is stored that this model cannot load: a
 * corrupt one, another model's, one of a newer model version (a leader upgraded before this
 * node), or empty bytes (only a store's damaged snapshot has those). A refused one is dropped
 * and fetched again from the start (RaftConfig.snapshotCheck).
 */
function checkSnapshot(group: GroupId, stack: ModelStack, snapshot: Snapshot): string | undefined {
  const where = `group ${group}: the snapshot at index ${snapshot.meta.index} received from the leader`;
  if (snapshot.data.length === 0) return `${where} is refused: it is empty`;
  try {
    stack.check(snapshot.data, { group, ...snapshot.meta });
    return undefined;
  } catch (error) {
    if (!(error instanceof SnapshotRefusedError)) throw error;
    return `${where} is refused: ${error.reason}`;
  }
}

function modelCall<T>(group: GroupId, what: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw new ModelError(
      `the model of group ${group} threw in ${what}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
