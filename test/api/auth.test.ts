// Authentication of the HTTP API (src/api/auth.ts, docs/security.md), over the one-node stub host
// with the meta model, through inject(). Every route comes from the app's own route table, so a
// route added later is covered without editing this file: a request without a token, with a
// wrong one, or with the read token on a write is refused with 401/403 before it reaches anything
// (no call of any kind into the host, the KV canary and the meta model byte for byte the same);
// the right token passes. Members' credentials (X-Dram-Peer-Auth) are bound to method, URL, time
// and secret; a forwarded request carries no user token.

import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import {
  peerAuthHeader,
  peerAuthHeaders,
  peerAuthSkewMsMax,
  routeTable,
  type ApiAuth,
  type RouteEntry,
} from '../../src/api/auth.ts';
import type { ApiHost, Forward, ForwardRequest } from '../../src/api/ports.ts';
import { asNodeId, type LogIndex, type NodeId } from '../../src/base/ids.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { KvModel } from '../../src/models/kv.ts';
import { createKvPlacement } from '../../src/models/kv-placement.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { memberAddresses } from './cluster.ts';
import { stubGroups, stubHost, stubNodeId, type StubHost } from './stub-host.ts';

const token = 'full-access-token-0123';
const readToken = 'read-only-token-0123';
const secret = 'auth-test-cluster-secret';
const clusterId = 'test-cluster';
const canaryKey = 'canary';

interface Node {
  readonly app: FastifyInstance;
  /** Every call into the host, by method name. */
  readonly hostCalls: Map<string, number>;
  readonly kv: KvModel;
  readonly meta: MetaModel;
  readonly stub: StubHost;
}

let running: FastifyInstance | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** Counts every call into the host: a refused request must make none, not even a status read. */
function countingHost(host: ApiHost, calls: Map<string, number>): ApiHost {
  return new Proxy(host, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.set(String(name), (calls.get(String(name)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function start(auth: Partial<ApiAuth> | undefined, forward?: Forward): Node {
  const meta = new MetaModel();
  const stub = stubHost(meta);
  const kv = stub.host.model(createKvPlacement(stubGroups).groupOf(canaryKey));
  if (!(kv instanceof KvModel)) throw new Error('group 1 is not a KV group');
  kv.apply(1 as LogIndex, { op: 'put', key: canaryKey, value: new TextEncoder().encode('sing') });
  const hostCalls = new Map<string, number>();
  const app = buildApp({
    nodeId: stubNodeId,
    clusterId,
    host: countingHost(stub.host, hostCalls),
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    members: memoryDirectory([memberAddresses(stubNodeId)], stubNodeId),
    forward,
    requestTimeoutMs: 100,
    ...(auth === undefined ? {} : { auth: { secret, clusterId, ...auth } }),
    meta: {
      model: meta,
      info: { httpUrl: 'http://127.0.0.1:8000', version: '0.0.0', clusterId },
      wallNowMs: () => Date.now(),
    },
  });
  running = app;
  return { app, hostCalls, kv, meta, stub };
}

const sampleParams: Readonly<Record<string, string>> = {
  key: canaryKey,
  group: '1',
  nodeId: '2',
  id: '3d0c0000-0000-4000-8000-000000000001',
  nameOrAlias: 'events',
  name: 'events',
  endpoint: 'count',
  alias: 'live',
};

/** A request to `route` that would change something if it got through (a body where one is taken). */
function requestTo(route: RouteEntry, headers: Record<string, string> = {}): InjectOptions {
  const url = route.url.replace(/:([A-Za-z]+)/gu, (_, name: string) => {
    const value = sampleParams[name];
    if (value === undefined) throw new Error(`no sample value for :${name} in ${route.url}`);
    return encodeURIComponent(value);
  });
  const method = route.method;
  if (route.method === 'GET' || route.method === 'HEAD' || route.method === 'DELETE') return { method, url, headers };
  if (url.startsWith('/v1/kv/'))
    return { method, url, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: 'overwritten' };
  const body = { kind: 'test.success', nodeId: 4, raft: '10.0.0.4:9000', http: '10.0.0.4:8000', clusterId, to: 1 };
  return { method, url, headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(body) };
}

function state(node: Node): string {
  return Buffer.concat([node.kv.snapshot(), node.meta.snapshot()]).toString('base64');
}

async function protectedRoutes(node: Node): Promise<readonly RouteEntry[]> {
  await node.app.ready(); // the plugins register their routes then
  const routes = routeTable(node.app);
  // The table must really be the app's: every contract route is in it.
  for (const expected of ['GET /v1/kv/:key', 'PUT /v1/kv/:key', 'POST /v1/actions', 'GET /api/unstable/info/node'])
    expect(routes.map((route) => `${route.method} ${route.url}`)).toContain(expected);
  return routes.filter((route) => route.access !== 'page');
}

async function expectRefused(node: Node, route: RouteEntry, headers: Record<string, string>, status: number) {
  const before = state(node);
  const response = await node.app.inject(requestTo(route, headers));
  const what = `${route.method} ${route.url}`;
  expect({ what, status: response.statusCode }).toEqual({ what, status });
  if (status === 401) expect(response.headers['www-authenticate'], what).toBe('Bearer realm="dram"');
  if (route.method !== 'HEAD') {
    const body = response.json<Record<string, unknown>>();
    const code = status === 401 ? 'DRAM_ERR_UNAUTHORIZED' : 'DRAM_ERR_FORBIDDEN';
    // The agent API answers in Replicante's shape, every other route in dram's.
    if (route.url.startsWith('/api/unstable'))
      expect(body, what).toEqual({ error: true, error_msg: expect.any(String) as unknown });
    else expect(body, what).toMatchObject({ error: true, code });
  }
  expect({ what, hostCalls: Object.fromEntries(node.hostCalls) }).toEqual({ what, hostCalls: {} });
  expect(state(node), what).toBe(before);
}

describe('HTTP API authentication', () => {
  it('without a token configured, every route is open (no change for existing deployments)', async () => {
    const node = start(undefined);
    const response = await node.app.inject({ method: 'GET', url: `/v1/kv/${canaryKey}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('sing');
  });

  it('refuses every protected route of the route table without a token, or with a wrong one, and changes nothing', async () => {
    const node = start({ token });
    const routes = await protectedRoutes(node);
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      if (route.access === 'status') continue; // open with --token alone (below)
      await expectRefused(node, route, {}, 401);
      await expectRefused(node, route, { authorization: 'Bearer not-the-token-at-all' }, 401);
      await expectRefused(node, route, { authorization: `Basic ${token}` }, 401);
      await expectRefused(node, route, { authorization: `Bearer ${token.slice(0, -1)}` }, 401);
    }
  });

  it('refuses the read token on every route that is not a read, and changes nothing', async () => {
    const node = start({ token, readToken });
    const writes = (await protectedRoutes(node)).filter((route) => route.access === 'write');
    expect(writes.map((route) => route.method)).toEqual(expect.arrayContaining(['PUT', 'POST', 'DELETE']));
    for (const route of writes) await expectRefused(node, route, { authorization: `Bearer ${readToken}` }, 403);
  });

  it('lets the read token read, and the full token do everything', async () => {
    const node = start({ token, readToken });
    const read = await node.app.inject({
      method: 'GET',
      url: `/v1/kv/${canaryKey}`,
      headers: { authorization: `Bearer ${readToken}` },
    });
    expect(read.body).toBe('sing');
    for (const route of await protectedRoutes(node)) {
      const tokens = route.access === 'write' ? [token] : [token, readToken];
      for (const presented of tokens) {
        const response = await node.app.inject(requestTo(route, { authorization: `Bearer ${presented}` }));
        const what = `${route.method} ${route.url} with the ${presented === token ? 'full' : 'read'} token`;
        expect({ what, refused: [401, 403].includes(response.statusCode) }).toEqual({ what, refused: false });
      }
    }
  });

  it('leaves the status page, /metrics and /v1/status open with --token alone, and not with --read-token', async () => {
    const open = start({ token });
    for (const url of ['/', '/metrics', '/v1/status'])
      expect({ url, status: (await open.app.inject({ method: 'GET', url })).statusCode }).toEqual({ url, status: 200 });
    await open.app.close();
    const closed = start({ token, readToken });
    expect((await closed.app.inject({ method: 'GET', url: '/' })).statusCode).toBe(200);
    for (const url of ['/metrics', '/v1/status']) {
      const refused = await closed.app.inject({ method: 'GET', url });
      expect({ url, status: refused.statusCode }).toEqual({ url, status: 401 });
      const allowed = await closed.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${readToken}` },
      });
      expect({ url, status: allowed.statusCode }).toEqual({ url, status: 200 });
    }
  });

  it('answers an unknown route 401 without a token, so routes cannot be probed', async () => {
    const node = start({ token });
    const response = await node.app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(response.statusCode).toBe(401);
  });
});

describe('member credentials (X-Dram-Peer-Auth)', () => {
  const put = (headers: Record<string, string>, url = '/v1/kv/peer-key'): InjectOptions => ({
    method: 'PUT',
    url,
    headers: { 'content-type': 'application/octet-stream', ...headers },
    payload: 'from a member',
  });

  it('accepts a proof made with the cluster secret for this method and URL, as full access', async () => {
    const node = start({ token, readToken });
    const response = await node.app.inject(
      put(peerAuthHeaders({ secret, clusterId }, 2, 'PUT', '/v1/kv/peer-key', Date.now())),
    );
    expect(response.statusCode).toBe(200);
  });

  it('refuses a proof made with another secret, for another URL or method, or out of its time window', async () => {
    const node = start({ token });
    const now = Date.now();
    const forged = [
      peerAuthHeaders({ secret: 'some-other-secret-entirely', clusterId }, 2, 'PUT', '/v1/kv/peer-key', now),
      peerAuthHeaders({ secret, clusterId: 'other-cluster' }, 2, 'PUT', '/v1/kv/peer-key', now),
      peerAuthHeaders({ secret, clusterId }, 2, 'PUT', '/v1/kv/other-key', now),
      peerAuthHeaders({ secret, clusterId }, 2, 'DELETE', '/v1/kv/peer-key', now),
      peerAuthHeaders({ secret, clusterId }, 2, 'PUT', '/v1/kv/peer-key', now - peerAuthSkewMsMax - 1000),
      peerAuthHeaders({ secret, clusterId }, 2, 'PUT', '/v1/kv/peer-key', now + peerAuthSkewMsMax + 1000),
      { [peerAuthHeader]: 'garbage' },
    ];
    for (const headers of forged) {
      const response = await node.app.inject(put(headers));
      expect({ headers, status: response.statusCode }).toEqual({ headers, status: 401 });
      expect(response.json()).toMatchObject({ code: 'DRAM_ERR_UNAUTHORIZED' });
    }
    // A valid token does not excuse a bad member credential: the credential is checked first.
    const both = await node.app.inject(put({ ...forged[0], authorization: `Bearer ${token}` }));
    expect(both.statusCode).toBe(401);
    expect(Object.fromEntries(node.hostCalls)).toEqual({});
  });

  it('never passes the user token on when forwarding to the leader', async () => {
    const forwarded: ForwardRequest[] = [];
    const forward: Forward = (_leader: NodeId, request) => {
      forwarded.push(request);
      return Promise.resolve({ status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('ok') });
    };
    const node = start({ token }, forward);
    // This node is a follower of node 2 for every group: a read it cannot serve is forwarded there
    // over HTTP (writes go to the leader inside Raft, with no HTTP request at all).
    node.stub.script.read = () => ({ kind: 'refused', reason: 'not_leader', leaderHint: asNodeId(2) });
    const kv = await node.app.inject({
      method: 'GET',
      url: '/v1/kv/forwarded',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(kv.statusCode).toBe(200);
    expect(forwarded.length).toBe(1);
    expect(Object.keys(forwarded[0]?.headers ?? {})).not.toContain('authorization');
  });
});
