// Small databases for the engine and endpoint tests, written by DuckDB itself (COPY ... TO) in the
// local layout of a database: `<root>/shard=<id>/` holds a shard's files, `<root>/global/` the
// files every member has. Rows are a pure function of their index, so a test can compute any
// expected answer independently of DuckDB (see `fixtureEvent`).
//
// Shard s holds the events whose index i has i % shards === s; each shard has one Parquet file of
// its events and one NDJSON file of the same events' notes; global/ has one NDJSON file of
// countries.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

export const fixtureKinds = ['view', 'click', 'buy'] as const;
export const fixtureCountries = ['de', 'fr', 'jp', 'us', 'br'] as const;
/** Events start here, one every 37 seconds. */
export const fixtureEpochMs = Date.UTC(2026, 0, 1);

export interface FixtureEvent {
  readonly id: number;
  readonly ts: string;
  readonly kind: string;
  readonly country: string;
  readonly userId: number;
  readonly amount: number;
}

/** The i-th event, computed in JS: the same formulas as the SQL in `writeFixtureDatabase`. */
export function fixtureEvent(index: number): FixtureEvent {
  return {
    id: index,
    ts: new Date(fixtureEpochMs + index * 37_000).toISOString(),
    kind: fixtureKinds[index % 3] ?? 'view',
    country: fixtureCountries[(index * 7) % 5] ?? 'de',
    userId: (index * 13) % 101,
    amount: (index % 50) * 0.5,
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
        TIMESTAMP '2026-01-01 00:00:00' + to_seconds(i * 37) AS ts,
        ['view', 'click', 'buy'][i % 3 + 1] AS kind,
        ['de', 'fr', 'jp', 'us', 'br'][(i * 7) % 5 + 1] AS country,
        (i * 13) % 101 AS user_id,
        ((i % 50) * 0.5)::DOUBLE AS amount
      FROM range(${events}) t(i)`;
    for (let shard = 0; shard < shards; shard++) {
      const dir = join(root, `shard=${shard}`);
      mkdirSync(dir);
      await connection.run(
        `COPY (${select} WHERE i % ${shards} = ${shard} ORDER BY i) TO '${dir}/events.parquet' (FORMAT parquet)`,
      );
      await connection.run(
        `COPY (SELECT id, 'note ' || id AS note FROM (${select}) WHERE id % ${shards} = ${shard} ORDER BY id) TO '${dir}/notes.ndjson' (FORMAT json)`,
      );
    }
    mkdirSync(join(root, 'global'));
    await connection.run(
      `COPY (SELECT * FROM (VALUES ('de', 'Germany'), ('fr', 'France'), ('jp', 'Japan'), ('us', 'United States'), ('br', 'Brazil')) c(code, name)) TO '${root}/global/countries.ndjson' (FORMAT json)`,
    );
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  return { root, shards, events };
}
