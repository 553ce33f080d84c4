// Keeps docs/errors.md in step with what a node really sends: drives a node (buildApp over the
// one-node stub host, through inject() and through raw sockets; with the meta model on group 0 for
// the action codes, reached through dram's /v1/actions routes) into every code of the registry,
// and checks each answer's status against the registry and its body against the documented shape
// `{ error: true, code, message, details? }`. A code added to the registry without a way to reach
// it here fails the test, and so does any DRAM_ERR_* name in src/api/ that the registry lacks
// (errors.test.ts checks that the registry and docs/errors.md list the same codes).

import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from '../../src/api/app.ts';
import { errorRegistry, isErrorCode, type ErrorCode } from '../../src/api/errors.ts';
import { ObjectStoreError, objectStoreErrorCodes } from '../../src/data/object-store.ts';
import { QueryError, type QueryEngine } from '../../src/data/query-engine.ts';
import type { DatabaseDirectory, DatabaseView, DirectoryShard } from '../../src/query/database-directory.ts';
import { endpointSet } from '../../src/query/endpoint-loader.ts';
import type { EndpointContext } from '../../src/query/endpoint-module.ts';
import { LocalRunner } from '../../src/query/local-runner.ts';
import { httpLimitsDefault, type HttpLimits } from '../../src/api/http-server.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import type { Forward } from '../../src/api/ports.ts';
import { asGroupId, asNodeId, type LogIndex, type NodeId } from '../../src/base/ids.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../../src/codec/kv.ts';
import { clusterInitKind, testLoopKind, testLoopTargetMax, testSuccessKind } from '../../src/control/action-kinds.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { databasesMax, type DatabasesCommand } from '../../src/codec/meta-databases.ts';
import type { SourceCheck } from '../../src/data/database-port.ts';
import { MetaModel, metaModelDefaults, type MetaModelOptions } from '../../src/models/meta.ts';
import { nodeRecord } from '../support/node-record.ts';
import { memberAddresses, waitFor } from './cluster.ts';
import { connect, rawRequest, readAll } from './raw-http.ts';
import { stubGroups, stubHost, stubNodeId, type StubHost } from './stub-host.ts';

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: string;
}

interface Node {
  readonly app: FastifyInstance;
  readonly stub: StubHost;
}

interface Setup {
  readonly forward?: Forward;
  readonly httpLimits?: Partial<HttpLimits>;
  readonly script?: (stub: StubHost) => void;
  /** Host the meta model on group 0 (with these limits) and serve the action routes. */
  readonly meta?: Partial<MetaModelOptions>;
  /** With `meta`: the node is not in a cluster (it waits for cluster.init or cluster.join). */
  readonly notInCluster?: boolean;
  readonly auth?: AppOptions['auth'];
  /** With `meta`: serve the database routes, the source check answering this. */
  readonly source?: SourceCheck;
  /** With `meta`: databases in the catalog before the request (none loaded). */
  readonly databases?: number;
  /** With `meta`: registered nodes, each with the version it reports. */
  readonly registered?: readonly { readonly id: number; readonly version: string }[];
}

/** Endpoints that fail on purpose, over an engine whose one statement runs out of memory. */
const failingEngine: QueryEngine = {
  sql: () => Promise.reject(new QueryError('DRAM_ERR_QUERY_MEMORY', 'over the memory limit', { memoryBytesMax: 1 })),
  close: () => Promise.resolve(),
};
let busyRelease: (() => void) | undefined;
const failingEndpoints = [
  { name: 'ok', map: () => 1 },
  { name: 'typed', params: { type: 'object', properties: { k: { type: 'integer' } } }, map: () => 1 },
  {
    name: 'busy',
    concurrencyMax: 1,
    map: () =>
      new Promise((resolve) => {
        busyRelease = () => {
          resolve(1);
        };
      }),
  },
  {
    name: 'throws',
    map: () => {
      throw new Error('no');
    },
  },
  { name: 'memory', map: (context: EndpointContext) => context.sql('SELECT 1') },
  { name: 'large', map: () => 'x'.repeat(2048) },
  {
    name: 'slow',
    timeoutMs: 20,
    map: (context: EndpointContext) =>
      new Promise((resolve) => {
        context.signal.addEventListener('abort', () => {
          resolve(0);
        });
      }),
  },
];

function databaseView(name: string, shards: DirectoryShard[], prepare?: DatabaseView['prepare']): DatabaseView {
  return {
    name,
    version: 'v1',
    globalDir: undefined,
    globalFiles: [],
    shards,
    ...(prepare === undefined ? {} : { prepare }),
  };
}

const localShard = (shard: string): DirectoryShard => ({
  shard,
  replicas: [{ node: stubNodeId, state: 'loaded', version: 'v1' }],
  local: { shard, dir: '/nonexistent', files: [] },
});

/** `events` is here; `remote` only on node 2 (which the refused forward never reaches); `lazy-<code>` fails to fetch. */
const queryDirectory: DatabaseDirectory = {
  resolve: (name) => {
    if (name === 'events') return databaseView(name, [localShard('0'), localShard('1')]);
    if (name === 'remote')
      return databaseView(name, [
        { shard: '0', replicas: [{ node: asNodeId(2), state: 'loaded', version: 'v1' }], local: undefined },
      ]);
    const code = objectStoreErrorCodes.find((candidate) => name === `lazy-${candidate}`);
    if (code === undefined) return undefined;
    return databaseView(name, [localShard('0')], () =>
      Promise.reject(new ObjectStoreError(code, `fetching failed: ${code}`)),
    );
  },
};

function queryOptions(): AppOptions['query'] {
  const endpoints = endpointSet(failingEndpoints.map((exported) => ({ file: `${exported.name}.ts`, exported })));
  return {
    runner: new LocalRunner({
      endpoints,
      engine: failingEngine,
      limits: { shardParallelMax: 4, answerBytesMax: 1024 },
    }),
    directory: queryDirectory,
  };
}

const query = (node: Node, path: string, payload = '{}') =>
  inject(node, { method: 'POST', url: `/v1/databases/${path}`, headers: json, payload });

function startNode(setup: Setup = {}): Node {
  const model = setup.meta === undefined ? undefined : new MetaModel({ ...metaModelDefaults, ...setup.meta });
  const stub = stubHost(model);
  setup.script?.(stub);
  for (let k = 0; k < (setup.databases ?? 0); k++)
    model?.apply({ type: 'databases', command: catalogCreate(k === 0 ? 'shop' : `db${k}`) });
  for (const { id, version } of setup.registered ?? [])
    model?.apply({ type: 'node.upsert', node: nodeRecord(id, 'ACTIVE', version) });
  const options: AppOptions = {
    nodeId: stubNodeId,
    clusterId: 'test-cluster',
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    members: memoryDirectory([memberAddresses(stubNodeId)], stubNodeId),
    forward: setup.forward,
    requestTimeoutMs: 100,
    memberChangeLimits: { pollMs: 10, learnerLagEntriesMax: 0 },
    httpLimits: { ...httpLimitsDefault, ...setup.httpLimits },
    auth: setup.auth,
    query: queryOptions(),
    meta:
      model === undefined
        ? undefined
        : {
            model,
            info: { httpUrl: 'http://127.0.0.1:8000', version: '0.0.0', clusterId: 'test-cluster' },
            wallNowMs: () => Date.now(),
            databases:
              setup.source === undefined
                ? undefined
                : {
                    checkSource: () => Promise.resolve(setup.source ?? { ok: true }),
                    progress: () => [],
                    queries: () => ({ served: 0, failed: 0, recentMs: [] }),
                  },
            bootstrap:
              setup.notInCluster === true
                ? { inCluster: false, schedule: () => Promise.resolve(undefined), records: () => [] }
                : undefined,
          },
  };
  return { app: buildApp(options), stub };
}

async function listening(node: Node): Promise<number> {
  await node.app.listen({ host: '127.0.0.1', port: 0 });
  return (node.app.server.address() as AddressInfo).port;
}

async function inject(node: Node, request: InjectOptions): Promise<Answer> {
  const response = await node.app.inject(request);
  const contentType = response.headers['content-type'];
  return {
    status: response.statusCode,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    body: response.body,
  };
}

async function raw(node: Node, request: string): Promise<Answer> {
  const answer = await rawRequest(await listening(node), request);
  return { status: answer.status, contentType: answer.headers['content-type'], body: answer.body };
}

const json = { 'content-type': 'application/json' };
const refusedForward: Forward = () =>
  Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
const notLeader = (leaderHint: number) => () =>
  ({ kind: 'refused', reason: { kind: 'not_leader', leaderHint: leaderHint as NodeId } }) as const;
const actionId = '3d0c0000-0000-4000-8000-000000000001';
const schedule = (node: Node, fields: Record<string, unknown>) =>
  inject(node, { method: 'POST', url: '/v1/actions', headers: json, payload: JSON.stringify(fields) });
const cancel = (node: Node, id: string) =>
  inject(node, { method: 'POST', url: `/v1/actions/${id}/cancel`, headers: json, payload: '{}' });
const joinBody = (fields: Record<string, unknown>) =>
  JSON.stringify({ nodeId: 4, raft: '10.0.0.4:9000', http: '10.0.0.4:8000', ...fields });

/** A catalog entry for a database of one shard (never loaded: no replica reports). */
function catalogCreate(name: string): DatabasesCommand {
  return {
    type: 'db.create',
    spec: { name, bucket: 'bucket', prefix: 'p/', replicas: 1, lazy: false, metadataPattern: null },
    version: { version: 1, listedMs: 0, global: [], shards: [{ shard: '0', files: [], nodes: [stubNodeId] }] },
    atMs: 0,
  };
}
const addDatabase = (node: Node, fields: Record<string, unknown>) =>
  inject(node, { method: 'POST', url: '/v1/databases', headers: json, payload: JSON.stringify(fields) });
const sourceRefused = (kind: 'not_found' | 'denied' | 'unavailable'): SourceCheck => ({
  ok: false,
  kind,
  message: kind,
});

/** One way to make a node answer `code`. */
interface Scenario {
  readonly code: ErrorCode;
  readonly how: string;
  readonly setup?: Setup;
  readonly run: (node: Node) => Promise<Answer>;
}

const scenarios: readonly Scenario[] = [
  {
    code: 'DRAM_ERR_INVALID_DATABASE',
    how: 'a database name with a slash',
    setup: { meta: {}, source: { ok: true } },
    run: (node) => addDatabase(node, { name: 'a/b', source: 's3://bucket/p' }),
  },
  {
    code: 'DRAM_ERR_DATABASE_NOT_FOUND',
    how: 'an unknown database',
    setup: { meta: {}, source: { ok: true } },
    run: (node) => inject(node, { method: 'GET', url: '/v1/databases/none' }),
  },
  {
    code: 'DRAM_ERR_DATABASE_EXISTS',
    how: 'adding a database under a name in the catalog',
    setup: { meta: {}, source: { ok: true }, databases: 1 },
    run: (node) => addDatabase(node, { name: 'shop', source: 's3://bucket/p', replicas: 'all' }),
  },
  {
    code: 'DRAM_ERR_SOURCE_NOT_FOUND',
    how: 'a source whose bucket does not exist',
    setup: { meta: {}, source: sourceRefused('not_found') },
    run: (node) => addDatabase(node, { name: 'shop', source: 's3://bucket/p', replicas: 'all' }),
  },
  {
    code: 'DRAM_ERR_SOURCE_DENIED',
    how: 'a source the credentials may not list',
    setup: { meta: {}, source: sourceRefused('denied') },
    run: (node) => addDatabase(node, { name: 'shop', source: 's3://bucket/p', replicas: 'all' }),
  },
  {
    code: 'DRAM_ERR_SOURCE_UNAVAILABLE',
    how: 'a source on an object store that does not answer',
    setup: { meta: {}, source: sourceRefused('unavailable') },
    run: (node) => addDatabase(node, { name: 'shop', source: 's3://bucket/p', replicas: 'all' }),
  },
  {
    code: 'DRAM_ERR_CATALOG_FULL',
    how: 'adding a database to a full catalog',
    setup: { meta: {}, source: { ok: true }, databases: databasesMax },
    run: (node) => addDatabase(node, { name: 'one-more', source: 's3://bucket/p' }),
  },
  {
    code: 'DRAM_ERR_NOT_LOADED',
    how: 'an alias to a database not loaded yet',
    setup: { meta: {}, databases: 1 },
    run: (node) =>
      inject(node, { method: 'PUT', url: '/v1/aliases/live', headers: json, payload: '{"database":"shop"}' }),
  },
  {
    code: 'DRAM_ERR_ALIAS_NOT_FOUND',
    how: 'deleting an unknown alias',
    setup: { meta: {} },
    run: (node) => inject(node, { method: 'DELETE', url: '/v1/aliases/none' }),
  },
  {
    code: 'DRAM_ERR_BAD_REQUEST',
    how: 'a bad query value',
    run: (node) => inject(node, { method: 'GET', url: '/v1/kv/a?consistency=strong' }),
  },
  {
    code: 'DRAM_ERR_BAD_REQUEST',
    how: 'an unknown method, refused by the HTTP parser',
    run: (node) => raw(node, 'FOO /v1/status HTTP/1.1\r\nHost: x\r\n\r\n'),
  },
  {
    code: 'DRAM_ERR_UNAUTHORIZED',
    how: 'a read without a token on a node with --token',
    setup: { auth: { token: 'full-token', secret: 'test-cluster-secret', clusterId: 'test-cluster' } },
    run: (node) => inject(node, { method: 'GET', url: '/v1/kv/a' }),
  },
  {
    code: 'DRAM_ERR_FORBIDDEN',
    how: 'a write with the read-only token',
    setup: {
      auth: { token: 'full-token', readToken: 'read-token', secret: 'test-cluster-secret', clusterId: 'test-cluster' },
    },
    run: (node) =>
      inject(node, { method: 'PUT', url: '/v1/kv/a', headers: { authorization: 'Bearer read-token' }, payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_KEY_NOT_FOUND',
    how: 'a stale read of an absent key',
    run: (node) => inject(node, { method: 'GET', url: '/v1/kv/absent?consistency=stale' }),
  },
  {
    code: 'DRAM_ERR_UNKNOWN_GROUP',
    how: 'a transfer in a group not hosted here',
    run: (node) =>
      inject(node, { method: 'POST', url: '/v1/admin/groups/99/transfer-leadership', headers: json, payload: '{}' }),
  },
  {
    code: 'DRAM_ERR_ROUTE_NOT_FOUND',
    how: 'an unknown path',
    run: (node) => inject(node, { method: 'GET', url: '/nowhere' }),
  },
  {
    code: 'DRAM_ERR_ROUTE_NOT_FOUND',
    how: 'CONNECT, which node hands to a listener rather than a route',
    run: (node) => raw(node, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'),
  },
  {
    code: 'DRAM_ERR_REQUEST_TIMEOUT',
    how: 'a body that stops short of its Content-Length',
    setup: { httpLimits: { headTimeoutMs: 100, receiveTimeoutMs: 200, timeoutCheckMs: 50 } },
    run: (node) => raw(node, 'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc'),
  },
  {
    code: 'DRAM_ERR_STALE_REQUEST',
    how: 'a client sequence number older than the last applied',
    run: async (node) => {
      const stamped = (seq: number): InjectOptions => ({
        method: 'PUT',
        url: '/v1/kv/a',
        headers: { 'x-dram-client-id': 'c', 'x-dram-request-seq': String(seq) },
        payload: 'v',
      });
      // A session opens with seq 1 (a first request above 1 is refused as an expired session).
      expect((await inject(node, stamped(1))).status).toBe(200);
      expect((await inject(node, stamped(2))).status).toBe(200);
      return inject(node, stamped(1));
    },
  },
  {
    code: 'DRAM_ERR_TRANSFER_FAILED',
    how: 'a transfer in a group with no other voter',
    run: (node) =>
      inject(node, { method: 'POST', url: '/v1/admin/groups/1/transfer-leadership', headers: json, payload: '{}' }),
  },
  {
    code: 'DRAM_ERR_MEMBER_CONFLICT',
    how: 'a known node id at another raft address',
    run: (node) =>
      inject(node, {
        method: 'POST',
        url: '/v1/admin/members',
        headers: json,
        payload: joinBody({ nodeId: 1, raft: '10.0.0.9:9000', http: '10.0.0.1:8000' }),
      }),
  },
  {
    code: 'DRAM_ERR_LAST_VOTER',
    how: 'removing the only voter',
    run: (node) => inject(node, { method: 'DELETE', url: '/v1/admin/members/1' }),
  },
  {
    code: 'DRAM_ERR_OLDER_NODES',
    how: 'setting moveStalledMs while a node of v0.11.0 is registered',
    setup: { meta: {}, registered: [{ id: 2, version: '0.1.0' }] },
    run: (node) =>
      inject(node, { method: 'PUT', url: '/v1/placement/settings', headers: json, payload: '{"moveStalledMs":9000}' }),
  },
  {
    code: 'DRAM_ERR_CLUSTER_MISMATCH',
    how: 'a join naming another cluster',
    run: (node) =>
      inject(node, {
        method: 'POST',
        url: '/v1/admin/members',
        headers: json,
        payload: joinBody({ clusterId: 'another' }),
      }),
  },
  {
    code: 'DRAM_ERR_CAS_MISMATCH',
    how: 'a compare-and-set on an absent key with a non-zero index',
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a?cas=5', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_KEY_TOO_LARGE',
    how: 'a key one byte over the limit',
    run: (node) => inject(node, { method: 'PUT', url: `/v1/kv/${'k'.repeat(kvKeyBytesMax + 1)}`, payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_VALUE_TOO_LARGE',
    how: 'a value one byte over the limit',
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: Buffer.alloc(kvValueBytesMax + 1) }),
  },
  {
    code: 'DRAM_ERR_BODY_TOO_LARGE',
    how: 'a body on a route that takes none',
    run: (node) =>
      inject(node, { method: 'GET', url: '/v1/status', headers: { 'content-length': '2' }, payload: '{}' }),
  },
  {
    code: 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
    how: 'text/plain on a JSON route',
    run: (node) =>
      inject(node, {
        method: 'POST',
        url: '/v1/admin/groups/1/transfer-leadership',
        headers: { 'content-type': 'text/plain' },
        payload: '{}',
      }),
  },
  {
    code: 'DRAM_ERR_EXPECTATION_FAILED',
    how: 'Expect: bogus',
    run: (node) => raw(node, 'GET /v1/status HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n'),
  },
  {
    code: 'DRAM_ERR_HEADERS_TOO_LARGE',
    how: 'a URL longer than the head limit',
    run: (node) => raw(node, `GET /v1/kv/${'k'.repeat(httpLimitsDefault.headBytesMax)} HTTP/1.1\r\nHost: x\r\n\r\n`),
  },
  {
    code: 'DRAM_ERR_INTERNAL',
    how: 'the host throwing',
    setup: {
      script: (stub) => {
        stub.script.statusFails = true;
      },
    },
    run: (node) => inject(node, { method: 'GET', url: '/v1/status' }),
  },
  {
    code: 'DRAM_ERR_FORWARD_FAILED',
    how: 'a read forwarded to a leader that does not answer',
    setup: {
      forward: refusedForward,
      script: (stub) => {
        stub.script.read = () => ({ kind: 'refused', reason: 'not_leader', leaderHint: asNodeId(2) });
      },
    },
    run: (node) => inject(node, { method: 'GET', url: '/v1/kv/a' }),
  },
  {
    code: 'DRAM_ERR_NOT_LEADER',
    how: 'a write on a follower that does not forward',
    setup: {
      script: (stub) => {
        stub.script.propose = notLeader(2);
      },
    },
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_NO_LEADER',
    how: 'a write while no leader is known',
    setup: {
      script: (stub) => {
        stub.script.propose = notLeader(0);
      },
    },
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_NODE_STOPPED',
    how: 'a write refused by a host that has stopped (a fatal error)',
    setup: {
      script: (stub) => {
        stub.script.propose = () => ({ kind: 'refused', reason: { kind: 'stopped' } });
      },
    },
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_OVERLOADED',
    how: 'a full proposal queue',
    setup: {
      script: (stub) => {
        stub.script.propose = () => ({ kind: 'refused', reason: { kind: 'overloaded', queued: 8, queuedMax: 8 } });
      },
    },
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_OVERLOADED',
    how: 'a connection over the connection limit',
    setup: { httpLimits: { connectionsMax: 1 } },
    run: async (node) => {
      const port = await listening(node);
      const first = await connect(port);
      try {
        // An answer on the first connection proves the server counted it.
        const firstAnswer = readAll(first, 5000);
        first.write('GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const second = await connect(port);
        const answer = (await readAll(second, 5000))[0];
        expect((await firstAnswer)[0]?.status).toBe(200);
        return { status: answer?.status ?? 0, contentType: answer?.headers['content-type'], body: answer?.body ?? '' };
      } finally {
        first.destroy();
      }
    },
  },
  {
    code: 'DRAM_ERR_SHUTTING_DOWN',
    how: 'a request arriving while the node closes',
    run: shuttingDown,
  },
  {
    code: 'DRAM_ERR_INDETERMINATE',
    how: 'a write whose outcome is unknown',
    setup: {
      script: (stub) => {
        stub.script.propose = () => ({ kind: 'indeterminate' });
      },
    },
    run: (node) => inject(node, { method: 'PUT', url: '/v1/kv/a', payload: 'v' }),
  },
  {
    code: 'DRAM_ERR_MEMBERSHIP_PENDING',
    how: 'a join whose changes never apply within the request timeout',
    run: (node) =>
      inject(node, { method: 'POST', url: '/v1/admin/groups/1/members', headers: json, payload: joinBody({}) }),
  },
  {
    code: 'DRAM_ERR_CONF_CHANGED',
    how: "a placement membership change planned from a configuration other than the leader's (the stub's is at 1)",
    setup: { meta: {} },
    run: (node) =>
      inject(node, {
        method: 'POST',
        url: '/v1/internal/groups/1/conf-change?confIndex=5',
        headers: json,
        payload: JSON.stringify({ changes: [{ type: 'add_learner', node: 7 }], transition: 'auto' }),
      }),
  },
  {
    code: 'DRAM_ERR_ACTION_NOT_FOUND',
    how: 'an action id the meta group does not know',
    setup: { meta: {} },
    run: (node) => inject(node, { method: 'GET', url: `/v1/actions/${actionId}` }),
  },
  {
    code: 'DRAM_ERR_UNKNOWN_ACTION_KIND',
    how: 'a schedule naming a kind this version does not run',
    setup: { meta: {} },
    run: (node) => schedule(node, { kind: 'example.com/no.such-kind' }),
  },
  {
    code: 'DRAM_ERR_INVALID_ACTION_ARGS',
    how: 'a test.loop target over its limit',
    setup: { meta: {} },
    run: (node) => schedule(node, { kind: testLoopKind, args: { target: testLoopTargetMax + 1 } }),
  },
  {
    code: 'DRAM_ERR_ACTION_EXISTS',
    how: 'a second schedule with the id of a scheduled action',
    setup: { meta: {} },
    run: async (node) => {
      expect((await schedule(node, { kind: testSuccessKind, id: actionId })).status).toBe(200);
      return schedule(node, { kind: testLoopKind, id: actionId });
    },
  },
  {
    code: 'DRAM_ERR_NOT_IN_CLUSTER',
    how: 'a test action scheduled on a node that is not in a cluster',
    setup: { meta: {}, notInCluster: true },
    run: (node) => schedule(node, { kind: testSuccessKind }),
  },
  {
    code: 'DRAM_ERR_IN_CLUSTER',
    how: 'cluster.init scheduled on a member',
    setup: { meta: {} },
    run: (node) => schedule(node, { kind: clusterInitKind }),
  },
  {
    code: 'DRAM_ERR_ACTION_FAILED',
    how: 'an admin failover whose action is cancelled while the route waits for it',
    setup: { meta: {} },
    run: async (node) => {
      const answer = inject(node, {
        method: 'POST',
        url: '/v1/admin/groups/1/transfer-leadership',
        headers: json,
        payload: '{}',
      });
      const model = node.stub.host.model(asGroupId(0)) as MetaModel;
      const queued = await waitFor('the failover action', () => model.queue()[0]);
      expect((await cancel(node, queued.id)).status).toBe(200);
      return answer;
    },
  },
  {
    code: 'DRAM_ERR_ACTION_FINISHED',
    how: 'cancelling an action already cancelled',
    setup: { meta: {} },
    run: async (node) => {
      expect((await schedule(node, { kind: testSuccessKind, id: actionId })).status).toBe(200);
      expect((await cancel(node, actionId)).status).toBe(200);
      return cancel(node, actionId);
    },
  },
  {
    code: 'DRAM_ERR_ACTIONS_QUEUE_FULL',
    how: 'a schedule beyond actionsQueuedMax',
    setup: { meta: { actionsQueuedMax: 1 } },
    run: async (node) => {
      expect((await schedule(node, { kind: testSuccessKind })).status).toBe(200);
      return schedule(node, { kind: testSuccessKind });
    },
  },
  {
    code: 'DRAM_ERR_UNKNOWN_ENDPOINT',
    how: 'a query of an endpoint that is not loaded',
    run: (node) => query(node, 'events/query/nope'),
  },
  {
    code: 'DRAM_ERR_INVALID_PARAMS',
    how: "params that do not match the endpoint's schema",
    run: (node) => query(node, 'events/query/typed', '{"k":"3"}'),
  },
  {
    code: 'DRAM_ERR_ENDPOINT_BUSY',
    how: 'a query of an endpoint already at its concurrency limit',
    run: async (node) => {
      const first = query(node, 'events/query/busy?scope=local&shards=0');
      await waitFor('the first query to run', () => busyRelease);
      const second = await query(node, 'events/query/busy?scope=local&shards=0');
      busyRelease?.();
      expect((await first).status).toBe(200);
      return second;
    },
  },
  {
    code: 'DRAM_ERR_QUERY_FAILED',
    how: 'a map that throws',
    run: (node) => query(node, 'events/query/throws'),
  },
  {
    code: 'DRAM_ERR_QUERY_MEMORY',
    how: 'a statement over its memory limit',
    run: (node) => query(node, 'events/query/memory?scope=local'),
  },
  {
    code: 'DRAM_ERR_ANSWER_TOO_LARGE',
    how: "a shard's answer over the answer limit",
    run: (node) => query(node, 'events/query/large'),
  },
  {
    code: 'DRAM_ERR_QUERY_TIMEOUT',
    how: "a query longer than its endpoint's timeout",
    run: (node) => query(node, 'events/query/slow'),
  },
  {
    code: 'DRAM_ERR_DATABASE_NOT_FOUND',
    how: 'a query of a database no one knows',
    run: (node) => query(node, 'nowhere/query/ok'),
  },
  {
    code: 'DRAM_ERR_UNKNOWN_SHARD',
    how: 'a query naming a shard the database lacks',
    run: (node) => query(node, 'events/query/ok?shards=0,9'),
  },
  {
    code: 'DRAM_ERR_NO_LOCAL_SHARDS',
    how: '?scope=local on a member holding none of the database',
    run: (node) => query(node, 'remote/query/ok?scope=local'),
  },
  {
    code: 'DRAM_ERR_PARTIAL',
    how: 'a shard whose only replica cannot be reached, with ?partial=deny',
    setup: { forward: refusedForward },
    run: (node) => query(node, 'remote/query/ok'),
  },
  ...objectStoreErrorCodes.map(
    (code): Scenario => ({
      code,
      how: 'a lazy database whose files the object store does not give',
      run: (node) => query(node, `lazy-${code}/query/ok?scope=local`),
    }),
  ),
  {
    code: 'DRAM_ERR_TIMEOUT',
    how: 'a read that does not become safe in time',
    setup: {
      script: (stub) => {
        stub.script.read = () => ({ kind: 'refused', reason: 'timeout', leaderHint: stubNodeId });
      },
    },
    run: (node) => inject(node, { method: 'GET', url: '/v1/kv/a' }),
  },
  {
    code: 'DRAM_ERR_SNAPSHOT_INTERRUPTED',
    how: "a backup's group snapshot cut short by a snapshot installed meanwhile",
    setup: {
      script: (stub) => {
        stub.script.backupCutShort = true;
      },
    },
    run: (node) => inject(node, { method: 'GET', url: '/v1/admin/groups/1/snapshot' }),
  },
];

/**
 * A keep-alive connection has a read in flight when the node starts closing; the next request on
 * that connection (node hands it to the app at once, pipelined) is refused, the first answered.
 */
async function shuttingDown(node: Node): Promise<Answer> {
  let release: (() => void) | undefined;
  node.stub.script.read = () =>
    new Promise((resolve) => {
      release = () => {
        resolve({ kind: 'ready', index: 1 as LogIndex });
      };
    });
  const socket = await connect(await listening(node));
  const answers = readAll(socket, 5000);
  socket.write('GET /v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the read to reach the host', () => release);
  const closed = node.app.close();
  await waitFor('the server to stop listening', () => (node.app.server.listening ? undefined : true));
  socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
  release?.();
  const [first, second] = await answers;
  await closed;
  expect(first?.status).toBe(404); // the key is absent: the request in flight was served
  return { status: second?.status ?? 0, contentType: second?.headers['content-type'], body: second?.body ?? '' };
}

function codesNamedInSource(): Set<string> {
  const directory = new URL('../../src/api/', import.meta.url);
  const names = new Set<string>();
  for (const file of readdirSync(directory)) {
    if (!file.endsWith('.ts')) continue;
    for (const match of readFileSync(new URL(file, directory), 'utf8').matchAll(/DRAM_ERR_[A-Z0-9_]+/g))
      names.add(match[0]);
  }
  return names;
}

describe('every error a node can answer', () => {
  it('has a scenario for every registry code, and no scenario for a code outside it', () => {
    const covered = new Set(scenarios.map((scenario) => scenario.code));
    expect([...covered].sort()).toEqual(Object.keys(errorRegistry).sort());
  });

  it('names no code in src/api/ that the registry lacks', () => {
    const unknown = [...codesNamedInSource()].filter((name) => name !== 'DRAM_ERR_' && !isErrorCode(name));
    expect(unknown).toEqual([]);
  });

  for (const scenario of scenarios) {
    it(`answers ${scenario.code} with its registry status for ${scenario.how}`, async () => {
      const node = startNode(scenario.setup);
      try {
        const answer = await scenario.run(node);
        expect({ code: scenario.code, status: answer.status }).toEqual({
          code: scenario.code,
          status: errorRegistry[scenario.code].status,
        });
        expect(answer.contentType).toBe('application/json; charset=utf-8');
        const body = JSON.parse(answer.body) as Record<string, unknown>;
        expect(body).toMatchObject({ error: true, code: scenario.code });
        expect(typeof body['message']).toBe('string');
        const extra = Object.keys(body).filter((key) => !['error', 'code', 'message', 'details'].includes(key));
        expect(extra).toEqual([]);
        if ('details' in body) expect(typeof body['details']).toBe('object');
      } finally {
        await node.app.close();
      }
    });
  }
});
