// The query route over three in-process members (buildApp over the one-node stub host each, one
// real DuckDB engine, a database of four shards written by DuckDB, two replicas per shard), the
// members calling each other's member-only map route through a Forward that inject()s into the
// other app with the cluster secret's signature. Checks: the example endpoints answer exactly what
// one local run over every shard answers, from any member, with a coverage naming one replica per
// shard; ?scope=local and ?shards=; a member that is down is routed around (retry elsewhere);
// a shard with no reachable replica is 503 DRAM_ERR_PARTIAL with the coverage under deny and an
// explicitly partial answer under allow; bad names and query values are 400; the member-only map
// route refuses a user's token and takes the member credential.

import { rmSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { peerAuthHeaders } from '../../src/api/auth.ts';
import type { Forward } from '../../src/api/ports.ts';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import type { JsonValue } from '../../src/data/query-engine.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import type { DatabaseDirectory, DirectoryShard } from '../../src/query/database-directory.ts';
import { loadEndpoints, type EndpointSet } from '../../src/query/endpoint-loader.ts';
import { localDatabaseFromDirectory } from '../../src/query/local-layout.ts';
import { LocalRunner, type LocalDatabase } from '../../src/query/local-runner.ts';
import { writeFixtureDatabase, type FixtureDatabase } from '../engine/fixtures.ts';
import { stubGroups, stubHost } from './stub-host.ts';

const clusterId = 'query-cluster';
const secret = 'query-cluster-secret';
const token = 'user-token';
/** Shard id -> the members holding it. */
const placement: Readonly<Record<string, readonly number[]>> = { '1': [1, 2], '2': [2, 3], '3': [3, 1], '4': [1, 3] };

let fixture: FixtureDatabase;
let database: LocalDatabase;
let engine: DuckDbEngine;
let endpoints: EndpointSet;
const apps = new Map<number, FastifyInstance>();
/** Members whose HTTP API cannot be reached (the forward refuses the connection). */
const down = new Set<number>();

function directory(self: number): DatabaseDirectory {
  return {
    resolve: (name) => {
      if (name !== 'events' && name !== 'latest') return undefined;
      const shards: DirectoryShard[] = database.shards.map((shard) => {
        const holders = placement[shard.shard] ?? [];
        return {
          shard: shard.shard,
          replicas: holders.map((node) => ({ node: asNodeId(node), state: 'loaded' as const, version: 'v1' })),
          local: holders.includes(self) ? shard : undefined,
        };
      });
      return {
        name: 'events',
        version: 'v1',
        globalDir: database.globalDir,
        globalFiles: database.globalFiles,
        shards,
      };
    },
  };
}

const forward: Forward = async (node: NodeId, request) => {
  const app = apps.get(node);
  if (app === undefined || down.has(node))
    throw Object.assign(new Error(`connect ECONNREFUSED (node ${node})`), { code: 'ECONNREFUSED' });
  const response = await app.inject({
    method: request.method,
    url: request.url,
    headers: {
      ...request.headers,
      ...peerAuthHeaders({ secret, clusterId }, 1, request.method, request.url, Date.now()),
    },
    ...(request.body === undefined ? {} : { payload: request.body }),
  });
  return { status: response.statusCode, headers: {}, body: response.rawPayload };
};

/** Each member's metrics (the fan-out's figures among them). */
const metricsOf = new Map<number, ReturnType<typeof createNodeMetrics>>();

/** The value of an unlabelled sample of member `self`'s /metrics text. */
async function sample(self: number, name: string): Promise<number> {
  const text = (await metricsOf.get(self)?.render())?.body ?? '';
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? 'NaN');
}

function member(self: number): FastifyInstance {
  const stub = stubHost();
  const metrics = createNodeMetrics({ host: stub.host });
  metricsOf.set(self, metrics);
  return buildApp({
    nodeId: asNodeId(self),
    clusterId,
    host: stub.host,
    groups: stubGroups,
    metrics,
    forward,
    auth: { token, secret, clusterId },
    query: { runner: new LocalRunner({ endpoints, engine }), directory: directory(self) },
  });
}

beforeAll(async () => {
  fixture = await writeFixtureDatabase(4, 3000);
  database = localDatabaseFromDirectory(fixture.root, 'events', 'v1');
  engine = await DuckDbEngine.open({
    limits: { ...duckDbEngineLimitsDefault, connectionsMax: 2 },
    readableDirectories: [fixture.root],
  });
  endpoints = await loadEndpoints(new URL('../../examples/endpoints/', import.meta.url).pathname);
  for (const self of [1, 2, 3]) apps.set(self, member(self));
});

afterAll(async () => {
  for (const app of apps.values()) await app.close();
  await engine.close();
  rmSync(fixture.root, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: {
    result?: JsonValue;
    code?: string;
    coverage?: Coverage;
    details?: { coverage?: Coverage; reason?: string };
  };
}

interface Coverage {
  complete: boolean;
  shards: { shard: string; node?: number; version?: string; ms?: number; skipped?: string; message?: string }[];
}

async function query(self: number, path: string, params: JsonValue = {}): Promise<Answer> {
  const app = apps.get(self);
  if (app === undefined) throw new Error(`no member ${self}`);
  const response = await app.inject({
    method: 'POST',
    url: `/v1/databases/${path}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    payload: JSON.stringify(params),
  });
  return { status: response.statusCode, body: response.json() };
}

/** What one local run over every shard answers: the reference. */
async function reference(endpoint: string, params: JsonValue): Promise<JsonValue> {
  return (await new LocalRunner({ endpoints, engine }).run({ endpoint, params, database })).result;
}

const examples: readonly [string, JsonValue][] = [
  ['count', { kind: 'purchase', country: 'jp' }],
  ['top-k', { by: 'country', metric: 'amount', k: 3 }],
  ['histogram', { bucket: 'hour', kind: 'cart' }],
];

describe('the query route', () => {
  it('answers the example endpoints exactly from any member, with one replica per shard in the coverage', async () => {
    for (const [endpoint, params] of examples) {
      const expected = await reference(endpoint, params);
      for (const self of [1, 2, 3]) {
        const answer = await query(self, `events/query/${endpoint}`, params);
        expect({ self, endpoint, status: answer.status, result: answer.body.result }).toEqual({
          self,
          endpoint,
          status: 200,
          result: expected,
        });
        const shards = answer.body.coverage?.shards ?? [];
        expect(answer.body.coverage?.complete).toBe(true);
        expect(shards.map((shard) => shard.shard)).toEqual(['1', '2', '3', '4']);
        for (const shard of shards) {
          expect(placement[shard.shard]).toContain(shard.node);
          expect(shard.version).toBe('v1');
          expect(typeof shard.ms).toBe('number');
          // A member holding the shard maps it itself.
          if (placement[shard.shard]?.includes(self) === true) expect(shard.node).toBe(self);
        }
      }
    }
  });

  it('resolves through the directory (an alias), and ?shards= picks shards', async () => {
    const answer = await query(2, 'latest/query/count?shards=1,3');
    const expected = await new LocalRunner({ endpoints, engine }).run({
      endpoint: 'count',
      params: {},
      database: { ...database, shards: database.shards.filter((shard) => ['1', '3'].includes(shard.shard)) },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.result).toEqual(expected.result);
    expect(answer.body.coverage?.shards.map((shard) => shard.shard)).toEqual(['1', '3']);
  });

  it('?scope=local maps only the shards this member holds', async () => {
    const answer = await query(2, 'events/query/count?scope=local');
    const expected = await new LocalRunner({ endpoints, engine }).run({
      endpoint: 'count',
      params: {},
      database: { ...database, shards: database.shards.filter((shard) => placement[shard.shard]?.includes(2)) },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.result).toEqual(expected.result);
    expect(answer.body.coverage).toMatchObject({
      complete: true,
      shards: [
        { shard: '1', node: 2, version: 'v1' },
        { shard: '2', node: 2, version: 'v1' },
      ],
    });
    const missing = await query(2, 'events/query/count?scope=local&shards=3');
    expect({ status: missing.status, code: missing.body.code }).toEqual({
      status: 409,
      code: 'DRAM_ERR_NO_LOCAL_SHARDS',
    });
  });

  it('routes around a member that is down: the answer is still exact', async () => {
    down.add(1);
    try {
      const expected = await reference('count', {});
      const answer = await query(3, 'events/query/count');
      expect(answer.status).toBe(200);
      expect(answer.body.result).toEqual(expected);
      expect(await sample(3, 'dram_query_shard_retries_total')).toBeGreaterThanOrEqual(1);
      // Shard 1 is on members 1 and 2, both idle: member 3 asks 1 (the lower id), then 2 when 1 refuses.
      expect(answer.body.coverage?.shards.find((shard) => shard.shard === '1')?.node).toBe(2);
    } finally {
      down.clear();
    }
  });

  it('never answers short: a shard with no reachable replica is DRAM_ERR_PARTIAL, or explicitly partial with ?partial=allow', async () => {
    down.add(2);
    down.add(3);
    try {
      // Member 1 holds shards 1, 3 and 4; shard 2 is only on members 2 and 3.
      const denied = await query(1, 'events/query/count');
      expect({ status: denied.status, code: denied.body.code }).toEqual({ status: 503, code: 'DRAM_ERR_PARTIAL' });
      const coverage = denied.body.details?.coverage;
      expect(coverage?.complete).toBe(false);
      expect(coverage?.shards.find((shard) => shard.shard === '2')).toMatchObject({ skipped: 'unavailable' });
      expect(coverage?.shards.filter((shard) => shard.node === 1).map((shard) => shard.shard)).toEqual(['1', '3', '4']);

      const [partialBefore, widthBefore] = [
        await sample(1, 'dram_query_partial_answers_total'),
        await sample(1, 'dram_query_fanout_shards_sum'),
      ];
      const allowed = await query(1, 'events/query/count?partial=allow');
      expect(await sample(1, 'dram_query_partial_answers_total')).toBe(partialBefore + 1);
      expect(await sample(1, 'dram_query_fanout_shards_sum')).toBe(widthBefore + 4);
      const expected = await new LocalRunner({ endpoints, engine }).run({
        endpoint: 'count',
        params: {},
        database: { ...database, shards: database.shards.filter((shard) => shard.shard !== '2') },
      });
      expect(allowed.status).toBe(200);
      expect(allowed.body.result).toEqual(expected.result);
      expect(allowed.body.coverage?.complete).toBe(false);
      expect(allowed.body.coverage?.shards.find((shard) => shard.shard === '2')?.skipped).toBe('unavailable');
    } finally {
      down.clear();
    }
  });

  it('refuses bad names and query values with 400, unknown ones with 404, each with its code', async () => {
    const cases: [string, number, string][] = [
      ['events%2F..%2Fx/query/count', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['ev..ents/query/count', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/co..unt', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/count%2F..', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/count?scope=global', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/count?partial=maybe', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/count?shards=1,,2', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['events/query/count?shards=1&shards=2', 400, 'DRAM_ERR_BAD_REQUEST'],
      ['nope/query/count', 404, 'DRAM_ERR_DATABASE_NOT_FOUND'],
      ['events/query/nope', 404, 'DRAM_ERR_UNKNOWN_ENDPOINT'],
      ['events/query/count?shards=1,9', 404, 'DRAM_ERR_UNKNOWN_SHARD'],
    ];
    for (const [path, status, code] of cases) {
      const answer = await query(1, path);
      expect({ path, status: answer.status, code: answer.body.code }).toEqual({ path, status, code });
    }
    const huge = await query(1, 'events/query/count', { kind: 'x'.repeat(70_000) });
    expect({ status: huge.status, code: huge.body.code }).toEqual({ status: 413, code: 'DRAM_ERR_BODY_TOO_LARGE' });
    const invalid = await query(1, 'events/query/top-k', { by: 'nothing' });
    expect({ status: invalid.status, code: invalid.body.code }).toEqual({
      status: 400,
      code: 'DRAM_ERR_INVALID_PARAMS',
    });
  });

  it('serves the member-only map route to the member credential, not to a user token', async () => {
    const app = apps.get(1);
    if (app === undefined) throw new Error('no member 1');
    const url = '/v1/internal/databases/events/map/count';
    const payload = JSON.stringify({ version: 'v1', shards: ['1'], params: {} });
    const asUser = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
      payload,
    });
    expect(asUser.statusCode).toBe(401);
    const asMember = await forward(asNodeId(1), {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(payload),
    });
    expect(asMember.status).toBe(200);
    const expected = await new LocalRunner({ endpoints, engine }).mapShards({
      endpoint: 'count',
      params: {},
      database: { ...database, shards: database.shards.filter((shard) => shard.shard === '1') },
    });
    const body = JSON.parse(asMember.body.toString('utf8')) as { partials: { shard: string; result: JsonValue }[] };
    expect(body.partials.map(({ shard, result }) => ({ shard, result }))).toEqual(
      expected.map(({ shard, result }) => ({ shard, result })),
    );
    // A shard the member does not hold, or another version, is refused with the reason.
    for (const [shards, version, reason] of [
      [['2'], 'v1', 'unavailable'],
      [['1'], 'v0', 'lagging'],
    ] as const) {
      const refused = await forward(asNodeId(1), {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ version, shards, params: {} })),
      });
      expect({ status: refused.status, body: JSON.parse(refused.body.toString('utf8')) as unknown }).toMatchObject({
        status: 409,
        body: { code: 'DRAM_ERR_NO_LOCAL_SHARDS', details: { reason } },
      });
    }
  });
});
