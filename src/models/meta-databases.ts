// The database catalog: databases (S3 source, manifest per version, placement of each shard), the
// replicas' recorded load states, and the aliases. A part of the meta model (group 0), kept in its
// own files with its own commands (src/codec/meta-databases.ts) so it can move into per-shard groups
// later: each shard's manifest and replica states would become that group's model, while names,
// versions and aliases stay here. Until then the whole catalog is replicated on every node.
//
// Pure and deterministic, like the meta model: the registered nodes a command needs (for
// `replicas: "all"`) come from the meta model in the call, times come in the commands.
//
// Invariants:
//  - a name is in the catalog at most once; at most `databasesMax` databases, `aliasesMax` aliases;
//  - a replica state names a version the database has (current or next) and a node assigned to
//    the shard; others are refused (`stale`) and change nothing: a late report of a dropped or
//    replaced version never resurrects it;
//  - `loading` is never recorded: an assigned replica without a record is loading;
//  - a reload's version (`next`) becomes current once every shard of it is loaded on its required
//    number of copies; the old version's states go with it (its files are then deleted by each node);
//  - an alias points at a database that is loaded (current version) on its required copies; a swap
//    applies all its changes or none;
//  - a shard's placement (with a number of replicas) is its Raft group's recorded replicas plus the
//    node a placement move in progress adds (`placeShard`, kept so by src/models/meta.ts): the
//    placement planner moves shard groups, and the catalog follows.
//
// Called by: src/models/meta.ts (apply, snapshot, restore), src/control/database-steps.ts,
// src/data/ (downloads, local databases), src/api/ (database and alias routes).

import type { NodeId } from '../base/ids.ts';
import {
  aliasesMax,
  databasesMax,
  type AliasChange,
  type DatabaseRecord,
  type DatabasesCommand,
  type DatabasesSnapshot,
  type DatabaseVersion,
  type ReplicaRecord,
  type Replicas,
  type ReplicaState,
} from '../codec/meta-databases.ts';

export type DatabasesRefusal = 'exists' | 'unknown' | 'not_loaded' | 'full' | 'stale' | 'alias_unknown';

export type DatabasesOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'database'; readonly reason: DatabasesRefusal; readonly message: string };

const ok: DatabasesOutcome = { ok: true };

function refused(reason: DatabasesRefusal, message: string): DatabasesOutcome {
  return { ok: false, code: 'database', reason, message };
}

/** The nodes that hold a shard of a version: its placement, or every active node for "all". */
export function assignedNodes(
  version: DatabaseVersion,
  shard: string,
  replicas: Replicas,
  active: readonly NodeId[],
): readonly NodeId[] {
  if (replicas === 'all') return active;
  return version.shards.find((entry) => entry.shard === shard)?.nodes ?? [];
}

/** How many loaded copies of each shard a version needs to serve (and to take an alias). */
export function requiredCopies(replicas: Replicas, active: readonly NodeId[]): number {
  return replicas === 'all' ? Math.max(1, active.length) : replicas;
}

export interface ReplicaView {
  readonly state: ReplicaState;
  readonly error: string | null;
  readonly atMs: number | null;
}

/** A replica's state as recorded, `loading` when nothing is recorded yet. */
export function replicaView(record: DatabaseRecord, version: number, shard: string, node: NodeId): ReplicaView {
  const found = record.replicaStates.find(
    (state) => state.version === version && state.shard === shard && state.node === node,
  );
  return found === undefined
    ? { state: 'loading', error: null, atMs: null }
    : { state: found.state, error: found.error, atMs: found.atMs };
}

/**
 * The version a new copy of the shard must load to count (to be promoted by a placement move):
 * the current one when it has the shard, else the next (a shard only a reload brings).
 */
export function shardLoadVersion(record: DatabaseRecord, shard: string): number | undefined {
  for (const version of [record.current, record.next])
    if (version?.shards.some((part) => part.shard === shard) === true) return version.version;
  return undefined;
}

/** Loaded copies of each shard of the version, by shard id. */
export function loadedCopies(
  record: DatabaseRecord,
  version: DatabaseVersion,
  active: readonly NodeId[],
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const shard of version.shards) {
    const nodes = assignedNodes(version, shard.shard, record.replicas, active);
    counts.set(
      shard.shard,
      nodes.filter((node) => replicaView(record, version.version, shard.shard, node).state === 'loaded').length,
    );
  }
  return counts;
}

/** Whether every shard of the version is loaded on its required number of copies. */
export function versionLoaded(record: DatabaseRecord, version: DatabaseVersion, active: readonly NodeId[]): boolean {
  const required = requiredCopies(record.replicas, active);
  return [...loadedCopies(record, version, active).values()].every((count) => count >= required);
}

/** Shard replicas each node holds across the catalog (current and next versions). */
export function nodeLoads(databases: readonly DatabaseRecord[]): Map<NodeId, number> {
  const loads = new Map<NodeId, number>();
  for (const record of databases)
    for (const version of [record.current, record.next])
      for (const shard of version?.shards ?? [])
        for (const node of shard.nodes) loads.set(node, (loads.get(node) ?? 0) + 1);
  return loads;
}

/**
 * Places each shard on `replicas` of the candidates: the least loaded first (load counted across the
 * catalog and the shards placed so far), ties by node id; deterministic. A shard already placed
 * (`keep`, a reload) keeps those of its nodes that are still candidates. Undefined when there are
 * fewer candidates than replicas.
 */
export function placeShards(
  shards: readonly string[],
  replicas: number,
  candidates: readonly NodeId[],
  loads: ReadonlyMap<NodeId, number>,
  keep: ReadonlyMap<string, readonly NodeId[]> = new Map(),
): Map<string, NodeId[]> | undefined {
  if (candidates.length < replicas) return undefined;
  const load = new Map(candidates.map((node) => [node, loads.get(node) ?? 0]));
  const placed = new Map<string, NodeId[]>();
  for (const shard of shards) {
    const chosen = (keep.get(shard) ?? []).filter((node) => load.has(node)).slice(0, replicas);
    const rest = [...load.keys()]
      .filter((node) => !chosen.includes(node))
      .sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a - b);
    while (chosen.length < replicas) {
      const node = rest.shift();
      if (node === undefined) return undefined;
      chosen.push(node);
      load.set(node, (load.get(node) ?? 0) + 1);
    }
    placed.set(
      shard,
      chosen.sort((a, b) => a - b),
    );
  }
  return placed;
}

export class DatabasesModel {
  private readonly byName = new Map<string, DatabaseRecord>();
  private readonly aliasMap = new Map<string, string>();
  private previous: Map<string, string> | null = null;

  databases(): readonly DatabaseRecord[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  database(name: string): DatabaseRecord | undefined {
    return this.byName.get(name);
  }

  aliases(): readonly { readonly alias: string; readonly database: string }[] {
    return [...this.aliasMap]
      .map(([alias, database]) => ({ alias, database }))
      .sort((a, b) => (a.alias < b.alias ? -1 : 1));
  }

  /** The mapping a rollback would restore, or null when there was no swap yet. */
  previousAliases(): readonly { readonly alias: string; readonly database: string }[] | null {
    return this.previous === null ? null : [...this.previous].map(([alias, database]) => ({ alias, database }));
  }

  /** A database by its name, or by an alias pointing at it. */
  resolve(nameOrAlias: string): DatabaseRecord | undefined {
    return this.byName.get(nameOrAlias) ?? this.byName.get(this.aliasMap.get(nameOrAlias) ?? '');
  }

  /** `active`: the registered ACTIVE nodes, in id order (what `replicas: "all"` means now). */
  apply(command: DatabasesCommand, active: readonly NodeId[]): DatabasesOutcome {
    switch (command.type) {
      case 'db.create': {
        const name = command.spec.name;
        if (this.byName.has(name) || this.aliasMap.has(name))
          return refused('exists', `a database or alias named ${name} exists`);
        if (this.byName.size >= databasesMax) return refused('full', `the catalog holds ${databasesMax} databases`);
        this.byName.set(name, {
          ...command.spec,
          createdMs: command.atMs,
          current: command.version,
          next: null,
          replicaStates: [],
        });
        return ok;
      }
      case 'db.stage': {
        const record = this.byName.get(command.name);
        if (record === undefined) return refused('unknown', `no database ${command.name}`);
        const newest = Math.max(record.current.version, record.next?.version ?? 0);
        if (command.version.version <= newest) return refused('stale', `version ${command.version.version} is not new`);
        const replaced = record.next?.version;
        this.byName.set(command.name, {
          ...record,
          next: command.version,
          replicaStates: record.replicaStates.filter((state) => state.version !== replaced),
        });
        return ok;
      }
      case 'db.drop': {
        if (!this.byName.delete(command.name)) return refused('unknown', `no database ${command.name}`);
        for (const [alias, database] of this.aliasMap) if (database === command.name) this.aliasMap.delete(alias);
        return ok;
      }
      case 'db.replica':
        return this.replica(command, active);
      case 'alias.swap':
        return this.swap(command.changes, active);
      case 'alias.rollback': {
        if (this.previous === null) return refused('alias_unknown', 'no alias swap to roll back');
        const back = [...this.previous]
          .filter(([, database]) => this.byName.has(database))
          .map(([alias, database]) => ({ op: 'add' as const, alias, database }));
        const removes = [...this.aliasMap].map(([alias, database]) => ({ op: 'remove' as const, alias, database }));
        return this.swap([...removes, ...back], active);
      }
    }
  }

  /**
   * Places a shard (of the current and next versions) on exactly `nodes`, as its Raft group's
   * record and a placement move in progress say (src/models/meta.ts): a node added downloads it
   * (no state recorded: loading), a node removed loses its recorded states (its files are deleted
   * by its download controller). Nothing changes for `replicas: "all"` (every ACTIVE node holds
   * every shard) or for no nodes. Returns the states dropped.
   */
  placeShard(name: string, shard: string, nodes: readonly NodeId[]): readonly ReplicaRecord[] {
    const record = this.byName.get(name);
    if (record === undefined || record.replicas === 'all' || nodes.length === 0) return [];
    const place = (version: DatabaseVersion): DatabaseVersion => ({
      ...version,
      shards: version.shards.map((entry) => (entry.shard === shard ? { ...entry, nodes: [...nodes] } : entry)),
    });
    this.byName.set(name, {
      ...record,
      current: place(record.current),
      next: record.next === null ? null : place(record.next),
      replicaStates: record.replicaStates.filter((state) => state.shard !== shard || nodes.includes(state.node)),
    });
    return record.replicaStates.filter((state) => state.shard === shard && !nodes.includes(state.node));
  }

  private replica(
    command: Extract<DatabasesCommand, { type: 'db.replica' }>,
    active: readonly NodeId[],
  ): DatabasesOutcome {
    const record = this.byName.get(command.name);
    if (record === undefined) return refused('stale', `no database ${command.name}`);
    const version = [record.current, record.next].find((entry) => entry?.version === command.version);
    if (version === undefined || version === null)
      return refused('stale', `${command.name} has no version ${command.version}`);
    for (const shard of command.shards) {
      if (!version.shards.some((entry) => entry.shard === shard))
        return refused('stale', `version ${command.version} has no shard ${shard}`);
      if (!assignedNodes(version, shard, record.replicas, active).includes(command.node))
        return refused('stale', `node ${command.node} holds no copy of shard ${shard}`);
    }
    const touched = (state: { version: number; shard: string; node: NodeId }): boolean =>
      state.version === command.version && state.node === command.node && command.shards.includes(state.shard);
    let next: DatabaseRecord = {
      ...record,
      replicaStates: [
        ...record.replicaStates.filter((state) => !touched(state)),
        ...command.shards.map((shard) => ({
          version: command.version,
          shard,
          node: command.node,
          state: command.state,
          error: command.error,
          atMs: command.atMs,
        })),
      ],
    };
    // A reload's version loaded on enough copies replaces the current one.
    if (next.next !== null && versionLoaded(next, next.next, active)) {
      const promoted = next.next;
      next = {
        ...next,
        current: promoted,
        next: null,
        replicaStates: next.replicaStates.filter((state) => state.version === promoted.version),
      };
    }
    this.byName.set(command.name, next);
    return ok;
  }

  private swap(changes: readonly AliasChange[], active: readonly NodeId[]): DatabasesOutcome {
    const after = new Map(this.aliasMap);
    for (const change of changes) {
      if (change.op === 'remove') {
        if (after.get(change.alias) !== change.database)
          return refused('alias_unknown', `alias ${change.alias} does not point at ${change.database}`);
        after.delete(change.alias);
        continue;
      }
      const record = this.byName.get(change.database);
      if (record === undefined) return refused('unknown', `no database ${change.database}`);
      if (this.byName.has(change.alias)) return refused('exists', `${change.alias} is a database name`);
      if (!versionLoaded(record, record.current, active))
        return refused(
          'not_loaded',
          `${change.database} is not loaded on ${requiredCopies(record.replicas, active)} copies of every shard`,
        );
      after.set(change.alias, change.database);
    }
    if (after.size > aliasesMax) return refused('full', `more than ${aliasesMax} aliases`);
    this.previous = new Map(this.aliasMap);
    this.aliasMap.clear();
    for (const [alias, database] of after) this.aliasMap.set(alias, database);
    return ok;
  }

  snapshot(): DatabasesSnapshot {
    return { databases: this.databases(), aliases: this.aliases(), previousAliases: this.previousAliases() };
  }

  restore(snapshot: DatabasesSnapshot | undefined): void {
    this.byName.clear();
    this.aliasMap.clear();
    this.previous = null;
    if (snapshot === undefined) return;
    for (const record of snapshot.databases) this.byName.set(record.name, record);
    for (const { alias, database } of snapshot.aliases) this.aliasMap.set(alias, database);
    if (snapshot.previousAliases !== null)
      this.previous = new Map(snapshot.previousAliases.map(({ alias, database }) => [alias, database]));
  }
}
