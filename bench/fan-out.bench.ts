// Fan-out overhead (issue 15's benchmark, first part): the same query over the same shards, run
// (a) by the local runner in one process over every shard, and (b) sent over HTTP to member 1 of
// three members (buildApp over the stub host, listening on loopback), which maps the shards it
// holds itself and asks the other members for the rest over HTTP (the member-only map route),
// then reduces. Every shard is on two of the three members, so member 1 holds about two thirds.
// The members share the one DuckDB engine the local run uses, so both have the same compute; the
// difference is the fan-out's cost: the client's HTTP hop, the member-to-member calls, the JSON
// of the partials. Samples of (a) and (b) alternate, so both see the same machine.
//
// Before timing, (b) must answer exactly what (a) answers. Called by: bench/query.bench.ts.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/api/app.ts';
import type { Forward } from '../src/api/ports.ts';
import { asNodeId } from '../src/base/ids.ts';
import type { JsonValue, QueryEngine } from '../src/data/query-engine.ts';
import { createNodeMetrics } from '../src/metrics/registry.ts';
import type { DatabaseDirectory } from '../src/query/database-directory.ts';
import type { EndpointSet } from '../src/query/endpoint-loader.ts';
import { LocalRunner, type LocalDatabase } from '../src/query/local-runner.ts';
import { stubGroups, stubHost } from '../test/api/stub-host.ts';

export interface FanOutFigures {
  readonly endpoint: string;
  readonly shards: number;
  readonly members: number;
  readonly samples: number;
  readonly localP50Ms: number;
  readonly localP99Ms: number;
  readonly fanOutP50Ms: number;
  readonly fanOutP99Ms: number;
  /** fanOutP50Ms - localP50Ms (target: <= 2 ms). */
  readonly overheadP50Ms: number;
  readonly ratioP50: number;
}

const membersCount = 3;

function sortedPercentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] ?? Number.NaN;
}

const round = (value: number): number => Math.round(value * 100) / 100;

function post(
  agent: http.Agent,
  port: number,
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: url, headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Shard at position i is on members i % 3 + 1 and (i + 1) % 3 + 1. */
function holders(at: number): number[] {
  return [(at % membersCount) + 1, ((at + 1) % membersCount) + 1];
}

function directory(self: number, database: LocalDatabase): DatabaseDirectory {
  const view = {
    name: database.name,
    version: database.version,
    globalDir: database.globalDir,
    globalFiles: database.globalFiles,
    shards: database.shards.map((shard, at) => ({
      shard: shard.shard,
      replicas: holders(at).map((node) => ({
        node: asNodeId(node),
        state: 'loaded' as const,
        version: database.version,
      })),
      local: holders(at).includes(self) ? shard : undefined,
    })),
  };
  return { resolve: (name) => (name === database.name ? view : undefined) };
}

/** The three members on loopback, each an app over the stub host; each goes into `apps` as it listens. */
async function startMembers(
  engine: QueryEngine,
  endpoints: EndpointSet,
  database: LocalDatabase,
  forward: Forward,
  ports: Map<number, number>,
  apps: FastifyInstance[],
): Promise<void> {
  for (let self = 1; self <= membersCount; self++) {
    const stub = stubHost();
    const app = buildApp({
      nodeId: asNodeId(self),
      host: stub.host,
      groups: stubGroups,
      metrics: createNodeMetrics({ host: stub.host }),
      forward,
      query: { runner: new LocalRunner({ endpoints, engine }), directory: directory(self, database) },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    ports.set(self, (app.server.address() as AddressInfo).port);
    apps.push(app);
  }
}

/** Times `local` and `fanned` alternately, after three warm-up rounds, until `samples` each or `secondsMax`. */
async function sampleAlternately(
  local: () => Promise<unknown>,
  fanned: () => Promise<unknown>,
  samples: number,
  secondsMax: number,
): Promise<{ localMs: number[]; fanOutMs: number[] }> {
  for (let warm = 0; warm < 3; warm++) {
    await local();
    await fanned();
  }
  const localMs: number[] = [];
  const fanOutMs: number[] = [];
  const deadline = performance.now() + secondsMax * 1000;
  while (localMs.length < samples && performance.now() < deadline) {
    let started = performance.now();
    await local();
    localMs.push(performance.now() - started);
    started = performance.now();
    await fanned();
    fanOutMs.push(performance.now() - started);
  }
  return { localMs, fanOutMs };
}

export async function measureFanOut(
  engine: QueryEngine,
  endpoints: EndpointSet,
  database: LocalDatabase,
  query: { readonly endpoint: string; readonly params: JsonValue },
  samples: number,
  secondsMax: number,
): Promise<FanOutFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const ports = new Map<number, number>();
  const forward: Forward = async (node, request) => {
    const port = ports.get(node);
    if (port === undefined) throw new Error(`no member ${node}`);
    const answer = await post(agent, port, request.url, { ...request.headers }, request.body ?? Buffer.alloc(0));
    return { status: answer.status, headers: {}, body: answer.body };
  };
  const apps: FastifyInstance[] = [];
  try {
    await startMembers(engine, endpoints, database, forward, ports, apps);
    const localRunner = new LocalRunner({ endpoints, engine });
    const local = async (): Promise<JsonValue> =>
      (await localRunner.run({ endpoint: query.endpoint, params: query.params, database })).result;
    const body = Buffer.from(JSON.stringify(query.params));
    const url = `/v1/databases/${database.name}/query/${query.endpoint}`;
    const fanned = async (): Promise<JsonValue> => {
      const answer = await post(agent, ports.get(1) ?? 0, url, { 'content-type': 'application/json' }, body);
      const parsed = JSON.parse(answer.body.toString('utf8')) as {
        result?: JsonValue;
        coverage?: { complete: boolean };
      };
      if (answer.status !== 200 || parsed.coverage?.complete !== true)
        throw new Error(`fan-out bench: HTTP ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      return parsed.result ?? null;
    };
    const expected = JSON.stringify(await local());
    const got = JSON.stringify(await fanned());
    if (got !== expected) throw new Error(`fan-out bench: the fan-out answered ${got}, the local run ${expected}`);
    const { localMs, fanOutMs } = await sampleAlternately(local, fanned, samples, secondsMax);
    const localSorted = [...localMs].sort((a, b) => a - b);
    const fanOutSorted = [...fanOutMs].sort((a, b) => a - b);
    const localP50Ms = sortedPercentile(localSorted, 0.5);
    const fanOutP50Ms = sortedPercentile(fanOutSorted, 0.5);
    return {
      endpoint: query.endpoint,
      shards: database.shards.length,
      members: membersCount,
      samples: localMs.length,
      localP50Ms: round(localP50Ms),
      localP99Ms: round(sortedPercentile(localSorted, 0.99)),
      fanOutP50Ms: round(fanOutP50Ms),
      fanOutP99Ms: round(sortedPercentile(fanOutSorted, 0.99)),
      overheadP50Ms: round(fanOutP50Ms - localP50Ms),
      ratioP50: round(fanOutP50Ms / localP50Ms),
    };
  } finally {
    for (const app of apps) await app.close();
    agent.destroy();
  }
}
