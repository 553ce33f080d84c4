// The seeded whole-cluster simulator: 3 or 5 Raft nodes in one process, a simulated network that
// drops, duplicates, delays and reorders messages and makes symmetric and one-way partitions,
// crashes that lose whatever was not persisted, and a client issuing proposals, linearizable reads,
// membership changes, leadership transfers and snapshots while the faults go on. Everything comes
// from one seed, so `runSeed(seed)` replays a run exactly. After every tick the checker
// (./invariants.ts) verifies Raft's safety properties; after the faults heal, liveness is checked.

import { asNodeId, type LogIndex, type NodeId } from '../../src/base/ids.ts';
import { createRng, type Rng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { ConfChange, Message, Ready } from '../../src/raft/types.ts';
import { MemoryNode, type ModelSnapshot } from '../support/memory-node.ts';
import { ClusterChecker, SimulationFailure } from './invariants.ts';

export interface FaultMix {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly delayTicksMax: number;
  readonly partitions: boolean;
  readonly oneWay: boolean;
  readonly crashes: boolean;
}

export interface Scenario {
  readonly seed: number;
  readonly nodeCount: number;
  readonly leaseReads: boolean;
  readonly faults: FaultMix;
  readonly faultTicks: number;
  readonly healTicksMax: number;
  /** The core asks for a snapshot every this many applied entries (0: only the client's random compactions). */
  readonly snapshotIntervalEntries: number;
  /** Committed bytes handed out per Ready (1: one entry per Ready). */
  readonly committedBytesMax: number;
  /**
   * Idle groups go quiet after this many ticks (0: never). With it, the client pauses now and
   * then so groups do go quiet, and nodes ping each other every tick (over the same faulty
   * links) so a quiet follower whose leader went silent is woken, as the host does.
   */
  readonly quiesceAfterTicks: number;
  /**
   * The host's connection-loss hint (RaftNode.leaderUnreachable): nodes hear at once when a node
   * crashes, and now and then about a live one (a connection that broke and came back).
   */
  readonly peerLossHints: boolean;
}

export interface SeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly tick: number;
  readonly stats: SimulationStats;
}

export interface SimulationStats {
  proposals: number;
  acknowledged: number;
  reads: number;
  readsServed: number;
  confChanges: number;
  transfers: number;
  snapshots: number;
  crashes: number;
  messages: number;
  leaderChanges: number;
  /** Quiet followers woken because their leader's node went silent. */
  wakes: number;
  /** Ticks at which some node was quiet. */
  quietTicks: number;
  /** Connection-loss hints delivered. */
  hints: number;
  /** Committed entries applied while their node's Ready was still being written (takeCommittedEntries). */
  earlyApplied: number;
}

interface InFlight {
  readonly deliverAt: number;
  readonly order: number;
  readonly message: Message;
}

interface PendingProposal {
  readonly node: NodeId;
  readonly index: LogIndex;
  readonly payload: string;
}

interface PendingRead {
  readonly node: NodeId;
  readonly requestId: number;
  readonly ackedIndexAtStart: number;
}

const electionTimeoutTicks = 10;
const traceFrom = Number(process.env['SIM_TRACE_FROM'] ?? Infinity);

/** Derives the whole scenario from the seed (sizes, config, fault mix). */
export function scenarioFor(seed: number): Scenario {
  const rng = createRng(seed ^ 0x5eed);
  const nodeCount = rng.chance(0.5) ? 3 : 5;
  const faults: FaultMix = {
    dropProbability: rng.chance(0.6) ? rng.next() * 0.2 : 0,
    duplicateProbability: rng.chance(0.4) ? rng.next() * 0.1 : 0,
    delayTicksMax: rng.chance(0.5) ? 1 + rng.int(4) : 1,
    partitions: rng.chance(0.6),
    oneWay: rng.chance(0.3),
    crashes: rng.chance(0.6),
  };
  const snapshotIntervalEntries = rng.chance(0.5) ? 10 + rng.int(40) : 0;
  // A small apply budget spreads a restarted node's replay over many Readies (a slow host).
  const committedBytesMax = rng.chance(0.3) ? 1 : 4 << 20;
  // From a generator of its own, so the scenarios of seeds without quiescence stay as they were.
  const quiesceRng = createRng(seed ^ 0x9e5ce);
  const quiesceAfterTicks = quiesceRng.chance(0.5) ? 1 + quiesceRng.int(6) : 0;
  const peerLossHints = createRng(seed ^ 0x10557).chance(0.5);
  return {
    seed,
    nodeCount,
    leaseReads: rng.chance(0.4),
    faults,
    faultTicks: 300 + rng.int(300),
    healTicksMax: 40 * electionTimeoutTicks,
    snapshotIntervalEntries,
    committedBytesMax,
    quiesceAfterTicks,
    peerLossHints,
  };
}

export function runSeed(seed: number): SeedResult {
  const simulation = new Simulation(scenarioFor(seed));
  return simulation.run();
}

class Simulation {
  private readonly rng: Rng;
  private readonly ids: NodeId[];
  private readonly nodes = new Map<NodeId, MemoryNode>();
  private readonly down = new Map<NodeId, number>(); // node -> tick it restarts
  /** A Ready whose writes are in flight on a node, completing at a tick. */
  /** Readies whose writes are in flight, with the model snapshot their node was asked for (stored after the write). */
  private readonly writing = new Map<
    NodeId,
    { ready: Ready; completeAt: number; requested: ModelSnapshot | undefined }
  >();
  private inFlight: InFlight[] = [];
  private order = 0;
  private tickNow = 0;
  /** Cut links: "from>to". */
  private readonly cut = new Set<string>();
  private readonly checker: ClusterChecker;
  private readonly pendingProposals = new Map<string, PendingProposal>();
  private readonly pendingReads = new Map<number, PendingRead>();
  private ackedIndexMax = 0;
  private healed = false;
  private isolateLater: { node: NodeId; at: number } | undefined = undefined;
  private nextRequestId = 1;
  private nextPayload = 1;
  /** Quiescence scenarios: the tick each node last heard from each other node ("to<from"). */
  private readonly lastHeard = new Map<string, number>();
  /** Quiescence scenarios: the client is idle until this tick. */
  private pausedUntil = 0;
  /** Connection-loss hints to deliver: at a tick, to a node, about a node. */
  private hints: { at: number; to: NodeId; lost: NodeId }[] = [];
  /** Its own generator, so scenarios without hints replay as before. */
  private readonly hintRng: Rng;
  private readonly stats: SimulationStats = {
    proposals: 0,
    acknowledged: 0,
    reads: 0,
    readsServed: 0,
    confChanges: 0,
    transfers: 0,
    snapshots: 0,
    crashes: 0,
    messages: 0,
    leaderChanges: 0,
    wakes: 0,
    quietTicks: 0,
    hints: 0,
    earlyApplied: 0,
  };
  private readonly scenario: Scenario;

  constructor(scenario: Scenario) {
    this.scenario = scenario;
    this.rng = createRng(scenario.seed);
    this.hintRng = createRng(scenario.seed ^ 0x4711);
    this.ids = Array.from({ length: scenario.nodeCount }, (_, i) => asNodeId(i + 1));
    const confState = confStateOf(this.ids);
    for (const id of this.ids) {
      this.nodes.set(id, new MemoryNode(id, confState, this.rng.fork(), this.nodeOptions()));
    }
    this.checker = new ClusterChecker(this.nodes);
  }

  private nodeOptions() {
    return {
      electionTimeoutTicks,
      heartbeatTicks: 1,
      leaseReads: this.scenario.leaseReads,
      leaseTicks: electionTimeoutTicks - 2,
      messageBytesMax: 256,
      inflightMessagesMax: 4,
      snapshotChunkBytesMax: 64,
      snapshotChunksInflightMax: 2,
      readQueueMax: 64,
      snapshotIntervalEntries: this.scenario.snapshotIntervalEntries,
      committedBytesMax: this.scenario.committedBytesMax,
      quiesceAfterTicks: this.scenario.quiesceAfterTicks,
    } as const;
  }

  run(): SeedResult {
    try {
      for (; this.tickNow < this.scenario.faultTicks; this.tickNow++) {
        this.injectFaults();
        this.clientActions();
        this.step();
      }
      this.heal();
      this.checkLiveness();
      return { seed: this.scenario.seed, ok: true, tick: this.tickNow, stats: this.stats };
    } catch (error) {
      const message =
        error instanceof SimulationFailure || error instanceof Error
          ? `${error.name}: ${error.message}`
          : String(error);
      return { seed: this.scenario.seed, ok: false, error: message, tick: this.tickNow, stats: this.stats };
    }
  }

  // ---------------------------------------------------------------------------------------------
  // One tick: every live node ticks, due messages are delivered, every Ready is handled.

  private step(): void {
    if (this.scenario.peerLossHints) this.deliverHints();
    for (const [id, node] of this.nodes) if (!this.down.has(id)) node.raft.tick();
    if (this.scenario.quiesceAfterTicks > 0) this.pingAndWake();
    const due = this.inFlight
      .filter((item) => item.deliverAt <= this.tickNow)
      .sort((a, b) => a.deliverAt - b.deliverAt || a.order - b.order);
    this.inFlight = this.inFlight.filter((item) => item.deliverAt > this.tickNow);
    for (const item of due) {
      const target = this.nodes.get(item.message.to);
      if (target === undefined || this.down.has(item.message.to)) continue;
      const confBefore = target.raft.currentConfState();
      this.lastHeard.set(`${item.message.to}<${item.message.from}`, this.tickNow);
      target.raft.step(item.message);
      this.checker.afterInput(item.message.to, confBefore);
      if (this.writing.has(item.message.to) && this.rng.chance(0.5)) this.applyEarly(item.message.to, target);
      this.handleReadies();
    }
    this.handleReadies();
    this.checker.afterStep();
    if ([...this.nodes.values()].some((node) => node.raft.quiesced())) this.stats.quietTicks++;
  }

  /**
   * What the host does for quiet groups: every node pings every other one each tick (a ping is
   * lost like any message), and a quiet follower that has not heard from its leader's node for
   * an election timeout is woken, so it can elect a new leader.
   */
  private pingAndWake(): void {
    for (const from of this.ids) {
      if (this.down.has(from)) continue;
      for (const to of this.ids) {
        if (
          to === from ||
          this.down.has(to) ||
          this.cut.has(`${from}>${to}`) ||
          this.rng.chance(this.scenario.faults.dropProbability)
        )
          continue;
        this.lastHeard.set(`${to}<${from}`, this.tickNow);
      }
    }
    for (const [id, node] of this.nodes) {
      if (this.down.has(id) || !node.raft.quiesced()) continue;
      const { role, leader } = node.raft.status();
      if (role === 'leader') continue;
      if (this.tickNow - (this.lastHeard.get(`${id}<${leader}`) ?? -Infinity) > electionTimeoutTicks) {
        this.trace(`node ${id} wakes: leader ${leader} silent`);
        node.raft.wake();
        this.stats.wakes++;
      }
    }
  }

  /** Connection-loss hints due now, and now and then a spurious one about a live node. */
  private deliverHints(): void {
    if (this.healed) return; // faults are over; hints due from crashes were delivered before heal()
    if (this.hintRng.chance(0.01))
      this.hints.push({ at: this.tickNow, to: this.pick(this.ids), lost: this.pick(this.ids) });
    if (this.hintRng.chance(0.005)) {
      // A live leader's link goes down: its connections break (every other node hears of it) and
      // it stays cut off for a while. The dangerous case for leases: it may still serve reads.
      const leader = this.ids.find((id) => !this.down.has(id) && this.nodes.get(id)?.raft.status().role === 'leader');
      if (leader !== undefined) {
        for (const other of this.ids) {
          if (other === leader) continue;
          this.hints.push({ at: this.tickNow, to: other, lost: leader });
          this.cut.add(`${leader}>${other}`).add(`${other}>${leader}`);
        }
      }
    }
    const due = this.hints.filter((hint) => hint.at <= this.tickNow);
    this.hints = this.hints.filter((hint) => hint.at > this.tickNow);
    for (const hint of due) {
      if (this.down.has(hint.to) || hint.to === hint.lost) continue;
      this.trace(`node ${hint.to} lost its connection to ${hint.lost}`);
      this.nodes.get(hint.to)?.raft.leaderUnreachable(hint.lost);
      this.stats.hints++;
    }
  }

  private handleReadies(): void {
    for (let round = 0; round < 8; round++) {
      let any = false;
      for (const [id, node] of this.nodes) {
        if (this.down.has(id)) continue;
        const writing = this.writing.get(id);
        if (writing !== undefined) {
          if (writing.completeAt > this.tickNow) continue;
          this.writing.delete(id);
          this.completeReady(id, node, writing.ready, writing.requested);
          any = true;
        }
        if (!node.raft.hasReady()) continue;
        any = true;
        this.startReady(id, node);
      }
      if (!any) return;
    }
  }

  /**
   * Takes a Ready and sends the leader's early messages; the write then takes 0-2 ticks, during
   * which the node keeps receiving messages and ticking, as a real host's turn loop does while
   * its fsync is in flight. A crash before it completes loses the write.
   */
  private startReady(id: NodeId, node: MemoryNode): void {
    const ready = node.raft.ready();
    if (ready.softState !== undefined)
      this.trace(
        `node ${id} becomes ${ready.softState.role} (leader ${ready.softState.leader}) term ${node.raft.status().term}`,
      );
    this.checker.onReady(id, ready);
    for (const message of ready.messages) this.send(message);
    // As the multi-Raft host does: committed entries are applied while the write is in flight,
    // unless the Ready restores a snapshot (then the model follows what is stored).
    const requested = ready.snapshot === undefined ? this.applyReady(id, node, ready) : undefined;
    const delay = this.rng.chance(0.2) ? this.rng.int(6) : this.rng.int(2);
    if (delay === 0) this.completeReady(id, node, ready, requested);
    else this.writing.set(id, { ready, completeAt: this.tickNow + delay, requested });
  }

  private completeReady(id: NodeId, node: MemoryNode, ready: Ready, requested: ModelSnapshot | undefined): void {
    node.persist(ready);
    for (const message of ready.messagesAfterPersist) this.send(message);
    // Stored after the write, as the host does: the snapshot's index may be in this Ready's entries.
    node.storeSnapshot(ready.snapshot === undefined ? requested : this.applyReady(id, node, ready));
    const confBefore = node.raft.currentConfState();
    node.raft.advance(ready);
    this.checker.afterInput(id, confBefore);
    this.checker.afterApply(id, { snapshot: undefined, committedEntries: [] });
  }

  private applyReady(id: NodeId, node: MemoryNode, ready: Ready): ModelSnapshot | undefined {
    const requested = node.apply(ready);
    this.checker.afterApply(id, ready);
    this.observeClient(id, ready);
    return requested;
  }

  /** What the host does when a message arrives during its write: apply what became committed. */
  private applyEarly(id: NodeId, node: MemoryNode): void {
    const entries = node.raft.takeCommittedEntries();
    if (entries.length === 0) return;
    node.applyEntries(entries);
    node.raft.appliedEarly(entries);
    this.stats.earlyApplied += entries.length;
    this.checker.afterApply(id, { snapshot: undefined, committedEntries: entries });
    this.observeClient(id, { committedEntries: entries, readStates: [], readFailures: [] });
  }

  private trace(text: string): void {
    if (this.tickNow >= traceFrom) console.log(`[${this.tickNow}] ${text}`);
  }

  private send(message: Message): void {
    this.stats.messages++;
    if (this.tickNow >= traceFrom) {
      const { entries, chunk, ...rest } = message as Message & { entries?: unknown[]; chunk?: Uint8Array };
      this.trace(
        `send ${JSON.stringify({ ...rest, ...(entries ? { entries: entries.length } : {}), ...(chunk ? { chunk: chunk.length } : {}) })}${this.cut.has(`${message.from}>${message.to}`) ? ' CUT' : ''}`,
      );
    }
    const { faults } = this.scenario;
    if (this.cut.has(`${message.from}>${message.to}`)) return;
    if (this.rng.chance(faults.dropProbability)) return;
    const copies = this.rng.chance(faults.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      this.inFlight.push({
        deliverAt: this.tickNow + 1 + this.rng.int(faults.delayTicksMax),
        order: this.order++,
        message,
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  private injectFaults(): void {
    const { faults } = this.scenario;
    for (const [id, restartAt] of this.down) {
      if (restartAt <= this.tickNow) this.restart(id);
    }
    if (this.isolateLater !== undefined && this.isolateLater.at <= this.tickNow) {
      for (const other of this.ids)
        if (other !== this.isolateLater.node)
          this.cut.add(`${this.isolateLater.node}>${other}`).add(`${other}>${this.isolateLater.node}`);
      this.isolateLater = undefined;
    }
    if (faults.partitions && this.rng.chance(0.02)) this.partition();
    if (faults.oneWay && this.rng.chance(0.01)) this.cutOneWay();
    if ((faults.partitions || faults.oneWay) && this.rng.chance(0.03)) this.cut.clear();
    if (faults.crashes && this.rng.chance(0.01)) {
      // A third of the crashes hit a leader: that is where unsynced writes and leases matter.
      // Others hit a node whose write is still in flight, so the unsynced part is lost.
      const leaders = this.ids.filter((id) => this.nodes.get(id)?.raft.status().role === 'leader');
      const writing = [...this.writing.keys()];
      const roll = this.rng.int(3);
      const id =
        roll === 0 && leaders.length > 0
          ? this.pick(leaders)
          : roll === 1 && writing.length > 0
            ? this.pick(writing)
            : this.pick(this.ids);
      if (!this.down.has(id) && this.down.size < Math.floor((this.ids.length - 1) / 2) + 1) this.crash(id);
    }
  }

  private partition(): void {
    this.cut.clear();
    const side = new Set(this.ids.filter(() => this.rng.chance(0.5)));
    for (const a of this.ids) {
      for (const b of this.ids) if (side.has(a) !== side.has(b)) this.cut.add(`${a}>${b}`);
    }
  }

  private cutOneWay(): void {
    const from = this.pick(this.ids);
    const to = this.pick(this.ids);
    if (from !== to) this.cut.add(`${from}>${to}`);
  }

  private crash(id: NodeId): void {
    this.stats.crashes++;
    this.down.set(id, this.tickNow + 1 + this.rng.int(4 * electionTimeoutTicks));
    this.writing.delete(id);
    this.inFlight = this.inFlight.filter((item) => item.message.to !== id);
    for (const [payload, proposal] of this.pendingProposals)
      if (proposal.node === id) this.pendingProposals.delete(payload);
    for (const [requestId, read] of this.pendingReads) if (read.node === id) this.pendingReads.delete(requestId);
    this.checker.onCrash(id);
    if (this.scenario.peerLossHints)
      for (const other of this.ids)
        if (other !== id) this.hints.push({ at: this.tickNow + this.hintRng.int(2), to: other, lost: id });
  }

  private restart(id: NodeId): void {
    this.down.delete(id);
    const node = this.nodes.get(id);
    if (node === undefined) return;
    node.restart(this.rng.fork());
    this.checker.onRestart(id);
  }

  private heal(): void {
    this.healed = true;
    this.cut.clear();
    for (const id of [...this.down.keys()]) this.restart(id);
  }

  // ---------------------------------------------------------------------------------------------
  // Client: proposals, reads, membership changes, transfers, snapshots

  private clientActions(): void {
    if (this.scenario.quiesceAfterTicks > 0) {
      // Lulls long enough for groups to go quiet, and for faults to strike while they are.
      if (this.tickNow < this.pausedUntil) return;
      if (this.rng.chance(0.02)) {
        const leaders = this.ids.filter(
          (id) => !this.down.has(id) && this.nodes.get(id)?.raft.status().role === 'leader',
        );
        if (this.scenario.faults.partitions && leaders.length > 0 && this.rng.chance(0.5)) {
          // The riskiest moment for a lease: cut the leader off once it has gone quiet, and come
          // back while the others elect a new one, so reads may reach the old leader.
          const at = this.tickNow + this.scenario.quiesceAfterTicks + 2 + this.rng.int(3);
          this.isolateLater = { node: this.pick(leaders), at };
          this.pausedUntil = at;
        } else {
          this.pausedUntil = this.tickNow + 5 + this.rng.int(60);
        }
        return;
      }
    }
    const live = this.ids.filter((id) => !this.down.has(id));
    if (live.length === 0) return;
    const node = this.nodes.get(this.pick(live));
    if (node === undefined) return;
    if (this.rng.chance(0.3)) this.propose(node);
    if (this.rng.chance(0.1)) this.read(node);
    if (this.rng.chance(0.01)) this.changeMembership(node);
    if (this.rng.chance(this.scenario.leaseReads ? 0.03 : 0.008)) this.transfer(node);
    // A host snapshots its applied state only when it is stored and the core knows its configuration.
    if (this.rng.chance(0.02) && !this.writing.has(node.id) && node.appliedIndex <= node.storage.lastIndex()) {
      node.compact();
      this.stats.snapshots++;
    }
  }

  private propose(node: MemoryNode): void {
    const payload = `p${this.nextPayload++}`;
    const count = 1 + this.rng.int(3);
    const payloads = Array.from({ length: count }, (_, k) => new TextEncoder().encode(`${payload}.${k}`));
    const result = node.raft.proposeBatch(payloads);
    if (result.kind !== 'accepted') return;
    this.stats.proposals += count;
    // The batch's last entry stands for the whole batch: acknowledged when it is applied.
    this.pendingProposals.set(`${payload}.${count - 1}`, {
      node: node.id,
      index: result.index,
      payload: `${payload}.${count - 1}`,
    });
  }

  private read(node: MemoryNode): void {
    const requestId = this.nextRequestId++;
    const result =
      this.scenario.leaseReads && this.rng.chance(0.5)
        ? node.raft.leaseRead(requestId)
        : node.raft.readIndex(requestId);
    if (result.kind !== 'queued' && result.kind !== 'forwarded') return;
    this.stats.reads++;
    this.pendingReads.set(requestId, { node: node.id, requestId, ackedIndexAtStart: this.ackedIndexMax });
  }

  private changeMembership(node: MemoryNode): void {
    const confState = node.raft.currentConfState();
    const target = this.pick(this.ids);
    const isVoter = confState.voters.includes(target);
    const isLearner = confState.learners.includes(target);
    let change: ConfChange;
    const roll = this.rng.int(4);
    if (roll === 0 && isVoter && confState.voters.length > 3)
      change = { changes: [{ type: 'remove_node', node: target }], transition: 'auto' };
    else if (roll === 1 && !isVoter && !isLearner)
      change = { changes: [{ type: 'add_learner', node: target }], transition: 'auto' };
    else if (roll === 2 && isLearner)
      change = { changes: [{ type: 'add_voter', node: target }], transition: this.rng.chance(0.5) ? 'joint' : 'auto' };
    else if (roll === 3 && isVoter && confState.voters.length > 3) {
      change = { changes: [{ type: 'add_learner', node: target }], transition: 'joint' };
    } else if (!isVoter)
      change = { changes: [{ type: 'add_voter', node: target }], transition: this.rng.chance(0.5) ? 'joint' : 'auto' };
    else return;
    if (node.raft.proposeConfChange(change).kind === 'accepted') this.stats.confChanges++;
  }

  private transfer(node: MemoryNode): void {
    const target = this.pick(this.ids);
    if (node.raft.transferLeadership(target).kind !== 'started') return;
    this.stats.transfers++;
    // Leases are most at risk when the old leader cannot hear that it was replaced: sometimes
    // cut it off right after the transfer starts, once the target has had a tick to catch up.
    if (this.scenario.leaseReads && this.scenario.faults.partitions && this.rng.chance(0.5))
      this.isolateLater = { node: node.id, at: this.tickNow + 1 + this.rng.int(3) };
  }

  /** After a node applied a Ready: acknowledge proposals, serve reads whose index is applied. */
  private observeClient(id: NodeId, ready: Pick<Ready, 'committedEntries' | 'readStates' | 'readFailures'>): void {
    for (const entry of ready.committedEntries) {
      if (entry.kind !== 'normal') continue;
      const payload = new TextDecoder().decode(entry.data);
      const pending = this.pendingProposals.get(payload);
      if (pending?.node !== id) continue;
      this.pendingProposals.delete(payload);
      if (entry.index !== pending.index)
        throw new SimulationFailure(`proposal ${payload} applied at ${entry.index}, proposed at ${pending.index}`);
      this.stats.acknowledged++;
      this.checker.onAcknowledged(entry.index, entry.term, payload);
      if (entry.index > this.ackedIndexMax) this.ackedIndexMax = entry.index;
    }
    for (const readState of ready.readStates) {
      const pending = this.pendingReads.get(readState.requestId);
      if (pending?.node !== id) continue;
      this.pendingReads.delete(readState.requestId);
      // Served once applied >= index; the value is then at least as new as the read index.
      if (readState.index < pending.ackedIndexAtStart) {
        throw new SimulationFailure(
          `stale read ${readState.requestId} on node ${id}: read index ${readState.index} < write ${pending.ackedIndexAtStart} acknowledged before the read began`,
        );
      }
      this.stats.readsServed++;
    }
    for (const failure of ready.readFailures) this.pendingReads.delete(failure.requestId);
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness: with every fault healed, a leader appears and a proposal commits within a bound.

  private checkLiveness(): void {
    const deadline = this.tickNow + this.scenario.healTicksMax;
    let proposed: { node: NodeId; index: LogIndex; payload: string } | undefined;
    for (; this.tickNow < deadline; this.tickNow++) {
      this.step();
      if (proposed === undefined) {
        for (const node of this.nodes.values()) {
          const payload = `heal-${this.tickNow}`;
          const result = node.raft.propose(new TextEncoder().encode(payload));
          if (result.kind === 'accepted') {
            proposed = { node: node.id, index: result.index, payload };
            this.pendingProposals.set(payload, proposed);
            break;
          }
        }
      } else if (!this.pendingProposals.has(proposed.payload)) {
        const voters = this.nodes.get(proposed.node)?.raft.currentConfState().voters ?? [];
        const everyVoterApplied = voters.every(
          (id) => (this.nodes.get(id)?.appliedIndex ?? 0) >= (proposed?.index ?? Infinity),
        );
        if (everyVoterApplied) return;
      } else if (this.nodes.get(proposed.node)?.raft.status().role !== 'leader') {
        this.pendingProposals.delete(proposed.payload);
        proposed = undefined; // lost leadership before committing: try again
      }
    }
    const states = [...this.nodes.values()].map((node) => {
      const status = node.raft.status();
      const progress = status.progress
        .map((p) => `${p.id}:${p.state}/m${p.match}/n${p.next}/if${p.inflightMessages}`)
        .join(' ');
      return `${node.id}:${progress}:${status.role}/t${status.term}/lead${status.leader}/c${status.commit}/a${node.appliedIndex}/last${status.lastIndex}/voters[${status.confState.voters.join(',')}]/out[${status.confState.votersOutgoing.join(',')}]/learners[${status.confState.learners.join(',')}]`;
    });
    throw new SimulationFailure(
      `liveness: no proposal committed on every voter within ${this.scenario.healTicksMax} ticks after healing (${proposed === undefined ? 'no leader took it' : `proposed at ${proposed.index} on ${proposed.node}`}; ${states.join(' ')})`,
    );
  }

  private pick<T>(items: readonly T[]): T {
    const item = items[this.rng.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}
