// The DuckDB query engine: answers as plain JSON (the conversions docs/endpoints.md promises),
// arguments bound by type, and every bound refused with its code rather than a crash or a hang:
// a statement that is not a read, a file outside the readable directories, an answer over its
// rows or bytes, a statement over its time or memory, a full wait queue, an abort, a close.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQueryError, type QueryErrorCode } from '../../src/data/query-engine.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault, type DuckDbEngineLimits } from '../../src/engine/duckdb-engine.ts';
import { fixtureEvent, writeFixtureDatabase, type FixtureDatabase } from './fixtures.ts';

/** Runs until interrupted (a trillion rows). */
// Tests that stop it by abort or close give it an hour's timeout, so only the stop can end it.
const hourMs = 3_600_000;
const endless = 'SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE i % 7 = 3';

let database: FixtureDatabase;
const engines: DuckDbEngine[] = [];

async function engine(limits: Partial<DuckDbEngineLimits> = {}): Promise<DuckDbEngine> {
  const opened = await DuckDbEngine.open({
    limits: { ...duckDbEngineLimitsDefault, connectionsMax: 1, ...limits },
    readableDirectories: [database.root],
  });
  engines.push(opened);
  return opened;
}

async function failure(promise: Promise<unknown>): Promise<{ code: QueryErrorCode; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (isQueryError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected the statement to fail');
}

beforeAll(async () => {
  database = await writeFixtureDatabase(2, 1000);
});

afterAll(async () => {
  for (const opened of engines) await opened.close();
  rmSync(database.root, { recursive: true, force: true });
});

describe('DuckDbEngine answers', () => {
  it('reads a shard’s Parquet and NDJSON files given as a list argument', async () => {
    const sql = await engine();
    // Shard 2 of 2: the odd events, in two Parquet files; its users in NDJSON.
    const parquet = ['events-0.parquet', 'events-1.parquet'].map((file) => join(database.root, 'shard=2', file));
    const rows = await sql.sql({
      text: 'SELECT count(*) AS n, sum(amount_cents) AS total, min(ts) AS first FROM read_parquet(?) WHERE kind = ?',
      args: [parquet, 'purchase'],
    });
    const expected = Array.from({ length: 1000 }, (_, index) => fixtureEvent(index)).filter(
      (event) => event.id % 2 === 1 && event.kind === 'purchase',
    );
    expect(rows).toEqual([
      {
        n: expected.length,
        total: expected.reduce((sum, event) => sum + event.amountCents, 0),
        first: expected[0]?.ts,
      },
    ]);
    const users = await sql.sql({
      text: 'SELECT name FROM read_json(?) WHERE user_id = ?',
      args: [[join(database.root, 'shard=2', 'users.ndjson')], fixtureEvent(7).userId],
    });
    expect(users).toEqual([{ name: `user ${fixtureEvent(7).userId}` }]);
  });

  it('converts every kind of value to the JSON documented in docs/endpoints.md', async () => {
    const sql = await engine();
    const [row] = await sql.sql({
      text: `SELECT 1::TINYINT AS tiny, 9007199254740991::BIGINT AS big_safe, sum(x) AS huge_sum, 1.25::DECIMAL(10, 2) AS dec,
        'nan'::DOUBLE AS nan, 'infinity'::DOUBLE AS inf, DATE '2026-02-03' AS day,
        TIMESTAMP '2026-02-03 04:05:06' AS at, TIMESTAMP '2026-02-03 04:05:06.123456' AS at_micros,
        TIMESTAMPTZ '2026-02-03 04:05:06.5+00' AS at_tz, 'infinity'::TIMESTAMP AS at_inf,
        [1, 2, NULL] AS list, {'a': 1, 'b': 'x'} AS struct, MAP {'k': 2} AS map, '\\x01\\x02'::BLOB AS blob,
        INTERVAL 90 MINUTE AS span, NULL AS nothing, true AS yes
        FROM (VALUES (1::BIGINT), (2::BIGINT)) v(x)`,
      args: [],
    });
    expect(row).toEqual({
      tiny: 1,
      big_safe: 9007199254740991,
      huge_sum: 3,
      dec: 1.25,
      nan: null,
      inf: null,
      day: '2026-02-03',
      at: '2026-02-03T04:05:06.000Z',
      at_micros: '2026-02-03T04:05:06.123456Z',
      at_tz: '2026-02-03T04:05:06.500Z',
      at_inf: 'infinity',
      list: [1, 2, null],
      struct: { a: 1, b: 'x' },
      map: [{ key: 'k', value: 2 }],
      blob: Buffer.from([1, 2]).toString('base64'),
      span: '01:30:00',
      nothing: null,
      yes: true,
    });
  });

  it('works in UTC whatever the host’s time zone', () => {
    const probe = new URL('./timezone-probe.ts', import.meta.url).pathname;
    const output = execFileSync(process.execPath, ['--import', 'tsx', probe], {
      env: { ...process.env, TZ: 'Asia/Tokyo' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(JSON.parse(output)).toEqual([{ t: '2025-12-31T23:00:00.000Z' }]);
  });

  it('binds arguments by their JS type', async () => {
    const sql = await engine();
    const rows = await sql.sql({
      text: 'SELECT typeof(?) AS a, typeof(?) AS b, typeof(?) AS c, typeof(?) AS d, typeof(?) AS e, ?[2] AS f',
      args: ['x', 3, 2.5, true, 10n, [1, 2.5]],
    });
    expect(rows).toEqual([{ a: 'VARCHAR', b: 'BIGINT', c: 'DOUBLE', d: 'BOOLEAN', e: 'BIGINT', f: 2.5 }]);
  });
});

describe('DuckDbEngine refuses', () => {
  it('to open with a readable directory that is not absolute, or limits that are not positive integers', async () => {
    await expect(
      DuckDbEngine.open({ limits: duckDbEngineLimitsDefault, readableDirectories: ['relative/data'] }),
    ).rejects.toThrow(/not absolute/u);
    await expect(
      DuckDbEngine.open({ limits: { ...duckDbEngineLimitsDefault, waitingMax: 0 }, readableDirectories: ['/data'] }),
    ).rejects.toThrow(/waitingMax/u);
  });

  it('an integer beyond 2^53 - 1, naming the column', async () => {
    const sql = await engine();
    const refused = await failure(sql.sql({ text: 'SELECT 9007199254740992::BIGINT AS too_big', args: [] }));
    expect(refused.code).toBe('DRAM_ERR_QUERY_FAILED');
    expect(refused.message).toContain('too_big');
    expect(await sql.sql({ text: 'SELECT 9007199254740992::BIGINT::VARCHAR AS v', args: [] })).toEqual([
      { v: '9007199254740992' },
    ]);
  });

  it('a statement that is not one read, and a file outside the readable directories', async () => {
    const sql = await engine();
    const outside = join(database.root, '..', 'elsewhere.parquet');
    for (const text of [
      `COPY (SELECT 1) TO '${join(database.root, 'x.csv')}'`,
      'CREATE TABLE t (a INTEGER)',
      "SET memory_limit = '10GB'",
      'SELECT 1; SELECT 2',
      `SELECT * FROM read_csv('/etc/passwd')`,
      `SELECT * FROM read_parquet('${outside}')`,
      'SELECT * FROM no_such_table',
    ])
      expect({ text, code: (await failure(sql.sql({ text, args: [] }))).code }).toEqual({
        text,
        code: 'DRAM_ERR_QUERY_FAILED',
      });
  });

  it('an answer over its rows or its bytes', async () => {
    const sql = await engine({ answerRowsMax: 100, answerBytesMax: 4096 });
    expect(await sql.sql({ text: 'SELECT i FROM range(100) t(i)', args: [] })).toHaveLength(100);
    expect((await failure(sql.sql({ text: 'SELECT i FROM range(101) t(i)', args: [] }))).code).toBe(
      'DRAM_ERR_ANSWER_TOO_LARGE',
    );
    expect((await failure(sql.sql({ text: "SELECT repeat('x', 5000) AS s", args: [] }))).code).toBe(
      'DRAM_ERR_ANSWER_TOO_LARGE',
    );
  });

  it('a statement over its time, and serves the next one on the same connection', async () => {
    const sql = await engine({ queryTimeoutMs: 50 });
    expect((await failure(sql.sql({ text: endless, args: [] }))).code).toBe('DRAM_ERR_QUERY_TIMEOUT');
    expect(await sql.sql({ text: 'SELECT 42 AS x', args: [] })).toEqual([{ x: 42 }]);
  });

  it('a statement over its memory limit', async () => {
    const sql = await engine({ queryMemoryBytesMax: 32 * 1024 * 1024 });
    const refused = await failure(
      sql.sql({ text: 'SELECT i % 3 AS k, list(i) AS l FROM range(20000000) t(i) GROUP BY k', args: [] }),
    );
    expect(refused.code).toBe('DRAM_ERR_QUERY_MEMORY');
    expect(await sql.sql({ text: 'SELECT 1 AS x', args: [] })).toEqual([{ x: 1 }]);
  });

  it('a statement when the wait queue is full; an aborted one stops and frees its connection', async () => {
    const sql = await engine({ connectionsMax: 1, waitingMax: 1, queryTimeoutMs: hourMs });
    const controller = new AbortController();
    const running = failure(sql.sql({ text: endless, args: [], signal: controller.signal }));
    const waiting = sql.sql({ text: 'SELECT 2 AS x', args: [] });
    expect((await failure(sql.sql({ text: 'SELECT 3 AS x', args: [] }))).code).toBe('DRAM_ERR_OVERLOADED');
    controller.abort();
    expect((await running).code).toBe('DRAM_ERR_QUERY_TIMEOUT');
    expect(await waiting).toEqual([{ x: 2 }]);
  });

  it('a waiting statement whose caller aborts, with the caller’s QueryError as the reason', async () => {
    const sql = await engine({ connectionsMax: 1, queryTimeoutMs: hourMs });
    const first = new AbortController();
    const running = failure(sql.sql({ text: endless, args: [], signal: first.signal }));
    const second = new AbortController();
    const waiting = failure(sql.sql({ text: 'SELECT 1', args: [], signal: second.signal }));
    const { QueryError } = await import('../../src/data/query-engine.ts');
    second.abort(new QueryError('DRAM_ERR_ENDPOINT_BUSY', 'from the caller'));
    expect(await waiting).toEqual({ code: 'DRAM_ERR_ENDPOINT_BUSY', message: 'from the caller' });
    first.abort();
    await running;
    expect(await sql.sql({ text: 'SELECT 5 AS x', args: [] })).toEqual([{ x: 5 }]);
  });

  it('everything once closed, interrupting what runs', async () => {
    const sql = await engine({ connectionsMax: 1, queryTimeoutMs: hourMs });
    const running = failure(sql.sql({ text: endless, args: [] }));
    const waiting = failure(sql.sql({ text: 'SELECT 1', args: [] }));
    await sql.close();
    expect((await running).code).toBe('DRAM_ERR_SHUTTING_DOWN');
    expect((await waiting).code).toBe('DRAM_ERR_SHUTTING_DOWN');
    expect((await failure(sql.sql({ text: 'SELECT 1', args: [] }))).code).toBe('DRAM_ERR_SHUTTING_DOWN');
  });
});
