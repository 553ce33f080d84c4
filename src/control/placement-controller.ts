// The placement controller: the effectful loop that carries out the placement planner's steps
// (docs/placement.md). It runs on every node and acts only while the node leads group 0 and the
// meta model has a kv replication factor; beside the action executor, not in its queue (a move
// takes as long as a learner's catch-up, and the queue must not wait on it).
//
// Every `pollMs` (one round at a time): survey the nodes (registered, or listed by a group record: each live node reports the
// groups it hosts; a node that does not answer is not live, gone since it last answered), build
// the planner's view (placement-view.ts), plan, and carry out every step of the plan in turn:
//  - start_move: record the move in the meta model (before any membership change, so a new meta
//    leader finds it and carries on from the same view);
//  - add_learner / promote / replace / remove: one membership change at the group's leader
//    (`replace` is one joint change: the learner promoted and the old voter removed together);
//  - transfer: a leadership transfer at the group's leader;
//  - finish_move: first the group's record is brought in step with its leader's configuration
//    (so the node added keeps its replica and the node removed drops its own: group-hosting.ts),
//    then the move is finished in the meta model, into the history with its reason;
//  - cancel_move: the move is finished as cancelled, with the planner's reason;
//  - refound: a database shard's group that lost its quorum for good is founded again on the
//    planner's nodes (`group.refound` in the meta model: a new group id for the shard).
// A step that fails is logged and planned again next round (each is idempotent against the
// group's state: the planner sees what is done); a move that makes no progress for the planner's
// moveStalledMs is cancelled by it (placement-progress.ts tracks when each move last moved). The
// planner never plans two steps for one group.
// Database shard groups move the same way; the meta model keeps the catalog's placement of the
// shard in step with the group's record and the move (so the added node downloads the shard and
// the removed one deletes it), and the view counts a shard group's learner caught up only once its
// copy is loaded; a move whose added node failed to load the shard is cancelled at once, and the
// node is not chosen for that shard again while its failure stands (the meta model remembers it).
// While a registered node runs a release before shard groups were placed, none of their moves
// starts (release-guard.ts): the controller logs that once, and its end.
//
// Called by: src/node/node.ts; test/control/.

import type { GroupId, NodeId } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { MetaCommand } from '../codec/meta.ts';
import { metaGroupId, type MetaModel } from '../models/meta.ts';
import type { HostClock, TimerHandle } from '../multiraft/ports.ts';
import type { ConfChange, Status } from '../raft/types.ts';
import { planPlacement, type PlacementPlan, type PlacementStep } from './placement-planner.ts';
import { trackMoveProgress, type MoveProgress } from './placement-progress.ts';
import {
  leaderReports,
  placementView,
  settingsOf,
  shardInputs,
  surveyedNodes,
  type GroupReport,
  type NodeReport,
} from './placement-view.ts';
import { shardPlacementHold } from './release-guard.ts';

export const placementPollMs = 1000;

export type PlacementEffect = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** What the controller reaches outside the meta log through (the node wires them over HTTP). */
export interface PlacementPorts {
  /** The reports of the nodes that answered (each bounded in time). */
  survey(nodes: readonly NodeId[]): Promise<ReadonlyMap<NodeId, NodeReport>>;
  /**
   * One membership change of `group`, at its leader `node`, made only while the group's applied
   * configuration is still the one at `confIndex` (the one the plan was made from: see
   * configurationMoved).
   */
  confChange(node: NodeId, group: GroupId, change: ConfChange, confIndex: number): Promise<PlacementEffect>;
  /** A leadership transfer of `group` to `to`, at its leader `node`. */
  transfer(node: NodeId, group: GroupId, to: NodeId): Promise<PlacementEffect>;
}

export type MoveEvent = 'started' | 'finished' | 'failed';

export interface PlacementControllerOptions {
  readonly host: { groupStatus(group: GroupId): { readonly status: Status } | undefined };
  readonly model: MetaModel;
  readonly clock: HostClock;
  /** Wall-clock milliseconds since the epoch (move times, how long a node has been gone). */
  readonly wallNowMs: () => number;
  readonly ports: PlacementPorts;
  /** Proposes through group 0 (this node leads it); true when applied with an ok outcome. */
  readonly propose: (command: MetaCommand) => Promise<boolean>;
  readonly pollMs?: number;
  readonly onMove?: (event: MoveEvent) => void;
  readonly log?: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
  /** The planner (default planPlacement); the simulator's tests inject broken ones to show its checks catch them. */
  readonly plan?: typeof planPlacement;
}

/** The last round's outcome, for GET /v1/placement on the meta leader. */
export interface PlacementRound {
  readonly atMs: number;
  readonly plan: PlacementPlan;
  readonly leaders: ReadonlyMap<GroupId, GroupReport>;
  readonly live: readonly NodeId[];
}

export class PlacementController {
  private readonly options: PlacementControllerOptions;
  private timer: TimerHandle | undefined;
  private busy = false;
  private stopped = false;
  private readonly lastSeenMs = new Map<NodeId, number>();
  /** When each move last made progress (placement-progress.ts), for the planner's moveStalledMs. */
  private moveProgress = new Map<GroupId, MoveProgress>();
  private round: PlacementRound | undefined;
  /** The shard groups' hold logged last (release-guard.ts), so a hold is logged once, and its end. */
  private holdLogged: string | undefined;

  constructor(options: PlacementControllerOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = this.options.clock.setRepeating(() => {
      void this.tick();
    }, this.options.pollMs ?? placementPollMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.clock.clearTimer(this.timer);
  }

  /** The last round, while this node leads group 0. */
  lastRound(): PlacementRound | undefined {
    return this.leading() ? this.round : undefined;
  }

  /**
   * cluster.remove's drain (src/control/action-steps.ts): undefined while placement is off (no
   * factor: nothing to drain), else whether the node still holds a replica that can move (the
   * group has a live majority, and a live node that is not leaving is outside it: the cluster has
   * room), and the finished moves that took its replicas elsewhere.
   */
  drain(node: NodeId): { draining: boolean; moved: { group: number; to: number | null }[] } | undefined {
    const model = this.options.model;
    if (model.replicationFactor('kv') === undefined) return undefined;
    const moved = model
      .moveHistory()
      .filter((move) => move.remove === node && move.outcome === 'finished')
      .map((move) => ({ group: move.group, to: move.add === 0 ? null : move.add }));
    const round = this.lastRound();
    if (round === undefined) return { draining: true, moved };
    const statuses = new Map(round.plan.groups.map((status) => [status.group, status.state]));
    // Eligible to take a replica: not leaving, and seen within the grace period (one survey the
    // node missed under load does not end a drain).
    const graceMs = settingsOf(model.placementSettings()).nodeGoneGraceMs;
    const eligible = model
      .nodes()
      .filter((record) => {
        const seen = this.lastSeenMs.get(record.id);
        return record.status !== 'LEAVING' && seen !== undefined && round.atMs - seen < graceMs;
      })
      .map((record) => record.id);
    // A group can still move off the node while it has a leader, a live majority, and an eligible
    // node outside it (a move in progress counts too). Not a shard group while their moves are
    // held (release-guard.ts): the node leaves without waiting for them, and its copies are
    // replaced as those of a node no longer in the cluster once the hold ends.
    const held = shardPlacementHold(model.nodes()) !== undefined;
    const movable = (group: { id: GroupId; kind: string; replicas: readonly NodeId[] }): boolean =>
      model.move(group.id) !== undefined ||
      // A group without a leader this round (an election, a transfer) is waited for: the direct
      // removal could not take the node out of it either.
      (!(held && group.kind === 'db') &&
        statuses.get(group.id) !== 'quorum_lost' &&
        eligible.some((candidate) => !group.replicas.includes(candidate)));
    // Where the node is, by the records and by what each group's leader reported this round (a
    // record can lag a configuration just applied), or where a move in progress is adding it.
    const holding = model
      .groups()
      .filter((group) => group.kind === 'kv' || group.kind === 'db')
      .map((group) => {
        const report = round.leaders.get(group.id);
        const reported = report === undefined ? [] : [...report.voters, ...report.learners, ...report.votersOutgoing];
        return { id: group.id, kind: group.kind, replicas: [...new Set([...group.replicas, ...reported])] };
      })
      .filter((group) => group.replicas.includes(node) || model.move(group.id)?.add === node);
    return { draining: holding.some(movable), moved };
  }

  private leading(): boolean {
    return this.options.host.groupStatus(metaGroupId)?.status.role === 'leader';
  }

  /** One round, when this node leads group 0 and placement is on; resolves when it is done. */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    const factor = this.options.model.replicationFactor('kv');
    if (!this.leading() || factor === undefined) {
      // A later leadership starts afresh: every node gets its grace from then on.
      this.lastSeenMs.clear();
      this.moveProgress.clear();
      this.round = undefined;
      this.holdLogged = undefined;
      return;
    }
    this.busy = true;
    try {
      await this.runRound(factor);
    } catch (error) {
      this.options.log?.('warn', 'placement round failed', { err: error });
    } finally {
      this.busy = false;
    }
  }

  private async runRound(factor: number): Promise<void> {
    const { model, ports } = this.options;
    const registered = surveyedNodes({ nodes: model.nodes(), groups: model.groups() });
    const reports = await ports.survey(registered);
    const nowMs = this.options.wallNowMs();
    // A round over some of the groups would see the others' nodes as empty and start moving
    // replicas to them: wait until every group a node hosts is recorded (a new cluster's records
    // come within a few polls).
    const recorded = new Set(model.groups().map((group) => group.id));
    const unrecorded = [...reports.values()].some((report) =>
      report.groups.some((group) => !recorded.has(group.group)),
    );
    if (unrecorded) return;
    for (const node of registered)
      if (reports.has(node) || !this.lastSeenMs.has(node)) this.lastSeenMs.set(node, nowMs);
    const view = placementView({
      nowMs,
      nodes: model.nodes(),
      groups: model.groups(),
      moves: model.moves(),
      factor,
      settings: model.placementSettings(),
      reports,
      lastSeenMs: this.lastSeenMs,
      database: shardInputs(model).database,
      loadFailures: model.loadFailures(),
    });
    this.logHold(view.groups.find((group) => group.held !== undefined)?.held);
    const leaders = leaderReports(reports);
    const caughtUp = (group: GroupId): readonly NodeId[] => view.groups.find((g) => g.id === group)?.caughtUp ?? [];
    const progress = trackMoveProgress(this.moveProgress, view.moves, leaders, caughtUp, nowMs);
    this.moveProgress = progress.entries;
    const plan = (this.options.plan ?? planPlacement)({ ...view, moves: progress.moves });
    this.round = { atMs: nowMs, plan, leaders, live: [...reports.keys()] };
    for (const step of plan.steps) {
      if (this.stopped || !this.leading()) return;
      const result = await this.carry(step, leaders);
      if (!result.ok) this.options.log?.('warn', 'placement step not done', { step, reason: result.message });
      else if (step.kind !== 'transfer' || !step.reason.startsWith('balance'))
        this.options.log?.('info', 'placement step', { step });
    }
  }

  /** Logs a hold of the shard groups' moves when it starts or its reason changes, and its end. */
  private logHold(hold: string | undefined): void {
    if (hold === this.holdLogged) return;
    if (hold !== undefined) this.options.log?.('warn', 'placement: shard groups are not moved', { reason: hold });
    else this.options.log?.('info', 'placement: shard groups are moved again', { was: this.holdLogged });
    this.holdLogged = hold;
  }

  private async carry(step: PlacementStep, leaders: ReadonlyMap<GroupId, GroupReport>): Promise<PlacementEffect> {
    const { ports } = this.options;
    const leaderOf = (group: GroupId): NodeId => leaders.get(group)?.leader ?? NO_NODE;
    // Each change names the configuration its plan saw: a round that went on after this node
    // lost group 0 (paused, cut off) must not repeat a step another leader's round already took.
    const change = (group: GroupId, changes: ConfChange['changes']): Promise<PlacementEffect> =>
      ports.confChange(leaderOf(group), group, { changes, transition: 'auto' }, leaders.get(group)?.confIndex ?? 0);
    switch (step.kind) {
      case 'start_move': {
        const { move } = step;
        const ok = await this.options.propose({
          type: 'placement.move.start',
          move: {
            group: move.group,
            add: move.add ?? NO_NODE,
            remove: move.remove ?? NO_NODE,
            reason: move.reason,
            startedMs: move.startedMs,
          },
        });
        if (ok) this.options.onMove?.('started');
        return ok ? { ok } : { ok, message: 'the move was not recorded' };
      }
      case 'add_learner':
        return change(step.group, [{ type: 'add_learner', node: step.node }]);
      case 'promote':
        return change(step.group, [{ type: 'add_voter', node: step.node }]);
      case 'replace':
        return change(step.group, [
          { type: 'add_voter', node: step.add },
          { type: 'remove_node', node: step.remove },
        ]);
      case 'remove':
        return change(step.group, [{ type: 'remove_node', node: step.node }]);
      case 'transfer':
        return ports.transfer(leaderOf(step.group), step.group, step.to);
      case 'finish_move':
        return this.finish(step.group, 'finished', '', leaders.get(step.group));
      case 'cancel_move':
        return this.finish(step.group, 'cancelled', step.reason, undefined);
      case 'refound': {
        const ok = await this.options.propose({
          type: 'group.refound',
          group: step.group,
          replicas: step.voters,
          atMs: this.options.wallNowMs(),
        });
        return ok ? { ok } : { ok, message: `group ${step.group} was not founded again` };
      }
    }
  }

  private async finish(
    group: GroupId,
    outcome: 'finished' | 'cancelled',
    detail: string,
    leader: GroupReport | undefined,
  ): Promise<PlacementEffect> {
    if (leader !== undefined) {
      const replicas = [...new Set([...leader.voters, ...leader.learners])].sort((a, b) => a - b);
      const known = this.options.model.group(group);
      if (JSON.stringify(known?.replicas) !== JSON.stringify(replicas)) {
        // The model keeps a recorded group's kind and shard; the kind here only fills a new record.
        const ok = await this.options.propose({
          type: 'group.set',
          group: { id: group, kind: known?.kind ?? 'kv', replicas, confIndex: leader.confIndex },
        });
        if (!ok) return { ok, message: `the record of group ${group} was not updated` };
      }
    }
    const ok = await this.options.propose({
      type: 'placement.move.finish',
      group,
      outcome,
      detail,
      atMs: this.options.wallNowMs(),
    });
    if (ok) this.options.onMove?.(outcome === 'finished' ? 'finished' : 'failed');
    return ok ? { ok } : { ok, message: 'the move was not finished in the meta model' };
  }
}

/**
 * Why a membership change planned from the configuration at `planned` must not be made at a
 * leader whose applied configuration is at `here` (undefined: it may be made). A placement round
 * plans from the reports it gathered, then carries its steps one by one; a meta leader that lost
 * group 0 meanwhile (paused, cut off) can still be in its round while the next leader's round
 * moves the same group, and its step, taken against the new configuration, could undo that move
 * (an add_learner of a node promoted since demotes a voter) or take a group below its quorum.
 */
export function configurationMoved(planned: number | undefined, here: number): string | undefined {
  if (planned === undefined || planned === here) return undefined;
  return `the change was planned from the configuration at index ${planned}, and the group's is now at ${here}`;
}
