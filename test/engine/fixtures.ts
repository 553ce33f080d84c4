// Small databases for the engine and endpoint tests, written by DuckDB itself (COPY ... TO) in the
// local layout of a database and with the columns of the sample database (examples/sample-db/):
// `<root>/shard=<n>/` holds shard n's files (shards numbered from 1), `<root>/global/` the files
// every member has. Rows are a pure function of their index, so a test can compute any expected
// answer without DuckDB (`fixtureEvent` repeats the SQL's formulas in JS).
//
// Shard n holds the events whose index i has i % shards === n - 1, in two Parquet files
// (`events-0.parquet`, `events-1.parquet`, by the parity of i / shards) and an NDJSON file of its
// users; global/ has `countries.ndjson` ({code, name, region}) and `products.parquet`
// ({product_id, name, price_cents}: product p is `product p`).

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

export const fixtureKinds = ['view', 'cart', 'purchase'] as const;
export const fixtureCountries = ['de', 'fr', 'jp', 'us', 'br'] as const;
export const fixtureCountryNames: Readonly<Record<string, string>> = {
  de: 'Germany',
  fr: 'France',
  jp: 'Japan',
  us: 'United States',
  br: 'Brazil',
};
/** Events start here, one every 37 seconds. */
export const fixtureEpochMs = Date.UTC(2026, 10, 1);

export interface FixtureEvent {
  readonly id: number;
  readonly ts: string;
  readonly userId: number;
  readonly country: string;
  readonly kind: string;
  readonly productId: number;
  readonly quantity: number;
  readonly amountCents: number;
}

/** The i-th event, computed in JS: the same formulas as the SQL in `writeFixtureDatabase`. */
export function fixtureEvent(index: number): FixtureEvent {
  const kind = fixtureKinds[index % 3] ?? 'view';
  const quantity = kind === 'purchase' ? (Math.floor(index / 3) % 3) + 1 : 0;
  const productId = index % 17;
  return {
    id: index,
    ts: new Date(fixtureEpochMs + index * 37_000).toISOString(),
    userId: (index * 13) % 101,
    country: fixtureCountries[(index * 7) % 5] ?? 'de',
    kind,
    productId,
    quantity,
    amountCents: quantity * (199 + productId * 100),
  };
}

export interface FixtureDatabase {
  readonly root: string;
  readonly shards: number;
  readonly events: number;
}

export async function writeFixtureDatabase(shards: number, events: number, parent?: string): Promise<FixtureDatabase> {
  const root = mkdtempSync(join(parent ?? tmpdir(), 'dram-db-'));
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  try {
    const select = `SELECT i AS id,
        TIMESTAMP '2026-11-01 00:00:00' + to_seconds(i * 37) AS ts,
        (i * 13) % 101 AS user_id,
        ['de', 'fr', 'jp', 'us', 'br'][(i * 7) % 5 + 1] AS country,
        ['view', 'cart', 'purchase'][i % 3 + 1] AS kind,
        CAST(i % 17 AS INTEGER) AS product_id,
        CAST(CASE WHEN i % 3 = 2 THEN (i // 3) % 3 + 1 ELSE 0 END AS INTEGER) AS quantity,
        CAST(CASE WHEN i % 3 = 2 THEN (i // 3) % 3 + 1 ELSE 0 END * (199 + (i % 17) * 100) AS BIGINT) AS amount_cents
      FROM range(${events}) t(i)`;
    for (let shard = 1; shard <= shards; shard++) {
      const dir = join(root, `shard=${shard}`);
      mkdirSync(dir);
      for (const file of [0, 1])
        await connection.run(
          `COPY (SELECT * EXCLUDE (id) FROM (${select}) WHERE id % ${shards} = ${shard - 1} AND (id // ${shards}) % 2 = ${file} ORDER BY id)
           TO '${dir}/events-${file}.parquet' (FORMAT parquet)`,
        );
      await connection.run(
        `COPY (SELECT DISTINCT user_id, 'user ' || user_id AS name FROM (${select}) WHERE id % ${shards} = ${shard - 1} ORDER BY user_id)
         TO '${dir}/users.ndjson' (FORMAT json)`,
      );
    }
    mkdirSync(join(root, 'global'));
    const countries = Object.entries(fixtureCountryNames)
      .map(([code, name]) => `('${code}', '${name}', 'somewhere')`)
      .join(', ');
    await connection.run(
      `COPY (SELECT * FROM (VALUES ${countries}) c(code, name, region)) TO '${root}/global/countries.ndjson' (FORMAT json)`,
    );
    await connection.run(
      `COPY (SELECT CAST(i AS INTEGER) AS product_id, 'product ' || i AS name, CAST(199 + i * 100 AS BIGINT) AS price_cents
             FROM range(17) t(i)) TO '${root}/global/products.parquet' (FORMAT parquet)`,
    );
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return { root, shards, events };
}
