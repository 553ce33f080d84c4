// A node that still hosts a replica of a kv group it was removed from (back after being gone past
// the grace period: placement re-created its replicas elsewhere, and its hosting loop has not
// stopped them yet) must not serve the group's keys from it: nobody sends that replica anything any
// more, so it knows no leader and would answer 503 DRAM_ERR_NO_LEADER (or wait out its timeouts).
// Once its meta model records a configuration, at or after the one the replica applied, that leaves
// the node out, the request goes to a recorded replica (src/api/app.ts, removedHereOf), over HTTP
// and over the binary protocol alike. The stub host (test/api/stub-host.ts) hosts every group with
// its configuration applied at index 1.

import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { BinaryServer } from '../../src/api/binary-server.ts';
import { buildApp, removedHereOf } from '../../src/api/app.ts';
import type { Forward, ForwardRequest } from '../../src/api/ports.ts';
import { asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { DramClient } from '../../src/client/client.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { createKvPlacement } from '../../src/models/kv-placement.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { memberAddresses } from './cluster.ts';
import { stubGroups, stubHost, stubNodeId, type StubHost } from './stub-host.ts';

const placement = createKvPlacement(stubGroups);
/** A key of each stub group. */
function keyOf(group: GroupId): string {
  for (let k = 0; k < 10_000; k++) if (placement.groupOf(`key-${k}`) === group) return `key-${k}`;
  throw new Error(`no key found for group ${group}`);
}

const removed = stubGroups[0] as GroupId;
const kept = stubGroups[1] as GroupId;
const stale = stubGroups[2] as GroupId;
const moving = stubGroups[3] as GroupId;

/** The meta model a node back after its groups moved sees once its meta replica caught up. */
function metaModel(): MetaModel {
  const meta = new MetaModel();
  const n = (id: number): NodeId => asNodeId(id);
  // Removed: recorded from a configuration (index 7) after the one the replica applied (1), without this node.
  meta.apply({ type: 'group.set', group: { id: removed, kind: 'kv', replicas: [n(2), n(3), n(4)], confIndex: 7 } });
  // Still a replica.
  meta.apply({ type: 'group.set', group: { id: kept, kind: 'kv', replicas: [n(1), n(2), n(3)], confIndex: 7 } });
  // A record without this node but older than what the replica applied says nothing about it.
  meta.apply({ type: 'group.set', group: { id: stale, kind: 'kv', replicas: [n(2), n(3), n(4)] } });
  // Left out by the record, but a move is adding it again.
  meta.apply({ type: 'group.set', group: { id: moving, kind: 'kv', replicas: [n(2), n(3), n(4)], confIndex: 7 } });
  meta.apply({
    type: 'placement.move.start',
    move: { group: moving, add: n(1), remove: n(4), reason: 'balance', startedMs: 0 },
  });
  return meta;
}

const forwarded: { node: number; request: ForwardRequest }[] = [];
const forward: Forward = (node, request) => {
  forwarded.push({ node, request });
  return Promise.resolve({ status: 200, headers: { 'x-dram-shard': '0' }, body: Buffer.from(`from node ${node}`) });
};

let app: FastifyInstance | undefined;
let server: BinaryServer | undefined;

afterEach(async () => {
  forwarded.length = 0;
  await app?.close();
  await server?.stop();
  app = undefined;
  server = undefined;
});

/** This node's HTTP API over the stub host, with the meta model (its records locate the groups). */
function httpApp(meta: MetaModel, stub: StubHost): FastifyInstance {
  return buildApp({
    nodeId: stubNodeId,
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    members: memoryDirectory([memberAddresses(stubNodeId)], stubNodeId),
    forward,
    meta: {
      model: meta,
      info: { httpUrl: 'http://127.0.0.1:8000', version: '0.0.0', clusterId: 'c' },
      wallNowMs: Date.now,
    },
  });
}

/** This node's binary protocol server over the stub host, started on a free port. */
async function binaryServer(meta: MetaModel, stub: StubHost): Promise<BinaryServer> {
  const started = new BinaryServer({
    nodeId: stubNodeId,
    host: stub.host,
    placement,
    listenHost: '127.0.0.1',
    listenPort: 0,
    locate: (group) => meta.groups().find((record) => record.id === group)?.replicas ?? [],
    removedHere: removedHereOf(meta, stub.host, stubNodeId),
    forward,
  });
  await started.start();
  return started;
}

describe('removedHereOf', () => {
  it('says removed only for a record at or after the replica configuration that leaves this node out, with no move adding it', () => {
    const removedHere = removedHereOf(metaModel(), stubHost().host, stubNodeId);
    expect(removedHere?.(removed)).toBe(true);
    expect(removedHere?.(kept)).toBe(false);
    expect(removedHere?.(stale)).toBe(false);
    expect(removedHere?.(moving)).toBe(false);
  });
});

describe('a replica removed from its group, not stopped yet', () => {
  it('forwards the keys of that group over HTTP to a recorded replica, and serves the others itself', async () => {
    const meta = metaModel();
    const stub = stubHost(meta);
    app = httpApp(meta, stub);
    const read = await app.inject({ method: 'GET', url: `/v1/kv/${keyOf(removed)}` });
    expect(read.statusCode, read.body).toBe(200);
    const write = await app.inject({ method: 'PUT', url: `/v1/kv/${keyOf(removed)}`, payload: 'v' });
    expect(write.statusCode, write.body).toBe(200);
    expect(forwarded.map(({ request }) => request.method)).toEqual(['GET', 'PUT']);
    expect(forwarded.every(({ node }) => [2, 3, 4].includes(node))).toBe(true);
    // Nothing reached the replica that was removed.
    expect(stub.calls.proposals).toBe(0);
    expect(stub.calls.reads).toBe(0);

    for (const group of [kept, stale, moving]) {
      const own = await app.inject({ method: 'PUT', url: `/v1/kv/${keyOf(group)}`, payload: 'v' });
      expect(own.statusCode, own.body).toBe(200);
    }
    expect(forwarded).toHaveLength(2);
    expect(stub.calls.proposals).toBe(3);
  });

  it('forwards them over the binary protocol too', async () => {
    const meta = metaModel();
    const stub = stubHost(meta);
    server = await binaryServer(meta, stub);
    const client = DramClient.connect({
      nodes: [{ id: 1, host: '127.0.0.1', port: server.address?.port ?? 0 }],
      route: 'any',
    });
    try {
      await client.put(keyOf(removed), new TextEncoder().encode('v')).catch(() => undefined);
      await client.put(keyOf(kept), new TextEncoder().encode('v'));
    } finally {
      client.close();
    }
    expect(forwarded.map(({ request }) => request.method)).toEqual(['PUT']);
    expect(forwarded[0]?.request.url).toContain(`/v1/kv/${keyOf(removed)}`);
    expect(stub.calls.proposals).toBe(1);
  });

  it('forwards a request whose group was stopped here while it waited, over HTTP and the binary protocol', async () => {
    // The hosting loop stopped the replica after the request found it hosted: the host refuses
    // the waiting read and the queued write with unknown_group (the write never reached the log).
    const meta = metaModel();
    const stub = stubHost(meta);
    stub.script.read = () => ({ kind: 'refused', reason: 'unknown_group', leaderHint: 0 as NodeId });
    stub.script.propose = () => ({ kind: 'refused', reason: { kind: 'unknown_group' } });
    app = httpApp(meta, stub);
    const read = await app.inject({ method: 'GET', url: `/v1/kv/${keyOf(kept)}` });
    expect(read.statusCode, read.body).toBe(200);
    const write = await app.inject({ method: 'PUT', url: `/v1/kv/${keyOf(kept)}`, payload: 'v' });
    expect(write.statusCode, write.body).toBe(200);
    server = await binaryServer(meta, stub);
    const client = DramClient.connect({
      nodes: [{ id: 1, host: '127.0.0.1', port: server.address?.port ?? 0 }],
      route: 'any',
    });
    try {
      await client.put(keyOf(kept), new TextEncoder().encode('v'));
    } finally {
      client.close();
    }
    expect(forwarded.map(({ request }) => request.method)).toEqual(['GET', 'PUT', 'PUT']);
    expect(forwarded.every(({ node }) => [2, 3].includes(node))).toBe(true);
    expect(stub.calls.reads).toBe(1);
    expect(stub.calls.proposals).toBe(2);
  });
});
