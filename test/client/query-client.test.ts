// The smart query client (src/client/query-client.ts) against three in-process members listening
// on loopback (buildApp over the stub host each, one real DuckDB engine, a database of four shards
// written by DuckDB, two replicas per shard, a user token). The stub members have no catalog, so
// the test serves the two catalog reads the client learns from (`GET /v1/databases` and
// `GET /v1/databases/:name/shards`) on each app; the members' addresses come from the real
// `GET /v1/admin/members`. Checks: the client answers exactly what one local run over every shard
// answers, reducing itself (endpoint modules given) or through a member, and its maps go straight
// to the members (no member ran a query route); a member that is down is routed around; a shard
// with no reachable replica is DRAM_ERR_PARTIAL with the coverage under deny and explicitly partial
// under allow; bad input ends with the member's code; the client routes need the user's token.

import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { asNodeId } from '../../src/base/ids.ts';
import { QueryClient, QueryClientError } from '../../src/client/query-client.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import type { JsonValue } from '../../src/data/query-engine.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import type { DatabaseDirectory } from '../../src/query/database-directory.ts';
import { loadEndpoints, type EndpointSet } from '../../src/query/endpoint-loader.ts';
import { localDatabaseFromDirectory } from '../../src/query/local-layout.ts';
import { LocalRunner, type LocalDatabase } from '../../src/query/local-runner.ts';
import count from '../../examples/endpoints/count.ts';
import histogram from '../../examples/endpoints/histogram.ts';
import topK from '../../examples/endpoints/top-k.ts';
import { stubGroups, stubHost } from '../api/stub-host.ts';
import { writeFixtureDatabase, type FixtureDatabase } from '../engine/fixtures.ts';

const token = 'client-user-token';
const placement: Readonly<Record<string, readonly number[]>> = { '1': [1, 2], '2': [2, 3], '3': [3, 1], '4': [1, 3] };

let fixture: FixtureDatabase;
let database: LocalDatabase;
let engine: DuckDbEngine;
let endpoints: EndpointSet;
const apps = new Map<number, FastifyInstance>();
const urls = new Map<number, string>();
/** Requests each member took, by route pattern. */
const routesTaken = new Map<string, number>();

function directory(self: number): DatabaseDirectory {
  return {
    resolve: (name) =>
      name !== 'events' && name !== 'latest'
        ? undefined
        : {
            name: 'events',
            version: '1',
            globalDir: database.globalDir,
            globalFiles: database.globalFiles,
            shards: database.shards.map((shard) => ({
              shard: shard.shard,
              replicas: (placement[shard.shard] ?? []).map((node) => ({
                node: asNodeId(node),
                state: 'loaded' as const,
                version: '1',
              })),
              local: (placement[shard.shard] ?? []).includes(self) ? shard : undefined,
            })),
          },
  };
}

async function member(self: number, members: ReturnType<typeof memoryDirectory>): Promise<FastifyInstance> {
  const stub = stubHost();
  const app = buildApp({
    nodeId: asNodeId(self),
    clusterId: 'client-cluster',
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    members,
    auth: { token, secret: 'client-cluster-secret', clusterId: 'client-cluster' },
    query: { runner: new LocalRunner({ endpoints, engine }), directory: directory(self) },
  });
  // The catalog reads a member with a catalog answers (src/api/database-routes.ts), for this database.
  app.get('/v1/databases', () => ({ databases: [{ name: 'events', version: 1, aliases: ['latest'] }] }));
  app.get('/v1/databases/events/shards', () => ({
    name: 'events',
    shards: Object.entries(placement).map(([shard, nodes]) => ({
      shard,
      version: 1,
      role: 'current',
      members: nodes.map((node) => ({ node, state: 'loaded' })),
    })),
  }));
  app.addHook('onResponse', (request, _reply, done) => {
    const route = request.routeOptions.url ?? '?';
    routesTaken.set(route, (routesTaken.get(route) ?? 0) + 1);
    done();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return app;
}

beforeAll(async () => {
  fixture = await writeFixtureDatabase(4, 3000);
  database = localDatabaseFromDirectory(fixture.root, 'events', '1');
  engine = await DuckDbEngine.open({
    limits: { ...duckDbEngineLimitsDefault, connectionsMax: 2 },
    readableDirectories: [fixture.root],
  });
  endpoints = await loadEndpoints(new URL('../../examples/endpoints/', import.meta.url).pathname);
  const members = memoryDirectory();
  for (const self of [1, 2, 3]) {
    const app = await member(self, members);
    const port = (app.server.address() as AddressInfo).port;
    apps.set(self, app);
    urls.set(self, `http://127.0.0.1:${port}`);
    members.record({
      nodeId: asNodeId(self),
      raft: { host: '127.0.0.1', port: 1 },
      http: { host: '127.0.0.1', port },
    });
  }
});

afterAll(async () => {
  for (const app of apps.values()) await app.close();
  await engine.close();
  rmSync(fixture.root, { recursive: true, force: true });
});

async function reference(endpoint: string, params: JsonValue): Promise<JsonValue> {
  return (await new LocalRunner({ endpoints, engine }).run({ endpoint, params, database })).result;
}

function client(options: { reduceHere: boolean; members?: number[] }): QueryClient {
  return new QueryClient({
    members: (options.members ?? [2]).map((id) => urls.get(id) ?? ''),
    token,
    ...(options.reduceHere ? { endpoints: [count, topK, histogram] } : {}),
  });
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof QueryClientError) return { code: error.code, status: error.status };
    throw error;
  }
  throw new Error('expected the query to be refused');
}

const cases: readonly [string, JsonValue][] = [
  ['count', { kind: 'purchase' }],
  ['top-k', { by: 'user_id', metric: 'amount' }],
  ['histogram', { bucket: 'day', kind: 'view' }],
];

describe('the smart query client', () => {
  it('answers the example endpoints exactly, reducing itself or through a member, with maps sent straight to members', async () => {
    routesTaken.clear();
    for (const reduceHere of [true, false]) {
      const smart = client({ reduceHere });
      try {
        for (const [endpoint, params] of cases) {
          const answer = await smart.query('latest', endpoint, params);
          expect({ endpoint, result: answer.result }).toEqual({ endpoint, result: await reference(endpoint, params) });
          expect(answer.coverage.complete).toBe(true);
          expect([answer.database, answer.version]).toEqual(['events', '1']);
          for (const shard of answer.coverage.shards)
            expect(placement[shard.shard]).toContain((shard as { node: number }).node);
        }
      } finally {
        smart.close();
      }
    }
    expect(routesTaken.get('/v1/databases/:nameOrAlias/query/:endpoint')).toBeUndefined();
    expect(routesTaken.get('/v1/internal/databases/:name/map/:endpoint')).toBeUndefined();
    expect(routesTaken.get('/v1/databases/:name/map/:endpoint')).toBe(2 * cases.length * 4);
    // Only the queries without the endpoint modules asked a member to reduce.
    expect(routesTaken.get('/v1/endpoints/:endpoint/reduce')).toBe(cases.length);
  });

  it('routes around a member that is down, and never answers short', async () => {
    const smart = client({ reduceHere: true, members: [3, 1] });
    try {
      // Node 1's address answers nothing (its port refuses): the map lists it, the calls fail.
      urls.set(1, 'http://127.0.0.1:1');
      await apps.get(1)?.close();
      apps.delete(1);
      const answer = await smart.query('events', 'count', { kind: 'view' });
      expect(answer.result).toEqual(await reference('count', { kind: 'view' }));
      expect(answer.coverage.shards.map((shard) => (shard as { node: number }).node)).toEqual([2, 2, 3, 3]);
      // Node 3 down too: shard 3 (nodes 3 and 1) and shard 4 (1 and 3) have no replica left.
      await apps.get(3)?.close();
      apps.delete(3);
      const two = client({ reduceHere: true, members: [2] });
      try {
        const denied = await two.query('events', 'count', {}).catch((error: unknown) => error);
        expect(denied).toBeInstanceOf(QueryClientError);
        const details = (denied as QueryClientError).details as { coverage: { shards: { skipped?: string }[] } };
        expect((denied as QueryClientError).code).toBe('DRAM_ERR_PARTIAL');
        expect(details.coverage.shards.map((shard) => shard.skipped ?? 'answered')).toEqual([
          'answered',
          'answered',
          'unavailable',
          'unavailable',
        ]);
        const allowed = await two.query('events', 'count', {}, { partial: 'allow' });
        expect(allowed.coverage.complete).toBe(false);
        expect(allowed.result).toEqual(
          await new LocalRunner({ endpoints, engine })
            .run({
              endpoint: 'count',
              params: {},
              database: { ...database, shards: database.shards.filter((shard) => ['1', '2'].includes(shard.shard)) },
            })
            .then((local) => local.result),
        );
      } finally {
        two.close();
      }
    } finally {
      smart.close();
    }
  });

  it('ends a query the members refuse with their code, and needs the user token', async () => {
    const smart = client({ reduceHere: true, members: [2] });
    try {
      expect(await refusal(smart.query('events', 'count', { kind: 7 }))).toEqual({
        code: 'DRAM_ERR_INVALID_PARAMS',
        status: 400,
      });
      // Found in the shard map, before any member is asked: no status.
      expect(await refusal(smart.query('events', 'count', {}, { shards: ['1', '9'] }))).toEqual({
        code: 'DRAM_ERR_UNKNOWN_SHARD',
        status: undefined,
      });
      expect(await refusal(smart.query('nothing', 'count', {}))).toEqual({
        code: 'DRAM_ERR_DATABASE_NOT_FOUND',
        status: undefined,
      });
      expect(await refusal(smart.query('events', 'no-such-endpoint', {}, { shards: ['1'] }))).toEqual({
        code: 'DRAM_ERR_UNKNOWN_ENDPOINT',
        status: 404,
      });
    } finally {
      smart.close();
    }
    const throwing = new QueryClient({
      members: [urls.get(2) ?? ''],
      token,
      endpoints: [
        {
          name: 'count',
          reduce: () => {
            throw new Error('nope');
          },
        },
      ],
    });
    try {
      expect(await refusal(throwing.query('events', 'count', {}, { shards: ['1', '2'] }))).toEqual({
        code: 'DRAM_ERR_QUERY_FAILED',
        status: undefined,
      });
    } finally {
      throwing.close();
    }
    const anonymous = new QueryClient({ members: [urls.get(2) ?? ''] });
    try {
      expect(await refusal(anonymous.query('events', 'count', {}))).toEqual({
        code: 'DRAM_ERR_UNAUTHORIZED',
        status: 401,
      });
    } finally {
      anonymous.close();
    }
    const app = apps.get(2);
    const reduce = await app?.inject({
      method: 'POST',
      url: '/v1/endpoints/count/reduce',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      payload: JSON.stringify({ params: {}, partials: 'no', extra: 1 }),
    });
    expect([reduce?.statusCode, (reduce?.json() as { code: string }).code]).toEqual([400, 'DRAM_ERR_BAD_REQUEST']);
  });
});
