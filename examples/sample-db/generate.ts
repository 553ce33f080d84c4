// The sample database: a small web shop's events, written in dram's database layout so that
// `npm start` and the tests have something real to load and query. Deterministic: the same seed and
// sizes give the same rows (a seeded generator, no clock), and DuckDB writes the Parquet files on one
// thread, so the same files.
//
// Layout (a database is a prefix; README.md in this folder describes every column):
//   shard=<n>/events-<k>.parquet   page views, cart adds and purchases of the users of shard n
//   shard=<n>/users.ndjson         those users (user n lives on shard (user_id % shards) + 1)
//   global/products.parquet        every product (on every member)
//   global/countries.ndjson        every country (on every member)
//
// Run: `npx tsx examples/sample-db/generate.ts --out DIR [--seed N] [--shards N] [--events N]`
// (events per shard); `dram dev` runs it once and keeps the result under its data dir.

import { DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createRng, type Rng } from '../../src/base/rng.ts';
import { listDirectory, type UploadFile } from '../../src/data/upload-directory.ts';

export interface SampleOptions {
  readonly seed: number;
  readonly shards: number;
  readonly eventsPerShard: number;
  /** Parquet files per shard (the events are split evenly between them). */
  readonly filesPerShard: number;
  readonly users: number;
  readonly products: number;
}

/** About 4 MB on disk in all. */
export const sampleDefaults: SampleOptions = {
  seed: 20261205,
  shards: 4,
  eventsPerShard: 80_000,
  filesPerShard: 2,
  users: 4_000,
  products: 500,
};

/** Limits that keep a mistyped flag from filling the disk. */
const shardsMax = 64;
const eventsPerShardMax = 5_000_000;

/** A file of the database: its path under the root (the object key under the prefix) and size. */
export type SampleFile = UploadFile;

const countries = [
  { code: 'DE', name: 'Germany', region: 'Europe' },
  { code: 'FR', name: 'France', region: 'Europe' },
  { code: 'GB', name: 'United Kingdom', region: 'Europe' },
  { code: 'NL', name: 'Netherlands', region: 'Europe' },
  { code: 'US', name: 'United States', region: 'Americas' },
  { code: 'BR', name: 'Brazil', region: 'Americas' },
  { code: 'CA', name: 'Canada', region: 'Americas' },
  { code: 'JP', name: 'Japan', region: 'Asia' },
  { code: 'IN', name: 'India', region: 'Asia' },
  { code: 'AU', name: 'Australia', region: 'Oceania' },
] as const;
/** How likely each country is, in the order above (a shop with a European lean). */
const countryWeights = [20, 10, 12, 6, 25, 6, 5, 7, 6, 3];
const categories = ['books', 'games', 'garden', 'kitchen', 'music', 'outdoor', 'toys'] as const;
const kinds = ['view', 'cart', 'purchase'] as const;
const kindWeights = [80, 14, 6];
/** Events fall in November 2026, UTC. */
const periodStartMs = Date.UTC(2026, 10, 1);
const periodMs = 30 * 24 * 3600 * 1000;

function pick<T>(rng: Rng, items: readonly T[], weights: readonly number[]): T {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let roll = rng.int(total);
  for (let index = 0; index < items.length; index++) {
    roll -= weights[index] ?? 0;
    if (roll < 0) return items[index] as T;
  }
  return items[items.length - 1] as T;
}

/** A SQL string literal (paths may hold quotes). */
function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function ndjson(rows: readonly object[]): string {
  return rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
}

/** Writes the sample database under `dir` (emptied first) and lists its files. */
export async function generateSampleDatabase(
  dir: string,
  options: SampleOptions = sampleDefaults,
): Promise<SampleFile[]> {
  if (!Number.isInteger(options.shards) || options.shards < 1 || options.shards > shardsMax)
    throw new Error(`shards must be 1 to ${shardsMax}`);
  if (
    !Number.isInteger(options.eventsPerShard) ||
    options.eventsPerShard < 1 ||
    options.eventsPerShard > eventsPerShardMax
  )
    throw new Error(`events per shard must be 1 to ${eventsPerShardMax}`);
  rmSync(dir, { recursive: true, force: true });
  const scratch = join(dir, '.scratch');
  mkdirSync(scratch, { recursive: true });
  const rng = createRng(options.seed);
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  try {
    const products = Array.from({ length: options.products }, (_, index) => ({
      product_id: index + 1,
      name: `product ${index + 1}`,
      category: categories[rng.int(categories.length)] ?? 'books',
      price_cents: 199 + rng.int(20_000),
    }));
    const users = Array.from({ length: options.users }, (_, index) => ({
      user_id: index + 1,
      name: `user ${index + 1}`,
      country: pick(
        rng,
        countries.map((country) => country.code),
        countryWeights,
      ),
      signup_date: new Date(periodStartMs - (1 + rng.int(700)) * 24 * 3600 * 1000).toISOString().slice(0, 10),
    }));
    mkdirSync(join(dir, 'global'), { recursive: true });
    writeFileSync(join(dir, 'global', 'countries.ndjson'), ndjson(countries));
    const productsScratch = join(scratch, 'products.ndjson');
    writeFileSync(productsScratch, ndjson(products));
    await connection.run(
      `COPY (SELECT * FROM read_json(${sqlString(productsScratch)}, format = 'newline_delimited', columns = {product_id: 'INTEGER', name: 'VARCHAR', category: 'VARCHAR', price_cents: 'BIGINT'}) ORDER BY product_id)
       TO ${sqlString(join(dir, 'global', 'products.parquet'))} (FORMAT parquet, COMPRESSION zstd)`,
    );
    for (let shard = 1; shard <= options.shards; shard++) {
      const shardDir = join(dir, `shard=${shard}`);
      mkdirSync(shardDir, { recursive: true });
      const own = users.filter((user) => user.user_id % options.shards === shard - 1);
      writeFileSync(join(shardDir, 'users.ndjson'), ndjson(own));
      await writeEvents(connection, rng, { shardDir, scratch, own, products, options });
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
    rmSync(scratch, { recursive: true, force: true });
  }
  return listDirectory(dir);
}

interface EventsInput {
  readonly shardDir: string;
  readonly scratch: string;
  readonly own: readonly { readonly user_id: number; readonly country: string }[];
  readonly products: readonly { readonly product_id: number; readonly price_cents: number }[];
  readonly options: SampleOptions;
}

async function writeEvents(
  connection: Awaited<ReturnType<DuckDBInstance['connect']>>,
  rng: Rng,
  input: EventsInput,
): Promise<void> {
  const { options } = input;
  const perFile = Math.ceil(options.eventsPerShard / options.filesPerShard);
  for (let file = 0; file < options.filesPerShard; file++) {
    const count = Math.min(perFile, options.eventsPerShard - file * perFile);
    if (count <= 0) break;
    const rows = Array.from({ length: count }, () => {
      const user = input.own[rng.int(input.own.length)] ?? { user_id: 0, country: 'US' };
      const product = input.products[rng.int(input.products.length)] ?? { product_id: 0, price_cents: 0 };
      const kind = pick(rng, kinds, kindWeights);
      const quantity = kind === 'purchase' ? 1 + rng.int(3) : 0;
      return {
        ts: new Date(periodStartMs + rng.int(periodMs)).toISOString(),
        user_id: user.user_id,
        country: user.country,
        kind,
        product_id: product.product_id,
        quantity,
        amount_cents: quantity * product.price_cents,
        latency_ms: Math.round((20 + 400 * rng.next() ** 3) * 10) / 10,
      };
    });
    const scratchFile = join(input.scratch, `events-${file}.ndjson`);
    writeFileSync(scratchFile, ndjson(rows));
    await connection.run(
      `COPY (SELECT * FROM read_json(${sqlString(scratchFile)}, format = 'newline_delimited', columns = {ts: 'TIMESTAMP', user_id: 'BIGINT', country: 'VARCHAR', kind: 'VARCHAR', product_id: 'INTEGER', quantity: 'INTEGER', amount_cents: 'BIGINT', latency_ms: 'DOUBLE'}) ORDER BY ALL)
       TO ${sqlString(join(input.shardDir, `events-${file}.parquet`))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 10000)`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      shards: { type: 'string' },
      events: { type: 'string' },
    },
  });
  if (values.out === undefined) throw new Error('usage: generate.ts --out DIR [--seed N] [--shards N] [--events N]');
  const files = await generateSampleDatabase(values.out, {
    ...sampleDefaults,
    ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
    ...(values.shards === undefined ? {} : { shards: Number(values.shards) }),
    ...(values.events === undefined ? {} : { eventsPerShard: Number(values.events) }),
  });
  const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
  console.log(`${files.length} files, ${(bytes / 1e6).toFixed(1)} MB in ${values.out}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
