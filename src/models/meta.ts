// The meta model: the replicated state machine of group 0, on every node. It holds what the
// cluster is: its id, the node registry (addresses, agent and store versions, attribute maps,
// status), the groups with their replicas, the replication factor per group kind, the agent
// action queue with every action's invocation record, and placement: the replica moves in
// progress (at most one per group), the last finished ones, the placement settings, and the load
// failures (a node whose copy of a shard failed to load when it left the shard's placement: the
// planner does not choose it for that shard again while that version is the one to load).
//
// Pure and deterministic: the same commands in the same order give the same state on every
// replica. Times are data in the commands (written by the proposer), never read here: a record's
// scheduled time is the schedule command's `atMs`, its finished time the finishing command's.
//
// Invariants:
//  - an action id is scheduled at most once: a second schedule with a known id changes nothing and
//    says whether it was the same request (a retry whose first answer was lost) or another one;
//  - at most `actionsQueuedMax` unfinished actions; one more is refused (`queue_full`);
//  - phases move NEW -> RUNNING -> DONE | FAILED (NEW may finish directly, RUNNING may stay
//    RUNNING with a new payload); a finished record never changes again;
//  - an update names the record version it was planned against: a stale one (another leader, a
//    cancel in between) is refused, so a step applied twice takes effect once;
//  - finished records are kept `finishedRetainMs` (14 days) after they finished, as seen by the
//    time in later commands, and at most `actionsFinishedMax` (the oldest go first);
//  - a load failure names the version of its shard a new copy must load now (shardLoadVersion):
//    a reload that changes it, the database's removal or the node's (`node.remove`) clears it;
//    at most `loadFailuresMax`, one per node and shard (the oldest go first).
//
// Called by: the multi-Raft host (applyEntry, snapshot, restore), src/control/ (views for the
// executor), src/api/ (the agent API reads it).

import { assert } from '../base/assert.ts';
import { NO_NODE, type GroupId, type LogIndex, type NodeId } from '../base/ids.ts';
import {
  decodeMetaCommand,
  decodeMetaSnapshot,
  MetaCommandTooNewError,
  encodeMetaSnapshot,
  type ActionRecord,
  type ActionRequest,
  type GroupKind,
  type GroupRecord,
  type MetaCommand,
  type NodeRecord,
} from '../codec/meta.ts';
import { DatabasesModel, shardLoadVersion, type DatabasesOutcome } from './meta-databases.ts';
import {
  loadFailuresMax,
  moveHistoryMax,
  type FinishedMove,
  type LoadFailure,
  type MoveOutcome,
  type MoveRecord,
  type PlacementSettingsRecord,
} from '../codec/meta-placement.ts';
import type { DatabasesCommand } from '../codec/meta-databases.ts';

export const metaGroupId = 0 as GroupId;
/**
 * Database shard groups get ids from here up, in order, never reused (a stale replica of a dropped
 * group must never meet a new group of the same id); kv groups stay below (`--kv-groups`).
 */
export const dbGroupIdFirst = 1_000_000;

/** Whether a group id is a database shard's group (its model is src/models/shard.ts). */
export function isDbGroup(id: GroupId): boolean {
  return id >= dbGroupIdFirst;
}

export interface MetaModelOptions {
  /** Unfinished actions at most; one more schedule is refused. */
  readonly actionsQueuedMax: number;
  /** Finished records kept at most (the oldest finished go first). */
  readonly actionsFinishedMax: number;
  /** How long a finished record is kept after it finished. */
  readonly finishedRetainMs: number;
}

export const metaModelDefaults: MetaModelOptions = {
  actionsQueuedMax: 1000,
  actionsFinishedMax: 1000,
  finishedRetainMs: 14 * 24 * 3600 * 1000,
};

export type MetaOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'exists'; readonly sameRequest: boolean }
  | { readonly ok: false; readonly code: 'queue_full'; readonly queued: number; readonly queuedMax: number }
  | { readonly ok: false; readonly code: 'unknown_action' }
  | { readonly ok: false; readonly code: 'finished'; readonly phase: 'DONE' | 'FAILED' }
  | { readonly ok: false; readonly code: 'stale'; readonly version: number }
  | { readonly ok: false; readonly code: 'bad_transition'; readonly from: string; readonly to: string }
  | { readonly ok: false; readonly code: 'malformed'; readonly message: string }
  | DatabasesOutcome
  /** A placement move of the group is recorded already (one move per group at a time). */
  | { readonly ok: false; readonly code: 'move_in_progress'; readonly move: MoveRecord }
  | { readonly ok: false; readonly code: 'no_move' };

export class MetaModel {
  readonly type = 'meta';
  readonly version = 1;
  private readonly options: MetaModelOptions;
  private clusterIdValue = '';
  private readonly nodesById = new Map<NodeId, NodeRecord>();
  private readonly groupsById = new Map<GroupId, GroupRecord>();
  private readonly factors = new Map<GroupKind, number>();
  /** Unfinished actions in schedule (log) order. */
  private readonly queued = new Map<string, ActionRecord>();
  /** Finished actions in finish order. */
  private readonly finished = new Map<string, ActionRecord>();
  /** The database catalog and aliases: its own part, with its own commands (meta-databases.ts). */
  readonly databases = new DatabasesModel();
  /** Placement moves in progress, one per group at most (docs/placement.md). */
  private readonly movesByGroup = new Map<GroupId, MoveRecord>();
  /** The last finished moves, oldest first, at most moveHistoryMax. */
  private readonly history: FinishedMove[] = [];
  private settings: Partial<PlacementSettingsRecord> = {};
  /** Load failures of nodes that left a shard's placement, oldest first, at most loadFailuresMax. */
  private readonly failures: LoadFailure[] = [];
  /** The id the next database shard group gets. */
  private dbGroupNext = dbGroupIdFirst;

  constructor(options: MetaModelOptions = metaModelDefaults) {
    assert(
      options.actionsQueuedMax >= 1 && options.actionsFinishedMax >= 1 && options.finishedRetainMs >= 0,
      'meta: limits must be positive',
    );
    this.options = options;
  }

  get clusterId(): string {
    return this.clusterIdValue;
  }

  nodes(): readonly NodeRecord[] {
    return [...this.nodesById.values()].sort((a, b) => a.id - b.id);
  }

  node(id: NodeId): NodeRecord | undefined {
    return this.nodesById.get(id);
  }

  /** The group records (id, kind, replicas); the configuration index each came from is groupConfIndex(). */
  groups(): readonly GroupRecord[] {
    return this.records().map(({ id, kind, replicas, shard }) =>
      shard === undefined ? { id, kind, replicas } : { id, kind, replicas, shard },
    );
  }

  /** One group's record (without its configuration index), when recorded. */
  group(id: GroupId): GroupRecord | undefined {
    const record = this.groupsById.get(id);
    if (record === undefined) return undefined;
    const { kind, replicas, shard } = record;
    return shard === undefined ? { id, kind, replicas } : { id, kind, replicas, shard };
  }

  /** The group of a database's shard, when it has one. */
  shardGroup(database: string, shard: string): GroupRecord | undefined {
    for (const record of this.groupsById.values())
      if (record.shard?.database === database && record.shard.shard === shard) return record;
    return undefined;
  }

  /** The groups of a database's shards, by shard id. */
  shardGroups(database: string): Map<string, GroupRecord> {
    const found = new Map<string, GroupRecord>();
    for (const record of this.groupsById.values())
      if (record.shard?.database === database) found.set(record.shard.shard, record);
    return found;
  }

  /** The log index of the configuration a group's record was taken from (undefined: not known). */
  groupConfIndex(id: GroupId): number | undefined {
    return this.groupsById.get(id)?.confIndex;
  }

  private records(): GroupRecord[] {
    return [...this.groupsById.values()].sort((a, b) => a.id - b.id);
  }

  replicationFactor(kind: GroupKind): number | undefined {
    return this.factors.get(kind);
  }

  action(id: string): ActionRecord | undefined {
    return this.queued.get(id) ?? this.finished.get(id);
  }

  /** Unfinished actions, oldest scheduled first. */
  queue(): readonly ActionRecord[] {
    return [...this.queued.values()];
  }

  /** Finished actions, oldest finished first. */
  finishedActions(): readonly ActionRecord[] {
    return [...this.finished.values()];
  }

  /** Placement moves in progress, by group. */
  moves(): readonly MoveRecord[] {
    return [...this.movesByGroup.values()].sort((a, b) => a.group - b.group);
  }

  move(group: GroupId): MoveRecord | undefined {
    return this.movesByGroup.get(group);
  }

  /** The last finished moves, oldest first. */
  moveHistory(): readonly FinishedMove[] {
    return [...this.history];
  }

  /** The load failures that stand, oldest first (the planner keeps their nodes out of their shards' groups). */
  loadFailures(): readonly LoadFailure[] {
    return [...this.failures];
  }

  /** The placement settings set so far (the placement controller fills in its defaults). */
  placementSettings(): Partial<PlacementSettingsRecord> {
    return this.settings;
  }

  /** Applies the command in a committed entry; a malformed one changes nothing. */
  applyEntry(_index: LogIndex, data: Uint8Array): MetaOutcome | undefined {
    if (data.length === 0) return undefined; // a leader's empty entry
    let command: MetaCommand;
    try {
      command = decodeMetaCommand(data);
    } catch (error) {
      // Written by a newer dram: stop (the host makes it fatal) rather than diverge from the replicas that read it.
      if (error instanceof MetaCommandTooNewError) throw error;
      // Validated before proposing; a replica never fails on it.
      return { ok: false, code: 'malformed', message: error instanceof Error ? error.message : String(error) };
    }
    return this.apply(command);
  }

  apply(command: MetaCommand): MetaOutcome {
    switch (command.type) {
      case 'cluster.set':
        this.clusterIdValue = command.clusterId;
        return { ok: true };
      case 'node.upsert':
        this.nodesById.set(command.node.id, command.node);
        return { ok: true };
      case 'node.remove':
        this.nodesById.delete(command.node);
        this.pruneLoadFailures((failure) => failure.node === command.node, true);
        return { ok: true };
      case 'group.set': {
        const known = this.groupsById.get(command.group.id);
        // A shard's group is recorded here only while its database has the shard: a leader's late
        // record of a dropped one changes nothing.
        if (known === undefined && (command.group.kind === 'db' || isDbGroup(command.group.id))) return { ok: true };
        // A record from an older configuration than the one recorded changes nothing.
        if (known?.confIndex !== undefined && (command.group.confIndex ?? -1) < known.confIndex) return { ok: true };
        // A group's kind and shard never change.
        const { id, replicas, confIndex } = command.group;
        this.groupsById.set(
          id,
          known === undefined
            ? command.group
            : {
                id,
                kind: known.kind,
                replicas,
                ...(confIndex === undefined ? {} : { confIndex }),
                ...(known.shard === undefined ? {} : { shard: known.shard }),
              },
        );
        this.syncShardPlacement(id);
        return { ok: true };
      }
      case 'group.remove':
        this.groupsById.delete(command.group);
        return { ok: true };
      case 'group.refound':
        return this.refound(command.group, command.replicas, command.atMs);
      case 'replication.set':
        this.factors.set(command.kind, command.factor);
        return { ok: true };
      case 'action.schedule':
        this.prune(command.atMs);
        return this.schedule(command.action, command.atMs);
      case 'action.update':
        this.prune(command.atMs);
        return this.update(command.id, command.version, command.state, command.atMs);
      case 'action.cancel':
        this.prune(command.atMs);
        return this.cancel(command.id, command.reason, command.atMs);
      case 'databases': {
        const outcome = this.databases.apply(command.command, this.activeNodes());
        const name = databaseOf(command.command);
        if (outcome.ok && name !== undefined) {
          this.syncShardGroups(name);
          // A reload's next version takes its shards' placement from their groups too.
          for (const group of this.shardGroups(name).values()) this.syncShardPlacement(group.id);
          this.pruneLoadFailures((failure) => failure.database === name);
        }
        return outcome;
      }
      case 'placement.move.start':
        return this.startMove(command.move);
      case 'placement.move.finish':
        return this.finishMove(command.group, command.outcome, command.detail, command.atMs);
      case 'placement.settings':
        this.settings = { ...this.settings, ...command.settings };
        return { ok: true };
    }
  }

  /**
   * A shard group founded again on `replicas` (placement, when the group lost its quorum for
   * good): the old record goes (its replicas stop and delete it), the shard gets the next id on
   * these nodes with no configuration recorded, so they bootstrap it as a new shard's group and
   * the shard sync writes the catalog's part into it; a move of the old group ends cancelled.
   */
  private refound(id: GroupId, replicas: readonly NodeId[], atMs: number): MetaOutcome {
    const known = this.groupsById.get(id);
    if (known?.kind !== 'db' || known.shard === undefined)
      return { ok: false, code: 'malformed', message: `group ${id} is not a database shard's group` };
    if (this.movesByGroup.has(id)) this.finishMove(id, 'cancelled', 'the group was founded again', atMs);
    this.groupsById.delete(id);
    const next = this.dbGroupNext as GroupId;
    this.dbGroupNext++;
    this.groupsById.set(next, {
      id: next,
      kind: 'db',
      replicas: [...new Set(replicas)].sort((a, b) => a - b),
      shard: known.shard,
    });
    this.syncShardPlacement(next);
    return { ok: true };
  }

  private startMove(move: MoveRecord): MetaOutcome {
    const known = this.movesByGroup.get(move.group);
    if (known !== undefined) return { ok: false, code: 'move_in_progress', move: known };
    this.movesByGroup.set(move.group, move);
    this.syncShardPlacement(move.group);
    return { ok: true };
  }

  private finishMove(group: GroupId, outcome: MoveOutcome, detail: string, atMs: number): MetaOutcome {
    const move = this.movesByGroup.get(group);
    if (move === undefined) return { ok: false, code: 'no_move' };
    this.movesByGroup.delete(group);
    this.syncShardPlacement(group);
    this.history.push({ ...move, outcome, detail, finishedMs: atMs });
    if (this.history.length > moveHistoryMax) this.history.splice(0, this.history.length - moveHistoryMax);
    return { ok: true };
  }

  /**
   * Keeps one group per shard of the database (current and next versions): a shard without one
   * gets the next id, recorded with the shard's replicas (every active node for "all"); the group
   * of a shard the database no longer has (or of a dropped database) is removed. Hosting starts
   * and stops the replicas from these records (src/control/group-hosting.ts).
   */
  private syncShardGroups(name: string): void {
    const record = this.databases.database(name);
    const wanted = new Map<string, readonly NodeId[]>();
    for (const version of record === undefined ? [] : [record.current, record.next])
      for (const shard of version?.shards ?? [])
        if (!wanted.has(shard.shard))
          wanted.set(shard.shard, record?.replicas === 'all' ? this.activeNodes() : shard.nodes);
    for (const [shard, group] of this.shardGroups(name)) {
      if (wanted.has(shard)) wanted.delete(shard);
      else this.groupsById.delete(group.id);
    }
    for (const [shard, replicas] of wanted) {
      if (replicas.length === 0) continue;
      const id = this.dbGroupNext as GroupId;
      this.dbGroupNext++;
      this.groupsById.set(id, {
        id,
        kind: 'db',
        replicas: [...replicas].sort((a, b) => a - b),
        shard: { database: name, shard },
      });
    }
  }

  /**
   * Keeps the catalog's placement of a shard group's shard in step with placement: the group's
   * recorded replicas (its leader's configuration: voters and learners) plus the node a move in
   * progress adds, so the added node downloads the shard from the move's start (its copy is
   * useful only once loaded) and a node the group no longer has drops its copy. In the entry that
   * changes the record or the move, so every replica of group 0 agrees.
   */
  private syncShardPlacement(id: GroupId): void {
    const record = this.groupsById.get(id);
    if (record?.kind !== 'db' || record.shard === undefined) return;
    const add = this.movesByGroup.get(id)?.add ?? NO_NODE;
    const nodes = [...new Set([...record.replicas, ...(add === NO_NODE ? [] : [add])])].sort((a, b) => a - b);
    const { database, shard } = record.shard;
    const dropped = this.databases.placeShard(database, shard, nodes);
    // A node leaving with a failed copy of the version a new copy must load is remembered, so
    // placement does not bring it back for that version (the catalog forgets its state).
    const catalog = this.databases.database(database);
    const version = catalog === undefined ? undefined : shardLoadVersion(catalog, shard);
    for (const state of dropped)
      if (state.state === 'failed' && state.version === version)
        this.rememberLoadFailure({
          database,
          shard,
          node: state.node,
          version,
          error: state.error ?? 'failed',
          atMs: state.atMs,
        });
  }

  private rememberLoadFailure(failure: LoadFailure): void {
    const same = (known: LoadFailure): boolean =>
      known.database === failure.database && known.shard === failure.shard && known.node === failure.node;
    const at = this.failures.findIndex(same);
    if (at >= 0) this.failures.splice(at, 1);
    this.failures.push(failure);
    if (this.failures.length > loadFailuresMax) this.failures.splice(0, this.failures.length - loadFailuresMax);
  }

  /**
   * Drops the failures among `affected` that no longer stand: their version is no longer the one
   * to load (a reload made another current, the database was removed), or, `gone`, their node left
   * the cluster.
   */
  private pruneLoadFailures(affected: (failure: LoadFailure) => boolean, gone = false): void {
    const stands = (failure: LoadFailure): boolean => {
      if (!affected(failure)) return true;
      const catalog = this.databases.database(failure.database);
      return !gone && catalog !== undefined && shardLoadVersion(catalog, failure.shard) === failure.version;
    };
    const kept = this.failures.filter(stands);
    this.failures.splice(0, this.failures.length, ...kept);
  }

  /** The registered ACTIVE nodes, in id order: what a database's `replicas: "all"` means now. */
  activeNodes(): NodeId[] {
    return this.nodes()
      .filter((node) => node.status === 'ACTIVE')
      .map((node) => node.id);
  }

  private schedule(request: ActionRequest, atMs: number): MetaOutcome {
    const known = this.action(request.id);
    if (known !== undefined) return { ok: false, code: 'exists', sameRequest: sameRequest(known, request) };
    if (this.queued.size >= this.options.actionsQueuedMax)
      return { ok: false, code: 'queue_full', queued: this.queued.size, queuedMax: this.options.actionsQueuedMax };
    this.queued.set(request.id, {
      ...request,
      scheduledMs: atMs,
      startedMs: null,
      finishedMs: null,
      state: { phase: 'NEW', payload: null, error: null },
      version: 0,
    });
    return { ok: true };
  }

  private update(id: string, version: number, state: ActionRecord['state'], atMs: number): MetaOutcome {
    const current = this.queued.get(id);
    if (current === undefined) return this.notQueued(id);
    if (current.version !== version) return { ok: false, code: 'stale', version: current.version };
    if (state.phase === 'NEW') return { ok: false, code: 'bad_transition', from: current.state.phase, to: state.phase };
    const finishing = state.phase === 'DONE' || state.phase === 'FAILED';
    const next: ActionRecord = {
      ...current,
      state,
      version: current.version + 1,
      startedMs: current.startedMs ?? atMs,
      finishedMs: finishing ? atMs : null,
    };
    if (finishing) this.finish(next);
    else this.queued.set(id, next);
    return { ok: true };
  }

  private cancel(id: string, reason: string, atMs: number): MetaOutcome {
    const current = this.queued.get(id);
    if (current === undefined) return this.notQueued(id);
    this.finish({
      ...current,
      state: { phase: 'FAILED', payload: current.state.payload, error: { error_msg: `cancelled: ${reason}` } },
      version: current.version + 1,
      finishedMs: atMs,
    });
    return { ok: true };
  }

  private notQueued(id: string): MetaOutcome {
    const done = this.finished.get(id);
    if (done === undefined) return { ok: false, code: 'unknown_action' };
    return { ok: false, code: 'finished', phase: done.state.phase === 'DONE' ? 'DONE' : 'FAILED' };
  }

  private finish(record: ActionRecord): void {
    this.queued.delete(record.id);
    this.finished.set(record.id, record);
    while (this.finished.size > this.options.actionsFinishedMax) {
      const oldest = this.finished.keys().next();
      if (oldest.done === true) break;
      this.finished.delete(oldest.value);
    }
  }

  /** Drops finished records older than the retention, as the command's time sees it. */
  private prune(nowMs: number): void {
    const cutoff = nowMs - this.options.finishedRetainMs;
    for (const [id, record] of this.finished) {
      if ((record.finishedMs ?? 0) < cutoff) this.finished.delete(id);
    }
  }

  snapshot(): Uint8Array {
    return encodeMetaSnapshot({
      version: 1,
      clusterId: this.clusterIdValue,
      nodes: this.nodes(),
      groups: this.records(),
      replication: [...this.factors].map(([kind, factor]) => ({ kind, factor })),
      queued: this.queue(),
      finished: this.finishedActions(),
      databases: this.databases.snapshot(),
      placement: {
        moves: this.moves(),
        history: this.moveHistory(),
        settings: this.settings,
        loadFailures: this.loadFailures(),
      },
      dbGroupNext: this.dbGroupNext,
    });
  }

  restore(data: Uint8Array): void {
    this.clusterIdValue = '';
    this.nodesById.clear();
    this.groupsById.clear();
    this.factors.clear();
    this.queued.clear();
    this.finished.clear();
    this.databases.restore(undefined);
    this.movesByGroup.clear();
    this.history.length = 0;
    this.failures.length = 0;
    this.settings = {};
    this.dbGroupNext = dbGroupIdFirst;
    if (data.length === 0) return;
    const snapshot = decodeMetaSnapshot(data);
    this.clusterIdValue = snapshot.clusterId;
    for (const node of snapshot.nodes) this.nodesById.set(node.id, node);
    for (const group of snapshot.groups) this.groupsById.set(group.id, group);
    for (const { kind, factor } of snapshot.replication) this.factors.set(kind, factor);
    for (const action of snapshot.queued) this.queued.set(action.id, action);
    for (const action of snapshot.finished) this.finished.set(action.id, action);
    this.databases.restore(snapshot.databases);
    for (const move of snapshot.placement?.moves ?? []) this.movesByGroup.set(move.group, move);
    this.history.push(...(snapshot.placement?.history ?? []));
    this.settings = snapshot.placement?.settings ?? {};
    this.failures.push(...(snapshot.placement?.loadFailures ?? []));
    this.dbGroupNext = Math.max(dbGroupIdFirst, snapshot.dbGroupNext ?? dbGroupIdFirst);
  }
}

/** The database a catalog command changes (none for alias commands). */
function databaseOf(command: DatabasesCommand): string | undefined {
  switch (command.type) {
    case 'db.create':
      return command.spec.name;
    case 'db.stage':
    case 'db.drop':
    case 'db.replica':
      return command.name;
    case 'alias.swap':
    case 'alias.rollback':
      return undefined;
  }
}

/** Whether a schedule with a known id is the same request again (a retry) rather than another action. */
function sameRequest(known: ActionRecord, request: ActionRequest): boolean {
  return (
    known.kind === request.kind &&
    known.node === request.node &&
    known.createdMs === request.createdMs &&
    known.timeoutMs === request.timeoutMs &&
    JSON.stringify(known.args) === JSON.stringify(request.args) &&
    JSON.stringify(known.metadata) === JSON.stringify(request.metadata)
  );
}
