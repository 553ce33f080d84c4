// The model of a database shard's own Raft group (kind `db`, docs/databases.md): the shard's
// manifest per version (the objects a replica downloads, with sizes and ETags) and each replica's
// recorded load state for each version. The group's leader is the shard's PRIMARY; its members are
// the nodes holding a copy.
//
// Pure and deterministic: times travel in the commands (the proposer's clock), never read here.
//
// Invariants:
//  - the model belongs to one shard of one database: the first `shard.version` names them, and a
//    command naming another is refused (`other_shard`) and changes nothing;
//  - at most `shardVersionsMax` versions; a version is recorded once (a second record of a known
//    version changes nothing: its manifest never changes);
//  - a replica state names a version the model holds (`stale` otherwise: a late report of a
//    dropped version never resurrects it); `loading` is never recorded (no record is loading);
//  - `shard.retain` drops the other versions together with their replicas' states;
//  - `shard.forget` drops the states of nodes that left the group (its leader proposes it for a
//    node with a recorded state outside its configuration, src/control/shard-sync.ts), so the
//    states stay those of the group's members, as the catalog's do.
//
// Called by: the multi-Raft host (applyEntry, snapshot, restore), src/control/shard-sync.ts (its
// views), src/node/ (wiring, routes' views).

import type { LogIndex, NodeId } from '../base/ids.ts';
import type { RecordedReplicaState } from '../codec/meta-databases.ts';
import {
  decodeShardCommand,
  decodeShardSnapshot,
  encodeShardSnapshot,
  shardReplicaStatesMax,
  shardRequestOf,
  shardVersionsMax,
  type ShardCommand,
  type ShardReplicaRecord,
  type ShardVersion,
} from '../codec/shard.ts';
import type { Model } from './model.ts';

export const shardModelType = 'db-shard';

export type ShardOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly code: 'other_shard' | 'full' | 'stale' | 'malformed';
      readonly message: string;
    };

export interface ShardReplicaView {
  readonly state: RecordedReplicaState | 'loading';
  readonly error: string | null;
  readonly atMs: number | null;
}

const ok: ShardOutcome = { ok: true };

export class ShardModel implements Model {
  readonly type = shardModelType;
  readonly version = 1;
  private databaseName: string | null = null;
  private shardId: string | null = null;
  private readonly byVersion = new Map<number, ShardVersion>();
  /** Keyed by `${version}/${node}`. */
  private readonly states = new Map<string, ShardReplicaRecord>();

  /** The database this shard belongs to (null until its first version is recorded). */
  get database(): string | null {
    return this.databaseName;
  }

  get shard(): string | null {
    return this.shardId;
  }

  /** The versions held, oldest first. */
  versions(): readonly ShardVersion[] {
    return [...this.byVersion.values()].sort((a, b) => a.version - b.version);
  }

  manifest(version: number): ShardVersion | undefined {
    return this.byVersion.get(version);
  }

  /** A replica's state for a version, `loading` when nothing is recorded. */
  replica(version: number, node: NodeId): ShardReplicaView {
    const found = this.states.get(`${version}/${node}`);
    return found === undefined
      ? { state: 'loading', error: null, atMs: null }
      : { state: found.state, error: found.error, atMs: found.atMs };
  }

  /** Every recorded replica state, by version then node. */
  replicas(): readonly ShardReplicaRecord[] {
    return [...this.states.values()].sort((a, b) => a.version - b.version || a.node - b.node);
  }

  requestKey(data: Uint8Array): string | undefined {
    return shardRequestOf(data);
  }

  applyEntry(_index: LogIndex, data: Uint8Array): ShardOutcome | undefined {
    if (data.length === 0) return undefined; // a leader's empty entry
    let command: ShardCommand;
    try {
      command = decodeShardCommand(data);
    } catch (error) {
      // Validated before proposing; a replica never fails on it.
      return { ok: false, code: 'malformed', message: error instanceof Error ? error.message : String(error) };
    }
    return this.apply(command);
  }

  apply(command: ShardCommand): ShardOutcome {
    switch (command.type) {
      case 'shard.version':
        return this.record(command);
      case 'shard.retain': {
        const kept = new Set(command.versions);
        for (const version of [...this.byVersion.keys()]) if (!kept.has(version)) this.byVersion.delete(version);
        for (const [key, state] of [...this.states]) if (!kept.has(state.version)) this.states.delete(key);
        return ok;
      }
      case 'shard.forget': {
        const gone = new Set<NodeId>(command.nodes);
        for (const [key, state] of [...this.states]) if (gone.has(state.node)) this.states.delete(key);
        return ok;
      }
      case 'shard.replica': {
        if (!this.byVersion.has(command.version))
          return { ok: false, code: 'stale', message: `the shard holds no version ${command.version}` };
        const key = `${command.version}/${command.node}`;
        if (!this.states.has(key) && this.states.size >= shardReplicaStatesMax)
          return { ok: false, code: 'full', message: `more than ${shardReplicaStatesMax} replica states` };
        const { version, node, state, error, atMs } = command;
        this.states.set(key, { version, node, state, error, atMs });
        return ok;
      }
    }
  }

  private record(command: Extract<ShardCommand, { type: 'shard.version' }>): ShardOutcome {
    if (
      (this.databaseName !== null && this.databaseName !== command.database) ||
      (this.shardId !== null && this.shardId !== command.shard)
    )
      return {
        ok: false,
        code: 'other_shard',
        message: `this group holds shard ${this.shardId} of ${this.databaseName}, not ${command.shard} of ${command.database}`,
      };
    if (this.byVersion.has(command.version.version)) return ok;
    if (this.byVersion.size >= shardVersionsMax)
      return { ok: false, code: 'full', message: `the shard holds ${shardVersionsMax} versions` };
    this.databaseName = command.database;
    this.shardId = command.shard;
    this.byVersion.set(command.version.version, command.version);
    return ok;
  }

  snapshot(): Uint8Array {
    return encodeShardSnapshot({
      database: this.databaseName,
      shard: this.shardId,
      versions: this.versions(),
      replicas: this.replicas(),
    });
  }

  restore(data: Uint8Array, version: number): void {
    if (version > this.version)
      throw new Error(`shard model: snapshot version ${version} is newer than ${this.version}`);
    this.databaseName = null;
    this.shardId = null;
    this.byVersion.clear();
    this.states.clear();
    if (data.length === 0) return;
    const snapshot = decodeShardSnapshot(data);
    this.databaseName = snapshot.database;
    this.shardId = snapshot.shard;
    for (const entry of snapshot.versions) this.byVersion.set(entry.version, entry);
    for (const state of snapshot.replicas) this.states.set(`${state.version}/${state.node}`, state);
  }
}
