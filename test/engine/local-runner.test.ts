// The local runner over a database of three shards written by DuckDB: the example endpoints
// answer what a plain JS computation over the same events gives; map runs per shard and reduce in
// shard order; and every refusal has its code: an unknown endpoint, bad params, a full endpoint,
// a timeout (which interrupts the SQL), a failing or non-JSON map, an answer over its size.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQueryError, type JsonValue, type QueryErrorCode } from '../../src/data/query-engine.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';
import { endpointSet, loadEndpoints, type EndpointSet } from '../../src/query/endpoint-loader.ts';
import { localDatabaseFromDirectory } from '../../src/query/local-layout.ts';
import { LocalRunner, type LocalDatabase, type LocalQuery } from '../../src/query/local-runner.ts';
import {
  fixtureCountryNames,
  fixtureEvent,
  writeFixtureDatabase,
  type FixtureDatabase,
  type FixtureEvent,
} from './fixtures.ts';

const endless = 'SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE i % 7 = 3';

let fixture: FixtureDatabase;
let database: LocalDatabase;
let engine: DuckDbEngine;
let examples: EndpointSet;
let events: FixtureEvent[];

beforeAll(async () => {
  fixture = await writeFixtureDatabase(3, 2000);
  database = localDatabaseFromDirectory(fixture.root, 'events', 'v1');
  engine = await DuckDbEngine.open({
    limits: { ...duckDbEngineLimitsDefault, connectionsMax: 2, queryTimeoutMs: 3_600_000 },
    readableDirectories: [fixture.root],
  });
  examples = await loadEndpoints(new URL('../../examples/endpoints/', import.meta.url).pathname);
  events = Array.from({ length: fixture.events }, (_, index) => fixtureEvent(index));
});

afterAll(async () => {
  await engine.close();
  rmSync(fixture.root, { recursive: true, force: true });
});

function runner(endpoints: EndpointSet = examples): LocalRunner {
  return new LocalRunner({ endpoints, engine });
}

function query(endpoint: string, params?: JsonValue, signal?: AbortSignal): LocalQuery {
  return { endpoint, params, database, signal };
}

async function refusal(
  promise: Promise<unknown>,
): Promise<{ code: QueryErrorCode; message: string; details: unknown }> {
  try {
    await promise;
  } catch (error) {
    if (isQueryError(error)) return { code: error.code, message: error.message, details: error.details };
    throw error;
  }
  throw new Error('expected the query to be refused');
}

/** An endpoint set of one inline module. */
function inline(module: Record<string, unknown>): EndpointSet {
  return endpointSet([{ file: 'inline.mjs', exported: { name: 'inline', ...module } }]);
}

/** A promise and its resolver, for holding a map until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('the example endpoints', () => {
  it('count: the number of events matching the filters', async () => {
    const from = '2026-11-01T05:00:00Z';
    const to = '2026-11-01T12:00:00.000+02:00';
    const answer = await runner().run(query('count', { kind: 'purchase', country: 'jp', from, to }));
    const expected = events.filter(
      (event) =>
        event.kind === 'purchase' &&
        event.country === 'jp' &&
        Date.parse(event.ts) >= Date.parse(from) &&
        Date.parse(event.ts) < Date.parse(to),
    ).length;
    expect(expected).toBeGreaterThan(0);
    expect(answer.result).toEqual({ count: expected });
    expect(answer.shards.map((shard) => shard.shard)).toEqual(['1', '2', '3']);
    expect((await runner().run(query('count'))).result).toEqual({ count: fixture.events });
  });

  it('top-k: the largest groups across all shards, named from the global data', async () => {
    const answer = await runner().run(query('top-k', { by: 'country', metric: 'amount', k: 3 }));
    const totals = new Map<string, number>();
    for (const event of events) totals.set(event.country, (totals.get(event.country) ?? 0) + event.amountCents);
    const expected = [...totals]
      .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
      .slice(0, 3)
      .map(([key, value]) => ({ key, name: fixtureCountryNames[key], value }));
    expect(answer.result).toEqual(expected);
    const users = (await runner().run(query('top-k', { by: 'user_id', kind: 'cart' }))).result as { value: number }[];
    expect(users).toHaveLength(10); // the schema's default k
    const products = await runner().run(query('top-k', { by: 'product_id', k: 2 }));
    const counts = new Map<number, number>();
    for (const event of events) counts.set(event.productId, (counts.get(event.productId) ?? 0) + 1);
    const top = [...counts].sort(([a, x], [b, y]) => y - x || String(a).localeCompare(String(b))).slice(0, 2);
    expect(products.result).toEqual(top.map(([id, value]) => ({ key: String(id), name: `product ${id}`, value })));
  });

  it('histogram: events and amount per hour, in time order', async () => {
    const answer = await runner().run(query('histogram', { bucket: 'hour', kind: 'purchase' }));
    const buckets = new Map<string, { events: number; amount: number }>();
    for (const event of events.filter((each) => each.kind === 'purchase')) {
      const bucket = `${event.ts.slice(0, 13)}:00:00.000Z`;
      const seen = buckets.get(bucket) ?? { events: 0, amount: 0 };
      buckets.set(bucket, { events: seen.events + 1, amount: seen.amount + event.amountCents });
    }
    expect(answer.result).toEqual([...buckets].sort().map(([bucket, totals]) => ({ bucket, ...totals })));
  });
});

describe('LocalRunner', () => {
  it('answers the shards’ answers in shard order without a reduce, through JSON', async () => {
    const endpoints = inline({
      map: (ctx: { shard: string; files: string[]; globalFiles: string[] }) => ({
        shard: ctx.shard,
        files: ctx.files.length,
        global: ctx.globalFiles.length,
        at: new Date(0),
        gone: undefined,
      }),
    });
    const answer = await runner(endpoints).run(query('inline'));
    expect(answer.result).toEqual(
      ['1', '2', '3'].map((shard) => ({ shard, files: 3, global: 2, at: '1970-01-01T00:00:00.000Z' })),
    );
  });

  it('refuses an unknown endpoint and params that do not match the schema, before running anything', async () => {
    expect((await refusal(runner().run(query('nope')))).code).toBe('DRAM_ERR_UNKNOWN_ENDPOINT');
    const invalid = await refusal(runner().run(query('top-k', { k: 0, by: 'password' })));
    expect(invalid.code).toBe('DRAM_ERR_INVALID_PARAMS');
    expect((invalid.details as { errors: { path: string }[] }).errors.map((error) => error.path).sort()).toEqual([
      '/by',
      '/k',
    ]);
  });

  it('refuses a query over the endpoint’s concurrency limit, and holds a slot until map really returns', async () => {
    const held = gate();
    const endpoints = inline({ concurrencyMax: 1, timeoutMs: 50, map: () => held.promise.then(() => 1) });
    const local = runner(endpoints);
    expect((await refusal(local.run(query('inline')))).code).toBe('DRAM_ERR_QUERY_TIMEOUT');
    expect(local.running('inline')).toBe(1);
    const busy = await refusal(local.run(query('inline')));
    expect(busy).toMatchObject({ code: 'DRAM_ERR_ENDPOINT_BUSY', details: { concurrencyMax: 1 } });
    held.open();
    await expect.poll(() => local.running('inline')).toBe(0);
  });

  it('stops a query at its timeout, interrupting its SQL, and the engine serves the next one', async () => {
    const endpoints = inline({
      timeoutMs: 100,
      map: (ctx: { sql: (text: string) => Promise<unknown> }) => ctx.sql(endless),
    });
    const local = runner(endpoints);
    expect((await refusal(local.run(query('inline')))).code).toBe('DRAM_ERR_QUERY_TIMEOUT');
    await expect.poll(() => local.running('inline')).toBe(0);
    expect((await runner().run(query('count'))).result).toEqual({ count: fixture.events });
  });

  it('stops a query when its caller aborts', async () => {
    const endpoints = inline({ map: (ctx: { sql: (text: string) => Promise<unknown> }) => ctx.sql(endless) });
    const local = runner(endpoints);
    const controller = new AbortController();
    const running = refusal(local.run(query('inline', undefined, controller.signal)));
    controller.abort();
    expect((await running).code).toBe('DRAM_ERR_QUERY_TIMEOUT');
    await expect.poll(() => local.running('inline')).toBe(0);
  });

  it('fails the query when one shard’s map throws, naming the shard, and stops the others', async () => {
    const endpoints = inline({
      map: (ctx: { shard: string; sql: (text: string) => Promise<unknown> }) => {
        if (ctx.shard === '2') throw new Error('no such thing');
        return ctx.sql(endless);
      },
    });
    const local = runner(endpoints);
    const failed = await refusal(local.run(query('inline')));
    expect(failed.code).toBe('DRAM_ERR_QUERY_FAILED');
    expect(failed.message).toContain('shard 2');
    expect(failed.message).toContain('no such thing');
    await expect.poll(() => local.running('inline')).toBe(0);
  });

  it('keeps the code of a failing statement and names its shard', async () => {
    const endpoints = inline({
      map: (ctx: { sql: (text: string) => Promise<unknown> }) => ctx.sql('SELECT * FROM nowhere'),
    });
    // One shard at a time, so shard 1 is the one that fails first.
    const oneAtATime = new LocalRunner({ endpoints, engine, limits: { shardParallelMax: 1, answerBytesMax: 1000 } });
    const failed = await refusal(oneAtATime.run(query('inline')));
    expect(failed.code).toBe('DRAM_ERR_QUERY_FAILED');
    expect(failed.message).toMatch(/^map on shard 1: .*nowhere/u);
  });

  it('refuses a map or reduce answer that is not JSON', async () => {
    for (const answer of [() => 1n, () => undefined, () => () => 1]) {
      const failed = await refusal(runner(inline({ map: answer })).run(query('inline')));
      expect(failed.code).toBe('DRAM_ERR_QUERY_FAILED');
    }
    const cyclic = inline({
      map: () => 1,
      reduce: () => {
        const loop: Record<string, unknown> = {};
        loop['self'] = loop;
        return loop;
      },
    });
    expect((await refusal(runner(cyclic).run(query('inline')))).message).toMatch(/^reduce: /u);
  });

  it('refuses an answer larger than answerBytesMax, from a map or from the reduce', async () => {
    const limits = { shardParallelMax: 2, answerBytesMax: 1000 };
    const big = 'x'.repeat(1000);
    const fromMap = new LocalRunner({ endpoints: inline({ map: () => big }), engine, limits });
    expect(await refusal(fromMap.run(query('inline')))).toMatchObject({
      code: 'DRAM_ERR_ANSWER_TOO_LARGE',
      details: { bytesMax: 1000 },
    });
    const fromReduce = new LocalRunner({ endpoints: inline({ map: () => 'x'.repeat(400) }), engine, limits });
    expect((await refusal(fromReduce.run(query('inline')))).code).toBe('DRAM_ERR_ANSWER_TOO_LARGE');
  });
});

describe('localDatabaseFromDirectory', () => {
  it('lists shards in id order with their files, and the global files', () => {
    expect(
      database.shards.map((shard) => [shard.shard, shard.files.map((file) => file.slice(shard.dir.length))]),
    ).toEqual(['1', '2', '3'].map((id) => [id, ['/events-0.parquet', '/events-1.parquet', '/users.ndjson']]));
    expect(database.globalFiles).toEqual(
      ['countries.ndjson', 'products.parquet'].map((file) => `${fixture.root}/global/${file}`),
    );
  });

  it('takes a directory without shard folders as one shard, 0, of everything outside global/', () => {
    const single = localDatabaseFromDirectory(`${fixture.root}/shard=2`, 'one', 'v1');
    expect(single.shards).toEqual([
      {
        shard: '0',
        dir: `${fixture.root}/shard=2`,
        files: ['events-0.parquet', 'events-1.parquet', 'users.ndjson'].map(
          (file) => `${fixture.root}/shard=2/${file}`,
        ),
      },
    ]);
    expect(single.globalDir).toBeUndefined();
  });
});
