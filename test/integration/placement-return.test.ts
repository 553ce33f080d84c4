// Placement on five real processes with --kv-groups 8 (docs/placement.md), the cases jepsen-like's
// membership nemesis found: a node killed past the grace period (its groups re-created elsewhere)
// and restarted serves every key, forwarding those of the groups that moved away instead of
// answering 503 DRAM_ERR_NO_LEADER from the replicas it kept (it stays in the meta group while it is
// registered, so its meta replica catches up and its hosting loop drops those replicas). Every wait
// is a bounded poll.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  metaLeaderSeenBy,
  processCluster,
  request,
  votersByGroup,
  type ProcessCluster,
} from './cluster-process.ts';

const groupCount = 8;
const factor = 3;
const args = ['--kv-groups', String(groupCount)];
let cluster: ProcessCluster;

async function moves(id: number): Promise<number> {
  const answer = JSON.parse((await request(`${cluster.url(id)}/v1/placement`)).text) as { moves: unknown[] };
  return answer.moves.length;
}

beforeAll(async () => {
  const clusterId = `placement-return-it-${process.pid}-${Date.now()}`;
  cluster = processCluster(5, { args: [...args, '--cluster-id', clusterId] });
  await eventually(
    async () => ((await votersByGroup(cluster, cluster.ids, groupCount)) === undefined ? undefined : true),
    300,
  );
  const answer = await request(
    `${cluster.url(1)}/v1/placement/settings`,
    'PUT',
    JSON.stringify({ nodeGoneGraceMs: 2000 }),
    'application/json',
  );
  expect(answer.status, answer.text).toBe(200);
}, 120_000);

afterAll(async () => {
  await cluster.stopAll();
});

describe('a node back after its groups moved away', () => {
  it('serves every key, forwarding those of groups it no longer hosts, instead of 503 NO_LEADER', async () => {
    const keys = Array.from({ length: 16 }, (_, k) => `back-${k}`);
    for (const key of keys) {
      const answer = await eventually(async () => {
        const put = await request(`${cluster.url(1)}/v1/kv/${key}`, 'PUT', `value-${key}`);
        return put.status === 200 ? put : undefined;
      }, 50);
      expect(answer.status).toBe(200);
    }
    const leader = await eventually(() => metaLeaderSeenBy(cluster, 1), 100);
    const victim = cluster.ids.find((id) => id !== leader && id !== 1) ?? 0;
    const before = await eventually(() => votersByGroup(cluster, cluster.ids, groupCount), 100);
    const held = [...before].filter(([, members]) => members.includes(victim)).map(([group]) => group);
    expect(held.length).toBeGreaterThan(0);
    await cluster.kill(victim);
    const live = cluster.ids.filter((id) => id !== victim);
    await eventually(async () => {
      const voters = await votersByGroup(cluster, live, groupCount);
      if (voters === undefined) return undefined;
      const settled = [...voters.values()].every((members) => members.length === factor && !members.includes(victim));
      return settled && (await moves(live[0] ?? 1)) === 0 ? true : undefined;
    }, 900);

    cluster.start(victim, { init: false, args });
    await eventually(async () =>
      (await request(`${cluster.url(victim)}/v1/status`)).status === 200 ? true : undefined,
    );
    // The keys of every group, those it held included: each is served through the returning node.
    for (const key of keys) {
      const read = await eventually(async () => {
        const answer = await request(`${cluster.url(victim)}/v1/kv/${key}`);
        return answer.status === 503 ? undefined : answer;
      }, 100);
      expect(read.status, `${key}: ${read.text}`).toBe(200);
      expect(read.text).toBe(`value-${key}`);
    }
  }, 240_000);
});

/** Schedules an agent action through node 1 and waits (bounded) until it is DONE or FAILED. */
async function runAction(kind: string, args: unknown): Promise<{ phase: string; payload: unknown; error: unknown }> {
  const scheduled = await request(
    `${cluster.url(1)}/v1/actions`,
    'POST',
    JSON.stringify({ kind, args }),
    'application/json',
  );
  expect(scheduled.status, scheduled.text).toBeLessThan(300);
  const id = (JSON.parse(scheduled.text) as { id: string }).id;
  return eventually(async () => {
    const answer = JSON.parse((await request(`${cluster.url(1)}/v1/actions/${id}`)).text) as {
      state: { phase: string; payload: unknown; error: unknown };
    };
    return answer.state.phase === 'DONE' || answer.state.phase === 'FAILED' ? answer.state : undefined;
  }, 900);
}

describe('a member replaced: a fresh node added, a member removed', () => {
  it('adds the fresh node with cluster.add, removes the member with cluster.remove, and the removed node stops on SIGTERM by the graceful path', async () => {
    const fresh = 6;
    cluster.start(fresh, { init: false });
    await eventually(
      async () => ((await request(`${cluster.url(fresh)}/v1/status`)).status === 200 ? true : undefined),
      300,
    );
    const added = await runAction('agent.replicante.io/cluster.add', { node: cluster.url(fresh) });
    expect(added.phase, JSON.stringify(added)).toBe('DONE');

    const leader = await eventually(() => metaLeaderSeenBy(cluster, 1), 100);
    const up = [...cluster.ids, fresh];
    const voters = await eventually(() => votersByGroup(cluster, up, groupCount), 300);
    const member = cluster.ids.find(
      (id) => id !== leader && id !== 1 && [...voters.values()].some((m) => m.includes(id)),
    );
    expect(member).toBeDefined();
    const leaving = member ?? 0;
    const removed = await runAction('agent.replicante.io/cluster.remove', { node: leaving });
    expect(removed.phase, JSON.stringify(removed)).toBe('DONE');

    // Out of every group and forgotten by every member (its handshakes refused), it is stopped.
    cluster.signal(leaving, 'SIGTERM');
    expect(await cluster.exited(leaving)).toBe(0);
    const log = cluster.logs(leaving);
    expect(log).toContain('"msg":"stopped"');
    expect(log).not.toContain('exiting anyway');
  }, 300_000);
});
