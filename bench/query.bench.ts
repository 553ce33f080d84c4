// Query latency of the example endpoints (examples/endpoints/) over generated data, run by the
// local runner on the DuckDB engine: the `--data` phase's query figures (issue 14: "query p50/p99
// of the example endpoints"). Also runnable alone: `npx tsx bench/query.bench.ts [--shards 8]
// [--events 2000000] [--samples 50] [--seconds 20]` prints the JSON on stdout, a table on stderr.
//
// The database is written by DuckDB in the database layout (test/engine/fixtures.ts: events spread
// over `shard=<n>/events-<k>.parquet`, countries in `global/`). Before anything is timed, each
// endpoint's answer is checked against a count computed from the generator's formulas.
//
// Per endpoint: `samples` sequential queries after 3 warm-up ones (bounded by `seconds`), their
// p50/p99/mean, and the p50 of the slowest shard's map within a query (a shard's time includes its
// wait for one of the engine's connections: 8 shards on 2 connections run in about 4 rounds); then
// queries per second with 4 queries in flight for `seconds / 4`. Then each query fanned out over
// three members on loopback HTTP against the same query run locally (bench/fan-out.bench.ts),
// samples alternating, with the p50 difference. The machine's load average at
// the start is in the report: figures taken beside other work are not comparable.

import { rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../src/engine/duckdb-engine.ts';
import type { JsonValue } from '../src/data/query-engine.ts';
import { loadEndpoints } from '../src/query/endpoint-loader.ts';
import { localDatabaseFromDirectory } from '../src/query/local-layout.ts';
import { LocalRunner, type LocalDatabase } from '../src/query/local-runner.ts';
import { fixtureEvent, writeFixtureDatabase } from '../test/engine/fixtures.ts';
import { measureFanOut, type FanOutFigures } from './fan-out.bench.ts';

export interface QueryBenchOptions {
  readonly shards: number;
  readonly events: number;
  readonly samples: number;
  readonly seconds: number;
  readonly log: (line: string) => void;
}

export const queryBenchDefaults: Omit<QueryBenchOptions, 'log'> = {
  shards: 8,
  events: 2_000_000,
  samples: 50,
  seconds: 20,
};

export interface EndpointFigures {
  readonly endpoint: string;
  readonly params: JsonValue;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** The slowest shard's map within a query (waiting for a connection included), p50. */
  readonly slowestMapP50Ms: number;
  readonly queriesPerSecondAt4: number;
}

export interface QueryReport {
  readonly shards: number;
  readonly events: number;
  readonly parquetBytes: number;
  readonly generateSeconds: number;
  /** 1-minute load average when the benchmark started. */
  readonly loadAverage: number;
  readonly engine: { readonly connectionsMax: number; readonly queryThreadsMax: number };
  readonly endpoints: readonly EndpointFigures[];
  /** The same queries fanned out over three members on loopback HTTP against the local run (fan-out.bench.ts). */
  readonly fanOut: readonly FanOutFigures[];
}

export const queryCases: readonly { readonly endpoint: string; readonly params: JsonValue }[] = [
  { endpoint: 'count', params: { kind: 'purchase', country: 'jp' } },
  { endpoint: 'top-k', params: { by: 'user_id', metric: 'amount', k: 10 } },
  { endpoint: 'histogram', params: { bucket: 'day', kind: 'view' } },
];

function percentile(sorted: readonly number[], fraction: number): number {
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[at] ?? Number.NaN;
}

const round = (value: number): number => Math.round(value * 100) / 100;

/** The count endpoint must answer what the generator's formulas give, before anything is timed. */
async function check(runner: LocalRunner, database: LocalDatabase, events: number): Promise<void> {
  let expected = 0;
  for (let index = 0; index < events; index++) {
    const event = fixtureEvent(index);
    if (event.kind === 'purchase' && event.country === 'jp') expected++;
  }
  const answer = await runner.run({ endpoint: 'count', params: { kind: 'purchase', country: 'jp' }, database });
  if (JSON.stringify(answer.result) !== JSON.stringify({ count: expected }))
    throw new Error(`query bench: count answered ${JSON.stringify(answer.result)}, expected ${expected}`);
}

async function measure(
  runner: LocalRunner,
  database: LocalDatabase,
  endpoint: string,
  params: JsonValue,
  options: QueryBenchOptions,
): Promise<EndpointFigures> {
  const query = { endpoint, params, database };
  for (let warm = 0; warm < 3; warm++) await runner.run(query);
  const totals: number[] = [];
  const slowest: number[] = [];
  const deadline = performance.now() + (options.seconds * 1000) / 2;
  while (totals.length < options.samples && performance.now() < deadline) {
    const started = performance.now();
    const answer = await runner.run(query);
    const ms = performance.now() - started;
    totals.push(ms);
    slowest.push(Math.max(...answer.shards.map((shard) => shard.ms)));
  }
  const sorted = [...totals].sort((a, b) => a - b);
  const inFlight = 4;
  let done = 0;
  const loadStarted = performance.now();
  const loadDeadline = loadStarted + (options.seconds * 1000) / 4;
  const loadQueriesMax = options.samples * 4;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < loadDeadline && done < loadQueriesMax) {
        await runner.run(query);
        done++;
      }
    }),
  );
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  return {
    endpoint,
    params,
    samples: totals.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    meanMs: round(totals.reduce((sum, ms) => sum + ms, 0) / totals.length),
    slowestMapP50Ms: round(
      percentile(
        [...slowest].sort((a, b) => a - b),
        0.5,
      ),
    ),
    queriesPerSecondAt4: round(done / loadSeconds),
  };
}

export async function runQueryBench(options: QueryBenchOptions): Promise<QueryReport> {
  const loadAverage = round(loadavg()[0] ?? 0);
  const generateStarted = performance.now();
  const fixture = await writeFixtureDatabase(options.shards, options.events);
  const generateSeconds = round((performance.now() - generateStarted) / 1000);
  const engineLimits = { ...duckDbEngineLimitsDefault, connectionsMax: 2, queryThreadsMax: 1 };
  const engine = await DuckDbEngine.open({ limits: engineLimits, readableDirectories: [fixture.root] });
  try {
    const database = localDatabaseFromDirectory(fixture.root, 'events', 'bench');
    const parquetBytes = database.shards
      .flatMap((shard) => shard.files.filter((file) => file.endsWith('.parquet')))
      .reduce((sum, file) => sum + statSync(file).size, 0);
    options.log(
      `query bench: ${options.shards} shards, ${options.events} events, ${parquetBytes} bytes of Parquet (${generateSeconds} s)`,
    );
    const endpoints = await loadEndpoints(new URL('../examples/endpoints/', import.meta.url).pathname);
    const runner = new LocalRunner({ endpoints, engine });
    await check(runner, database, options.events);
    const figures: EndpointFigures[] = [];
    for (const { endpoint, params } of queryCases) {
      figures.push(await measure(runner, database, endpoint, params, options));
      options.log(`query bench: ${endpoint} done`);
    }
    const fanOut: FanOutFigures[] = [];
    for (const { endpoint, params } of queryCases) {
      fanOut.push(
        await measureFanOut(engine, endpoints, database, { endpoint, params }, options.samples, options.seconds / 2),
      );
      options.log(`query bench: ${endpoint} fanned out`);
    }
    return {
      shards: options.shards,
      events: options.events,
      parquetBytes,
      generateSeconds,
      loadAverage,
      engine: { connectionsMax: engineLimits.connectionsMax, queryThreadsMax: engineLimits.queryThreadsMax },
      endpoints: figures,
      fanOut,
    };
  } finally {
    await engine.close();
    rmSync(fixture.root, { recursive: true, force: true });
  }
}

export function queryTable(report: QueryReport): Record<string, string | number>[] {
  return [
    ...report.endpoints.map((figures) => ({
      endpoint: figures.endpoint,
      'p50 ms': figures.p50Ms,
      'p99 ms': figures.p99Ms,
      'slowest map p50 ms': figures.slowestMapP50Ms,
      'q/s at 4': figures.queriesPerSecondAt4,
      samples: figures.samples,
    })),
    ...report.fanOut.map((figures) => ({
      endpoint: `${figures.endpoint} fan-out (${figures.members} members)`,
      'p50 ms': figures.fanOutP50Ms,
      'p99 ms': figures.fanOutP99Ms,
      'local p50 ms': figures.localP50Ms,
      'overhead p50 ms': figures.overheadP50Ms,
      samples: figures.samples,
    })),
  ];
}

/** `name N` from the command line: an integer in [1, max], or `fallback` when absent. */
export function numberOption(argv: readonly string[], name: string, fallback: number, max: number): number {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 1 || value > max)
    throw new Error(`${name}: expected an integer in [1, ${max}]`);
  return value;
}

/** The options from a command line: `${prefix}shards N`, `${prefix}events N`, `${prefix}samples N`, `${prefix}seconds N`. */
export function queryBenchOptionsFrom(
  argv: readonly string[],
  prefix: string,
  log: (line: string) => void,
): QueryBenchOptions {
  return {
    shards: numberOption(argv, `${prefix}shards`, queryBenchDefaults.shards, 64),
    events: numberOption(argv, `${prefix}events`, queryBenchDefaults.events, 50_000_000),
    samples: numberOption(argv, `${prefix}samples`, queryBenchDefaults.samples, 10_000),
    seconds: numberOption(argv, `${prefix}seconds`, queryBenchDefaults.seconds, 600),
    log,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runQueryBench(
    queryBenchOptionsFrom(process.argv, '--', (line) => {
      process.stderr.write(`${line}\n`);
    }),
  );
  new console.Console(process.stderr).table(queryTable(report));
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), query: report }, null, 2)}\n`);
}
