// The control plane in the host simulator: on every node, group 0 with the production meta model
// (src/models/meta.ts) and the production meta controller (src/control/controller.ts: the meta
// group's membership, the group records and the action executor), polled on the node's simulated
// clock; and clients that schedule test actions (test.loop, test.success, test.fail, some with a
// short timeout) through any node while the faults run. Nodes 1-3 bootstrap group 0 with the kv
// groups; nodes 4 and 5 host it empty and the meta leader's controller adds them once they are in
// the kv groups, as in a real cluster. Every entry a replica applies is checked
// (./control-invariants.ts), and so is the clients' history at the end.
//
// A schedule call goes to a node of the client's choosing; the node proposes it when it leads
// group 0 (the simulator has no HTTP forwarding), a refusal names the leader to try next, and a
// call whose outcome is unknown is retried with the same id, as the agent API's clients do: the
// model accepts an id once, so a retry never schedules twice.
//
// Called by: test/sim/host-simulator.ts (scenarios with `controlPlane`).

import type { LogIndex, NodeId } from '../../src/base/ids.ts';
import type { Rng } from '../../src/base/rng.ts';
import { decodeMetaCommand, encodeMetaCommand, type ActionRequest, type MetaCommand } from '../../src/codec/meta.ts';
import { testFailKind, testLoopKind, testSuccessKind } from '../../src/control/action-kinds.ts';
import { MetaController } from '../../src/control/controller.ts';
import { MetaModel, metaGroupId, type MetaOutcome } from '../../src/models/meta.ts';
import type { MultiRaftHost } from '../../src/multiraft/host.ts';
import type { HostClock, ReplicatedModel } from '../../src/multiraft/ports.ts';
import { uuidOf } from '../../jepsen-like/harness/actions-workload.ts';
import { ControlChecker, type ScheduleCall } from './control-invariants.ts';
import { registryRecord, simReplicationFactor, type SimPlacement } from './host-placement.ts';
import type { EventQueue, SimProcess } from '../support/sim-time.ts';

export { metaGroupId };

/** The controller's poll on virtual time (production: 200 ms; the simulated runs last about 2 s). */
const controllerPollMs = 15;
/** A client gives up on a schedule call this long after invoking it (its outcome is then unknown). */
const scheduleGiveUpMs = 400;
const scheduleAttemptsMax = 8;
/** The simulated wall clock's epoch, for the times written into action records. */
const wallEpochMs = 1_780_000_000_000;

/** The meta model with every applied entry reported to the checkers. */
class RecordingMetaModel implements ReplicatedModel {
  readonly type = 'meta';
  readonly version = 1;
  readonly meta = new MetaModel();
  private lastIndex = 0;
  /** The index of the last entry the model applied since it was created or restored (0: none yet). */
  get appliedIndex(): number {
    return this.lastIndex;
  }
  private readonly node: NodeId;
  private readonly checker: ControlChecker;
  private readonly onApplied: (index: LogIndex, data: Uint8Array) => void;

  constructor(node: NodeId, checker: ControlChecker, onApplied: (index: LogIndex, data: Uint8Array) => void) {
    this.node = node;
    this.checker = checker;
    this.onApplied = onApplied;
  }

  applyEntry(index: LogIndex, data: Uint8Array): unknown {
    if (index <= this.lastIndex) throw new Error(`meta model applied ${index} after ${this.lastIndex}`);
    this.lastIndex = index;
    this.onApplied(index, data);
    let command: MetaCommand | undefined;
    try {
      command = data.length === 0 ? undefined : decodeMetaCommand(data);
    } catch {
      command = undefined;
    }
    const before = command?.type === 'action.update' ? this.meta.action(command.id) : undefined;
    const outcome = this.meta.applyEntry(index, data);
    if (command !== undefined) this.checker.onApplied(this.node, index, command, before, outcome, this.meta);
    return outcome;
  }

  snapshot(): Uint8Array {
    return this.meta.snapshot();
  }

  restore(data: Uint8Array): void {
    this.lastIndex = 0;
    this.meta.restore(data);
    this.checker.checkState(this.meta, `node ${this.node} after a snapshot restore`);
  }
}

/** What the control plane needs of a live node. */
export interface LiveNode {
  readonly host: MultiRaftHost;
  readonly process: SimProcess;
}

export interface ControlStats {
  actionsScheduled: number;
  actionsAcknowledged: number;
  /** The most finished actions any live replica held at the end. */
  actionsFinished: number;
  loopStepsApplied: number;
  /** Kills of group 0's leader, and of those the ones with an action RUNNING (the next leader resumes it). */
  metaLeaderKills: number;
  metaLeaderKillsWhileRunning: number;
}

export class SimControlPlane {
  readonly checker = new ControlChecker();
  private readonly queue: EventQueue;
  private readonly rng: Rng;
  private readonly ids: readonly NodeId[];
  private readonly live: (node: NodeId) => LiveNode | undefined;
  private readonly models = new Map<NodeId, RecordingMetaModel>();
  private readonly controllers = new Map<NodeId, MetaController>();
  private readonly leaderGuess: { node: NodeId | 0 } = { node: 0 };
  /** Placement runs too (./host-placement.ts): the kv replication factor, registrations and records through the meta leader. */
  private readonly placement: SimPlacement | undefined;
  private metaLeaderKills = 0;
  private metaLeaderKillsWhileRunning = 0;

  constructor(
    queue: EventQueue,
    rng: Rng,
    ids: readonly NodeId[],
    live: (node: NodeId) => LiveNode | undefined,
    placement?: SimPlacement,
  ) {
    this.queue = queue;
    this.rng = rng;
    this.ids = ids;
    this.live = live;
    this.placement = placement;
  }

  /** The meta model of the node's current life. */
  metaModel(node: NodeId): MetaModel | undefined {
    return this.models.get(node)?.meta;
  }

  /** Gives a node's new life group 0 (a fresh model) and its controller; call before host.start(). */
  attach(
    node: NodeId,
    host: MultiRaftHost,
    clock: HostClock,
    rate: number,
    onApplied: (index: LogIndex, data: Uint8Array) => void,
  ): void {
    const model = new RecordingMetaModel(node, this.checker, onApplied);
    this.models.set(node, model);
    host.addGroup(metaGroupId, model);
    const unavailable = () => Promise.resolve({ ok: false as const, final: true, message: 'not in the simulator' });
    const placement = this.placement;
    const controller = new MetaController({
      nodeId: node,
      host,
      model: model.meta,
      clock,
      wallNowMs: () => this.wallMs(rate),
      effects: { transferLeadership: unavailable, removeFromKvGroups: unavailable },
      pollMs: controllerPollMs,
      // With placement, as in production: a kv replication factor, and each node registers itself
      // and records the groups it leads through the meta leader.
      ...(placement === undefined
        ? {}
        : {
            initialKvFactor: simReplicationFactor,
            selfRecord: registryRecord(node),
            proposeAnywhere: (command: MetaCommand) => placement.proposeAnywhere(node, command),
          }),
    });
    this.controllers.set(node, controller);
    controller.start();
    placement?.attach(node, host, clock, model.meta, () => this.wallMs(rate));
  }

  /** A node's wall clock in whole milliseconds (the meta codec's times), running at the node's rate. */
  private wallMs(rate: number): number {
    return Math.floor(wallEpochMs + this.queue.now * rate);
  }

  /** The node's process died (`leading`: it led group 0): its controller stops (its timers died with it anyway). */
  detach(node: NodeId, leading: boolean): void {
    if (leading) {
      this.metaLeaderKills++;
      if (this.models.get(node)?.meta.queue()[0]?.state.phase === 'RUNNING') this.metaLeaderKillsWhileRunning++;
    }
    this.controllers.get(node)?.stop();
    this.controllers.delete(node);
    this.models.delete(node);
    this.placement?.detach(node);
  }

  /** Clients schedule actions from now until `untilMs()`, one call every 10-90 ms. */
  startClients(untilMs: () => number): void {
    const step = (): void => {
      if (this.queue.now > untilMs() - scheduleGiveUpMs) return;
      this.scheduleCall();
      this.queue.schedule(this.queue.now + 10 + this.rng.int(80), step);
    };
    this.queue.schedule(this.queue.now + this.rng.int(50), step);
  }

  private scheduleCall(): void {
    const rng = this.rng;
    const roll = rng.int(10);
    const kind = roll < 7 ? testLoopKind : roll < 9 ? testSuccessKind : testFailKind;
    const request: ActionRequest = {
      id: uuidOf(rng),
      kind,
      args: kind === testLoopKind ? { target: 1 + rng.int(4) } : null,
      metadata: {},
      createdMs: this.wallMs(1),
      node: 1 as NodeId,
      // Some time out while they run: the queue moves on, FAILED with the reason.
      timeoutMs: rng.chance(0.15) ? 20 + rng.int(100) : 60_000,
    };
    const call: ScheduleCall = { id: request.id, call: this.queue.now, ret: Infinity, status: 'info' };
    this.checker.calls.push(call);
    let finished = false;
    let attempts = 0;
    /** Attempts proposed whose outcome is not a refusal (yet): the action may be scheduled. */
    let unknown = 0;
    const finish = (status: ScheduleCall['status']): void => {
      if (finished) return;
      finished = true;
      call.status = status;
      if (status !== 'info') call.ret = this.queue.now;
    };
    const attempt = (target: NodeId): void => {
      if (finished || attempts >= scheduleAttemptsMax) return;
      attempts++;
      const node = this.live(target);
      if (node === undefined) {
        this.queue.schedule(this.queue.now + 20, () => {
          attempt(this.pickNode());
        });
        return;
      }
      node.process.schedule(
        this.queue.now + 0.1,
        () => {
          if (finished || this.live(target)?.process !== node.process) return;
          unknown++;
          const command = encodeMetaCommand({ type: 'action.schedule', action: request, atMs: this.wallMs(1) });
          void node.host.propose(metaGroupId, command).then((outcome) => {
            if (outcome.kind === 'applied') {
              const result = outcome.result as MetaOutcome;
              this.leaderGuess.node = target;
              // `exists` for our own id: an earlier attempt of this call scheduled it.
              if (result.ok || (result.code === 'exists' && result.sameRequest && attempts > 1)) finish('ok');
              else finish(unknown > 1 ? 'info' : 'fail');
              return;
            }
            if (outcome.kind === 'refused') {
              unknown--;
              const hint = outcome.reason.kind === 'not_leader' ? outcome.reason.leaderHint : 0;
              this.leaderGuess.node = hint;
              this.queue.schedule(this.queue.now + (hint === 0 ? 20 : 1), () => {
                attempt(hint === 0 ? this.pickNode() : hint);
              });
              return;
            }
            this.queue.schedule(this.queue.now + 20, () => {
              attempt(this.pickNode());
            });
          });
        },
        'actions',
      );
    };
    this.queue.schedule(this.queue.now + scheduleGiveUpMs, () => {
      finish(unknown > 0 ? 'info' : 'fail');
    });
    attempt(this.pickNode());
  }

  private pickNode(): NodeId {
    const guess = this.leaderGuess.node;
    return guess !== 0 && this.rng.chance(0.8) ? guess : (this.ids[this.rng.int(this.ids.length)] as NodeId);
  }

  /** The end-of-run checks; answers the figures. */
  finish(appliedOf: (node: NodeId) => number): ControlStats {
    let mostApplied: { applied: number; model: MetaModel } | undefined;
    for (const [node, model] of this.models) {
      // The model's own index when it applied an entry since its last restore: the core's applied
      // index can trail what the host already handed the model (seed 57 with placement ended there).
      const applied = Math.max(model.appliedIndex, appliedOf(node));
      if (mostApplied === undefined || applied > mostApplied.applied) mostApplied = { applied, model: model.meta };
    }
    this.checker.checkEnd(mostApplied?.model);
    return {
      actionsScheduled: this.checker.scheduled,
      actionsAcknowledged: this.checker.calls.filter((call) => call.status === 'ok').length,
      actionsFinished: Math.max(0, ...[...this.models.values()].map((model) => model.meta.finishedActions().length)),
      loopStepsApplied: this.checker.loopStepsApplied,
      metaLeaderKills: this.metaLeaderKills,
      metaLeaderKillsWhileRunning: this.metaLeaderKillsWhileRunning,
    };
  }
}
