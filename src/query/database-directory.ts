// The database directory port: what the query layer needs to know about a database to run a query
// over it, declared here by its user. The database catalog (src/data/, the meta model's databases,
// aliases and replica states) implements it; tests implement it with plain data.
//
// `resolve` takes what a query URL names (a database or an alias) and answers the version to
// serve and, per shard, in shard order: every replica the cluster has of it (member, load state,
// the version it holds) and, when this member has the shard complete on disk at that version, its
// local files. Global data (`global/`) is on every member, so it comes with the view.
//
// A replica is usable for a query when it is `loaded` at the view's version and not marked
// `lagging`; one `loaded` at another version is lagging too (an older version still serving, or a
// newer one this view does not name), and neither is ever chosen. Nothing here decides; src/query/query-service.ts does.
//
// Called by: src/query/query-service.ts. Implemented by: the catalog (wired in src/node/), tests.

import type { NodeId } from '../base/ids.ts';
import type { LocalShard } from './local-runner.ts';

export type ReplicaState = 'loading' | 'loaded' | 'failed';

export interface ShardReplica {
  readonly node: NodeId;
  readonly state: ReplicaState;
  /** The version of the database this replica holds (or is loading). */
  readonly version: string;
  /** The catalog sees this replica behind (its shard group's log lags): never asked while set. */
  readonly lagging?: boolean;
}

export interface DirectoryShard {
  /** The id from the shard's folder name, `shard=<id>`. */
  readonly shard: string;
  readonly replicas: readonly ShardReplica[];
  /** This member's files of the shard at the view's version, complete on disk; undefined when it has none. */
  readonly local: LocalShard | undefined;
}

export interface DatabaseView {
  /** The database's name (an alias resolves to it). */
  readonly name: string;
  /** The version a query of this view serves: every shard's answer comes from this version. */
  readonly version: string;
  readonly globalDir: string | undefined;
  readonly globalFiles: readonly string[];
  /** In shard order: the order of the answers handed to reduce. */
  readonly shards: readonly DirectoryShard[];
  /**
   * For a lazy database: fetches what the named local shards need before map runs, and keeps it on
   * disk until the release it resolves to is called (after map). Rejects with an ObjectStoreError
   * (src/data/object-store.ts) when the object store fails. Absent: nothing to fetch.
   */
  prepare?(shards: readonly string[], signal: AbortSignal): Promise<(() => void) | undefined>;
}

export interface DatabaseDirectory {
  /** The database a name or an alias names now, or undefined when there is none. */
  resolve(nameOrAlias: string): DatabaseView | undefined;
}

/** The directory of a member that knows no database yet (no catalog wired): every name is unknown. */
export const emptyDatabaseDirectory: DatabaseDirectory = { resolve: () => undefined };
