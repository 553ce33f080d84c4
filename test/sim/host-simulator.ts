// The host simulator: several nodes in one process, each running the production MultiRaftHost
// (src/multiraft/host.ts) with several KV groups (src/models/kv.ts), on virtual time
// (test/support/sim-time.ts), a simulated disk (sim-disk.ts) and a simulated network
// (sim-network.ts). Everything is derived from one seed, so `runHostSeed(seed)` replays a run.
//
// Determinism: the host is asynchronous (it awaits its storage), so the driver runs one event at
// a time and then lets every promise continuation run (drainMicrotasks) before the next; storage
// completions, timers, deferred turns, frame arrivals, client requests and faults are all events
// of the one queue, ordered by (virtual time, sequence number). No real time, I/O or
// Math.random is involved, so one seed gives one trace (`traceHash` in the result).
//
// A run: nodes 1..3 bootstrap every group; nodes 4 (and 5) host every group with empty storage
// and join through membership changes (learner, then promotion), and may be removed again and
// re-added later. Simulated clients write, read linearizably and (when the scenario enables it)
// read from the lease through the host, recording a history. During the fault phase: process
// kills (the host's memory is lost, commit-only hard states included, and what was in flight on
// the disk may or may not have reached the OS), power losses (also what was written but not
// synced), failing disk writes (the host stops; the node restarts later), pauses of one process
// (nothing of it runs, its clock keeps counting; others run on), partitions (both directions or
// one), connection resets, membership changes and leadership transfers. The nodes' clocks drift
// within `clockDriftMax` (the bound the lease assumes, see docs/testing.md). Then everything
// heals and, at the end, every group must have a leader. After every event the node it ran in is
// checked (./host-invariants.ts); at the end the clients' history is checked for linearizability.
// With `controlPlane` every node also hosts group 0 with the meta model and runs the meta
// controller, and clients schedule agent actions (./host-control.ts, checked by
// ./control-invariants.ts); the seed's other draws are the same with or without it.
// With `placement` (./host-placement.ts) a node hosts only the kv groups placed on it: at a start,
// the groups its disk holds (nodes 4 and 5 join with none), then the production hosting loop
// (src/node/group-hosting.ts, on the node's clock) starts a group a move or record places on it
// (empty, caught up by its leader) and stops it, deleting its data, once its removal is applied.
// Checked besides: a deletion only once the group's committed configuration leaves the node out
// (storageOf), a stopped group leaves nothing on the host or the disk (hostingChanged), and what
// a removed replica and a leader may send for the group (transportOf).
// With `writesToAnyNode` (HostRunOptions) clients send writes to any node, stamped with a client
// id and seq, so followers forward them to the leader inside Raft; a stamped write applied at two
// indexes (a forwarded copy applied twice) fails the run.

import { asGroupId, asNodeId, type GroupId, type LogIndex, type NodeId } from '../../src/base/ids.ts';
import { createRng, type Rng } from '../../src/base/rng.ts';
import { encodeKvCommand, kvRequestKey, type KvClientStamp } from '../../src/codec/kv.ts';
import { KvModel, type KvOutcome } from '../../src/models/kv.ts';
import { MultiRaftHost } from '../../src/multiraft/host.ts';
import type { GroupMessage, HostStorage, HostTransport, ReplicatedModel } from '../../src/multiraft/ports.ts';
import { confStateOf, isJoint, members } from '../../src/raft/confchange.ts';
import { GroupHosting } from '../../src/node/group-hosting.ts';
import type { RaftNode } from '../../src/raft/raft.ts';
import type { ConfChange } from '../../src/raft/types.ts';
import { SimDisk } from '../support/sim-disk.ts';
import { SimNetwork } from '../support/sim-network.ts';
import { drainMicrotasks, EventQueue, SimClock, SimProcess } from '../support/sim-time.ts';
import { HostChecker, SimulationFailure } from './host-invariants.ts';
import { metaGroupId, SimControlPlane, type ControlStats } from './host-control.ts';
import type { PlacementPlanner } from './placement-mutants.ts';
import { noPlacementStats, placementSettleMsMax, SimPlacement, type PlacementStats } from './host-placement.ts';

/**
 * How far a node's clock rate may differ from real time. The lease assumes a leader's clock is not
 * slower, relative to a follower's, than leaseTicks / electionTimeoutTicks allows: with a lease of
 * electionTimeoutTicks - heartbeatTicks ticks, (1 + d) / (1 - d) < electionTimeoutTicks / leaseTicks.
 * 1% is well inside that for every scenario here (10 ticks, lease 8 or 9).
 */
export const clockDriftMax = 0.01;
const tickMs = 10;
const electionTimeoutTicks = 10;
/** Every group must have had a leader within this long before the end of the run. */
const livenessWindowMs = 500;
/** Linearizability search steps per seed before the verdict is "unknown" (counted, not a failure). */
const historyStepsMax = 2_000_000;
/** With placement: each node's hosting loop polls this often (production: 500 ms; a simulated run lasts seconds). */
const hostingPollMs = 25;

export interface HostScenario {
  readonly seed: number;
  /** Group 0 with the meta model and the action executor on every node, and clients scheduling actions (./host-control.ts). */
  readonly controlPlane: boolean;
  /** The placement controller does the membership changes (./host-placement.ts); implies controlPlane. */
  readonly placement: boolean;
  readonly nodeCount: number;
  readonly groupCount: number;
  /** Groups 1..busyGroupCount get the clients' operations; the others only membership changes. */
  readonly busyGroupCount: number;
  /** A node's synced write takes [diskSyncMs, 2·diskSyncMs) (each node draws its own below this). */
  readonly diskSyncMsMax: number;
  readonly clientCount: number;
  readonly leaseReads: boolean;
  readonly heartbeatTicks: number;
  readonly snapshotIntervalEntries: number;
  /** Committed bytes per Ready (1: one entry a Ready, a slow replay after a restart). */
  readonly committedBytesMax: number;
  readonly quiesceAfterTicks: number;
  readonly commitFlushMs: number;
  readonly faultMs: number;
  readonly healMs: number;
  readonly faults: {
    readonly kills: boolean;
    readonly powerLoss: boolean;
    readonly diskFailures: boolean;
    readonly pauses: boolean;
    readonly partitions: boolean;
    readonly resetProbability: number;
    readonly membership: boolean;
    readonly transfers: boolean;
    /** Mean time between two faults. */
    readonly intervalMs: number;
  };
}

/**
 * `controlPlane` adds the control plane to the seed's scenario, `placement` the placement
 * controller (and the control plane) in place of the random membership changes; every other draw
 * stays the same.
 */
export function hostScenarioFor(seed: number, controlPlane = false, placement = false): HostScenario {
  const rng = createRng(seed ^ 0x40570);
  const leaseReads = rng.chance(0.5);
  const groupCount = 2 + rng.int(2);
  const scenario = {
    seed,
    controlPlane: controlPlane || placement,
    placement,
    nodeCount: rng.chance(0.5) ? 4 : 5,
    groupCount,
    busyGroupCount: rng.chance(0.5) ? 1 : groupCount,
    diskSyncMsMax: rng.chance(0.5) ? 2 : 10,
    clientCount: 2 + rng.int(3),
    leaseReads,
    heartbeatTicks: 1 + rng.int(2),
    snapshotIntervalEntries: rng.chance(0.6) ? 3 + rng.int(15) : 0,
    committedBytesMax: rng.chance(0.4) ? 1 : 4 << 20,
    quiesceAfterTicks: rng.chance(0.3) ? 5 + rng.int(10) : 0,
    commitFlushMs: rng.chance(0.5) ? 1000 : 100 + rng.int(400),
    faultMs: 1000 + rng.int(800),
    healMs: 800,
    faults: {
      kills: rng.chance(0.7),
      powerLoss: rng.chance(0.4),
      diskFailures: rng.chance(0.3),
      pauses: rng.chance(leaseReads ? 0.7 : 0.4),
      partitions: rng.chance(0.5),
      resetProbability: rng.chance(0.3) ? rng.next() * 0.02 : 0,
      membership: rng.chance(0.7),
      transfers: rng.chance(0.3),
      intervalMs: 80 + rng.int(200),
    },
  };
  return placement ? { ...scenario, faults: { ...scenario.faults, membership: false } } : scenario;
}

/** Choices of a run that are not drawn from its seed (the seed's scenario stays as it was). */
export interface HostRunOptions {
  /** Clients send writes to any node (not their leader guess), stamped: followers forward them inside Raft. */
  readonly writesToAnyNode?: boolean;
  /** Every node also hosts group 0 with the meta model and runs the meta controller (./host-control.ts). */
  readonly controlPlane?: boolean;
  /**
   * The placement controller runs on the meta leader (./host-placement.ts) and makes every
   * membership change of the kv groups; nodes 4 and 5 join during the fault phase.
   */
  readonly placement?: boolean;
  /** With placement: the planner the controllers run in place of the production one (a broken one, ./placement-mutants.ts). */
  readonly placementPlanner?: PlacementPlanner;
}

export interface HostStats {
  events: number;
  writes: number;
  writesOk: number;
  reads: number;
  readsOk: number;
  leaseReadsOk: number;
  kills: number;
  powerLosses: number;
  diskFailures: number;
  pauses: number;
  partitions: number;
  confChanges: number;
  confChangesApplied: number;
  /** Committed membership changes (from the replicas' logs): learners added, promotions, removals, re-additions. */
  learnersAdded: number;
  promotions: number;
  removals: number;
  readded: number;
  transfers: number;
  snapshotsInstalled: number;
  /** Node crashes while a compaction was being written (its chunks or the switch). */
  compactionsCutShort: number;
  /** Stored snapshots a restart found damaged (refused; rebuilt from the log or fetched from the leader). */
  snapshotsDamaged: number;
  leaderTerms: number;
  historyUnknown: number;
  /** With the control plane (zero without). */
  actions: ControlStats;
  /** With placement (zero without). */
  placement: PlacementStats;
}

export interface HostSeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly error?: string;
  /** Virtual time of the failure (or the end), ms. */
  readonly atMs: number;
  readonly stats: HostStats;
  /** A hash of every event's time and node: equal for equal runs. */
  readonly traceHash: string;
}

/** The host's groups, for the checker (the host keeps them private; the simulator reads, never writes). */
interface HostInternals {
  readonly groups: ReadonlyMap<GroupId, { readonly raft: RaftNode }>;
}

function hostedGroups(host: MultiRaftHost): ReadonlyMap<GroupId, { readonly raft: RaftNode }> {
  return (host as unknown as HostInternals).groups;
}

/** The KV model with every applied entry reported to the checker. */
class RecordingModel implements ReplicatedModel {
  readonly type = 'kv';
  readonly version = 1;
  readonly kv = new KvModel();
  private lastIndex = 0;
  /** Where each stamped write took effect on this replica (a second index would be a double application). */
  private readonly appliedAt = new Map<string, number>();
  private readonly onApplied: (index: LogIndex, data: Uint8Array) => void;

  constructor(onApplied: (index: LogIndex, data: Uint8Array) => void) {
    this.onApplied = onApplied;
  }

  applyEntry(index: LogIndex, data: Uint8Array): unknown {
    if (index <= this.lastIndex)
      throw new SimulationFailure(`a model applied ${index} after ${this.lastIndex} (not in increasing order)`);
    this.lastIndex = index;
    this.onApplied(index, data);
    const outcome = this.kv.applyEntry(index, data);
    const key = this.kv.requestKey(data);
    if (key !== undefined && outcome?.ok === true && outcome.modifyIndex === index) {
      const first = this.appliedAt.get(key);
      if (first !== undefined && first !== index)
        throw new SimulationFailure(`the stamped write ${key} was applied twice, at ${first} and ${index}`);
      this.appliedAt.set(key, index);
    }
    return outcome;
  }

  requestKey(data: Uint8Array): string | undefined {
    return this.kv.requestKey(data);
  }

  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }

  restore(data: Uint8Array): void {
    this.lastIndex = 0;
    this.kv.restore(data);
  }
}

interface SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  readonly rate: number;
  incarnation: number;
  process: SimProcess | undefined;
  host: MultiRaftHost | undefined;
  readonly models: Map<GroupId, RecordingModel>;
  /** With placement: the production hosting loop of this life (src/node/group-hosting.ts). */
  hosting: GroupHosting | undefined;
  restartScheduled: boolean;
}

/**
 * A client's exactly-once session in one group. The model opens a session only with seq 1, so until
 * a write of it is known applied (`open`) every write is seq 1: again after a definite failure, and
 * in a new session (`epoch`) after an unknown outcome (a late copy of the old seq 1 must not be
 * taken for the new write).
 */
interface ClientSession {
  epoch: number;
  seq: number;
  open: boolean;
}

interface Client {
  readonly id: number;
  process: number;
  seq: number;
  readonly leaderGuess: Map<GroupId, NodeId>;
  /** Sessions of stamped writes, one per group (see stampOf). */
  readonly sessions: Map<GroupId, ClientSession>;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export async function runHostSeed(seed: number, options: HostRunOptions = {}): Promise<HostSeedResult> {
  const simulation = new HostSimulation(
    hostScenarioFor(seed, options.controlPlane === true, options.placement === true),
    options,
  );
  return simulation.run();
}

class HostSimulation {
  private readonly scenario: HostScenario;
  private readonly options: HostRunOptions;
  private readonly queue = new EventQueue();
  private readonly rng: Rng;
  private readonly faultRng: Rng;
  private readonly clientRng: Rng;
  private readonly resumeRng: Rng;
  private readonly ids: NodeId[];
  private readonly groups: GroupId[];
  private readonly keys: { key: string; group: GroupId }[];
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly network: SimNetwork;
  private readonly checker = new HostChecker();
  private readonly clients: Client[] = [];
  private readonly control: SimControlPlane | undefined;
  private readonly placement: SimPlacement | undefined;
  /** The first failure of a check that could not throw (see violated()). */
  private violation: SimulationFailure | undefined;
  /** With placement: when the last fault ends (set by heal()). */
  private faultsEndMs = Infinity;
  private nextProcess = 0;
  private faulting = true;
  /** The run's end: healMs after the last fault has ended (see heal()). */
  private endMs: number;
  private readonly leaderSeenMs = new Map<GroupId, number>();
  /** With placement: per node and kv group, the members of its configuration at its last event, and before (transportOf). */
  private readonly membersSeen = new Map<string, { current: readonly NodeId[]; previous: readonly NodeId[] }>();
  private trace = 0x811c9dc5;
  private readonly stats: HostStats = {
    events: 0,
    writes: 0,
    writesOk: 0,
    reads: 0,
    readsOk: 0,
    leaseReadsOk: 0,
    kills: 0,
    powerLosses: 0,
    diskFailures: 0,
    pauses: 0,
    partitions: 0,
    confChanges: 0,
    confChangesApplied: 0,
    learnersAdded: 0,
    promotions: 0,
    removals: 0,
    readded: 0,
    transfers: 0,
    snapshotsInstalled: 0,
    compactionsCutShort: 0,
    snapshotsDamaged: 0,
    leaderTerms: 0,
    historyUnknown: 0,
    actions: {
      actionsScheduled: 0,
      actionsAcknowledged: 0,
      actionsFinished: 0,
      loopStepsApplied: 0,
      metaLeaderKills: 0,
      metaLeaderKillsWhileRunning: 0,
    },
    placement: noPlacementStats(),
  };

  constructor(scenario: HostScenario, options: HostRunOptions) {
    this.scenario = scenario;
    this.options = options;
    this.rng = createRng(scenario.seed);
    this.faultRng = this.rng.fork();
    this.clientRng = this.rng.fork();
    this.resumeRng = this.rng.fork();
    this.ids = Array.from({ length: scenario.nodeCount }, (_, k) => asNodeId(k + 1));
    this.groups = Array.from({ length: scenario.groupCount }, (_, k) => asGroupId(k + 1));
    // With busyGroupCount < groupCount the other groups see no client writes: their commit indexes
    // then change alone (kept in memory by the host), as on an idle shard being reconfigured.
    this.keys = this.groups
      .slice(0, scenario.busyGroupCount)
      .flatMap((group) => [0, 1].map((k) => ({ key: `g${group}k${k}`, group })));
    this.endMs = scenario.faultMs + scenario.healMs;
    this.network = new SimNetwork(
      this.queue,
      this.rng.fork(),
      {
        latencyMsMin: 0.2,
        latencyMsSpread: 2,
        resetProbability: scenario.faults.resetProbability,
        reconnectMsMin: 5,
        sendQueueFramesMax: 64,
      },
      {
        process: (node) => this.nodes.get(node)?.process,
        deliver: (to, batch, from) => {
          this.deliver(to, batch, from);
        },
        peerLost: (node, peer) => {
          const process = this.nodes.get(node)?.process;
          process?.schedule(this.queue.now, () => this.nodes.get(node)?.host?.peerLost(peer));
        },
      },
    );
    const initial = confStateOf(this.ids.slice(0, 3));
    for (const id of this.ids) {
      const disk = new SimDisk(
        this.rng.fork(),
        { writeMs: 0.05, syncMs: 0.2 + this.rng.next() * scenario.diskSyncMsMax },
        {
          onEntriesWritten: (group, entries) => {
            this.checker.onEntriesWritten(id, group, entries);
          },
        },
      );
      if (id <= 3) for (const group of this.groups) disk.bootstrap(group, initial);
      if (id <= 3 && scenario.controlPlane) disk.bootstrap(metaGroupId, initial);
      const drift = (this.rng.next() * 2 - 1) * clockDriftMax;
      this.nodes.set(id, {
        id,
        disk,
        rate: 1 + drift,
        incarnation: 0,
        process: undefined,
        host: undefined,
        models: new Map(),
        hosting: undefined,
        restartScheduled: false,
      });
    }
    // Forked last, so a scenario without them draws everything else as before.
    const controlRng = scenario.controlPlane ? this.rng.fork() : undefined;
    this.placement = scenario.placement
      ? new SimPlacement(
          this.queue,
          this.rng.fork(),
          {
            running: (id) => {
              const node = this.nodes.get(id);
              if (node?.host === undefined || node.process === undefined) return undefined;
              return node.process.pausedUntil > this.queue.now ? undefined : { host: node.host, process: node.process };
            },
            linked: (a, b) => this.network.linked(a, b),
            metaLeader: () => this.leaderOf(metaGroupId)?.id,
            metaModel: (id) => this.control?.metaModel(id),
            joined: () => [...this.nodes.values()].filter((node) => node.incarnation > 0).map((node) => node.id),
            violated: (message) => {
              this.violated(message);
            },
          },
          options.placementPlanner,
        )
      : undefined;
    this.control =
      controlRng === undefined
        ? undefined
        : new SimControlPlane(
            this.queue,
            controlRng,
            this.ids,
            (id) => {
              const node = this.nodes.get(id);
              return node?.host === undefined || node.process === undefined
                ? undefined
                : { host: node.host, process: node.process };
            },
            this.placement,
          );
  }

  async run(): Promise<HostSeedResult> {
    try {
      for (const node of this.nodes.values()) {
        // With placement, nodes 4 and 5 join during the fault phase (heal() starts one not joined yet).
        if (this.placement === undefined || node.id <= 3) this.start(node);
        else this.scheduleRestart(node, 50 + this.faultRng.int(this.scenario.faultMs));
      }
      for (let k = 0; k < this.scenario.clientCount; k++) {
        const client: Client = {
          id: k,
          process: this.nextProcess++,
          seq: 0,
          leaderGuess: new Map(),
          sessions: new Map(),
        };
        this.clients.push(client);
        this.queue.schedule(this.clientRng.next() * 50, () => {
          this.clientStep(client);
        });
      }
      this.scheduleFault();
      this.scheduleAdmin();
      this.control?.startClients(() => this.endMs);
      this.placement?.startOperator(() => this.endMs);
      this.queue.schedule(this.scenario.faultMs, () => {
        this.heal();
      });
      await this.loop();
      this.checkLiveness();
      this.checkPlacementSettled();
      if (this.control !== undefined)
        this.stats.actions = this.control.finish(
          (id) => (this.nodes.get(id)?.host === undefined ? 0 : this.raftOf(id, metaGroupId)?.status().applied) ?? 0,
        );
      const verdict = this.checker.checkHistory(historyStepsMax);
      if (verdict.verdict === 'unknown') this.stats.historyUnknown++;
      if (verdict.verdict === 'invalid') throw new SimulationFailure(verdict.message ?? 'linearizability');
      return this.result(undefined);
    } catch (error) {
      return this.result(error);
    }
  }

  private result(error: unknown): HostSeedResult {
    this.stats.leaderTerms = this.checker.leaderTerms;
    this.stats.snapshotsInstalled = this.checker.snapshotsRestored;
    Object.assign(this.stats, this.checker.membershipCounts());
    if (this.placement !== undefined) this.stats.placement = { ...this.placement.stats };
    const message =
      error === undefined
        ? undefined
        : error instanceof SimulationFailure
          ? error.message
          : `unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : JSON.stringify(error)}`;
    return {
      seed: this.scenario.seed,
      ok: message === undefined,
      ...(message === undefined ? {} : { error: message }),
      atMs: Math.round(this.queue.now * 1000) / 1000,
      stats: { ...this.stats },
      traceHash: (this.trace >>> 0).toString(16),
    };
  }

  /**
   * A check that runs inside a promise chain of the code under test (a port call, the hosting
   * loop's pass) cannot throw to the driver: the code under test would catch it (as a failed
   * call, a failed pass) and go on. It records the failure here; the driver throws it after the
   * event.
   */
  private violated(message: string): void {
    this.violation ??= new SimulationFailure(message);
  }

  private async loop(): Promise<void> {
    for (;;) {
      const event = this.queue.pop();
      if (event === undefined || event.at > this.endMs) return;
      if (event.cancelled) continue;
      const process = event.process;
      if (process !== undefined) {
        if (!process.alive) continue;
        const resumeAtMs = this.resumeTime(process, event.channel);
        if (resumeAtMs > this.queue.now) {
          this.queue.schedule(
            resumeAtMs,
            () => {
              if (!event.cancelled) event.run();
            },
            process,
            event.channel,
          );
          continue;
        }
      }
      this.stats.events++;
      this.trace = Math.imul(this.trace ^ Math.round(event.at * 1000), 16777619);
      this.trace = Math.imul(this.trace ^ (process?.node ?? 0), 16777619);
      event.run();
      await drainMicrotasks();
      if (this.violation !== undefined) throw this.violation;
      if (process !== undefined) this.afterNodeEvent(process);
    }
  }

  /**
   * When an event of the process may run: at once unless the process is paused, or has just
   * resumed and the event's channel still has events from the pause to run first (FIFO per channel).
   */
  private resumeTime(process: SimProcess, channel: string | undefined): number {
    if (process.pausedUntil === 0 || channel === undefined) return process.pausedUntil;
    let offsetMs = process.resumeOffsetMs.get(channel);
    if (offsetMs === undefined) {
      if (process.pausedUntil <= this.queue.now) return 0;
      offsetMs = 0.001 + this.resumeRng.next() * 0.05;
      process.resumeOffsetMs.set(channel, offsetMs);
    }
    return process.pausedUntil + offsetMs;
  }

  private afterNodeEvent(process: SimProcess): void {
    const node = this.nodes.get(process.node) as SimNode;
    const host = node.host;
    if (host === undefined || node.process !== process) return;
    this.checker.afterEvent(node.id, node.incarnation, hostedGroups(host));
    if (this.placement !== undefined) this.noteMembers(node.id, host);
    const failure = host.failure();
    if (failure === undefined) return;
    if (failure.name !== 'SimDiskFailure')
      throw new SimulationFailure(`node ${node.id}: the host stopped: ${failure.stack ?? failure.message}`);
    // A failed disk write stops the host; the process exits and is restarted later.
    this.kill(node, false);
    this.scheduleRestart(node, 50 + this.faultRng.int(300));
  }

  // ---------------------------------------------------------------------------------------------
  // Nodes

  private start(node: SimNode): void {
    if (node.incarnation === 0 && this.placement !== undefined && node.id > 3) this.placement.stats.joins++;
    node.incarnation++;
    node.restartScheduled = false;
    const process = new SimProcess(this.queue, node.id, node.incarnation);
    // Bit rot: some restarts find the node's stored snapshots damaged. Drawn from the seed, not
    // the run's generator, so the rest of a seed's schedule stays what it was.
    const rot =
      node.incarnation > 1 && (this.scenario.seed * 7919 + node.id * 104_729 + node.incarnation * 31) % 7 === 0;
    const damagedBefore = node.disk.stats.snapshotsDamaged;
    const storage = this.storageOf(node, node.disk.open(process, rot));
    this.stats.snapshotsDamaged += node.disk.stats.snapshotsDamaged - damagedBefore;
    const clock = new SimClock(process, node.rate, 1000 * node.id + 7 * node.incarnation);
    const hostRng = createRng((this.scenario.seed * 31 + node.id) * 1009 + node.incarnation);
    const host = new MultiRaftHost({
      nodeId: node.id,
      storage,
      transport: this.transportOf(node.id),
      rng: hostRng,
      clock,
      raft: {
        electionTimeoutTicks,
        heartbeatTicks: this.scenario.heartbeatTicks,
        leaseReads: this.scenario.leaseReads,
        leaseTicks: electionTimeoutTicks - this.scenario.heartbeatTicks,
        snapshotIntervalEntries: this.scenario.snapshotIntervalEntries,
        committedBytesMax: this.scenario.committedBytesMax,
        quiesceAfterTicks: this.scenario.quiesceAfterTicks,
      },
      tickMs,
      pingMs: this.scenario.heartbeatTicks * tickMs,
      peerSilenceMs: electionTimeoutTicks * tickMs,
      proposalQueueMax: 256,
      commitFlushMs: this.scenario.commitFlushMs,
      requestTimeoutMs: 500,
      onConfApplied: () => {
        this.stats.confChangesApplied++;
      },
      // With placement, a message for a group not hosted here runs the hosting loop at once, as in production.
      onUnknownGroup: () => {
        if (node.process === process) node.hosting?.poke();
      },
    });
    node.process = process;
    node.host = host;
    node.models.clear();
    for (const group of this.groups) this.membersSeen.delete(`${node.id}/${group}`);
    // Without placement every node hosts every kv group; with it, what its disk holds (a restart
    // hosts the same groups, as src/node/membership.ts plans it), and the hosting loop does the rest.
    const hosted =
      this.placement === undefined ? this.groups : node.disk.groups().filter((group) => group !== metaGroupId);
    for (const group of hosted) host.addGroup(group, this.recordingModel(node, group));
    this.control?.attach(node.id, host, clock, node.rate, (index, data) => {
      this.checker.onApplied(node.id, metaGroupId, index, data);
    });
    const metaModel = this.control?.metaModel(node.id);
    node.hosting =
      this.placement === undefined || metaModel === undefined
        ? undefined
        : new GroupHosting({
            self: node.id,
            host,
            model: metaModel,
            clock,
            pollMs: hostingPollMs,
            log: () => undefined,
            bootstrap: () => Promise.reject(new Error('the simulator has no database shard groups')),
            createModel: (group) => this.recordingModel(node, group),
            onChange: (group, isHosted) => {
              this.hostingChanged(node, process, group, isHosted);
            },
          });
    host.start();
    node.hosting?.start();
    this.network.nodeUp(node.id, this.ids);
    this.checker.afterEvent(node.id, node.incarnation, hostedGroups(host));
  }

  /** A fresh recording model of a kv group for this life of the node (at its start, or when its hosting loop starts the group). */
  private recordingModel(node: SimNode, group: GroupId): RecordingModel {
    const model = new RecordingModel((index, data) => {
      this.checker.onApplied(node.id, group, index, data);
    });
    node.models.set(group, model);
    return model;
  }

  /**
   * The hosting loop started or stopped a group on the node. After a stop: the host no longer
   * hosts it and the disk holds nothing of it (a restart would not bring it back).
   */
  private hostingChanged(node: SimNode, process: SimProcess, group: GroupId, hosted: boolean): void {
    if (node.process !== process || this.placement === undefined) return;
    if (hosted) {
      this.placement.stats.groupsStarted++;
      return;
    }
    this.placement.stats.groupsStopped++;
    node.models.delete(group);
    this.membersSeen.delete(`${node.id}/${group}`);
    this.checker.groupStopped(node.id, node.incarnation, group);
    if (node.host?.hosts(group) === true || node.disk.holds(group))
      this.violated(
        `hosting: node ${node.id} stopped group ${group} but still ${node.host?.hosts(group) === true ? 'hosts it' : 'holds its data'}`,
      );
  }

  /**
   * The node's storage, with the deletion of a group's data checked (placement): the group's
   * committed configuration (the last configuration entry any replica applied) no longer lists the
   * node, as voter of either half or learner. Deleting before, the node could drop a vote a quorum
   * still counts on, or data the group will ask it for. (An empty replica, holding no entry and no
   * snapshot, holds no data: with placement on, hosting stops one no record or move places here.
   * A learner added back after a committed removal may lose its old replica's data: see below.)
   */
  private storageOf(node: SimNode, storage: HostStorage): HostStorage {
    const deleteGroup = storage.deleteGroup?.bind(storage);
    if (deleteGroup === undefined) return storage;
    return {
      ...storage,
      deleteGroup: (group) => {
        const latest = this.checker.latestConf(group);
        const conf = latest?.confState;
        const voter = conf === undefined || [...conf.voters, ...conf.votersOutgoing].includes(node.id);
        // A learner added back after a committed removal is a new replica, caught up from scratch:
        // its leftover data may go (a move placing it here again can commit before this node's meta
        // replica applies it). A voter's never, nor a learner's that was never removed.
        const listed = voter || (members(conf).includes(node.id) && !this.checker.removedOnce(group, node.id));
        if (node.disk.heldIndex(group) > 0 && listed)
          this.violated(
            `hosting: node ${node.id} deletes group ${group}'s data before its removal is applied: the committed configuration ${latest === undefined ? '(none known)' : `at ${latest.index}: voters [${latest.confState.voters.join(',')}] outgoing [${latest.confState.votersOutgoing.join(',')}] learners [${[...latest.confState.learners, ...latest.confState.learnersNext].join(',')}]`} still lists it`,
          );
        return deleteGroup(group);
      },
    };
  }

  /**
   * The node's transport, with what a removed replica may send checked (placement): a node sends
   * nothing for a group it does not host; a replica that its own configuration leaves out (it
   * applied its removal) sends no vote request, append, heartbeat or snapshot for the group (it
   * neither campaigns nor leads; it may still answer); and a leader sends appends, heartbeats and
   * snapshots only to the members of its configuration (a removed replica stops receiving from
   * the group's leader). "Its configuration": the applied one, or the one before it until the host's
   * turn that applied the change has ended (a Ready's messages were made before the Ready's
   * configuration entry was applied; the host sends some of them after its write).
   */
  private transportOf(id: NodeId): HostTransport {
    const transport = this.network.transport(id);
    if (this.placement === undefined) return transport;
    return {
      send: (peer, batch) => {
        const host = this.nodes.get(id)?.host;
        for (const { group, message } of batch) {
          if (group === metaGroupId || host === undefined) continue;
          const raft = hostedGroups(host).get(group)?.raft;
          if (raft === undefined)
            throw new SimulationFailure(
              `hosting: node ${id} sent ${message.type} for group ${group} to node ${peer} without hosting the group`,
            );
          const applied = members(raft.currentConfState());
          const seen = this.membersSeen.get(`${id}/${group}`);
          const conf = [...new Set([...applied, ...(seen?.current ?? []), ...(seen?.previous ?? [])])];
          const leading =
            message.type === 'AppendEntries' || message.type === 'Heartbeat' || message.type === 'InstallSnapshot';
          if ((leading || message.type === 'RequestVote') && !conf.includes(id))
            throw new SimulationFailure(
              `hosting: node ${id}, removed from group ${group} (applied configuration [${applied.join(',')}]), sent ${message.type} to node ${peer}`,
            );
          if (leading && !conf.includes(peer))
            throw new SimulationFailure(
              `hosting: node ${id}, leading group ${group} with the applied configuration [${applied.join(',')}] (before: [${(seen?.current ?? []).join(',')}], [${(seen?.previous ?? []).join(',')}]), sent ${message.type} to node ${peer}, not a member`,
            );
        }
        transport.send(peer, batch);
      },
    };
  }

  /** With placement, after each event of a node: the members of each of its kv groups' configuration, and the ones before (see transportOf). */
  private noteMembers(node: NodeId, host: MultiRaftHost): void {
    for (const [group, { raft }] of hostedGroups(host)) {
      if (group === metaGroupId) continue;
      const key = `${node}/${group}`;
      const current = members(raft.currentConfState());
      const seen = this.membersSeen.get(key);
      if (seen === undefined) this.membersSeen.set(key, { current, previous: current });
      else if (seen.current.join(',') !== current.join(','))
        this.membersSeen.set(key, { current, previous: seen.current });
      else if (seen.previous !== seen.current && !(host as unknown as { turnRunning: boolean }).turnRunning)
        this.membersSeen.set(key, { current, previous: current });
    }
  }

  private kill(node: SimNode, power: boolean): void {
    const process = node.process;
    if (process === undefined) return;
    const leadingMeta = this.raftOf(node.id, metaGroupId)?.status().role === 'leader';
    process.alive = false;
    node.process = undefined;
    node.host = undefined;
    void node.hosting?.stop();
    node.hosting = undefined;
    this.control?.detach(node.id, leadingMeta);
    const cutShort = node.disk.stats.compactionsCutShort;
    node.disk.crash(power);
    this.stats.compactionsCutShort += node.disk.stats.compactionsCutShort - cutShort;
    this.network.nodeDown(node.id, this.ids);
  }

  private scheduleRestart(node: SimNode, delayMs: number): void {
    if (node.restartScheduled) return;
    node.restartScheduled = true;
    this.queue.schedule(this.queue.now + delayMs, () => {
      if (node.process === undefined) this.start(node);
      node.restartScheduled = false;
    });
  }

  private deliver(to: NodeId, batch: readonly GroupMessage[], from: NodeId): void {
    this.nodes.get(to)?.host?.receive(batch, from);
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  private scheduleFault(): void {
    const delayMs = this.faultRng.next() * 2 * this.scenario.faults.intervalMs;
    this.queue.schedule(this.queue.now + delayMs, () => {
      if (!this.faulting) return;
      this.injectFault();
      this.scheduleFault();
    });
  }

  private injectFault(): void {
    const faults = this.scenario.faults;
    const rng = this.faultRng;
    const node = this.nodes.get(this.ids[rng.int(this.ids.length)] as NodeId) as SimNode;
    const kinds: (() => void)[] = [];
    if (faults.kills)
      kinds.push(() => {
        if (node.process === undefined) return;
        this.stats.kills++;
        this.kill(node, false);
        this.scheduleRestart(node, 10 + rng.int(rng.chance(0.5) ? 100 : 600));
      });
    if (faults.powerLoss)
      kinds.push(() => {
        if (node.process === undefined) return;
        this.stats.powerLosses++;
        this.kill(node, true);
        this.scheduleRestart(node, 10 + rng.int(rng.chance(0.5) ? 100 : 600));
      });
    if (faults.diskFailures)
      kinds.push(() => {
        if (node.process === undefined) return;
        this.stats.diskFailures++;
        node.disk.failNextOperation = true;
      });
    if (faults.pauses)
      kinds.push(() => {
        const process = node.process;
        if (process === undefined || process.pausedUntil > this.queue.now) return;
        this.stats.pauses++;
        process.pause(30 + rng.int(this.scenario.leaseReads ? 800 : 400));
      });
    if (faults.partitions)
      kinds.push(() => {
        this.stats.partitions++;
        this.partition(rng);
      });
    if (kinds.length === 0) return;
    (kinds[rng.int(kinds.length)] as () => void)();
  }

  private partition(rng: Rng): void {
    const shape = rng.int(3);
    const victim = this.ids[rng.int(this.ids.length)] as NodeId;
    const cuts: [NodeId, NodeId][] = [];
    if (shape === 0) {
      // Isolate one node, both directions.
      for (const other of this.ids) if (other !== victim) cuts.push([victim, other], [other, victim]);
    } else if (shape === 1) {
      // Split in two random halves.
      const side = new Set(this.ids.filter(() => rng.chance(0.5)));
      for (const a of this.ids) for (const b of this.ids) if (side.has(a) !== side.has(b)) cuts.push([a, b]);
    } else {
      // One direction of one link.
      const other = this.ids[rng.int(this.ids.length)] as NodeId;
      if (other !== victim) cuts.push([victim, other]);
    }
    for (const [from, to] of cuts) this.network.setCut(from, to, true);
    this.queue.schedule(this.queue.now + 50 + rng.int(700), () => {
      for (const [from, to] of cuts) this.network.setCut(from, to, false);
    });
  }

  private heal(): void {
    this.faulting = false;
    this.sampleLeaders();
    this.network.healAll();
    let lastPauseEndMs = this.queue.now;
    for (const node of this.nodes.values()) {
      node.disk.failNextOperation = false;
      if (node.process === undefined) {
        // Restart it now, even if its kill scheduled a later restart (up to 610 ms away): a node
        // still dead after healing is a fault still in effect. (Seed 65418 failed here before:
        // nodes 2 and 3 of group 3's quorum came back 440 ms after healing.) The kill's own timer
        // later finds the process running and does nothing.
        node.restartScheduled = false;
        this.scheduleRestart(node, 1);
      } else lastPauseEndMs = Math.max(lastPauseEndMs, node.process.pausedUntil);
    }
    // A pause begun in the fault phase may last up to 830 ms past this point (a process is not
    // resumed early: its stalled timers and I/O resume as they would after a real SIGSTOP). Until
    // it ends, that fault is still in effect, and a group whose quorum needs the paused node cannot
    // elect anyone; a resumed follower then also keeps its old leader's check-quorum lease for an
    // election timeout of its own ticks before it grants a (pre-)vote. So the liveness window is
    // measured from the end of the last fault, not from healing: the run ends healMs after the last
    // pause ends. (Seeds 9944 and 61769 failed here before: nodes of a 3-node quorum stayed paused
    // until 565 and 674 ms after healing, leaving 235 and 145 ms for an election.)
    this.endMs = Math.max(this.endMs, lastPauseEndMs + this.scenario.healMs);
    // With placement the run goes on until placement has converged (sampleLeaders() ends it then),
    // at most placementSettleMsMax.
    this.faultsEndMs = lastPauseEndMs;
    if (this.placement !== undefined) this.endMs = Math.max(this.endMs, lastPauseEndMs + placementSettleMsMax);
  }

  /** Why placement has not converged yet, or undefined (./host-placement.ts). */
  private placementUnsettled(): string | undefined {
    const leader = this.leaderOf(metaGroupId);
    return this.placement?.unsettled(
      this.groups,
      leader === undefined ? undefined : this.control?.metaModel(leader.id),
    );
  }

  /** With placement: every group at the replication factor once the faults have stopped. */
  private checkPlacementSettled(): void {
    if (this.placement === undefined) return;
    const unsettled = this.placementUnsettled();
    if (unsettled !== undefined)
      throw new SimulationFailure(
        `placement did not converge within ${placementSettleMsMax} ms after the faults ended: ${unsettled}`,
      );
  }

  /** Membership changes and leadership transfers, proposed on a group's leader. */
  private scheduleAdmin(): void {
    const faults = this.scenario.faults;
    if (!faults.membership && !faults.transfers) return;
    this.queue.schedule(this.queue.now + 20 + this.faultRng.int(150), () => {
      if (!this.faulting) return;
      this.adminStep();
      this.scheduleAdmin();
    });
  }

  private adminStep(): void {
    const rng = this.faultRng;
    const group = this.groups[rng.int(this.groups.length)] as GroupId;
    const leader = this.leaderOf(group);
    if (leader === undefined) return;
    const host = leader.host as MultiRaftHost;
    const raft = hostedGroups(host).get(group)?.raft;
    if (raft === undefined) return;
    const confState = raft.currentConfState();
    if (isJoint(confState)) return;
    if (this.scenario.faults.transfers && (!this.scenario.faults.membership || rng.chance(0.3))) {
      const target = confState.voters[rng.int(confState.voters.length)] as NodeId;
      if (target === leader.id) return;
      this.stats.transfers++;
      leader.process?.schedule(this.queue.now, () => {
        leader.host?.transferLeadership(group, target);
      });
      return;
    }
    const change = this.pickConfChange(rng, confState.voters, confState.learners, leader.id);
    if (change === undefined) return;
    this.stats.confChanges++;
    leader.process?.schedule(this.queue.now, () => {
      void leader.host?.proposeConfChange(group, change);
    });
  }

  private pickConfChange(
    rng: Rng,
    voters: readonly NodeId[],
    learners: readonly NodeId[],
    leader: NodeId,
  ): ConfChange | undefined {
    const outside = this.ids.filter((id) => !voters.includes(id) && !learners.includes(id));
    const options: ConfChange[] = [];
    for (const node of outside) options.push({ changes: [{ type: 'add_learner', node }], transition: 'auto' });
    for (const node of learners) {
      options.push({ changes: [{ type: 'add_voter', node }], transition: 'auto' });
      options.push({ changes: [{ type: 'remove_node', node }], transition: 'auto' });
    }
    if (learners.length >= 2)
      options.push({
        changes: learners.slice(0, 2).map((node) => ({ type: 'add_voter' as const, node })),
        transition: 'auto',
      });
    if (voters.length > 3) {
      for (const node of voters)
        if (node !== leader) options.push({ changes: [{ type: 'remove_node', node }], transition: 'auto' });
      const demote = voters.find((node) => node !== leader);
      if (demote !== undefined) options.push({ changes: [{ type: 'add_learner', node: demote }], transition: 'joint' });
    }
    return options.length === 0 ? undefined : options[rng.int(options.length)];
  }

  private raftOf(id: NodeId, group: GroupId): RaftNode | undefined {
    const host = this.nodes.get(id)?.host;
    return host === undefined ? undefined : hostedGroups(host).get(group)?.raft;
  }

  /** The groups whose liveness is judged: the kv groups, and the meta group when it runs. */
  private judgedGroups(): readonly GroupId[] {
    return this.control === undefined ? this.groups : [metaGroupId, ...this.groups];
  }

  /** The live node leading the group in the highest term, if any. */
  private leaderOf(group: GroupId): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      if (node.host === undefined) continue;
      const raft = hostedGroups(node.host).get(group)?.raft;
      if (raft === undefined || raft.knownLeader() !== node.id) continue;
      const term = raft.status().term;
      if (term > bestTerm) {
        best = node;
        bestTerm = term;
      }
    }
    return best;
  }

  /** Each node's view of the group, for failure reports. */
  private describeGroup(group: GroupId): string {
    return [...this.nodes.values()]
      .map((node) => {
        const raft = node.host === undefined ? undefined : hostedGroups(node.host).get(group)?.raft;
        if (raft === undefined) return `node ${node.id} down`;
        const status = raft.status();
        const conf = status.confState;
        return `node ${node.id} ${status.role} term ${status.term} leader ${status.leader} commit ${status.commit} applied ${status.applied} last ${status.lastIndex} quiet ${status.quiesced} voters [${conf.voters.join(',')}] out [${conf.votersOutgoing.join(',')}] learners [${conf.learners.join(',')}]`;
      })
      .join('; ');
  }

  /** After healing, every 50 ms: which groups have a leader now. */
  private sampleLeaders(): void {
    for (const group of this.judgedGroups())
      if (this.leaderOf(group) !== undefined) this.leaderSeenMs.set(group, this.queue.now);
    // With placement, the run ends once placement has converged and healMs have passed since the last fault.
    if (
      this.placement !== undefined &&
      this.queue.now >= this.faultsEndMs + this.scenario.healMs &&
      this.placementUnsettled() === undefined
    )
      this.endMs = Math.min(this.endMs, this.queue.now);
    this.queue.schedule(this.queue.now + 50, () => {
      this.sampleLeaders();
    });
  }

  /**
   * Every group had a leader in the last livenessWindowMs of the run (an election may be under way
   * at the very end: a quiet group's follower may wake and campaign).
   */
  private checkLiveness(): void {
    for (const group of this.judgedGroups()) {
      const seenMs = this.leaderSeenMs.get(group) ?? -Infinity;
      if (seenMs < this.endMs - livenessWindowMs)
        throw new SimulationFailure(
          `liveness: group ${group} had no leader in the last ${livenessWindowMs} ms (${this.scenario.healMs} ms after the last fault ended); ${this.describeGroup(group)}`,
        );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Clients

  /** The next stamp of the client's session for `group`. */
  private stampOf(client: Client, group: GroupId): KvClientStamp {
    let session = client.sessions.get(group);
    if (session === undefined) client.sessions.set(group, (session = { epoch: 0, seq: 0, open: false }));
    session.seq = session.open ? session.seq + 1 : 1;
    return { id: `sim-client-${client.id}-group-${group}-${session.epoch}`, seq: session.seq };
  }

  /** What a stamped write's outcome tells its session. */
  private stampOutcome(client: Client, group: GroupId, status: 'ok' | 'fail' | 'info'): void {
    const session = client.sessions.get(group);
    if (session === undefined || session.open) return;
    if (status === 'ok') session.open = true;
    else if (status === 'info') session.epoch++;
  }

  private clientStep(client: Client): void {
    if (this.queue.now > this.endMs - 300) return;
    const rng = this.clientRng;
    const { key, group } = this.keys[rng.int(this.keys.length)] as { key: string; group: GroupId };
    const roll = rng.next();
    const kind: 'write' | 'linearizable' | 'lease' =
      roll < 0.5 ? 'write' : this.scenario.leaseReads && roll < 0.8 ? 'lease' : 'linearizable';
    const guess = client.leaderGuess.get(group);
    const anyNode = kind === 'write' && this.options.writesToAnyNode === true;
    const target =
      guess !== undefined && !anyNode && rng.chance(0.9) ? guess : (this.ids[rng.int(this.ids.length)] as NodeId);
    const value = kind === 'write' ? `c${client.id}.${++client.seq}` : null;
    // Drawn now, not when the node runs the request (a paused node may run it after the client
    // gave up and moved its session on).
    const stamp = anyNode ? this.stampOf(client, group) : undefined;
    const op = {
      process: client.process,
      f: kind === 'write' ? ('write' as const) : ('read' as const),
      key,
      input: value,
      output: undefined as string | null | undefined,
      call: this.queue.now,
      ret: Infinity,
      status: 'info' as 'ok' | 'info' | 'fail',
      mode: kind,
      node: target,
    };
    // Recorded at invocation: an operation still pending when the run ends stays unknown (info).
    this.checker.history.push(op);
    let done = false;
    const next = (): void => {
      this.queue.schedule(this.queue.now + 1 + rng.int(30), () => {
        this.clientStep(client);
      });
    };
    const finish = (status: 'ok' | 'fail' | 'info', output?: string | null): void => {
      if (done) return;
      done = true;
      if (anyNode) this.stampOutcome(client, group, status);
      op.status = status;
      op.ret = this.queue.now;
      op.output = output;
      // A process whose operation's outcome is unknown may not issue another (Jepsen's rule).
      if (status === 'info') client.process = this.nextProcess++;
      next();
    };
    const node = this.nodes.get(target) as SimNode;
    const process = node.process;
    if (process === undefined) {
      client.leaderGuess.delete(group);
      finish('fail');
      return;
    }
    if (kind === 'write') this.stats.writes++;
    else this.stats.reads++;
    // Clients give up early (a read then failed; a write's outcome is unknown) and try elsewhere.
    this.queue.schedule(this.queue.now + (kind === 'write' ? 400 : 250), () => {
      client.leaderGuess.delete(group);
      finish(kind === 'write' ? 'info' : 'fail');
    });
    process.schedule(
      this.queue.now + 0.1,
      () => {
        const host = node.host;
        if (host === undefined || node.process !== process) return;
        if (value !== null) {
          const data = encodeKvCommand({
            op: 'put',
            key,
            value: utf8.encode(value),
            ...(stamp === undefined ? {} : { client: stamp }),
          });
          void host.propose(group, data, stamp === undefined ? undefined : kvRequestKey(stamp)).then((outcome) => {
            // A stamped copy the session refused (an older seq arriving late) was not applied.
            if (outcome.kind === 'applied' && (outcome.result as KvOutcome | undefined)?.ok === false) finish('fail');
            else if (outcome.kind === 'applied') {
              this.stats.writesOk++;
              finish('ok');
            } else if (outcome.kind === 'refused') {
              const reason = outcome.reason;
              if (reason.kind === 'not_leader' && reason.leaderHint !== 0)
                client.leaderGuess.set(group, reason.leaderHint);
              else client.leaderGuess.delete(group);
              finish('fail');
            } else finish('info');
          });
          return;
        }
        const mode = kind === 'lease' ? 'lease' : 'linearizable';
        void host.read(group, mode).then((outcome) => {
          if (outcome.kind !== 'ready') {
            if (outcome.leaderHint !== 0) client.leaderGuess.set(group, outcome.leaderHint);
            else client.leaderGuess.delete(group);
            finish('fail');
            return;
          }
          const model = node.models.get(group);
          // The node stopped hosting the group meanwhile (placement), or died.
          if (node.process !== process || model === undefined) {
            finish('fail');
            return;
          }
          const record = model.kv.get(key);
          this.stats.readsOk++;
          if (mode === 'lease') this.stats.leaseReadsOk++;
          client.leaderGuess.set(group, target);
          finish('ok', record === undefined ? null : utf8Decoder.decode(record.value));
        });
      },
      `client${client.id}`,
    );
  }
}
