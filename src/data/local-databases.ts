// The databases this node can query now, as the local runner takes them (LocalDatabase): for a
// database (or an alias of one), its current version's shards that are assigned to this node and
// recorded `loaded`, each with the files of its manifest that are complete on disk, and the global
// files. Built from the catalog and the manifest, never from a directory listing, so a partial or
// stray file is never served. A lazy database's files are all listed, on disk or not: the query
// route fetches what a shard needs before its map runs (the directory's `prepare`).
//
// Called by: the query route (through the node's wiring; src/query/ takes a resolver port).

import type { NodeId } from '../base/ids.ts';
import type { DatabaseRecord, ManifestFile } from '../codec/meta-databases.ts';
import { replicaView, type DatabasesModel } from '../models/meta-databases.ts';
import { isComplete, jobFiles, versionDir } from './database-downloads.ts';
import { join } from 'node:path';

/** One shard's files on this member, as the local runner (src/query/local-runner.ts) takes them. */
export interface LocalShard {
  /** The id from the shard's folder name, `shard=<id>`. */
  readonly shard: string;
  readonly dir: string;
  /** Absolute paths of the shard's files, complete on disk. */
  readonly files: readonly string[];
}

export interface LocalDatabase {
  readonly name: string;
  readonly version: string;
  readonly globalDir: string | undefined;
  readonly globalFiles: readonly string[];
  /** In shard order: the order of the answers handed to reduce. */
  readonly shards: readonly LocalShard[];
}

export interface LocalDatabasesOptions {
  readonly nodeId: NodeId;
  /** `<data dir>/databases`, as the downloads write it. */
  readonly root: string;
  readonly catalog: () => { readonly model: DatabasesModel; readonly active: readonly NodeId[] };
}

export interface LocalResolution {
  /** This node's loaded shards of the current version (none: `database.shards` is empty). */
  readonly database: LocalDatabase;
  /** Every shard of the current version, in shard order. */
  readonly shardsAll: readonly string[];
  /** The shards this node cannot serve (not assigned here, or not loaded yet). */
  readonly shardsMissing: readonly string[];
}

export class LocalDatabases {
  private readonly options: LocalDatabasesOptions;

  constructor(options: LocalDatabasesOptions) {
    this.options = options;
  }

  /** The database by name or alias; undefined when the catalog has no such name. */
  resolve(nameOrAlias: string): LocalResolution | undefined {
    const { model, active } = this.options.catalog();
    const record = model.resolve(nameOrAlias);
    return record === undefined ? undefined : this.build(record, active);
  }

  /** The loaded local databases (those with at least one loaded shard here). */
  loaded(): LocalDatabase[] {
    const { model, active } = this.options.catalog();
    return model
      .databases()
      .map((record) => this.build(record, active).database)
      .filter((database) => database.shards.length > 0);
  }

  private build(record: DatabaseRecord, active: readonly NodeId[]): LocalResolution {
    const version = record.current;
    const node = this.options.nodeId;
    const dir = versionDir(this.options.root, record.name, version.version);
    const assigned = new Set(jobFiles(record, version, node, active).shards);
    const sharded = version.shards.some((shard) => shard.files.some((file) => file.path.startsWith('shard=')));
    const usable = (file: ManifestFile): boolean => record.lazy || isComplete(dir, file);
    const shards: LocalShard[] = [];
    for (const shard of version.shards) {
      if (!assigned.has(shard.shard) || replicaView(record, version.version, shard.shard, node).state !== 'loaded')
        continue;
      shards.push({
        shard: shard.shard,
        dir: sharded ? join(dir, `shard=${shard.shard}`) : dir,
        files: shard.files.filter(usable).map((file) => join(dir, file.path)),
      });
    }
    const held = new Set(shards.map((shard) => shard.shard));
    const hasGlobal = version.global.length > 0 && shards.length > 0;
    return {
      database: {
        name: record.name,
        version: String(version.version),
        globalDir: hasGlobal ? join(dir, 'global') : undefined,
        globalFiles: hasGlobal ? version.global.filter(usable).map((file) => join(dir, file.path)) : [],
        shards,
      },
      shardsAll: version.shards.map((shard) => shard.shard),
      shardsMissing: version.shards.map((shard) => shard.shard).filter((shard) => !held.has(shard)),
    };
  }
}
