// The meta controller: the small effectful loop that runs on every node and acts only while the
// node leads group 0. Every `pollMs` it asks the planners for one step and carries it out:
//  - the meta group's membership (meta-membership.ts): one configuration change of group 0;
//  - the action executor (executor.ts): start, run one step of, or fail one action, and propose
//    the resulting state change (with the record version it planned against) through group 0.
// One step at a time (a step in flight blocks the next tick), so actions run one at a time, in
// log order, cluster-wide. A proposal that fails (leadership moved, queue full) is simply planned
// again on a later tick, by this node or by the new leader, which resumes a RUNNING action first.
//
// Called by: src/node/ (start/stop), test/control/.

import { isDbGroup, metaGroupId as metaGroup, type MetaModel } from '../models/meta.ts';
import type { GroupId, NodeId } from '../base/ids.ts';
import {
  encodeMetaCommand,
  type ActionRecord,
  type ActionState,
  type GroupRecord,
  type MetaCommand,
  type NodeRecord,
} from '../codec/meta.ts';
import type { ProposalOutcome } from '../multiraft/host.ts';
import type { HostClock, TimerHandle } from '../multiraft/ports.ts';
import type { ConfChange, Status } from '../raft/types.ts';
import { runActionStep, type EffectResult, type StepContext } from './action-steps.ts';
import type { CatalogProposal, DatabaseStepContext } from './database-steps.ts';
import { planNextStep } from './executor.ts';
import { planMetaMembership, type MetaMembershipStep } from './meta-membership.ts';

export const controllerPollMs = 200;

/**
 * The effects of action steps that reach outside the meta log. Those of cluster.add are optional
 * (a controller without them, e.g. in a simulation, sees a new node that never answers), and so is
 * compaction (without it group.compact fails).
 */
export type ControllerEffects = Pick<StepContext, 'transferLeadership' | 'removeFromKvGroups'> &
  Partial<Pick<StepContext, 'compactGroup' | 'describeNode' | 'askToJoin' | 'newActionId' | 'drain'>> & {
    /** Lists an S3 prefix for the database actions; without it they fail (no object store). */
    readonly listObjects?: DatabaseStepContext['listObjects'];
  };
/** How often a node whose registry record is out of date proposes it again. */
export const registerRetryMs = 2000;

/** The part of the multi-Raft host the controller uses (MultiRaftHost satisfies it). */
export interface ControllerHost {
  propose(group: GroupId, data: Uint8Array): Promise<ProposalOutcome>;
  proposeConfChange(group: GroupId, change: ConfChange): Promise<ProposalOutcome>;
  status(): { group: GroupId; status: Status; appliedIndex: number; appliedTerm?: number; confIndex?: number }[];
  groupStatus(group: GroupId): { group: GroupId; status: Status; appliedIndex: number } | undefined;
}

export interface ControllerOptions {
  readonly nodeId: NodeId;
  readonly host: ControllerHost;
  readonly model: MetaModel;
  /** Timers (the host's clock port). */
  readonly clock: HostClock;
  /** Wall-clock milliseconds since the epoch: the times written into action records. */
  readonly wallNowMs: () => number;
  /** The effects of action steps that reach outside the meta log; the model and host parts are filled in here. */
  readonly effects: ControllerEffects;
  /** This node's HTTP URL (the member a node added by cluster.add joins through). */
  readonly selfUrl?: string;
  readonly pollMs?: number;
  /** The cluster id the meta leader records when the model has none yet (a new cluster). */
  readonly clusterId?: string;
  /**
   * This node's registry record: every node keeps its own up to date (addresses, versions),
   * proposing it through `proposeAnywhere` (forwarded to the meta leader) when the model differs.
   */
  readonly selfRecord?: NodeRecord;
  readonly proposeAnywhere?: (command: MetaCommand) => Promise<boolean>;
  /**
   * A cluster being created (--init): the first placement of its kv groups, recorded by the meta
   * leader for every group the model does not know yet, and the kv replication factor to record
   * when the model has none (set only when placement spreads groups over a subset of the nodes).
   */
  readonly initialGroups?: readonly { readonly group: GroupId; readonly voters: readonly NodeId[] }[];
  readonly initialKvFactor?: number;
  readonly log?: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
}

export class MetaController {
  private readonly options: ControllerOptions;
  private timer: TimerHandle | undefined;
  private busy = false;
  private lastRegisterMs = -Infinity;
  /** When this node last proposed each led group's record from elsewhere than the meta leader. */
  private readonly lastRecordMs = new Map<GroupId, number>();
  private stopped = false;
  private readonly context: StepContext;

  constructor(options: ControllerOptions) {
    this.options = options;
    const { host, model } = options;
    this.context = {
      nowMs: options.wallNowMs,
      groupLeader: (group) => host.groupStatus(group)?.status.leader,
      transferLeadership: (group, to) => options.effects.transferLeadership(group, to),
      compactGroup: (group, node) =>
        options.effects.compactGroup?.(group, node) ??
        Promise.resolve({ ok: false, final: true, message: 'this controller cannot reach the nodes to compact' }),
      removeFromKvGroups: (node) => options.effects.removeFromKvGroups(node),
      describeNode: (url) => options.effects.describeNode?.(url) ?? Promise.resolve(`no way to reach ${url}`),
      askToJoin: (url, id, via) =>
        options.effects.askToJoin?.(url, id, via) ??
        Promise.resolve({ ok: false, final: false, message: `no way to reach ${url}` }),
      newActionId: () => options.effects.newActionId?.() ?? crypto.randomUUID(),
      drain: (node) => options.effects.drain?.(node),
      selfUrl: options.selfUrl ?? '',
      clusterId: () => model.clusterId,
      hasJoined: (node) => {
        if (model.replicationFactor('kv') !== undefined) return model.node(node)?.status === 'ACTIVE';
        const kv = host.status().filter(({ group }) => group !== metaGroup && !isDbGroup(group));
        return kv.length > 0 && kv.every(({ status }) => status.confState.voters.includes(node));
      },
      registered: (node) => model.node(node),
      actionRecords: () => [...model.queue(), ...model.finishedActions()],
      registeredCount: () => model.nodes().length,
      recordNode: (node) => this.proposeEffect({ type: 'node.upsert', node }),
      setReplication: (kind, factor) => this.proposeEffect({ type: 'replication.set', kind, factor }),
      removeFromMetaGroup: async (node) => {
        const conf = host.groupStatus(metaGroup)?.status.confState;
        if (conf === undefined || ![...conf.voters, ...conf.learners].includes(node)) return { ok: true, detail: null };
        const outcome = await host.proposeConfChange(metaGroup, {
          changes: [{ type: 'remove_node', node }],
          transition: 'auto',
        });
        return outcome.kind === 'applied'
          ? { ok: true, detail: null }
          : { ok: false, final: false, message: `meta group removal not applied (${outcome.kind})` };
      },
      forgetNode: async (node) =>
        model.node(node) === undefined ? { ok: true, detail: null } : this.proposeEffect({ type: 'node.remove', node }),
      databases:
        options.effects.listObjects === undefined
          ? undefined
          : {
              nowMs: options.wallNowMs,
              catalog: model.databases,
              activeNodes: () => model.activeNodes(),
              listObjects: options.effects.listObjects,
              propose: (command) => this.proposeCatalog(command),
            },
    };
  }

  /** A catalog command through group 0, with the model's refusal when it refused. */
  private async proposeCatalog(command: Parameters<DatabaseStepContext['propose']>[0]): Promise<CatalogProposal> {
    const outcome = await this.options.host.propose(metaGroup, encodeMetaCommand({ type: 'databases', command }));
    if (outcome.kind !== 'applied') return { kind: 'unknown' };
    const result = outcome.result as { ok?: unknown; reason?: unknown; message?: unknown } | undefined;
    if (result?.ok === true) return { kind: 'ok' };
    return {
      kind: 'refused',
      reason: typeof result?.reason === 'string' ? result.reason : 'refused',
      message: typeof result?.message === 'string' ? result.message : 'refused',
    };
  }

  start(): void {
    this.timer = this.options.clock.setRepeating(() => {
      void this.tick();
    }, this.options.pollMs ?? controllerPollMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.clock.clearTimer(this.timer);
  }

  /** One step, when this node leads group 0 and no step is in flight; resolves when it is done. */
  async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    const meta = this.options.host.groupStatus(metaGroup);
    const leading = meta?.status.role === 'leader';
    const records = leading ? [] : this.ledRecordsDue();
    if (!leading && !this.registrationDue() && records.length === 0) return;
    this.busy = true;
    try {
      if (this.registrationDue()) await this.register();
      for (const record of records) await this.options.proposeAnywhere?.({ type: 'group.set', group: record });
      if (!leading) return;
      const clusterId = this.options.clusterId;
      if (clusterId !== undefined && this.options.model.clusterId === '') {
        await this.propose({ type: 'cluster.set', clusterId });
        return;
      }
      if (await this.membershipStep(meta.status)) return;
      if (await this.groupRecordStep()) return;
      await this.actionStep();
    } catch (error) {
      this.options.log?.('warn', 'meta controller step failed', { err: error });
    } finally {
      this.busy = false;
    }
  }

  /** This node's record differs from the registry's, and the last attempt is long enough ago. */
  private registrationDue(): boolean {
    const self = this.options.selfRecord;
    if (self === undefined || this.options.proposeAnywhere === undefined) return false;
    // Only once the meta group is formed here (its configuration applied) and has a leader.
    const meta = this.options.host.groupStatus(metaGroup)?.status;
    if (meta === undefined || meta.leader === 0 || meta.confState.voters.length === 0) return false;
    if (this.options.wallNowMs() - this.lastRegisterMs < registerRetryMs) return false;
    return JSON.stringify(this.options.model.node(self.id)) !== JSON.stringify(this.ownRecord(self));
  }

  /** This node's record as it registers it: LEAVING stays LEAVING (cluster.remove is draining it). */
  private ownRecord(self: NodeRecord): NodeRecord {
    return this.options.model.node(self.id)?.status === 'LEAVING' ? { ...self, status: 'LEAVING' } : self;
  }

  private async register(): Promise<void> {
    const self = this.options.selfRecord;
    if (self === undefined || this.options.proposeAnywhere === undefined) return;
    this.lastRegisterMs = this.options.wallNowMs();
    await this.options.proposeAnywhere({ type: 'node.upsert', node: this.ownRecord(self) });
  }

  /** Carries out the meta membership planner's step; true when there was one. */
  private async membershipStep(status: Status): Promise<boolean> {
    const step = planMetaMembership({
      self: this.options.nodeId,
      voters: status.confState.voters,
      learners: status.confState.learners,
      commit: status.commit,
      match: new Map(status.progress.map((member) => [member.id, member.match])),
      changePending: status.confState.votersOutgoing.length > 0,
      kvMembers: this.kvMembers(),
      registered: this.options.model
        .nodes()
        .filter((node) => node.status === 'ACTIVE')
        .map((node) => node.id),
    });
    if (step.kind === 'none') return false;
    const outcome = await this.options.host.proposeConfChange(metaGroup, changeOf(step));
    this.options.log?.('info', 'meta group membership', { step: step.kind, node: step.node, outcome: outcome.kind });
    return true;
  }

  /**
   * Keeps the model's group records (id, kind, replicas) in step with the groups' configurations:
   * the first placement of a new cluster for groups not recorded yet, then, for each group this
   * node leads (or, without proposeAnywhere, hosts), its applied configuration. Proposes one
   * record that differs; true when it did.
   */
  private async groupRecordStep(): Promise<boolean> {
    const model = this.options.model;
    const factor = this.options.initialKvFactor;
    if (factor !== undefined && model.replicationFactor('kv') === undefined) {
      await this.propose({ type: 'replication.set', kind: 'kv', factor });
      return true;
    }
    const missing = (this.options.initialGroups ?? []).filter(
      ({ group }) => !model.groups().some((record) => record.id === group),
    );
    for (const { group, voters } of missing) {
      const replicas = [...voters].sort((a, b) => a - b);
      await this.propose({ type: 'group.set', group: { id: group, kind: 'kv', replicas } });
    }
    if (missing.length > 0) return true;
    const everyHosted = this.options.proposeAnywhere === undefined;
    for (const record of this.recordsDue((status) => everyHosted || status.role === 'leader')) {
      await this.propose({ type: 'group.set', group: record });
      return true;
    }
    return false;
  }

  /**
   * The records of groups this node leads that differ from the model's (sameRecord), taken from
   * a leader that applied an entry of its own term (so every configuration committed before it is applied: a
   * new leader never records an older configuration than its predecessor did).
   */
  private recordsDue(include: (status: Status) => boolean): GroupRecord[] {
    const recorded = new Map(this.options.model.groups().map((group) => [group.id, group]));
    const due: GroupRecord[] = [];
    for (const { group, status, appliedTerm, confIndex } of this.options.host.status()) {
      const conf = status.confState;
      if (conf.voters.length === 0 || !include(status)) continue;
      if (status.role === 'leader' && appliedTerm !== status.term) continue;
      // A shard group is recorded by the meta model itself; once dropped, it is never recorded again.
      const known = recorded.get(group);
      if (known === undefined && isDbGroup(group)) continue;
      const replicas = [
        ...new Set([...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext]),
      ].sort((a, b) => a - b);
      const record: GroupRecord = {
        id: group,
        kind: known?.kind ?? (group === metaGroup ? 'meta' : 'kv'),
        replicas,
        ...(group === metaGroup || confIndex === undefined ? {} : { confIndex }),
      };
      if (!sameRecord(known, this.options.model.groupConfIndex(group), record)) due.push(record);
    }
    return due;
  }

  /** On a node that does not lead group 0: the records of kv groups it leads, each at most every registerRetryMs. */
  private ledRecordsDue(): GroupRecord[] {
    if (this.options.proposeAnywhere === undefined) return [];
    const nowMs = this.options.wallNowMs();
    const due = this.recordsDue((status) => status.role === 'leader').filter(
      (record) => record.id !== metaGroup && nowMs - (this.lastRecordMs.get(record.id) ?? -Infinity) >= registerRetryMs,
    );
    for (const record of due) this.lastRecordMs.set(record.id, nowMs);
    return due;
  }

  /**
   * Every member of every other group hosted here, and (with placement, where this node hosts only
   * some kv groups) every replica the meta model records for a kv group or a move is adding: a
   * node in none of them and not registered ACTIVE has left the cluster. Undefined while a hosted group's configuration is unknown.
   */
  private kvMembers(): Set<NodeId> | undefined {
    // A new cluster's first placement not recorded yet: the groups hosted here are only some of
    // them, and a node outside those (a member of the others) must not be taken for a node that
    // left (its removal from group 0 would also refuse its handshakes for good).
    const recorded = new Set(this.options.model.groups().map((record) => record.id));
    if ((this.options.initialGroups ?? []).some(({ group }) => !recorded.has(group))) return undefined;
    const members = new Set<NodeId>();
    for (const { group, status } of this.options.host.status()) {
      if (group === metaGroup) continue;
      const conf = status.confState;
      if (conf.voters.length === 0) return undefined;
      for (const node of [...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext])
        members.add(node);
    }
    for (const record of this.options.model.groups())
      if (record.kind !== 'meta') for (const node of record.replicas) members.add(node);
    for (const move of this.options.model.moves()) if (move.add !== 0) members.add(move.add);
    return members;
  }

  private async actionStep(): Promise<void> {
    const step = planNextStep({ queue: this.options.model.queue(), nowMs: this.options.wallNowMs() });
    switch (step.kind) {
      case 'idle':
        return;
      case 'start':
        await this.update(step.action, { phase: 'RUNNING', payload: null, error: null });
        return;
      case 'fail':
        await this.update(step.action, step.state);
        return;
      case 'run': {
        const next = await runActionStep(step.action, this.context);
        if (next !== undefined) await this.update(step.action, next);
        return;
      }
    }
  }

  private async update(action: ActionRecord, state: ActionState): Promise<void> {
    await this.propose({
      type: 'action.update',
      id: action.id,
      version: action.version,
      state,
      atMs: this.options.wallNowMs(),
    });
    if (state.phase === 'DONE' || state.phase === 'FAILED')
      this.options.log?.('info', 'action finished', { id: action.id, kind: action.kind, phase: state.phase });
  }

  /** A meta command as a step's effect: retried on a later step when not applied. */
  private async proposeEffect(command: MetaCommand): Promise<EffectResult> {
    return (await this.propose(command))
      ? { ok: true, detail: null }
      : { ok: false, final: false, message: `${command.type} not applied` };
  }

  /** Proposes through group 0; true when applied with an ok outcome. */
  private async propose(command: MetaCommand): Promise<boolean> {
    const outcome = await this.options.host.propose(metaGroup, encodeMetaCommand(command));
    return outcome.kind === 'applied' && (outcome.result as { ok?: unknown } | undefined)?.ok === true;
  }
}

/**
 * Whether the model's record already says what `record` says: the same replicas, from this
 * configuration or a newer one. A newer configuration with the same replicas is recorded too (a
 * learner added and removed again before its leader recorded it): the node that applied the
 * addition waits for a record at or after its own configuration index before it stops the replica.
 */
function sameRecord(known: GroupRecord | undefined, knownConfIndex: number | undefined, record: GroupRecord): boolean {
  if (known === undefined || JSON.stringify(known.replicas) !== JSON.stringify(record.replicas)) return false;
  return record.confIndex === undefined || (knownConfIndex !== undefined && knownConfIndex >= record.confIndex);
}

function changeOf(step: Exclude<MetaMembershipStep, { kind: 'none' }>): ConfChange {
  const type = step.kind === 'remove' ? 'remove_node' : step.kind === 'add_learner' ? 'add_learner' : 'add_voter';
  return { changes: [{ type, node: step.node }], transition: 'auto' };
}
