// The query fan-out benchmark (issue 15; `npm run bench -- --query`, or alone:
// `npx tsx bench/query-cluster.bench.ts [--events N] [--samples N] [--seconds N]`, JSON on stdout,
// tables on stderr). Three parts, every ratio taken within one run:
//
//  1. Overhead: the example endpoints over 8 and 16 shards of generated data (test/engine/fixtures.ts),
//     fanned out by one of three in-process members over loopback HTTP against the same query run
//     locally in one process (bench/fan-out.bench.ts: same engine, samples alternating). Target:
//     fan-out p50 <= local p50 + 2 ms.
//  2. A slowed member: three real dram processes with a sample database of 8 shards, two copies
//     each, loaded from a real S3 server (test/integration/sharded-cluster.ts); node 3 is stopped
//     (SIGSTOP) for 200 ms every second while queries run, alternating: the member fan-out (to
//     node 1, its hedging on as by default), the smart client with hedging (the default 95th
//     percentile) and the smart client with hedging off. p50/p99 of each, and the client's hedges.
//     The client and the member run the same fan-out code, so the client's pair is the
//     with/without-hedging comparison.
//  3. Smart client against member fan-out, nothing slowed: the same query, alternating.
//
// Every answer is checked before it is timed (the count must equal a local run over the same
// files); a query that answers anything else stops the benchmark. The machine's 1-minute load
// average at the start is in the report: this machine is shared, so absolute figures move between
// runs; compare the figures of one run with each other.

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import count from '../examples/endpoints/count.ts';
import { QueryClient } from '../src/client/query-client.ts';
import type { JsonValue } from '../src/data/query-engine.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../src/engine/duckdb-engine.ts';
import { loadEndpoints } from '../src/query/endpoint-loader.ts';
import { fanOutLimitsDefault } from '../src/query/fan-out.ts';
import { localDatabaseFromDirectory } from '../src/query/local-layout.ts';
import { writeFixtureDatabase } from '../test/engine/fixtures.ts';
import { rmSync } from 'node:fs';
import {
  endpointsDir,
  post,
  Reference,
  startShardedCluster,
  type ShardedCluster,
} from '../test/integration/sharded-cluster.ts';
import { measureFanOut, type FanOutFigures } from './fan-out.bench.ts';
import { numberOption, queryCases } from './query.bench.ts';

export interface QueryClusterBenchOptions {
  /** Events of the generated database of the overhead part (split over its shards). */
  readonly events: number;
  readonly samples: number;
  /** Time bound of each measured series. */
  readonly seconds: number;
  readonly log: (line: string) => void;
}

export const queryClusterBenchDefaults: Omit<QueryClusterBenchOptions, 'log'> = {
  events: 200_000,
  samples: 30,
  seconds: 20,
};

export interface LatencyFigures {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface QueryClusterReport {
  readonly loadAverage: number;
  readonly note: string;
  /** Part 1, per shard count and endpoint. */
  readonly overhead: readonly FanOutFigures[];
  /** Part 2. */
  readonly slowedMember: {
    readonly members: number;
    readonly shards: number;
    readonly slowed: number;
    readonly stopMs: number;
    readonly everyMs: number;
    readonly memberFanOut: LatencyFigures;
    readonly clientHedged: LatencyFigures & { readonly hedgesSent: number; readonly hedgesWon: number };
    readonly clientUnhedged: LatencyFigures;
    /** clientUnhedged.p99Ms / clientHedged.p99Ms. */
    readonly hedgingP99Gain: number;
  };
  /** Part 3. */
  readonly smartClient: {
    readonly memberFanOut: LatencyFigures;
    readonly client: LatencyFigures;
    /** client.p50Ms / memberFanOut.p50Ms. */
    readonly ratioP50: number;
  };
}

const round = (value: number): number => Math.round(value * 100) / 100;

function figures(samples: readonly number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (fraction: number): number =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] ?? Number.NaN;
  return { samples: sorted.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(at(1)) };
}

async function overhead(options: QueryClusterBenchOptions): Promise<FanOutFigures[]> {
  const results: FanOutFigures[] = [];
  const endpoints = await loadEndpoints(endpointsDir);
  for (const shards of [8, 16]) {
    const fixture = await writeFixtureDatabase(shards, options.events);
    const engine = await DuckDbEngine.open({
      limits: { ...duckDbEngineLimitsDefault, connectionsMax: 2, queryThreadsMax: 1 },
      readableDirectories: [fixture.root],
    });
    try {
      const database = localDatabaseFromDirectory(fixture.root, 'events', 'bench');
      for (const query of queryCases) {
        results.push(await measureFanOut(engine, endpoints, database, query, options.samples, options.seconds / 2));
        options.log(`query fan-out bench: overhead, ${shards} shards, ${query.endpoint} done`);
      }
    } finally {
      await engine.close();
      rmSync(fixture.root, { recursive: true, force: true });
    }
  }
  return results;
}

/** Runs the named series in turn, one sample each per round, until `samples` rounds or `seconds`. */
async function alternate(
  series: Record<string, () => Promise<void>>,
  samples: number,
  seconds: number,
): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(series).map((name) => [name, []]));
  const deadline = performance.now() + seconds * 1000;
  for (let round = 0; round < samples && performance.now() < deadline; round++)
    for (const [name, run] of Object.entries(series)) {
      const started = performance.now();
      await run();
      times[name]?.push(performance.now() - started);
    }
  return times;
}

/** Stops node `id` for `stopMs` every `everyMs` until the returned function is called (which resumes it). */
function slowDown(signal: (sig: NodeJS.Signals) => void, stopMs: number, everyMs: number): () => void {
  let stopped = false;
  let resume: NodeJS.Timeout | undefined;
  const tick = setInterval(() => {
    signal('SIGSTOP');
    stopped = true;
    resume = setTimeout(() => {
      signal('SIGCONT');
      stopped = false;
    }, stopMs);
  }, everyMs);
  return () => {
    clearInterval(tick);
    if (resume !== undefined) clearTimeout(resume);
    if (stopped) signal('SIGCONT');
  };
}

/** The three ways of asking the cluster the count query, each checked against the reference's answer. */
async function countSeries(
  sharded: ShardedCluster,
  reference: Reference,
  clients: { readonly hedged: QueryClient; readonly unhedged: QueryClient },
  params: JsonValue,
): Promise<Record<'member' | 'hedged' | 'unhedged', () => Promise<void>>> {
  const expected = JSON.stringify(await reference.answer(sharded.dir('bench'), 'count', params));
  const check = (what: string, result: JsonValue | undefined): void => {
    if (JSON.stringify(result) !== expected)
      throw new Error(`query fan-out bench: ${what} answered ${JSON.stringify(result)}, expected ${expected}`);
  };
  return {
    member: async () => {
      const answer = await post(`${sharded.cluster.url(1)}/v1/databases/bench/query/count`, params);
      check('the member fan-out', answer.body['result'] as JsonValue);
    },
    hedged: async () => {
      check('the hedged client', (await clients.hedged.query('bench', 'count', params)).result);
    },
    unhedged: async () => {
      check('the client without hedging', (await clients.unhedged.query('bench', 'count', params)).result);
    },
  };
}

/** `series` alternated, twice the samples and time, while node 3 is stopped for 200 ms every second. */
async function alternateWithNode3Slowed(
  sharded: ShardedCluster,
  series: Record<string, () => Promise<void>>,
  options: QueryClusterBenchOptions,
): Promise<Record<string, number[]>> {
  const resume = slowDown(
    (sig) => {
      sharded.cluster.signal(3, sig);
    },
    200,
    1000,
  );
  try {
    return await alternate(series, options.samples * 2, options.seconds * 2);
  } finally {
    resume();
  }
}

async function onCluster(
  options: QueryClusterBenchOptions,
): Promise<Omit<QueryClusterReport, 'loadAverage' | 'note' | 'overhead'>> {
  const shards = 8;
  const spec = { name: 'bench', replicas: 2, sample: { seed: 7, shards, eventsPerShard: 20_000, filesPerShard: 1 } };
  options.log('query fan-out bench: starting three nodes and S3, loading 8 shards x 2 copies');
  const sharded = await startShardedCluster(3, [spec]);
  const reference = await Reference.open([sharded.root]);
  const params: JsonValue = { kind: 'purchase' };
  const hedged = new QueryClient({ members: [sharded.cluster.url(1)], endpoints: [count] });
  const unhedged = new QueryClient({
    members: [sharded.cluster.url(1)],
    endpoints: [count],
    fanOutLimits: { ...fanOutLimitsDefault, hedgeAfterPercentile: 0 },
  });
  try {
    await sharded.add(spec);
    const series = await countSeries(sharded, reference, { hedged, unhedged }, params);
    // Warm up, and give every fan-out the latency samples its hedging needs.
    await alternate(series, Math.ceil(fanOutLimitsDefault.hedgeSamplesMin / shards) + 3, options.seconds);
    const plain = await alternate({ member: series.member, client: series.hedged }, options.samples, options.seconds);
    options.log('query fan-out bench: smart client against member fan-out done; now slowing node 3');
    const sentBefore = hedged.fanOut.counters.hedgesSent;
    const wonBefore = hedged.fanOut.counters.hedgesWon;
    const slowed = await alternateWithNode3Slowed(sharded, series, options);
    const clientHedged = figures(slowed['hedged'] ?? []);
    const clientUnhedged = figures(slowed['unhedged'] ?? []);
    const memberPlain = figures(plain['member'] ?? []);
    const clientPlain = figures(plain['client'] ?? []);
    return {
      slowedMember: {
        members: 3,
        shards,
        slowed: 3,
        stopMs: 200,
        everyMs: 1000,
        memberFanOut: figures(slowed['member'] ?? []),
        clientHedged: {
          ...clientHedged,
          hedgesSent: hedged.fanOut.counters.hedgesSent - sentBefore,
          hedgesWon: hedged.fanOut.counters.hedgesWon - wonBefore,
        },
        clientUnhedged,
        hedgingP99Gain: round(clientUnhedged.p99Ms / clientHedged.p99Ms),
      },
      smartClient: {
        memberFanOut: memberPlain,
        client: clientPlain,
        ratioP50: round(clientPlain.p50Ms / memberPlain.p50Ms),
      },
    };
  } finally {
    hedged.close();
    unhedged.close();
    await reference.close();
    await sharded.stop();
  }
}

export async function runQueryClusterBench(options: QueryClusterBenchOptions): Promise<QueryClusterReport> {
  const loadAverage = round(loadavg()[0] ?? 0);
  const overheadFigures = await overhead(options);
  const cluster = await onCluster(options);
  return {
    loadAverage,
    note: 'a shared 2-core machine (other work runs beside it): compare figures within this run only',
    overhead: overheadFigures,
    ...cluster,
  };
}

export function queryClusterTables(report: QueryClusterReport): Record<string, string | number>[][] {
  const latency = (name: string, value: LatencyFigures) => ({
    series: name,
    'p50 ms': value.p50Ms,
    'p99 ms': value.p99Ms,
    'max ms': value.maxMs,
    samples: value.samples,
  });
  const slowed = report.slowedMember;
  return [
    report.overhead.map((figures) => ({
      endpoint: figures.endpoint,
      shards: figures.shards,
      'local p50 ms': figures.localP50Ms,
      'fan-out p50 ms': figures.fanOutP50Ms,
      'overhead p50 ms': figures.overheadP50Ms,
      'fan-out p99 ms': figures.fanOutP99Ms,
      samples: figures.samples,
    })),
    [
      latency('member fan-out, node 3 slowed', slowed.memberFanOut),
      latency('smart client, hedging, node 3 slowed', slowed.clientHedged),
      latency('smart client, no hedging, node 3 slowed', slowed.clientUnhedged),
      latency('member fan-out', report.smartClient.memberFanOut),
      latency('smart client', report.smartClient.client),
    ],
  ];
}

/** The options from a command line: `${prefix}events N`, `${prefix}samples N`, `${prefix}seconds N`. */
export function queryClusterBenchOptionsFrom(
  argv: readonly string[],
  prefix: string,
  log: (line: string) => void,
): QueryClusterBenchOptions {
  return {
    events: numberOption(argv, `${prefix}events`, queryClusterBenchDefaults.events, 50_000_000),
    samples: numberOption(argv, `${prefix}samples`, queryClusterBenchDefaults.samples, 10_000),
    seconds: numberOption(argv, `${prefix}seconds`, queryClusterBenchDefaults.seconds, 600),
    log,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runQueryClusterBench(
    queryClusterBenchOptionsFrom(process.argv, '--', (line) => {
      process.stderr.write(`${line}\n`);
    }),
  );
  const people = new console.Console(process.stderr);
  for (const table of queryClusterTables(report)) people.table(table);
  process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), queryFanOut: report }, null, 2)}\n`);
}
