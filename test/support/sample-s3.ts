// A real S3 server (s3rver, its own process) holding a small generated sample database, for the
// ops tests that show databases (the status page, the Prometheus scrape): the server, the
// database's s3:// source, the `dram start` flags that point a node at it, and its stop. Sets the
// s3rver credentials in this process's environment, which the dram processes it starts inherit.
// Called by test/ops/status-page.test.ts, test/ops/prometheus.test.ts,
// test/integration/db-placement.test.ts and test/integration/db-failed-load.test.ts (which deletes
// the shard objects so that a new copy fails to load).

import { join } from 'node:path';
import { generateSampleDatabase, sampleDefaults } from '../../examples/sample-db/generate.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import { startS3rver } from '../../src/s3/s3rver-process.ts';
import { s3rverNodeFlags, s3rverStore } from '../s3/support.ts';

export interface SampleS3 {
  /** `s3://bucket/sample/shop/`: `shards` shards (two unless asked) of 500 events, a few KiB. */
  readonly source: string;
  /** `--s3-endpoint <url> --s3-path-style`. */
  readonly nodeArgs: readonly string[];
  /** Deletes the database's objects outside `global/` (every copy downloaded after this fails); how many went. */
  deleteShardObjects(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts s3rver with its data under `dir` and uploads the sample database. */
export async function startSampleS3(dir: string, shards = 2): Promise<SampleS3> {
  const bucket = 'dram-sample';
  const s3 = await startS3rver({ directory: join(dir, 's3'), port: 0, stderr: 'ignore' });
  const store = s3rverStore(s3);
  try {
    await store.createBucket(bucket);
    const sampleDir = join(dir, 'sample');
    const options = { ...sampleDefaults, seed: 3, shards, eventsPerShard: 500, users: 50, products: 10 };
    await generateSampleDatabase(sampleDir, options);
    await uploadDirectory(store, sampleDir, listDirectory(sampleDir), { bucket, prefix: 'sample/shop/' });
  } catch (error) {
    await s3.stop();
    throw error;
  } finally {
    store.close();
  }
  return {
    source: `s3://${bucket}/sample/shop/`,
    nodeArgs: s3rverNodeFlags(s3),
    deleteShardObjects: async () => {
      const objects = s3rverStore(s3);
      try {
        const keys: string[] = [];
        for await (const page of objects.list(bucket, 'sample/shop/'))
          for (const object of page) if (!object.key.startsWith('sample/shop/global/')) keys.push(object.key);
        for (const key of keys) await objects.delete(bucket, key);
        return keys.length;
      } finally {
        objects.close();
      }
    },
    stop: () => s3.stop(),
  };
}
