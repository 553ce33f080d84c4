// What the database routes need from a node beyond the meta model: a check of a source before a
// database is added (does the bucket exist, is there an object under the prefix), and this node's
// download progress and its replicas of the database's shard groups. Declared here, with the downloads, so the API (its user) and src/node/ (which
// implements it over the S3 adapter) both import it from the data layer.
//
// Called by: src/api/database-routes.ts; implemented by src/node/databases.ts.

import type { ShardGroupReport } from '../control/shard-roles.ts';
import type { JobProgress } from './database-downloads.ts';
import type { QueryFigures } from './query-stats.ts';

/** Why a source cannot be added, by the object store's answer to a first listing. */
export type SourceCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly kind: 'not_found' | 'denied' | 'unavailable'; readonly message: string };

export interface DatabasePort {
  checkSource(bucket: string, prefix: string): Promise<SourceCheck>;
  progress(name: string): readonly JobProgress[];
  /** The queries of the database this node took. */
  queries(name: string): QueryFigures;
  /** This node's replicas of the database's shard groups (role, leader, term, commit, applied). */
  shardGroups?(name: string): readonly ShardGroupReport[];
}
