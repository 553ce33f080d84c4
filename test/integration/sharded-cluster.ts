// A sharded database on real processes, for the five-node query test and the query benchmark: a
// real S3 server (s3rver, its own process), sample databases generated on disk
// (examples/sample-db/generate.ts: shards of Parquet events and NDJSON users, global countries and
// products) and uploaded to it, and a dram cluster of `size` processes serving the example endpoints
// with those databases added and loaded. Also the reference a test checks answers against: the
// endpoint run by one local DuckDB engine over every file of the database as one shard (the same
// files, no split, so a reduce that depends on how rows are split into shards would show).
//
// Every wait is a bounded poll. Called by: test/integration/sharded-query.test.ts,
// bench/query-cluster.bench.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSampleDatabase, sampleDefaults, type SampleOptions } from '../../examples/sample-db/generate.ts';
import type { JsonValue } from '../../src/data/query-engine.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';
import { loadEndpoints, type EndpointSet } from '../../src/query/endpoint-loader.ts';
import { localDatabaseFromDirectory } from '../../src/query/local-layout.ts';
import { LocalRunner, type LocalDatabase } from '../../src/query/local-runner.ts';
import type { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import { startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverNodeFlags, s3rverStore } from '../s3/support.ts';
import {
  addDatabase,
  endpointsDir,
  eventually,
  processCluster,
  request,
  type ProcessCluster,
} from './cluster-process.ts';

export { endpointsDir };
const bucket = 'dram-sharded';

export interface ShardedDatabaseSpec {
  readonly name: string;
  readonly sample: Partial<SampleOptions>;
  readonly replicas: number;
}

export interface ShardEntry {
  readonly shard: string;
  readonly version: number;
  readonly members: readonly { readonly node: number; readonly state: string }[];
}

export interface ShardedCluster {
  readonly cluster: ProcessCluster;
  readonly root: string;
  readonly store: S3ObjectStore;
  readonly bucket: string;
  /** The local directory each database was generated in. */
  dir(name: string): string;
  /** The database's current shards as node 1 sees them (`GET /v1/databases/:name/shards`). */
  shards(name: string): Promise<ShardEntry[]>;
  /** Adds `spec` (generated and uploaded beforehand) and waits until every replica is loaded. */
  add(spec: ShardedDatabaseSpec): Promise<void>;
  /** Uploads `dir` under the database's prefix again (a changed object makes the next reload a new version). */
  upload(name: string, dir: string): Promise<void>;
  stop(): Promise<void>;
}

export async function post(
  url: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> & { code?: string } }> {
  const answer = await request(url, 'POST', JSON.stringify(body), 'application/json');
  return { status: answer.status, body: JSON.parse(answer.text) as Record<string, unknown> };
}

/** Waits until every node answers and the meta group has `size` voters and a leader on every node. */
async function metaFormed(cluster: ProcessCluster): Promise<void> {
  await eventually(async () => {
    for (const id of cluster.ids) {
      const status = JSON.parse((await request(`${cluster.url(id)}/v1/status`)).text) as {
        groups: { group: number; leader: number; voters: number[] }[];
      };
      const meta = status.groups.find((group) => group.group === 0);
      if (meta === undefined || meta.leader === 0 || meta.voters.length !== cluster.ids.length) return undefined;
    }
    return true;
  }, 300);
}

/** s3rver, the sample databases of `specs` generated and uploaded, and `size` nodes with the example endpoints. */
export async function startShardedCluster(
  size: number,
  specs: readonly ShardedDatabaseSpec[],
  args: readonly string[] = [],
): Promise<ShardedCluster> {
  const root = mkdtempSync(join(tmpdir(), 'dram-sharded-'));
  const s3: S3rverProcess = await startS3rver({ directory: join(root, 's3'), port: 0, stderr: 'ignore' });
  const store = s3rverStore(s3);
  await store.createBucket(bucket);
  const dir = (name: string): string => join(root, 'db', name);
  const upload = async (name: string, from: string): Promise<void> => {
    await uploadDirectory(store, from, listDirectory(from), { bucket, prefix: `db/${name}/` });
  };
  for (const spec of specs) {
    await generateSampleDatabase(dir(spec.name), { ...sampleDefaults, ...spec.sample });
    await upload(spec.name, dir(spec.name));
  }
  const clusterId = `sharded-${process.pid}-${Date.now()}`;
  const cluster = processCluster(size, {
    args: [...s3rverNodeFlags(s3), '--endpoints', endpointsDir, '--cluster-id', clusterId, ...args],
  });
  await metaFormed(cluster);
  const shards = async (name: string): Promise<ShardEntry[]> => {
    const answer = await request(`${cluster.url(1)}/v1/databases/${name}/shards`);
    const all = (JSON.parse(answer.text) as { shards: ShardEntry[] & { role?: string }[] }).shards;
    const listed = JSON.parse((await request(`${cluster.url(1)}/v1/databases`)).text) as {
      databases: { name: string; version: number }[];
    };
    const version = listed.databases.find((database) => database.name === name)?.version;
    return all.filter((entry) => entry.version === version);
  };
  const add = async (spec: ShardedDatabaseSpec): Promise<void> => {
    await addDatabase(cluster, { name: spec.name, source: `s3://${bucket}/db/${spec.name}/`, replicas: spec.replicas });
    await eventually(async () => {
      const entries = await shards(spec.name).catch(() => []);
      return entries.length > 0 && entries.every((entry) => entry.members.every((member) => member.state === 'loaded'))
        ? true
        : undefined;
    }, 600);
  };
  return {
    cluster,
    root,
    store,
    bucket,
    dir,
    shards,
    add,
    upload,
    async stop() {
      await cluster.stopAll();
      store.close();
      await s3.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The example endpoints run by one DuckDB engine in this process, over a database's files unsplit. */
export class Reference {
  private readonly engine: DuckDbEngine;
  private readonly runner: LocalRunner;

  private constructor(engine: DuckDbEngine, runner: LocalRunner) {
    this.engine = engine;
    this.runner = runner;
  }

  static async open(readable: readonly string[]): Promise<Reference> {
    const engine = await DuckDbEngine.open({ limits: duckDbEngineLimitsDefault, readableDirectories: [...readable] });
    const endpoints: EndpointSet = await loadEndpoints(endpointsDir);
    return new Reference(engine, new LocalRunner({ endpoints, engine }));
  }

  /** The answer over the shards `only` names (all without it), their files taken as one shard. */
  async answer(dir: string, endpoint: string, params: JsonValue, only?: readonly string[]): Promise<JsonValue> {
    const split = localDatabaseFromDirectory(dir, 'reference', '1');
    const shards = split.shards.filter((shard) => only === undefined || only.includes(shard.shard));
    const database: LocalDatabase = {
      ...split,
      shards: [{ shard: 'all', dir, files: shards.flatMap((shard) => shard.files) }],
    };
    return (await this.runner.run({ endpoint, params, database })).result;
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}
