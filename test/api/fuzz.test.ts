// Random and malformed requests at every route of the app's route table (fast-check, seeded, a
// bounded number of runs, each request bounded in time): whatever the path parameters, query,
// headers and body, the answer is never a 500 or a crash or a hang; an error answer is in the
// route's error shape (dram's `{error, code, message}`, or Replicante's `{error, error_msg}` on
// /api/unstable, whose unknown action is a 404 with an empty body); and a refused request (any
// 4xx or 5xx) changes nothing: the KV data (a canary key among it) and the meta model are byte
// for byte the same. Once with authentication off and once with --token (wrong or no token then,
// half the time). fast-check prints the failing request and the seed that replays it.

import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { routeTable, type RouteEntry } from '../../src/api/auth.ts';
import { isErrorCode } from '../../src/api/errors.ts';
import type { LogIndex } from '../../src/base/ids.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { createKvPlacement } from '../../src/models/kv-placement.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { memberAddresses } from './cluster.ts';
import { stubGroups, stubHost, stubNodeId } from './stub-host.ts';

const seed = Number(process.env['FUZZ_SEED'] ?? 16);
const runsMax = Number(process.env['FUZZ_RUNS'] ?? 400);
const answerMsMax = 10_000;
const token = 'fuzz-test-token-0123456';

interface Node {
  readonly app: FastifyInstance;
  readonly kvs: readonly KvModel[];
  readonly meta: MetaModel;
}

function start(withToken: boolean): Node {
  const meta = new MetaModel();
  const stub = stubHost(meta);
  const kvs = stubGroups.map((group) => {
    const model = stub.host.model(group);
    if (!(model instanceof KvModel)) throw new Error(`group ${group} is not a KV group`);
    return model;
  });
  const canaryGroup = createKvPlacement(stubGroups).groupOf('canary');
  const canaryModel = stub.host.model(canaryGroup) as KvModel;
  canaryModel.apply(1 as LogIndex, { op: 'put', key: 'canary', value: new TextEncoder().encode('sing') });
  const app = buildApp({
    nodeId: stubNodeId,
    clusterId: 'fuzz-cluster',
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    members: memoryDirectory([memberAddresses(stubNodeId)], stubNodeId),
    requestTimeoutMs: 50,
    memberChangeLimits: { pollMs: 10, learnerLagEntriesMax: 0 },
    ...(withToken ? { auth: { token, secret: 'fuzz-cluster-secret-0123', clusterId: 'fuzz-cluster' } } : {}),
    meta: {
      model: meta,
      info: { httpUrl: 'http://127.0.0.1:8000', version: '0.0.0', clusterId: 'fuzz-cluster' },
      wallNowMs: () => 1_700_000_000_000,
    },
  });
  return { app, kvs, meta };
}

function errorCodeOf(body: string): unknown {
  try {
    return (JSON.parse(body) as Record<string, unknown>)['code'];
  } catch {
    return undefined;
  }
}

function state(node: Node): string {
  return Buffer.concat([...node.kvs.map((kv) => kv.snapshot()), node.meta.snapshot()]).toString('base64');
}

const methods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

/** A path parameter: plausible values, hostile text, and percent-escapes good and bad. */
const parameter = fc.oneof(
  fc.constantFrom('1', '0', '-1', '2', '99999999999999999999', 'canary', '3d0c0000-0000-4000-8000-000000000001'),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom('%', '%zz', '%00', '..', '%2F', '%C0%AF', 'a b', ''),
);

const jsonValue = fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value));

/** A body: none, plausible JSON objects, any JSON, deep nesting, or bytes. */
const body = fc.oneof(
  fc.constant(undefined),
  fc
    .record(
      {
        kind: fc.oneof(
          fc.string(),
          fc.constantFrom('agent.replicante.io/test.success', 'dram.io/group.transfer-leadership'),
        ),
        args: fc.jsonValue({ maxDepth: 2 }),
        id: fc.oneof(fc.uuid(), fc.string()),
        to: fc.oneof(fc.integer(), fc.string()),
        nodeId: fc.oneof(fc.integer({ min: -2, max: 9 }), fc.string()),
        raft: fc.string(),
        http: fc.string(),
        clusterId: fc.string(),
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
  jsonValue,
  fc.integer({ min: 1, max: 200 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.uint8Array({ maxLength: 256 }).map((bytes) => Buffer.from(bytes)),
);

const contentType = fc.option(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/octet-stream',
    'text/plain',
    'application/json; charset=latin1',
    ';;',
    'application/json, text/plain',
  ),
  { nil: undefined },
);

const query = fc.option(
  fc
    .array(
      fc.tuple(
        fc.constantFrom('consistency', 'cas', 'scope', 'partial', 'x'),
        fc.oneof(fc.constantFrom('linearizable', 'stale', 'lease', '0', '-1', '1e3', ''), fc.string({ maxLength: 10 })),
      ),
      { maxLength: 3 },
    )
    .map((pairs) => '?' + pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
  { nil: '' },
);

function requestArbitrary(routes: readonly RouteEntry[], withToken: boolean) {
  return fc.record({
    route: fc.constantFrom(...routes),
    otherMethod: fc.option(fc.constantFrom(...methods), { freq: 4, nil: undefined }),
    parameters: fc.array(parameter, { minLength: 4, maxLength: 4 }),
    query,
    body,
    contentType,
    authorization: withToken
      ? fc.constantFrom(`Bearer ${token}`, `Bearer ${token}`, 'Bearer wrong', undefined, 'Basic x')
      : fc.constant(undefined),
  });
}

type Fuzzed = ReturnType<typeof requestArbitrary> extends fc.Arbitrary<infer T> ? T : never;

function injectOptions(request: Fuzzed): InjectOptions & { readonly method: string; readonly url: string } {
  let next = 0;
  const url = request.route.url
    .replace(/:[A-Za-z]+/gu, () => request.parameters[next++] ?? '1')
    .replace('*', request.parameters[3] ?? '');
  const method = request.otherMethod ?? request.route.method;
  const headers: Record<string, string> = {};
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  if (request.authorization !== undefined) headers['authorization'] = request.authorization;
  return {
    method,
    url: url + request.query,
    headers,
    ...(request.body === undefined || method === 'GET' || method === 'HEAD' ? {} : { payload: request.body }),
  };
}

function withinTime<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer within ${answerMsMax} ms: ${what}`));
    }, answerMsMax);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

async function checkOne(node: Node, request: Fuzzed): Promise<void> {
  const options = injectOptions(request);
  const what = `${options.method} ${options.url}`;
  const before = state(node);
  const response = await withinTime(node.app.inject(options), what);
  expect({ what, status: response.statusCode }).not.toMatchObject({ status: 500 });
  expect(response.statusCode, what).toBeLessThan(600);
  if (response.statusCode < 400) return;
  // Deleting a missing key is no refusal: it is a write applied through the log, whose outcome
  // (404) the client's session records, so the model's bytes change.
  const appliedNotFound = options.method === 'DELETE' && errorCodeOf(response.body) === 'DRAM_ERR_KEY_NOT_FOUND';
  if (!appliedNotFound) expect({ what, unchanged: state(node) === before }).toEqual({ what, unchanged: true });
  if (options.method === 'HEAD') return;
  const agentApi = options.url.startsWith('/api/unstable');
  if (agentApi && response.statusCode === 404 && response.body === '') return; // Replicante's unknown action
  const answer = JSON.parse(response.body) as Record<string, unknown>;
  if (agentApi)
    expect({ what, answer }).toEqual({ what, answer: { error: true, error_msg: expect.any(String) as unknown } });
  else {
    expect({ what, error: answer['error'], known: isErrorCode(answer['code']) }).toEqual({
      what,
      error: true,
      known: true,
    });
    expect(typeof answer['message'], what).toBe('string');
  }
}

describe.each([
  { withToken: false, name: 'without authentication' },
  { withToken: true, name: 'with --token' },
])('random requests at every route, $name', ({ withToken }) => {
  let node: Node;
  let routes: readonly RouteEntry[];

  beforeAll(async () => {
    node = start(withToken);
    await node.app.ready();
    routes = routeTable(node.app);
  });

  afterAll(async () => {
    await node.app.close();
  });

  it('never answers 500, crashes or hangs; errors keep the route shape; refusals change nothing', async () => {
    expect(routes.length).toBeGreaterThan(20);
    await fc.assert(
      fc.asyncProperty(requestArbitrary(routes, withToken), (request) => checkOne(node, request)),
      { numRuns: runsMax, seed, endOnFailure: true },
    );
  }, 120_000);
});
