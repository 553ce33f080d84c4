// Contract tests of the Replicante agent API (/api/unstable) and dram's action routes on an
// in-process three-node cluster with the meta group: every field, enum, status code and error
// body of research's "main" API, and the executor running actions one at a time, in order, once.

import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonDepthMax } from '../../src/api/request-guard.ts';
import { asGroupId, asNodeId, type NodeId } from '../../src/base/ids.ts';
import { metaGroupId } from '../../src/models/meta.ts';
import {
  agreedLeader,
  kvGroups,
  nodeIds,
  startMetaCluster,
  waitFor,
  type MetaCluster,
  type MetaNode,
} from './meta-cluster.ts';
import { eventually } from '../support/poll.ts';

const rfc3339Utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/u;
const uuid = (n: number) => `3d0c0000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

let cluster: MetaCluster;
let leader: MetaNode;
let follower: MetaNode;

async function post(node: MetaNode, url: string, body: unknown): Promise<LightMyRequestResponse> {
  return node.app.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
}

function expectAgentError(response: LightMyRequestResponse, status: number, message?: RegExp): void {
  expect(response.statusCode).toBe(status);
  const body = response.json<Record<string, unknown>>();
  expect(Object.keys(body).sort()).toEqual(['error', 'error_msg']);
  expect(body['error']).toBe(true);
  expect(typeof body['error_msg']).toBe('string');
  if (message !== undefined) expect(body['error_msg']).toMatch(message);
}

async function finished(node: MetaNode, id: string): Promise<Record<string, unknown>> {
  return waitFor(`action ${id} to finish`, () => {
    const record = node.model.action(id);
    return record?.finishedMs === null || record === undefined ? undefined : record;
  }).then(async () => (await node.app.inject({ url: `/api/unstable/action/${id}` })).json<Record<string, unknown>>());
}

beforeAll(async () => {
  cluster = startMetaCluster();
  leader = await agreedLeader(cluster, metaGroupId);
  for (const group of kvGroups) await agreedLeader(cluster, group);
  follower = [...cluster.nodes.values()].find((n) => n.id !== leader.id) ?? leader;
});

afterAll(async () => {
  await cluster.stop();
});

describe('GET /api/unstable/info/*', () => {
  it('info/node has every field of Node with the spec types, and is HEALTHY once every group has a leader', async () => {
    const body = await eventually(
      'node status HEALTHY',
      async () => {
        const response = await follower.app.inject({ url: '/api/unstable/info/node' });
        expect(response.statusCode).toBe(200);
        const node = response.json<Record<string, unknown>>();
        return node['node_status'] === 'HEALTHY' ? node : undefined;
      },
      { tries: 500, everyMs: 20 },
    );
    expect(Object.keys(body).sort()).toEqual([
      'address',
      'agent_version',
      'attributes',
      'node_id',
      'node_status',
      'store_id',
      'store_version',
    ]);
    expect(body['node_id']).toBe(String(follower.id));
    expect(body['address']).toEqual({
      client: `http://10.0.0.${follower.id}:8000`,
      member: `http://10.0.0.${follower.id}:8000`,
    });
    expect(body['agent_version']).toEqual({ checkout: 'unknown', number: '0.1.0', taint: 'not tainted' });
    expect(body['store_id']).toBe('dram.io/dram');
    expect(body['store_version']).toEqual({ checkout: null, number: '0.1.0', extra: null });
    const attributes = body['attributes'] as Record<string, unknown>;
    expect(attributes).toEqual({
      'dram.io/groups-hosted': 3,
      'dram.io/leaders-held': expect.any(Number) as unknown,
      'dram.io/unhealthy-reason': null,
      // The in-process test nodes have no data dir to measure.
      'dram.io/data-dir-bytes': null,
    });
    for (const [name, value] of Object.entries(attributes)) {
      expect(name).toMatch(/^dram\.io\//u);
      expect(['string', 'number', 'boolean'].includes(typeof value) || value === null).toBe(true);
    }
  });

  it('info/node is UNHEALTHY with the reason in an attribute when a group has no known leader', async () => {
    const isolated = follower;
    cluster.network.cut.add(isolated.id);
    try {
      const body = await eventually(
        'UNHEALTHY',
        async () => {
          const node = (await isolated.app.inject({ url: '/api/unstable/info/node' })).json<Record<string, unknown>>();
          return node['node_status'] === 'UNHEALTHY' ? node : undefined;
        },
        { tries: 750, everyMs: 20 },
      );
      expect((body['attributes'] as Record<string, unknown>)['dram.io/unhealthy-reason']).toMatch(
        /group \d+ has no known leader/u,
      );
    } finally {
      cluster.network.cut.delete(isolated.id);
    }
    await agreedLeader(cluster, metaGroupId);
    for (const group of kvGroups) await agreedLeader(cluster, group);
    leader = await agreedLeader(cluster, metaGroupId);
    follower = [...cluster.nodes.values()].find((n) => n.id !== leader.id) ?? leader;
  }, 30_000);

  it('info/store has the cluster id and an attribute map', async () => {
    const response = await leader.app.inject({ url: '/api/unstable/info/store' });
    expect(response.statusCode).toBe(200);
    const body = response.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['attributes', 'cluster_id']);
    expect(body['cluster_id']).toBe('test-cluster');
    expect(body['attributes']).toEqual({
      'dram.io/nodes-registered': expect.any(Number) as unknown,
      'dram.io/groups': expect.any(Number) as unknown,
      'dram.io/actions-queued': expect.any(Number) as unknown,
    });
  });

  it('info/shards lists every hosted group with id, role, commit offset and lag in the exact unit shape', async () => {
    for (const node of cluster.nodes.values()) {
      const response = await node.app.inject({ url: '/api/unstable/info/shards' });
      expect(response.statusCode).toBe(200);
      const shards = response.json<{ shards: Record<string, unknown>[] }>().shards;
      expect(shards.map((s) => s['id'])).toEqual(['0', '1', '2']);
      for (const shard of shards) {
        expect(Object.keys(shard).sort()).toEqual(['commit_offset', 'id', 'lag', 'role']);
        const group = asGroupId(Number(shard['id']));
        const status = node.host.groupStatus(group)?.status;
        expect(shard['role']).toBe(status?.role === 'leader' ? 'Primary' : 'Secondary');
        const offset = shard['commit_offset'] as { unit: unknown; value: unknown };
        expect(offset.unit).toEqual({ unit: 'log-index' });
        expect(Number.isSafeInteger(offset.value) && (offset.value as number) >= 1).toBe(true);
        if (shard['role'] === 'Primary') expect(shard['lag']).toBeNull();
        else expect(shard['lag']).toEqual({ unit: { unit: 'entries' }, value: expect.any(Number) as unknown });
      }
    }
  });
});

describe('the meta model', () => {
  it('records the cluster id and every group with its replicas, as the configurations say', async () => {
    const model = await waitFor('groups recorded', () =>
      follower.model.groups().length === 3 ? follower.model : undefined,
    );
    expect(model.clusterId).toBe('test-cluster');
    expect(model.groups()).toEqual([
      { id: 0, kind: 'meta', replicas: nodeIds },
      ...kvGroups.map((id) => ({ id, kind: 'kv', replicas: nodeIds })),
    ]);
  });
});

describe('POST /api/unstable/action', () => {
  it('schedules with the caller id and answers {id}; the record has the spec fields and is found from any node', async () => {
    const id = uuid(1);
    const response = await post(follower, '/api/unstable/action', {
      kind: 'agent.replicante.io/test.success',
      id: id.toUpperCase(),
      created_time: '2024-10-05T10:00:00Z',
      metadata: { requester: 'test' },
      args: { ignored: true },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ id });
    const record = await finished(leader, id);
    expect(Object.keys(record).sort()).toEqual([
      'args',
      'created_time',
      'finished_time',
      'id',
      'kind',
      'metadata',
      'scheduled_time',
      'state',
    ]);
    expect(record).toMatchObject({
      args: { ignored: true },
      created_time: '2024-10-05T10:00:00.000Z',
      id,
      kind: 'agent.replicante.io/test.success',
      metadata: { requester: 'test' },
      state: { error: null, payload: null, phase: 'DONE' },
    });
    expect(record['scheduled_time']).toMatch(rfc3339Utc);
    expect(record['finished_time']).toMatch(rfc3339Utc);
    for (const node of cluster.nodes.values()) {
      const found = await waitFor('applied everywhere', () => node.model.action(id)?.finishedMs ?? undefined);
      expect(found).toBeGreaterThan(0);
      expect((await node.app.inject({ url: `/api/unstable/action/${id}` })).statusCode).toBe(200);
    }
  });

  it('accepts the path with a trailing slash and generates a v4 UUID when no id is given', async () => {
    const response = await post(leader, '/api/unstable/action/', { kind: 'agent.replicante.io/test.success' });
    expect(response.statusCode).toBe(200);
    expect(response.json<{ id: string }>().id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/u,
    );
  });

  it('409 when the id is already used, whatever node is asked', async () => {
    const id = uuid(2);
    expect(
      (await post(leader, '/api/unstable/action', { kind: 'agent.replicante.io/test.success', id })).statusCode,
    ).toBe(200);
    await waitFor('applied on the follower', () => follower.model.action(id));
    for (const node of [leader, follower])
      expectAgentError(
        await post(node, '/api/unstable/action', { kind: 'agent.replicante.io/test.fail', id }),
        409,
        /already used/u,
      );
    expect(leader.model.action(id)?.kind).toBe('agent.replicante.io/test.success');
  });

  it('400 in the Replicante shape for bad input, and the queue is unchanged', async () => {
    const before = leader.model.queue().length + leader.model.finishedActions().length;
    const bad: [unknown, RegExp][] = [
      [{ kind: 'example.com/nope' }, /unknown action kind/u],
      [{}, /kind must be a string/u],
      [[1, 2], /JSON object/u],
      [{ kind: 'agent.replicante.io/test.success', created_time: '2024-10-05T10:00:00+02:00' }, /MUST be in UTC/u],
      [{ kind: 'agent.replicante.io/test.success', created_time: 'yesterday' }, /RFC 3339/u],
      [{ kind: 'agent.replicante.io/test.success', id: 'not-a-uuid' }, /UUID/u],
      [{ kind: 'agent.replicante.io/test.success', metadata: { a: 1 } }, /metadata/u],
      [{ kind: 'agent.replicante.io/test.loop', args: { target: -1 } }, /target/u],
      [{ kind: 'dram.io/group.transfer-leadership', args: { group: 1, too: 2 } }, /unknown field/u],
      [{ kind: 'agent.replicante.io/cluster.remove', args: {} }, /args.node/u],
      [{ kind: 'agent.replicante.io/test.success', args: 'x'.repeat(70_000) }, /larger than/u],
    ];
    for (const [body, message] of bad) expectAgentError(await post(leader, '/api/unstable/action', body), 400, message);
    const malformed = await leader.app.inject({
      method: 'POST',
      url: '/api/unstable/action',
      payload: '{"kind": ',
      headers: { 'content-type': 'application/json' },
    });
    expectAgentError(malformed, 400);
    const huge = await post(leader, '/api/unstable/action', {
      kind: 'agent.replicante.io/test.success',
      args: 'x'.repeat(200_000),
    });
    expectAgentError(huge, 413);
    expect(leader.model.queue().length + leader.model.finishedActions().length).toBe(before);
  });

  it('bad input for the membership kinds: 4xx in the Replicante shape, a DRAM_ERR_* code on /v1/actions, the queue unchanged', async () => {
    const before = leader.model.queue().length + leader.model.finishedActions().length;
    const bad: [unknown, number, string, RegExp][] = [
      [{ kind: 'agent.replicante.io/cluster.add' }, 400, 'DRAM_ERR_INVALID_ACTION_ARGS', /args must be an object/u],
      [
        { kind: 'agent.replicante.io/cluster.add', args: { node: 'ftp://x' } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /args.node/u,
      ],
      [
        { kind: 'agent.replicante.io/cluster.add', args: { node: 'http://a?b=1' } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /args.node/u,
      ],
      [
        { kind: 'agent.replicante.io/cluster.add', args: { node: 'http://a', id: 4 } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /unknown field/u,
      ],
      [
        { kind: 'agent.replicante.io/cluster.add', args: { node: `http://${'a'.repeat(2000)}` } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /args.node/u,
      ],
      [
        { kind: 'dram.io/replication.set', args: { kind: 'kv', factor: 0 } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /factor/u,
      ],
      [
        { kind: 'dram.io/replication.set', args: { kind: 'db', factor: 3 } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /kind/u,
      ],
      [{ kind: 'agent.replicante.io/cluster.init' }, 409, 'DRAM_ERR_IN_CLUSTER', /already in a cluster/u],
      [
        { kind: 'agent.replicante.io/cluster.join', args: { node: 'http://10.0.0.9:8080' } },
        409,
        'DRAM_ERR_IN_CLUSTER',
        /already in a cluster/u,
      ],
      [
        { kind: 'dram.io/group.transfer-leadership', args: { group: 1, to: 99 } },
        400,
        'DRAM_ERR_INVALID_ACTION_ARGS',
        /not a voter/u,
      ],
      [
        { kind: 'dram.io/group.transfer-leadership', args: { group: 99 } },
        404,
        'DRAM_ERR_UNKNOWN_GROUP',
        /does not exist/u,
      ],
    ];
    for (const [body, status, code, message] of bad) {
      expectAgentError(await post(leader, '/api/unstable/action', body), status, message);
      const own = await post(follower, '/v1/actions', body);
      expect({ body, status: own.statusCode, code: own.json<{ code: string }>().code }).toEqual({ body, status, code });
    }
    expect(leader.model.queue().length + leader.model.finishedActions().length).toBe(before);
  });

  it('a refusal by the request guard, before any route runs, keeps the Replicante shape too', async () => {
    const before = leader.model.queue().length + leader.model.finishedActions().length;
    const success = JSON.stringify({ kind: 'agent.replicante.io/test.success' });
    const textPlain = await leader.app.inject({
      method: 'POST',
      url: '/api/unstable/action',
      payload: success,
      headers: { 'content-type': 'text/plain' },
    });
    expectAgentError(textPlain, 415, /application\/json/u);
    const deep = await leader.app.inject({
      method: 'POST',
      url: '/api/unstable/action',
      payload: `{"kind": "agent.replicante.io/test.success", "args": ${'['.repeat(jsonDepthMax)}${']'.repeat(jsonDepthMax)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expectAgentError(deep, 400, /nested deeper/u);
    const bodyOnGet = await leader.app.inject({
      method: 'GET',
      url: '/api/unstable/info/node',
      payload: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expectAgentError(bodyOnGet, 413, /takes no body/u);
    expect(leader.model.queue().length + leader.model.finishedActions().length).toBe(before);
  });

  it('GET action/:id answers 404 with an empty body for an unknown or malformed id', async () => {
    for (const id of [uuid(999), 'nope']) {
      const response = await follower.app.inject({ url: `/api/unstable/action/${id}` });
      expect(response.statusCode).toBe(404);
      expect(response.body).toBe('');
    }
  });
});

describe('actions/queue and actions/finished', () => {
  it('list {actions: [{id, kind, phase}]} of the actions scheduled through this node only', async () => {
    const mine = uuid(10);
    const theirs = uuid(11);
    await post(follower, '/api/unstable/action', {
      kind: 'agent.replicante.io/test.loop',
      id: mine,
      args: { target: 2 },
    });
    await post(leader, '/api/unstable/action', { kind: 'agent.replicante.io/test.success', id: theirs });
    await finished(follower, mine);
    await finished(follower, theirs);
    const list = (await follower.app.inject({ url: '/api/unstable/actions/finished' })).json<{
      actions: Record<string, unknown>[];
    }>();
    expect(Object.keys(list)).toEqual(['actions']);
    expect(list.actions).toContainEqual({ id: mine, kind: 'agent.replicante.io/test.loop', phase: 'DONE' });
    expect(list.actions.map((a) => a['id'])).not.toContain(theirs);
    for (const item of list.actions) expect(Object.keys(item).sort()).toEqual(['id', 'kind', 'phase']);
    const queue = (await follower.app.inject({ url: '/api/unstable/actions/queue' })).json<{ actions: unknown[] }>();
    expect(queue).toEqual({ actions: [] });
  });
});

describe('the executor', () => {
  it('runs actions scheduled through every node one at a time, in schedule order, each once', async () => {
    const ids: string[] = [];
    let k = 100;
    for (const node of [...cluster.nodes.values(), ...cluster.nodes.values()]) {
      const id = uuid(k++);
      ids.push(id);
      const response = await post(node, '/api/unstable/action', {
        kind: 'agent.replicante.io/test.loop',
        id,
        args: { target: 3 },
      });
      expect(response.statusCode).toBe(200);
    }
    for (const id of ids) await finished(leader, id);
    const records = ids.map((id) => leader.model.action(id));
    let previousFinish = 0;
    for (const record of records) {
      expect(record?.state).toEqual({ phase: 'DONE', payload: { count: 3, target: 3 }, error: null });
      // Start, two RUNNING steps, DONE: one version each; nothing applied twice.
      expect(record?.version).toBe(4);
      expect(record?.startedMs ?? 0).toBeGreaterThanOrEqual(previousFinish);
      previousFinish = record?.finishedMs ?? Infinity;
    }
  });

  it('test.fail finishes FAILED with the SDK message', async () => {
    const id = uuid(200);
    await post(follower, '/api/unstable/action', { kind: 'agent.replicante.io/test.fail', id });
    const record = await finished(follower, id);
    expect(record['state']).toEqual({
      error: { error_msg: 'Test action failed as expected' },
      payload: null,
      phase: 'FAILED',
    });
  });

  it('a new meta leader resumes the RUNNING action; it finishes once with its count intact', async () => {
    const id = uuid(300);
    await post(follower, '/api/unstable/action', { kind: 'agent.replicante.io/test.loop', id, args: { target: 200 } });
    await waitFor('running', () => (leader.model.action(id)?.state.phase === 'RUNNING' ? true : undefined));
    const old = leader;
    cluster.network.cut.add(old.id);
    try {
      const others = [...cluster.nodes.values()].filter((n) => n.id !== old.id);
      const next = await waitFor('a new meta leader', () =>
        others.find((n) => n.host.groupStatus(metaGroupId)?.status.role === 'leader'),
      );
      const record = await waitFor(
        'finished under the new leader',
        () => {
          const r = next.model.action(id);
          return r?.finishedMs === null ? undefined : r;
        },
        20_000,
      );
      expect(record.state).toEqual({ phase: 'DONE', payload: { count: 200, target: 200 }, error: null });
      expect(record.version).toBe(201);
    } finally {
      cluster.network.cut.delete(old.id);
    }
    leader = await agreedLeader(cluster, metaGroupId);
    follower = [...cluster.nodes.values()].find((n) => n.id !== leader.id) ?? leader;
  }, 40_000);
});

describe('/v1/actions', () => {
  it('lists the whole queue, shows one action, and cancels an unfinished one (then 409, unknown 404)', async () => {
    const blocker = uuid(400);
    const waiting = uuid(401);
    await post(leader, '/v1/actions', { kind: 'agent.replicante.io/test.loop', id: blocker, args: { target: 10_000 } });
    await post(follower, '/v1/actions', { kind: 'agent.replicante.io/test.success', id: waiting });
    await waitFor('applied', () => follower.model.action(waiting));
    const list = (await follower.app.inject({ url: '/v1/actions' })).json<{
      queue: { id: string }[];
      finished: unknown[];
    }>();
    expect(list.queue.map((a) => a.id)).toEqual([blocker, waiting]);
    const shown = await follower.app.inject({ url: `/v1/actions/${waiting}` });
    expect(shown.json()).toMatchObject({ id: waiting, state: { phase: 'NEW' } });
    const cancelled = await post(follower, `/v1/actions/${blocker}/cancel`, { reason: 'test' });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({
      id: blocker,
      state: { phase: 'FAILED', error: { error_msg: 'cancelled: test' } },
    });
    await finished(leader, waiting);
    const again = await post(follower, `/v1/actions/${blocker}/cancel`, {});
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: true, code: 'DRAM_ERR_ACTION_FINISHED' });
    const unknown = await post(follower, `/v1/actions/${uuid(998)}/cancel`, {});
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'DRAM_ERR_ACTION_NOT_FOUND' });
    expect((await follower.app.inject({ url: `/v1/actions/${uuid(998)}` })).json()).toMatchObject({
      code: 'DRAM_ERR_ACTION_NOT_FOUND',
    });
  });

  it('dram.io/group.transfer-leadership moves the group to the node asked for', async () => {
    const group = kvGroups[0] ?? asGroupId(1);
    const current = await agreedLeader(cluster, group);
    const to: NodeId = nodeIds.find((n) => n !== current.id) ?? asNodeId(1);
    const id = uuid(500);
    expect(
      (await post(follower, '/v1/actions', { kind: 'dram.io/group.transfer-leadership', id, args: { group, to } }))
        .statusCode,
    ).toBe(200);
    const record = await finished(leader, id);
    expect(record['state']).toMatchObject({ phase: 'DONE', payload: { group, from: current.id, to } });
    expect((await agreedLeader(cluster, group)).id).toBe(to);
  });

  it("dram.io/group.compact snapshots the named node's replica, reached from the meta leader through the direct route", async () => {
    const group = kvGroups[1] ?? asGroupId(2);
    const target = [...cluster.nodes.values()].find((n) => n.id !== leader.id) ?? follower;
    const id = uuid(510);
    await post(leader, '/v1/actions', { kind: 'dram.io/group.compact', id, args: { group, node: target.id } });
    const record = await finished(leader, id);
    expect(record['state']).toMatchObject({ phase: 'DONE', error: null, payload: { group, node: target.id } });
    const { index, state } = (record['state'] as { payload: { index: number; state: string } }).payload;
    expect(['started', 'in_progress', 'up_to_date']).toContain(state);
    // The target's replica stores a snapshot at that index (asked again, nothing is new before it).
    await waitFor('the snapshot to be stored on the target', () => {
      const answer = target.host.compactNow(group);
      return answer.kind === 'up_to_date' && answer.index >= index ? true : undefined;
    });
    const unknown = uuid(511);
    await post(leader, '/v1/actions', { kind: 'dram.io/group.compact', id: unknown, args: { group: 77 } });
    expect((await finished(leader, unknown))['state']).toMatchObject({ phase: 'FAILED' });
  });

  it('POST /v1/admin/groups/:group/compact runs as an action on the node it was sent to, and waits for it', async () => {
    const group = kvGroups[0] ?? asGroupId(1);
    const answer = await follower.app.inject({ method: 'POST', url: `/v1/admin/groups/${group}/compact` });
    expect(answer.statusCode).toBe(200);
    const body = answer.json<{ group: number; node: number; index: number; state: string; action: string }>();
    expect(body).toMatchObject({ group, node: follower.id });
    expect(leader.model.action(body.action)?.kind).toBe('dram.io/group.compact');
    const unknown = await follower.app.inject({ method: 'POST', url: '/v1/admin/groups/77/compact' });
    expect([unknown.statusCode, unknown.json<{ code: string }>().code]).toEqual([404, 'DRAM_ERR_UNKNOWN_GROUP']);
  });

  it('a transfer for a group that does not exist, or to a node that is not a voter, is refused and schedules nothing', async () => {
    const before = leader.model.queue().length + leader.model.finishedActions().length;
    const unknownGroup = await post(leader, '/v1/actions', {
      kind: 'dram.io/group.transfer-leadership',
      id: uuid(501),
      args: { group: 77 },
    });
    expect(unknownGroup.statusCode).toBe(404);
    expect(unknownGroup.json()).toMatchObject({ code: 'DRAM_ERR_UNKNOWN_GROUP', message: 'group 77 does not exist' });
    const agent = await post(leader, '/api/unstable/action', {
      kind: 'dram.io/group.transfer-leadership',
      id: uuid(502),
      args: { group: kvGroups[0], to: 42 },
    });
    expect(agent.statusCode).toBe(400);
    const refusal = agent.json<{ error: boolean; error_msg: string }>();
    expect(refusal.error).toBe(true);
    expect(refusal.error_msg).toContain('node 42 is not a voter of group');
    expect(leader.model.queue().length + leader.model.finishedActions().length).toBe(before);
    for (const id of [uuid(501), uuid(502)]) expect(leader.model.action(id)).toBeUndefined();
  });

  it('cluster.remove of a node that is not a member succeeds and changes nothing', async () => {
    const id = uuid(600);
    await post(follower, '/api/unstable/action', {
      kind: 'agent.replicante.io/cluster.remove',
      id,
      args: { node: '42' },
    });
    const record = await finished(leader, id);
    expect(record['state']).toMatchObject({ error: null, payload: { node: 42, warnings: [] }, phase: 'DONE' });
    const groups = (record['state'] as { payload: { groups: { steps: string[] }[] } }).payload.groups;
    expect(groups.map((group) => group.steps)).toEqual(kvGroups.map(() => []));
    for (const group of [metaGroupId, ...kvGroups])
      expect(leader.host.groupStatus(group)?.status.confState.voters).toEqual(nodeIds);
  });
});

describe('GET /docs', () => {
  it('describes every agent and action route the node serves', async () => {
    const document = (await leader.app.inject({ url: '/docs/json' })).json<{
      paths: Record<string, Record<string, unknown>>;
    }>();
    const routes = [
      'GET /api/unstable/info/node',
      'GET /api/unstable/info/store',
      'GET /api/unstable/info/shards',
      'POST /api/unstable/action',
      'POST /api/unstable/action/',
      'GET /api/unstable/action/{id}',
      'GET /api/unstable/actions/finished',
      'GET /api/unstable/actions/queue',
      'GET /v1/actions',
      'POST /v1/actions',
      'GET /v1/actions/{id}',
      'POST /v1/actions/{id}/cancel',
      'POST /v1/meta/commands',
    ];
    for (const route of routes) {
      const [method = '', path = ''] = route.split(' ');
      expect(document.paths[path]?.[method.toLowerCase()], route).toBeDefined();
      const url = path.replace('{id}', uuid(999));
      const answer = await leader.app.inject({ method: method as 'GET' | 'POST', url });
      // Served (whatever the answer to an empty request), not the router's 404.
      expect(answer.body, route).not.toContain('DRAM_ERR_ROUTE_NOT_FOUND');
    }
  });
});

describe('the queue limit', () => {
  it('refuses a schedule beyond actionsQueuedMax with 429 in both shapes', async () => {
    const small = startMetaCluster({ actionsQueuedMax: 1 });
    try {
      const meta = await agreedLeader(small, metaGroupId);
      // The first waits behind a long loop; the cluster has no room for a second.
      expect(
        (await post(meta, '/v1/actions', { kind: 'agent.replicante.io/test.loop', args: { target: 10_000 } }))
          .statusCode,
      ).toBe(200);
      expectAgentError(
        await post(meta, '/api/unstable/action', { kind: 'agent.replicante.io/test.success' }),
        429,
        /retry later/u,
      );
      const dram = await post(meta, '/v1/actions', { kind: 'agent.replicante.io/test.success' });
      expect(dram.statusCode).toBe(429);
      expect(dram.json()).toMatchObject({
        error: true,
        code: 'DRAM_ERR_ACTIONS_QUEUE_FULL',
        details: { queuedMax: 1 },
      });
      expect(meta.model.queue()).toHaveLength(1);
    } finally {
      await small.stop();
    }
  });
});

describe('cluster.remove of the meta leader itself', () => {
  it('removes it from every group; the new meta leader finishes the action', async () => {
    const small = startMetaCluster();
    try {
      const meta = await agreedLeader(small, metaGroupId);
      for (const group of kvGroups) await agreedLeader(small, group);
      const other = [...small.nodes.values()].find((n) => n.id !== meta.id) ?? meta;
      const id = uuid(700);
      const scheduled = await post(other, '/api/unstable/action', {
        kind: 'agent.replicante.io/cluster.remove',
        id,
        args: { node: String(meta.id) },
      });
      expect(scheduled.statusCode).toBe(200);
      const record = await waitFor(
        'the removal to finish',
        () => {
          const r = other.model.action(id);
          return r?.finishedMs === null ? undefined : r;
        },
        30_000,
      );
      expect(record.state).toMatchObject({ phase: 'DONE', payload: { node: meta.id }, error: null });
      for (const group of [metaGroupId, ...kvGroups]) {
        const conf = other.host.groupStatus(group)?.status.confState;
        expect([...(conf?.voters ?? []), ...(conf?.learners ?? [])], `group ${group}`).not.toContain(meta.id);
      }
      const next = await waitFor('a new meta leader', () =>
        [...small.nodes.values()].find(
          (n) => n.id !== meta.id && n.host.groupStatus(metaGroupId)?.status.role === 'leader',
        ),
      );
      expect(next.id).not.toBe(meta.id);
    } finally {
      await small.stop();
    }
  }, 40_000);
});
