// The query layer's database directory (src/query/database-directory.ts) answered from the catalog
// (the meta model's databases part): for a database or an alias, its current version, and per
// shard, every member the catalog assigns it to with that member's recorded load state, and this
// member's files when it holds the shard loaded (LocalDatabases: only files of the manifest that
// are complete on disk). A replica `evicted` is not usable, so the query layer sees it as failed.
// For a lazy database, `prepare` has the download controller fetch the named shards' files (and
// the global files) into its cache and pin them while map runs.
//
// Called by: src/node/node.ts (the query wiring's directory once the catalog is open).

import type { NodeId } from '../base/ids.ts';
import type { LocalDatabases } from '../data/local-databases.ts';
import { assignedNodes, replicaView, type DatabasesModel } from '../models/meta-databases.ts';
import type { DatabaseDirectory, DatabaseView, ReplicaState } from '../query/database-directory.ts';

export interface CatalogDirectoryOptions {
  readonly catalog: () => { readonly model: DatabasesModel; readonly active: readonly NodeId[] };
  readonly local: Pick<LocalDatabases, 'resolve'>;
  /** Fetches (or finds cached) a lazy database version's files, pinned until the release (DatabaseDownloads.ensureLazy). */
  readonly ensureLazy?: (database: string, version: number, paths: readonly string[]) => Promise<() => void>;
}

export function catalogDirectory(options: CatalogDirectoryOptions): DatabaseDirectory {
  return {
    resolve(nameOrAlias: string): DatabaseView | undefined {
      const { model, active } = options.catalog();
      const record = model.resolve(nameOrAlias);
      const local = options.local.resolve(nameOrAlias);
      if (record === undefined || local === undefined) return undefined;
      const version = record.current;
      const localShards = new Map(local.database.shards.map((shard) => [shard.shard, shard]));
      const ensureLazy = options.ensureLazy;
      const prepare =
        record.lazy && ensureLazy !== undefined
          ? async (shards: readonly string[]) => {
              const wanted = new Set(shards);
              const paths = [
                ...version.global,
                ...version.shards.filter((shard) => wanted.has(shard.shard)).flatMap((shard) => shard.files),
              ].map((file) => file.path);
              return ensureLazy(record.name, version.version, paths);
            }
          : undefined;
      return {
        ...(prepare === undefined ? {} : { prepare }),
        name: record.name,
        version: String(version.version),
        globalDir: local.database.globalDir,
        globalFiles: local.database.globalFiles,
        shards: version.shards.map((shard) => ({
          shard: shard.shard,
          replicas: assignedNodes(version, shard.shard, record.replicas, active).map((node) => {
            const recorded = replicaView(record, version.version, shard.shard, node).state;
            const state: ReplicaState = recorded === 'evicted' ? 'failed' : recorded;
            return { node, state, version: String(version.version) };
          }),
          local: localShards.get(shard.shard),
        })),
      };
    },
  };
}
