// Wires the database part of one node: the S3 adapter (from --s3-endpoint, --s3-region,
// --s3-path-style; credentials from the AWS chain), the download controller over the meta model's
// catalog (replica states proposed from any node, forwarded to the meta leader), the shard sync
// loop that records the catalog's manifests and this node's load states in the shard groups hosted
// here (src/node/shard-sync.ts), the local database
// resolver the query route takes, and the ports the API and the meta controller use (the source
// check before db.add is scheduled, the listing in its step, this node's progress).
//
// Called by: src/node/node.ts.

import { join } from 'node:path';
import type { NodeId } from '../base/ids.ts';
import type { MetaCommand } from '../codec/meta.ts';
import type { DatabaseStepContext } from '../control/database-steps.ts';
import { DatabaseDownloads, type DownloadEvent, type DownloadLimits } from '../data/database-downloads.ts';
import { lazyLimitsDefault } from '../data/lazy-cache.ts';
import { QueryStats } from '../data/query-stats.ts';
import type { DatabasePort, SourceCheck } from '../data/database-port.ts';
import { LocalDatabases } from '../data/local-databases.ts';
import { isObjectStoreError, listAll } from '../data/object-store.ts';
import type { MetaModel } from '../models/meta.ts';
import { replicaStates } from '../codec/meta-databases.ts';
import type { CatalogStats } from '../metrics/registry.ts';
import { assignedNodes, replicaView, requiredCopies } from '../models/meta-databases.ts';
import { S3ObjectStore, s3SettingsDefault } from '../s3/s3-object-store.ts';
import { shardGroupReports, ShardSync, type ShardSyncHost } from './shard-sync.ts';
import type { S3Location } from './config.ts';

/** The catalog's replica counts for the metrics (current versions): per shard by state, and desired. */
export function catalogStats(model: MetaModel): CatalogStats {
  const active = model.activeNodes();
  const shards: { database: string; shard: string; state: string; replicas: number }[] = [];
  const desired = model.databases.databases().map((record) => {
    const version = record.current;
    for (const shard of version.shards) {
      const counts = new Map<string, number>(replicaStates.map((state) => [state, 0]));
      for (const node of assignedNodes(version, shard.shard, record.replicas, active)) {
        const state = replicaView(record, version.version, shard.shard, node).state;
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, replicas] of counts)
        shards.push({ database: record.name, shard: shard.shard, state, replicas });
    }
    return { database: record.name, replicas: requiredCopies(record.replicas, active) };
  });
  return { shards, desired };
}

export interface NodeDatabases {
  readonly port: DatabasePort;
  readonly listObjects: DatabaseStepContext['listObjects'];
  readonly local: LocalDatabases;
  readonly downloads: DatabaseDownloads;
  /** A query this node took, by the name or alias asked (counted under the database it names now). */
  observeQuery(nameOrAlias: string, ms: number, ok: boolean): void;
  /** Starts the download controller and the shard sync loop. */
  start(): void;
  stop(): void;
}

export interface NodeDatabasesOptions {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly s3: S3Location;
  readonly model: MetaModel;
  /** Whether the meta model here has applied what group 0 has committed (and group 0 has a leader). */
  readonly catalogCurrent: () => boolean;
  /** Proposes a meta command from this node (forwarded to the meta leader); true when applied ok. */
  readonly proposeAnywhere: (command: MetaCommand) => Promise<boolean>;
  /** The host, for the shard groups hosted here (absent: no shard sync, e.g. in a test). */
  readonly host?: ShardSyncHost;
  readonly limits?: DownloadLimits;
  readonly log: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
  readonly onBytes?: (database: string, bytes: number) => void;
  readonly onEvent?: (database: string, event: DownloadEvent) => void;
  readonly onQuery?: (database: string, ms: number, ok: boolean) => void;
  /** Bytes of lazy databases' data files kept on this node. */
  readonly lazyCacheBytes?: number;
}

function shardSync(options: NodeDatabasesOptions): ShardSync | undefined {
  if (options.host === undefined) return undefined;
  const { nodeId: self, host, model: meta, catalogCurrent, log } = options;
  return new ShardSync({ self, host, meta, catalogCurrent, log });
}

export function nodeDatabases(options: NodeDatabasesOptions): NodeDatabases {
  const store = new S3ObjectStore({
    ...s3SettingsDefault,
    ...(options.s3.endpoint === undefined ? {} : { endpoint: options.s3.endpoint }),
    region: options.s3.region,
    pathStyle: options.s3.pathStyle,
  });
  const root = join(options.dataDir, 'databases');
  const model = options.model;
  const downloads = new DatabaseDownloads({
    nodeId: options.nodeId,
    root,
    store,
    catalog: () => ({ databases: model.databases.databases(), active: model.activeNodes() }),
    catalogCurrent: options.catalogCurrent,
    record: (command) => options.proposeAnywhere({ type: 'databases', command }),
    nowMs: () => Date.now(),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    log: options.log,
    ...(options.onBytes === undefined ? {} : { onBytes: options.onBytes }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    lazy: { ...lazyLimitsDefault, cacheBytesMax: options.lazyCacheBytes ?? lazyLimitsDefault.cacheBytesMax },
  });
  const queries = new QueryStats();
  const local = new LocalDatabases({
    nodeId: options.nodeId,
    root,
    catalog: () => ({ model: model.databases, active: model.activeNodes() }),
  });
  const checkSource = sourceChecker(store);
  const sync = shardSync(options);
  return {
    port: {
      checkSource,
      progress: (name) => downloads.progress(name),
      queries: (name) => queries.figures(name),
      shardGroups: (name) => (options.host === undefined ? [] : shardGroupReports(options.host, model, name)),
    },
    observeQuery: (nameOrAlias, ms, ok) => {
      const name = model.databases.resolve(nameOrAlias)?.name;
      if (name === undefined) return;
      queries.keepOnly(new Set(model.databases.databases().map((record) => record.name)));
      queries.observe(name, ms, ok);
      options.onQuery?.(name, ms, ok);
    },
    listObjects: async (bucket, prefix, objectsMax) => {
      try {
        return await listAll(store, bucket, prefix, objectsMax);
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    },
    local,
    downloads,
    start: () => {
      downloads.start();
      sync?.start();
    },
    stop: () => {
      void sync?.stop();
      downloads.stop();
      store.close();
    },
  };
}

/** Whether a source can be added: the first listing page shows the bucket and an object under the prefix. */
function sourceChecker(store: S3ObjectStore): (bucket: string, prefix: string) => Promise<SourceCheck> {
  return async (bucket, prefix) => {
    try {
      for await (const page of store.list(bucket, prefix, { pageKeys: 1 })) if (page.length > 0) return { ok: true };
      return { ok: false, kind: 'not_found', message: `no object under s3://${bucket}/${prefix}` };
    } catch (error) {
      if (!isObjectStoreError(error)) throw error;
      const kind =
        error.code === 'DRAM_ERR_S3_NO_BUCKET' || error.code === 'DRAM_ERR_S3_NOT_FOUND'
          ? 'not_found'
          : error.code === 'DRAM_ERR_S3_ACCESS_DENIED'
            ? 'denied'
            : 'unavailable';
      return { ok: false, kind, message: `s3://${bucket}/${prefix}: ${error.message}` };
    }
  };
}
