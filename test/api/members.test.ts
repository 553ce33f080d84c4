// The membership routes against a live in-process cluster (three bootstrapped nodes, four kv
// groups) through inject(): the cluster view a joining node reads; bad input and conflicts are
// 4xx and change nothing (no address recorded, no configuration proposed); a fourth node with
// empty storage becomes a learner then a voter of every group, asked through any node, and then
// serves writes and linearizable reads; a repeated request is an idempotent success; a node that
// cannot catch up leaves the request pending (503) with learners in place, and the retry only
// promotes them. Every wait is bounded (cluster.ts waitFor) and fails with a message.

import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import {
  agreedLeader,
  errorCode,
  keyIn,
  kvGroups,
  memberAddresses,
  nodeIds,
  startCluster,
  waitFor,
  type ApiCluster,
  type ApiNode,
} from './cluster.ts';

let cluster: ApiCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const four = asNodeId(4);
const group3: GroupId = kvGroups[2] ?? asGroupId(3);
const joinBody = { nodeId: 4, raft: '10.0.0.4:9000', http: '10.0.0.4:8000', clusterId: 'test-cluster' };

interface GroupReport {
  group: number;
  leader: number;
  state: string;
  steps: string[];
  pending?: string;
}

function post(node: ApiNode, url: string, payload: unknown): Promise<LightMyRequestResponse> {
  return node.app.inject({
    method: 'POST',
    url,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });
}

function confOf(node: ApiNode, group: GroupId): { voters: readonly NodeId[]; learners: readonly NodeId[] } | undefined {
  return node.host.groupStatus(group)?.status.confState;
}

async function allLeaders(running: ApiCluster): Promise<void> {
  for (const group of kvGroups) await agreedLeader(running, group);
}

describe('membership API', () => {
  it('lists the cluster a joining node needs: id, groups and every known node', async () => {
    const running = (cluster = startCluster());
    const response = await running.node(asNodeId(2)).app.inject({ method: 'GET', url: '/v1/admin/members' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      nodeId: 2,
      clusterId: 'test-cluster',
      groups: [...kvGroups],
      members: nodeIds.map((id) => ({ nodeId: id, raft: `10.0.0.${id}:9000`, http: `10.0.0.${id}:8000` })),
      kvReplicationFactor: null,
    });
  });

  it('answers bad input and conflicts with 4xx and records or proposes nothing', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const bad = (payload: string, status: number, code: string, contentType = 'application/json') => ({
      payload,
      status,
      code,
      contentType,
    });
    const cases = [
      bad('{"nodeId": 4', 400, 'DRAM_ERR_BAD_REQUEST'),
      bad('[]', 400, 'DRAM_ERR_BAD_REQUEST'),
      bad('{}', 400, 'DRAM_ERR_BAD_REQUEST'),
      ...[0, -1, 1.5, '"4"', null].map((id) =>
        bad(`{"nodeId": ${String(id)}, "raft": "10.0.0.4:9000", "http": "10.0.0.4:8000"}`, 400, 'DRAM_ERR_BAD_REQUEST'),
      ),
      bad('{"nodeId": 4, "http": "10.0.0.4:8000"}', 400, 'DRAM_ERR_BAD_REQUEST'),
      bad('{"nodeId": 4, "raft": "10.0.0.4:9000"}', 400, 'DRAM_ERR_BAD_REQUEST'),
      ...['10.0.0.4', '10.0.0.4:0', '10.0.0.4:70000', '0.0.0.0:9000', 'bad host!:9000', ':9000', 9000].map((raft) =>
        bad(JSON.stringify({ nodeId: 4, raft, http: '10.0.0.4:8000' }), 400, 'DRAM_ERR_BAD_REQUEST'),
      ),
      bad(JSON.stringify({ ...joinBody, extra: true }), 400, 'DRAM_ERR_BAD_REQUEST'),
      bad(JSON.stringify({ ...joinBody, clusterId: 5 }), 400, 'DRAM_ERR_BAD_REQUEST'),
      bad(JSON.stringify({ ...joinBody, clusterId: 'another-cluster' }), 409, 'DRAM_ERR_CLUSTER_MISMATCH'),
      bad(JSON.stringify({ nodeId: 2, raft: '10.0.0.9:9000', http: '10.0.0.2:8000' }), 409, 'DRAM_ERR_MEMBER_CONFLICT'),
      bad(JSON.stringify({ nodeId: 2, raft: '10.0.0.2:9000', http: '10.0.0.9:8000' }), 409, 'DRAM_ERR_MEMBER_CONFLICT'),
      bad(JSON.stringify({ nodeId: 4, raft: '10.0.0.2:9000', http: '10.0.0.4:8000' }), 409, 'DRAM_ERR_MEMBER_CONFLICT'),
      bad(JSON.stringify({ nodeId: 4, raft: '10.0.0.4:9000', http: '10.0.0.2:8000' }), 409, 'DRAM_ERR_MEMBER_CONFLICT'),
      bad(JSON.stringify({ ...joinBody, clusterId: 'x'.repeat(3000) }), 413, 'DRAM_ERR_BODY_TOO_LARGE'),
      bad(JSON.stringify(joinBody), 415, 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE', 'application/octet-stream'),
    ];
    for (const node of running.nodes.values()) {
      for (const url of ['/v1/admin/members', `/v1/admin/groups/${group3}/members`]) {
        for (const request of cases) {
          const response = await node.app.inject({
            method: 'POST',
            url,
            payload: request.payload,
            headers: { 'content-type': request.contentType },
          });
          expect({
            url,
            payload: request.payload.slice(0, 60),
            status: response.statusCode,
            code: errorCode(response),
          }).toEqual({ url, payload: request.payload.slice(0, 60), status: request.status, code: request.code });
        }
      }
      for (const [url, status, code] of [
        ['/v1/admin/groups/99/members', 404, 'DRAM_ERR_UNKNOWN_GROUP'],
        ['/v1/admin/groups/abc/members', 400, 'DRAM_ERR_BAD_REQUEST'],
      ] as const) {
        const response = await post(node, url, joinBody);
        expect({ url, status: response.statusCode, code: errorCode(response) }).toEqual({ url, status, code });
      }
    }
    for (const node of running.nodes.values()) {
      expect(node.directory.list()).toEqual(nodeIds.map(memberAddresses));
      for (const group of kvGroups) expect(confOf(node, group)).toMatchObject({ voters: nodeIds, learners: [] });
    }
  });

  it('adds a fourth node with empty storage as a voter of every group, asked through any node; a retry is a no-op', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const joiner = running.addEmptyNode(four);
    const asked = running.node(asNodeId(1));
    const response = await post(asked, '/v1/admin/members', joinBody);
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<{ nodeId: number; groups: GroupReport[]; members: { nodeId: number }[] }>();
    expect(body.nodeId).toBe(4);
    expect(body.groups.map((report) => ({ group: report.group, state: report.state, steps: report.steps }))).toEqual(
      kvGroups.map((group) => ({ group, state: 'voter', steps: ['add_learner', 'add_voter'] })),
    );
    for (const report of body.groups) expect(nodeIds).toContain(report.leader);
    expect(body.members.map((member) => member.nodeId)).toEqual([1, 2, 3, 4]);
    expect(asked.directory.list().find((member) => member.nodeId === four)).toEqual(memberAddresses(four));

    // Every replica, the new one included, applies the new configuration.
    for (const node of running.nodes.values()) {
      for (const group of kvGroups) {
        await waitFor(`node ${node.id} to see 4 voters in group ${group}`, () =>
          confOf(node, group)?.voters.length === 4 ? true : undefined,
        );
      }
    }
    expect(confOf(joiner, group3)).toEqual(expect.objectContaining({ voters: [1, 2, 3, 4], learners: [] }));

    // The new node serves: a write through it (forwarded to the leader), then a linearizable read.
    const key = keyIn(group3, 'joined');
    const write = await joiner.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'hello' });
    expect(write.statusCode, write.body).toBe(200);
    const read = await joiner.app.inject({ method: 'GET', url: `/v1/kv/${key}` });
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe('hello');

    const again = await post(running.node(asNodeId(3)), '/v1/admin/members', joinBody);
    expect(again.statusCode, again.body).toBe(200);
    expect(
      again.json<{ groups: GroupReport[] }>().groups.map((report) => ({ state: report.state, steps: report.steps })),
    ).toEqual(kvGroups.map(() => ({ state: 'voter', steps: [] })));
  });

  it('an existing member at its own addresses is an idempotent success', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const response = await post(running.node(asNodeId(1)), '/v1/admin/members', {
      nodeId: 2,
      raft: '10.0.0.2:9000',
      http: '10.0.0.2:8000',
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(
      response
        .json<{ groups: GroupReport[] }>()
        .groups.every((report) => report.state === 'voter' && report.steps.length === 0),
    ).toBe(true);
  });

  it('answers 503 MEMBERSHIP_PENDING while the node cannot catch up; the retry continues from the learners', async () => {
    const running = (cluster = startCluster({ forwarding: true, requestTimeoutMs: 600 }));
    await allLeaders(running);
    // Node 4 is not running: it becomes a learner everywhere but acknowledges nothing.
    const pending = await post(running.node(asNodeId(2)), '/v1/admin/members', joinBody);
    expect(pending.statusCode, pending.body).toBe(503);
    expect(errorCode(pending)).toBe('DRAM_ERR_MEMBERSHIP_PENDING');
    const details = pending.json<{ details: { nodeId: number; groups: GroupReport[] } }>().details;
    expect(details.nodeId).toBe(4);
    for (const report of details.groups) {
      expect({ group: report.group, state: report.state, steps: report.steps }).toEqual({
        group: report.group,
        state: 'learner',
        steps: ['add_learner'],
      });
      expect(report.pending).toMatch(/acknowledged nothing/);
    }
    for (const group of kvGroups) expect(confOf(running.node(asNodeId(1)), group)).toMatchObject({ voters: nodeIds });

    running.addEmptyNode(four);
    const done = await post(running.node(asNodeId(3)), '/v1/admin/members', joinBody);
    expect(done.statusCode, done.body).toBe(200);
    expect(
      done.json<{ groups: GroupReport[] }>().groups.map((report) => ({ state: report.state, steps: report.steps })),
    ).toEqual(kvGroups.map(() => ({ state: 'voter', steps: ['add_voter'] })));
  });

  it('the per-group route asked of a follower is forwarded to the leader, which runs the steps', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    running.addEmptyNode(four);
    const follower = [...running.nodes.values()].find((node) => node.id !== leader.id && node.id !== four);
    if (follower === undefined) throw new Error('no follower');
    const before = running.forwards.get(follower.id) ?? 0;
    const response = await post(follower, `/v1/admin/groups/${group3}/members`, joinBody);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      group: group3,
      leader: leader.id,
      state: 'voter',
      steps: ['add_learner', 'add_voter'],
    });
    expect(running.forwards.get(follower.id)).toBe(before + 1);
    // Both the follower asked and the leader that ran the steps recorded the new node's addresses.
    for (const node of [follower, leader]) expect(node.directory.list().map((member) => member.nodeId)).toContain(four);
    const other = kvGroups.find((group) => group !== group3) ?? group3;
    expect(confOf(leader, other)?.voters).toEqual(nodeIds);
  });
});
