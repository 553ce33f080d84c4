// Removing a node through the API, against a live in-process cluster (three bootstrapped nodes,
// four kv groups) through inject(): bad ids are 400 and change nothing; an unknown node is an
// idempotent success; a follower of every group is removed from every group, asked through any
// node (the asked node forgets it; the answer warns that two voters tolerate no failure) and a
// retry is a no-op; a node that leads every group is removed too (it hands leadership over and
// the request follows the new leaders), and the rest keep writing; the per-group route on a
// follower is forwarded to the leader; the last voter of a group is refused (409) and nothing
// changes. Every wait is bounded (cluster.ts waitFor) and fails with a message.

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

const group3: GroupId = kvGroups[2] ?? asGroupId(3);

interface GroupReport {
  group: number;
  leader: number;
  state: string;
  steps: string[];
  voters?: number[];
  pending?: string;
}

interface Removed {
  nodeId: number;
  groups: GroupReport[];
  warnings: string[];
  members: { nodeId: number }[];
}

function remove(node: ApiNode, url: string): Promise<LightMyRequestResponse> {
  return node.app.inject({ method: 'DELETE', url });
}

function votersOf(node: ApiNode, group: GroupId): readonly NodeId[] | undefined {
  return node.host.groupStatus(group)?.status.confState.voters;
}

async function allLeaders(running: ApiCluster): Promise<void> {
  for (const group of kvGroups) await agreedLeader(running, group);
}

/** Moves the leadership of every group to `target` (bounded waits). */
async function leadEverything(running: ApiCluster, target: NodeId): Promise<void> {
  for (const group of kvGroups) {
    await waitFor(`node ${target} to lead group ${group}`, () => {
      const leader = [...running.nodes.values()].find((node) => node.host.groupStatus(group)?.status.role === 'leader');
      if (leader === undefined) return undefined;
      if (leader.id === target) return true;
      leader.host.transferLeadership(group, target);
      return undefined;
    });
  }
}

/** Moves the leadership of every group away from `avoided`. */
async function leadNothing(running: ApiCluster, avoided: NodeId): Promise<void> {
  const other = nodeIds.find((id) => id !== avoided) ?? asNodeId(1);
  for (const group of kvGroups) {
    await waitFor(`node ${avoided} to lead no group ${group}`, () => {
      const leader = [...running.nodes.values()].find((node) => node.host.groupStatus(group)?.status.role === 'leader');
      if (leader === undefined) return undefined;
      if (leader.id !== avoided) return true;
      leader.host.transferLeadership(group, other);
      return undefined;
    });
  }
}

/** Every remaining node has applied `expected` as the voters of every group. */
async function votersEverywhere(
  running: ApiCluster,
  nodes: readonly NodeId[],
  expected: readonly number[],
): Promise<void> {
  for (const id of nodes) {
    for (const group of kvGroups)
      await waitFor(`node ${id} to apply voters ${expected.join(',')} in group ${group}`, () =>
        JSON.stringify(votersOf(running.node(id), group)) === JSON.stringify(expected) ? true : undefined,
      );
  }
}

/** A write through `node` succeeds (retried while a leader is being elected, at most `triesMax` times), then reads back. */
async function writeThrough(node: ApiNode, group: GroupId, value: string, triesMax = 100): Promise<void> {
  const key = keyIn(group, value);
  for (let attempt = 0; attempt < triesMax; attempt++) {
    const response = await node.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: value });
    if (response.statusCode === 200) break;
    if (attempt === triesMax - 1)
      throw new Error(
        `no write through node ${node.id} to group ${group} after ${triesMax} tries: ${response.statusCode} ${response.body}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const read = await node.app.inject({ method: 'GET', url: `/v1/kv/${key}` });
  expect({ key, status: read.statusCode, body: read.body }).toEqual({ key, status: 200, body: value });
}

describe('removing a node', () => {
  it('answers bad ids with 400 and an unknown group with 404, and changes nothing', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    for (const node of running.nodes.values()) {
      for (const id of ['0', '-1', '1.5', 'abc', '99999999999999999999']) {
        for (const url of [`/v1/admin/members/${id}`, `/v1/admin/groups/${group3}/members/${id}`]) {
          const response = await remove(node, url);
          expect({ url, status: response.statusCode, code: errorCode(response) }).toEqual({
            url,
            status: 400,
            code: 'DRAM_ERR_BAD_REQUEST',
          });
        }
      }
      for (const [url, status, code] of [
        ['/v1/admin/groups/99/members/2', 404, 'DRAM_ERR_UNKNOWN_GROUP'],
        ['/v1/admin/groups/abc/members/2', 400, 'DRAM_ERR_BAD_REQUEST'],
      ] as const) {
        const response = await remove(node, url);
        expect({ url, status: response.statusCode, code: errorCode(response) }).toEqual({ url, status, code });
      }
    }
    for (const node of running.nodes.values()) {
      expect(node.directory.list()).toEqual(nodeIds.map(memberAddresses));
      for (const group of kvGroups) expect(votersOf(node, group)).toEqual(nodeIds);
    }
  });

  it('removing a node that is in no group is a success that changes no group', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const response = await remove(running.node(asNodeId(2)), '/v1/admin/members/9');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<Removed>();
    expect(
      body.groups.map((report) => ({
        group: report.group,
        state: report.state,
        steps: report.steps,
        voters: report.voters,
      })),
    ).toEqual(kvGroups.map((group) => ({ group, state: 'absent', steps: [], voters: nodeIds })));
    expect(body.warnings).toEqual([]);
    expect(body.members.map((member) => member.nodeId)).toEqual(nodeIds);
  });

  it('removes a follower of every group, asked through another node; the asked node forgets it; a retry is a no-op', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const three = asNodeId(3);
    await leadNothing(running, three);
    const asked = running.node(asNodeId(1));
    const response = await remove(asked, '/v1/admin/members/3');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<Removed>();
    expect(
      body.groups.map((report) => ({
        group: report.group,
        state: report.state,
        steps: report.steps,
        voters: report.voters,
      })),
    ).toEqual(kvGroups.map((group) => ({ group, state: 'absent', steps: ['remove_node'], voters: [1, 2] })));
    // Two voters left: the answer says the groups tolerate no failure any more.
    expect(body.warnings).toHaveLength(kvGroups.length);
    expect(body.warnings[0]).toMatch(/2 voters left \(1, 2\): it tolerates no failure/);
    expect(body.members.map((member) => member.nodeId)).toEqual([1, 2]);
    expect(asked.directory.list().map((member) => member.nodeId)).toEqual([1, 2]);
    await votersEverywhere(running, [asNodeId(1), asNodeId(2)], [1, 2]);
    for (const group of kvGroups) await writeThrough(running.node(asNodeId(2)), group, `after-remove-${group}`);

    const again = await remove(running.node(asNodeId(2)), '/v1/admin/members/3');
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Removed>().groups.map((report) => ({ state: report.state, steps: report.steps }))).toEqual(
      kvGroups.map(() => ({ state: 'absent', steps: [] })),
    );
  });

  it('removes a node that leads every group: it hands over, the request follows the new leaders, writes go on', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    const one = asNodeId(1);
    await leadEverything(running, one);
    const response = await remove(running.node(asNodeId(2)), '/v1/admin/members/1');
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json<Removed>();
    for (const report of body.groups)
      expect({ group: report.group, state: report.state, steps: report.steps, voters: report.voters }).toEqual({
        group: report.group,
        state: 'absent',
        steps: ['remove_node'],
        voters: [2, 3],
      });
    await votersEverywhere(running, [asNodeId(2), asNodeId(3)], [2, 3]);
    // The removed node applied its own removal too: it is in no configuration it knows.
    for (const group of kvGroups) expect(votersOf(running.node(one), group)).toEqual([2, 3]);
    for (const group of kvGroups) {
      const leader = await waitFor(`a leader of group ${group} among nodes 2 and 3`, () =>
        [asNodeId(2), asNodeId(3)].find((id) => running.node(id).host.groupStatus(group)?.status.role === 'leader'),
      );
      expect(leader).not.toBe(one);
      await writeThrough(running.node(asNodeId(3)), group, `after-leader-removed-${group}`);
    }
  });

  it('the per-group route asked of a follower is forwarded to the leader, which removes the node from that group only', async () => {
    const running = (cluster = startCluster());
    const leader = await agreedLeader(running, group3);
    const follower = [...running.nodes.values()].find((node) => node.id !== leader.id);
    if (follower === undefined) throw new Error('no follower');
    const removed = nodeIds.find((id) => id !== leader.id && id !== follower.id) ?? asNodeId(3);
    const before = running.forwards.get(follower.id) ?? 0;
    const response = await remove(follower, `/v1/admin/groups/${group3}/members/${removed}`);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      group: group3,
      leader: leader.id,
      state: 'absent',
      steps: ['remove_node'],
      voters: nodeIds.filter((id) => id !== removed),
    });
    expect(running.forwards.get(follower.id)).toBe(before + 1);
    const other = kvGroups.find((group) => group !== group3) ?? group3;
    expect(votersOf(leader, other)).toEqual(nodeIds);
    // Still a member of the other groups: nobody forgets it.
    for (const node of running.nodes.values())
      expect(node.directory.list().map((member) => member.nodeId)).toContain(removed);
  });

  it('refuses to remove the last voter of a group (409) and changes nothing', async () => {
    const running = (cluster = startCluster());
    await allLeaders(running);
    await leadEverything(running, asNodeId(1));
    for (const id of [3, 2]) {
      const response = await remove(running.node(asNodeId(1)), `/v1/admin/members/${id}`);
      expect(response.statusCode, response.body).toBe(200);
    }
    const one = running.node(asNodeId(1));
    for (const group of kvGroups) expect(votersOf(one, group)).toEqual([1]);
    const refused = await remove(one, '/v1/admin/members/1');
    expect({ status: refused.statusCode, code: errorCode(refused) }).toEqual({
      status: 409,
      code: 'DRAM_ERR_LAST_VOTER',
    });
    const perGroup = await remove(one, `/v1/admin/groups/${group3}/members/1`);
    expect({ status: perGroup.statusCode, code: errorCode(perGroup) }).toEqual({
      status: 409,
      code: 'DRAM_ERR_LAST_VOTER',
    });
    for (const group of kvGroups) expect(votersOf(one, group)).toEqual([1]);
    expect(one.directory.list().map((member) => member.nodeId)).toEqual([1]);
    await writeThrough(one, group3, 'single-voter');
  });
});
