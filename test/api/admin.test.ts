// Status, admin failover, /metrics and /docs against a live in-process three-node cluster through
// inject(): the status of every group agrees on one leader; a transfer asked of a follower is
// forwarded to the leader and moves leadership; bad admin input is a 4xx and starts nothing;
// /metrics carries every documented metric; /docs is the API page over OpenAPI JSON describing every route.

import { afterEach, describe, expect, it } from 'vitest';
import { errorRegistry } from '../../src/api/errors.ts';
import { asGroupId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import {
  agreedLeader,
  errorCode,
  keyIn,
  kvGroups,
  startCluster,
  waitFor,
  type ApiCluster,
  type ApiNode,
} from './cluster.ts';
import { documentedMetrics } from './metrics-docs.ts';

let cluster: ApiCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const group3: GroupId = kvGroups[2] ?? asGroupId(3);

interface StatusBody {
  nodeId: number;
  clusterId: string;
  groups: {
    group: number;
    role: string;
    term: number;
    commit: number;
    applied: number;
    firstIndex: number;
    lastIndex: number;
    leader: number;
    lag: number;
    voters: number[];
    learners: number[];
    lastLeaderChange: { at: string; from: number; to: number; term: number; cause: string } | null;
  }[];
}

function transferUrl(group: number | string): string {
  return `/v1/admin/groups/${group}/transfer-leadership`;
}

function others(running: ApiCluster, node: ApiNode): ApiNode[] {
  return [...running.nodes.values()].filter((n) => n !== node);
}

function leaderSeenByAll(running: ApiCluster, group: GroupId, leader: NodeId): true | undefined {
  return [...running.nodes.values()].every(
    (n) => n.host.status().find((s) => s.group === group)?.status.leader === leader,
  )
    ? true
    : undefined;
}

describe('status and admin API', () => {
  it('reports node, cluster and every group with one agreed leader', async () => {
    const running = (cluster = startCluster());
    for (const group of kvGroups) await agreedLeader(running, group);
    const bodies: StatusBody[] = [];
    for (const node of running.nodes.values()) {
      const response = await node.app.inject({ method: 'GET', url: '/v1/status' });
      expect(response.statusCode).toBe(200);
      const body = response.json<StatusBody>();
      expect(body.nodeId).toBe(node.id);
      expect(body.clusterId).toBe('test-cluster');
      expect(body.groups.map((g) => g.group)).toEqual([...kvGroups]);
      for (const group of body.groups) {
        expect(Object.keys(group).sort()).toEqual([
          'applied',
          'commit',
          'firstIndex',
          'group',
          'lag',
          'lastIndex',
          'lastLeaderChange',
          'leader',
          'learners',
          'quiesced',
          'role',
          'term',
          'voters',
        ]);
        expect({ voters: group.voters, learners: group.learners }).toEqual({ voters: [1, 2, 3], learners: [] });
        expect(group.lag).toBeGreaterThanOrEqual(0);
        expect(group.applied).toBeLessThanOrEqual(group.commit);
        expect(group.firstIndex).toBeLessThanOrEqual(group.lastIndex + 1);
        expect(group.commit).toBeLessThanOrEqual(group.lastIndex);
        if (group.role !== 'leader') expect(group.lag).toBe(0);
      }
      bodies.push(body);
    }
    for (const [k, group] of kvGroups.entries()) {
      const leaders = new Set(bodies.map((b) => b.groups[k]?.leader));
      expect(leaders.size).toBe(1);
      const leader = [...leaders][0];
      expect(bodies.filter((b) => b.nodeId === leader && b.groups[k]?.role === 'leader')).toHaveLength(1);
      expect(bodies.filter((b) => b.groups[k]?.role === 'leader').map((b) => b.groups[k]?.group)).toEqual([group]);
    }
  });

  it("compacts one node's replica of a group now, and says so once the snapshot is stored", async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const [follower] = others(running, leader);
    if (follower === undefined) throw new Error('three nodes expected');
    const url = `/v1/admin/groups/${group3}/compact`;
    const started = await follower.app.inject({ method: 'POST', url });
    expect(started.statusCode).toBe(202);
    const { index } = started.json<{ index: number }>();
    expect(started.json()).toEqual({ group: group3, node: follower.id, index, state: 'started' });
    expect(index).toBeGreaterThan(0);
    // Stored: asked again, there is nothing new to compact, and the stored snapshot is at `index`.
    await waitFor('the snapshot to be stored', () => {
      const host = follower.host;
      const answer = host.compactNow(group3);
      return answer.kind === 'up_to_date' && answer.index === index ? true : undefined;
    });
    const again = await follower.app.inject({ method: 'POST', url, payload: {} });
    expect([again.statusCode, again.json<{ state: string }>().state]).toEqual([200, 'up_to_date']);
    const refused = await follower.app.inject({ method: 'POST', url, payload: { now: true } });
    expect([refused.statusCode, errorCode(refused)]).toEqual([400, 'DRAM_ERR_BAD_REQUEST']);
    const unknown = await follower.app.inject({ method: 'POST', url: '/v1/admin/groups/99/compact' });
    expect([unknown.statusCode, errorCode(unknown)]).toEqual([404, 'DRAM_ERR_UNKNOWN_GROUP']);
  });

  it('moves leadership to the requested node when a follower is asked (forwarded to the leader)', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const [asked, target] = others(running, leader);
    if (asked === undefined || target === undefined) throw new Error('three nodes expected');
    const response = await asked.app.inject({ method: 'POST', url: transferUrl(group3), payload: { to: target.id } });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ group: group3, from: leader.id, to: target.id });
    expect(running.forwards.get(asked.id)).toBe(1);
    await waitFor(`node ${target.id} to lead group ${group3}`, () => leaderSeenByAll(running, group3, target.id));
    // Every node's status names the change and its cause (each voter saw the transfer start).
    await waitFor('every node to record the transfer', () =>
      [...running.nodes.values()].every(
        (n) => n.host.status().find((s) => s.group === group3)?.lastLeaderChange?.to === target.id,
      )
        ? true
        : undefined,
    );
    for (const node of running.nodes.values()) {
      const body = (await node.app.inject({ method: 'GET', url: '/v1/status' })).json<StatusBody>();
      const change = body.groups.find((g) => g.group === group3)?.lastLeaderChange;
      expect(change).toMatchObject({ from: leader.id, to: target.id, cause: 'transfer' });
      expect(new Date(change?.at ?? '').toISOString()).toBe(change?.at);
    }
    const put = await target.app.inject({ method: 'PUT', url: `/v1/kv/${keyIn(group3, 'after')}`, payload: 'x' });
    expect(put.statusCode).toBe(200);
    expect(put.headers['x-dram-leader']).toBe(String(target.id));
  });

  it('moves leadership to the most caught-up voter when no target is given; the leader itself is 200', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const self = await leader.app.inject({ method: 'POST', url: transferUrl(group3), payload: { to: leader.id } });
    expect(self.statusCode).toBe(200);
    expect(self.json()).toEqual({ group: group3, from: leader.id, to: leader.id });

    const response = await leader.app.inject({ method: 'POST', url: transferUrl(group3) });
    expect(response.statusCode).toBe(202);
    const { to } = response.json<{ to: NodeId }>();
    expect(others(running, leader).map((n) => n.id)).toContain(to);
    await waitFor(`node ${to} to lead group ${group3}`, () => leaderSeenByAll(running, group3, to));
  });

  it('answers bad admin input with 4xx codes and starts no transfer', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const url = transferUrl(group3);
    const json = { 'content-type': 'application/json' };
    const cases = [
      { url, payload: '{"to": 2', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '[2]', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '{"too": 2}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '{"to": "2"}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '{"to": 1.5}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url, payload: '{"to": 9}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      {
        url,
        payload: `{"to": 2, "pad": "${'x'.repeat(2000)}"}`,
        headers: json,
        status: 413,
        code: 'DRAM_ERR_BODY_TOO_LARGE',
      },
      {
        url,
        payload: '{"to": 2}',
        headers: { 'content-type': 'application/octet-stream' },
        status: 415,
        code: 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
      },
      { url: transferUrl(99), payload: '{}', headers: json, status: 404, code: 'DRAM_ERR_UNKNOWN_GROUP' },
      { url: transferUrl('abc'), payload: '{}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { url: transferUrl(-1), payload: '{}', headers: json, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
    ];
    for (const node of running.nodes.values()) {
      for (const request of cases) {
        const response = await node.app.inject({
          method: 'POST',
          url: request.url,
          payload: request.payload,
          headers: request.headers,
        });
        expect({
          payload: request.payload.slice(0, 20),
          url: request.url,
          status: response.statusCode,
          code: errorCode(response),
        }).toEqual({
          payload: request.payload.slice(0, 20),
          url: request.url,
          status: request.status,
          code: request.code,
        });
      }
    }
    const status = leader.host.status().find((s) => s.group === group3)?.status;
    expect(status?.role).toBe('leader');
    expect(status?.transferTarget).toBe(0);
  });

  it('serves /metrics with every documented metric, and counts requests by route', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const follower = others(running, leader)[0];
    if (follower === undefined) throw new Error('three nodes expected');
    expect(
      (await follower.app.inject({ method: 'PUT', url: `/v1/kv/${keyIn(group3, 'm')}`, payload: 'x' })).statusCode,
    ).toBe(200);
    expect(
      (await leader.app.inject({ method: 'GET', url: `/v1/kv/${keyIn(group3, 'm')}?consistency=stale` })).statusCode,
    ).toBe(200);
    leader.metrics.observeTurnDuration(0.002);

    const response = await leader.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const lines = response.body.split('\n');
    for (const { name } of documentedMetrics())
      expect(lines.some((line) => line.startsWith(`# TYPE ${name} `))).toBe(true);
    // The follower proposed the write (handed to the leader inside Raft) and counts it.
    expect(response.body).not.toContain('dram_proposals_total{outcome="applied"}');
    expect(response.body).toContain('dram_reads_total{consistency="stale",outcome="served"} 1');
    expect(response.body).toContain('dram_http_requests_total{method="GET",route="/v1/kv/:key",status="200"} 1');
    expect(response.body).toContain(`dram_group_role{group="${group3}"} 2`);
    expect(response.body).toContain(`dram_group_leader_node_id{group="${group3}"} ${leader.id}`);
    expect(response.body).toContain('dram_turn_duration_seconds_count 1');

    const followerMetrics = (await follower.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(followerMetrics).toContain('dram_proposals_total{outcome="applied"} 1');
    expect(followerMetrics).toContain('dram_http_requests_total{method="PUT",route="/v1/kv/:key",status="200"} 1');
    expect(followerMetrics).toContain(`dram_group_role{group="${group3}"} 0`);
  });

  it('serves /docs as the API page, over OpenAPI JSON at /docs/json describing exactly the routes the app serves', async () => {
    const running = (cluster = startCluster());
    const node = [...running.nodes.values()][0];
    if (node === undefined) throw new Error('no node');
    const page = await node.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/u);
    expect(page.body).toContain('swagger');
    const response = await node.app.inject({ method: 'GET', url: '/docs/json' });
    expect(response.statusCode).toBe(200);
    const document = JSON.parse(response.body) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(document.openapi).toMatch(/^3\./);
    const contract = [
      'PUT /v1/kv/{key}',
      'GET /v1/kv/{key}',
      'DELETE /v1/kv/{key}',
      'GET /v1/status',
      'POST /v1/admin/groups/{group}/transfer-leadership',
      'POST /v1/admin/groups/{group}/compact',
      'GET /metrics',
      'GET /',
      'GET /docs',
      'GET /docs/json',
      'GET /v1/admin/members',
      'GET /v1/admin/groups/{group}/snapshot',
      'POST /v1/admin/members',
      'POST /v1/admin/groups/{group}/members',
      'DELETE /v1/admin/members/{nodeId}',
      'DELETE /v1/admin/groups/{group}/members/{nodeId}',
      'POST /v1/databases/{nameOrAlias}/query/{endpoint}',
      // The smart query client's map and reduce (docs/query.md).
      'POST /v1/databases/{name}/map/{endpoint}',
      'POST /v1/endpoints/{endpoint}/reduce',
    ];
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((method) => method !== 'parameters')
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual([...contract].sort());
    for (const entry of documented) {
      const [method, path] = entry.split(' ') as [string, string];
      const url = path.replaceAll(/\{(\w+)\}/g, ':$1');
      expect({ entry, served: node.app.hasRoute({ method, url }) }).toEqual({ entry, served: true });
    }
    // The error codes the document lists are the registry's.
    const errorSchema = (
      document as unknown as { components: { schemas: { Error: { properties: { code: { enum: string[] } } } } } }
    ).components.schemas.Error;
    expect(errorSchema.properties.code.enum).toEqual(Object.keys(errorRegistry));
  });
});
