// Growing a running cluster with real processes on 127.0.0.1: three nodes form and take writes; a
// fourth starts with `--join http://member` and an empty data dir, learns the groups and members
// from the member, becomes a voter of every kv group (seen in /v1/status on every node and in
// `dram status`), serves the old keys linearizably and takes new writes; with four voters the
// cluster keeps writing after kill -9 of an original node (quorum 3); the fourth node restarts
// from its data dir without --join and serves everything written before, with nothing lost.
// Then the dead node 1 is removed with `dram members remove`: every remaining node applies voters
// 2 3 4 in every group and forgets node 1 (its address book), writes go on, `dram status` lists
// it nowhere, and node 1 restarted from its old data dir and flags disrupts nothing: the members
// refuse its handshakes. Every wait is a bounded poll that fails with a message.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, formed, groupStatus, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
const groupCount = 4;
const joiner = 4;
let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = processCluster(3);
  await formed(cluster, groupCount);
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

async function put(id: number, key: string, value: string): Promise<void> {
  await eventually(
    async () => ((await request(`${cluster.url(id)}/v1/kv/${key}`, 'PUT', value)).status === 200 ? true : undefined),
    100,
  );
}

async function get(id: number, key: string): Promise<string> {
  return eventually(async () => {
    const answer = await request(`${cluster.url(id)}/v1/kv/${key}`);
    return answer.status === 200 ? answer.text : undefined;
  }, 100);
}

/** Node `id`'s applied membership has exactly `voters` as the voters of every group. */
async function votersAre(id: number, voters: readonly number[]): Promise<true | undefined> {
  const groups = await groupStatus(cluster.url(id));
  return groups.length === groupCount &&
    groups.every((g) => g.voters.join(' ') === voters.join(' ') && g.learners.length === 0)
    ? true
    : undefined;
}

async function memberIds(id: number): Promise<number[]> {
  const answer = await request(`${cluster.url(id)}/v1/admin/members`);
  return (JSON.parse(answer.text) as { members: { nodeId: number }[] }).members.map((member) => member.nodeId);
}

/** Node `id`'s applied membership has `joiner` as a voter of every group. */
async function votesEverywhere(id: number): Promise<true | undefined> {
  const groups = await groupStatus(cluster.url(id));
  return groups.length === groupCount && groups.every((g) => g.voters.includes(joiner) && g.learners.length === 0)
    ? true
    : undefined;
}

const keys = Array.from({ length: 12 }, (_, k) => `before-${k}`);

describe('a fourth dram process joins a running cluster', () => {
  it('joins with --join, becomes a voter of every group, and serves old and new keys', async () => {
    for (const [k, key] of keys.entries()) await put(cluster.ids[k % 3] ?? 1, key, `value-${k}`);
    cluster.start(joiner, { init: false, join: cluster.url(2) });
    try {
      await eventually(() => votesEverywhere(joiner), 150);
      for (const id of cluster.ids) await eventually(() => votesEverywhere(id), 100);
    } catch (error) {
      throw new Error(
        `node ${joiner} did not become a voter everywhere: ${String(error)}\n--- node ${joiner} log ---\n${cluster.logs(joiner).slice(-4000)}`,
        { cause: error },
      );
    }
    for (const [k, key] of keys.entries()) expect(await get(joiner, key)).toBe(`value-${k}`);
    await put(joiner, 'after-join', 'through node 4');
    for (const id of cluster.ids) expect(await get(id, 'after-join')).toBe('through node 4');
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'status', '--url', cluster.url(1)]);
    expect(stdout).toMatch(/│ 1 2 3 4 +│/u);
    expect(stdout).toContain(`127.0.0.1:${new URL(cluster.url(joiner)).port}`);
  }, 60_000);

  it('keeps writing after kill -9 of an original node, and node 4 restarts from its data dir alone', async () => {
    await cluster.kill(1, 'SIGKILL');
    // Four voters, one down: every group still has its quorum of three.
    for (const id of [2, 3, joiner]) await put(id, `after-kill-${id}`, `written through ${id}`);
    await cluster.kill(joiner, 'SIGKILL');
    cluster.start(joiner, { init: false });
    // With nodes 1 and 4 both down no group has a quorum: these writes need node 4 back.
    await put(2, 'after-restart', 'node 4 is back');
    expect(await get(joiner, 'after-restart')).toBe('node 4 is back');
    for (const [k, key] of keys.entries()) expect(await get(joiner, key)).toBe(`value-${k}`);
    for (const id of [2, 3, joiner]) expect(await get(joiner, `after-kill-${id}`)).toBe(`written through ${id}`);
    expect(await eventually(() => votesEverywhere(joiner))).toBe(true);
    // The restart did not join again: one join in the whole log, both starts included.
    expect(cluster.logs(joiner).split('"msg":"node started"')).toHaveLength(3);
    expect(cluster.logs(joiner).split('joining a running cluster')).toHaveLength(2);
  }, 60_000);

  it('removes the dead node 1 with `dram members remove`; the rest forget it, keep writing, and its restart disrupts nothing', async () => {
    const remaining = [2, 3, joiner];
    const removal = await promisify(execFile)(process.execPath, [
      bin,
      'members',
      'remove',
      '1',
      '--url',
      cluster.url(2),
    ]);
    expect(removal.stdout).toContain('node 1 is out of every group');
    for (const id of remaining) {
      await eventually(() => votersAre(id, remaining), 100);
      await eventually(async () => ((await memberIds(id)).join(' ') === remaining.join(' ') ? true : undefined), 100);
    }
    for (const id of remaining) await put(id, `after-remove-${id}`, `written through ${id}`);
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'status', '--url', cluster.url(3)]);
    expect(stdout).toMatch(/│ 2 3 4 +│/u);
    expect(stdout).not.toContain(`127.0.0.1:${new URL(cluster.url(1)).port}`);

    // Node 1 comes back with its old data dir and --peers: it still thinks it is a voter, but the
    // members refuse its handshakes, so it reaches no one and the cluster does not notice.
    cluster.start(1, { init: false });
    await eventually(
      () => Promise.resolve(cluster.logs(2).includes('node 1 was removed from the cluster') ? true : undefined),
      100,
    );
    for (const id of remaining) await put(id, `after-restart-of-1-${id}`, `written through ${id}`);
    for (const id of remaining) expect(await eventually(() => votersAre(id, remaining))).toBe(true);
  }, 30_000);
});
