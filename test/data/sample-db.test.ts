// The sample database generator (examples/sample-db/): the same seed gives the same bytes, the
// files follow the database layout (shard=<n>/ and global/ only), DuckDB reads back every row
// where it belongs; and uploadDirectory puts it under a prefix, then skips what is unchanged.

import { DuckDBInstance } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSampleDatabase, sampleDefaults, type SampleFile } from '../../examples/sample-db/generate.ts';
import { MemoryObjectStore } from '../../src/data/memory-object-store.ts';
import { listAll } from '../../src/data/object-store.ts';
import { uploadDirectory } from '../../src/data/upload-directory.ts';

const root = mkdtempSync(join(tmpdir(), 'dram-sample-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const small = { ...sampleDefaults, seed: 7, shards: 3, eventsPerShard: 2_000, users: 300, products: 40 };

function digests(dir: string, files: readonly SampleFile[]): string[] {
  return files.map(
    (file) =>
      `${file.path} ${createHash('sha256')
        .update(readFileSync(join(dir, file.path)))
        .digest('hex')}`,
  );
}

async function query(sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRows();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe('sample database', () => {
  it('is the same bytes for the same seed, and different for another', async () => {
    const first = await generateSampleDatabase(join(root, 'a'), small);
    const second = await generateSampleDatabase(join(root, 'b'), small);
    expect(digests(join(root, 'b'), second)).toEqual(digests(join(root, 'a'), first));
    const other = await generateSampleDatabase(join(root, 'c'), { ...small, seed: 8 });
    expect(digests(join(root, 'c'), other)).not.toEqual(digests(join(root, 'a'), first));
  });

  it('follows the database layout, and every row is where it belongs', async () => {
    const dir = join(root, 'layout');
    const files = await generateSampleDatabase(dir, small);
    expect(files.map((file) => file.path)).toEqual([
      'global/countries.ndjson',
      'global/products.parquet',
      ...[1, 2, 3].flatMap((shard) => [
        `shard=${shard}/events-0.parquet`,
        `shard=${shard}/events-1.parquet`,
        `shard=${shard}/users.ndjson`,
      ]),
    ]);
    const events = await query(
      `SELECT shard, count(*), count(*) FILTER (WHERE user_id % 3 <> shard - 1) FROM (
         SELECT regexp_extract(filename, 'shard=(\\d+)', 1)::INTEGER AS shard, user_id
         FROM read_parquet('${dir}/shard=*/events-*.parquet', filename = true)
       ) GROUP BY shard ORDER BY shard`,
    );
    expect(events).toEqual([1, 2, 3].map((shard) => [shard, 2_000n, 0n]));
    const users = await query(
      `SELECT count(*), count(DISTINCT user_id), count(*) FILTER (WHERE user_id % 3 <> regexp_extract(filename, 'shard=(\\d+)', 1)::INTEGER - 1)
       FROM read_json('${dir}/shard=*/users.ndjson', filename = true)`,
    );
    expect(users).toEqual([[300n, 300n, 0n]]);
    const purchases = await query(
      `SELECT count(*) FILTER (WHERE kind = 'purchase' AND amount_cents <> quantity * p.price_cents),
              count(*) FILTER (WHERE kind <> 'purchase' AND amount_cents <> 0)
       FROM read_parquet('${dir}/shard=*/events-*.parquet') e JOIN read_parquet('${dir}/global/products.parquet') p USING (product_id)`,
    );
    expect(purchases).toEqual([[0n, 0n]]);
  });

  it('uploads under a prefix, then uploads only what changed', async () => {
    const dir = join(root, 'upload');
    const files = await generateSampleDatabase(dir, small);
    const store = new MemoryObjectStore();
    await store.createBucket('sample-bucket');
    const target = { bucket: 'sample-bucket', prefix: 'sample/shop' };
    const first = await uploadDirectory(store, dir, files, target);
    expect(first).toMatchObject({ uploaded: files.length, skipped: 0 });
    const listed = await listAll(store, 'sample-bucket', 'sample/shop/', 100);
    expect(listed.map((object) => [object.key, object.bytes])).toEqual(
      files.map((file) => [`sample/shop/${file.path}`, file.bytes]),
    );
    writeFileSync(join(dir, 'global', 'countries.ndjson'), '{"code":"XX"}\n');
    const second = await uploadDirectory(store, dir, files, target);
    expect(second).toEqual({ uploaded: 1, skipped: files.length - 1, bytes: 14 });
  });
});
