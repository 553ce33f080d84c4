// Placement on five real processes with --kv-groups 8 (docs/placement.md): every group has three
// replicas spread over the five nodes (each node hosts exactly the groups placed on it, and
// info/shards lists only those); a key is served from any node, hosting its group or not. Then,
// with the grace period set small through the meta model, under a small bounded write load: a
// restart shorter than the grace moves nothing (checked in /v1/placement), and a node killed for
// longer has its groups re-created elsewhere, every group back at three voters on live nodes, with
// every acknowledged write readable afterwards, key by key; cluster.remove drains a live node. Last,
// a sixth node started with --join is only registered, and placement hands it groups by moves (it
// is never made a voter of every group). Every wait is a bounded poll.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DramClient } from '../../src/client/client.ts';
import {
  eventually,
  groupStatus,
  metaLeaderSeenBy,
  processCluster,
  request,
  votersByGroup as votersOf,
  type ProcessCluster,
} from './cluster-process.ts';

const groupCount = 8;
const factor = 3;
let cluster: ProcessCluster;

interface PlacementAnswer {
  factor: number | null;
  settings: { nodeGoneGraceMs: number; movesPerNodeMax: number };
  groups: { group: number; desired: number; replicas: number[]; state: string | null }[];
  moves: { group: number; add: number | null; remove: number | null; reason: string }[];
  history: { group: number; add: number | null; remove: number | null; reason: string; outcome: string }[];
}

async function placement(id: number): Promise<PlacementAnswer> {
  const answer = await request(`${cluster.url(id)}/v1/placement`);
  if (answer.status !== 200) throw new Error(`GET /v1/placement on node ${id}: ${answer.status} ${answer.text}`);
  return JSON.parse(answer.text) as PlacementAnswer;
}

/** Every kv group's voters as its leader reports them (undefined until every group has a leader among `ids`). */
function votersByGroup(ids: readonly number[]): Promise<Map<number, number[]> | undefined> {
  return votersOf(cluster, ids, groupCount);
}

/**
 * The PUT's outcome: 'ok', or the status and body ('no answer' when the request failed). A definite
 * refusal while leadership moves (503 NOT_LEADER / NO_LEADER: nothing was written) is retried, as
 * a client does, at most `retriesMax` times.
 */
async function put(id: number, key: string, value: string, retriesMax = 20): Promise<string> {
  let outcome = '';
  for (let attempt = 0; attempt <= retriesMax; attempt++) {
    try {
      const answer = await request(`${cluster.url(id)}/v1/kv/${key}`, 'PUT', value);
      if (answer.status === 200) return 'ok';
      outcome = `${answer.status} ${answer.text}`;
      if (!/DRAM_ERR_(NOT|NO)_LEADER/u.test(answer.text)) return outcome;
    } catch (error) {
      return `no answer: ${String(error)}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return outcome;
}

beforeAll(async () => {
  // A cluster id of its own: a process of another test's cluster that happens to get a port next
  // to ours is refused at the handshake instead of joining our groups.
  const clusterId = `placement-it-${process.pid}-${Date.now()}`;
  cluster = processCluster(5, { args: ['--kv-groups', String(groupCount), '--cluster-id', clusterId] });
  await eventually(async () => ((await votersByGroup(cluster.ids)) === undefined ? undefined : true), 300);
}, 120_000);

afterAll(async () => {
  await cluster.stopAll();
});

describe('groups on subsets of nodes', () => {
  it('records every group and the kv factor in the meta model (GET /v1/placement)', async () => {
    const answer = await eventually(async () => {
      const seen = await placement(2);
      return seen.groups.length === groupCount && seen.factor === factor ? seen : undefined;
    }, 100);
    for (const group of answer.groups) expect(group.replicas).toHaveLength(factor);
  });

  it('places 8 groups x 3 replicas over five nodes, each node hosting only its own', async () => {
    const voters = await eventually(() => votersByGroup(cluster.ids), 300);
    const perNode = new Map<number, number>();
    for (const members of voters.values()) {
      expect(members).toHaveLength(factor);
      for (const node of members) perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    expect([...perNode.keys()].sort()).toEqual([1, 2, 3, 4, 5]);
    for (const id of cluster.ids) {
      const hosted = (await groupStatus(cluster.url(id))).map((g) => g.group).sort((a, b) => a - b);
      const placed = [...voters].filter(([, members]) => members.includes(id)).map(([group]) => group);
      expect(hosted).toEqual(placed.sort((a, b) => a - b));
      const shards = JSON.parse((await request(`${cluster.url(id)}/api/unstable/info/shards`)).text) as {
        shards: { id: string }[];
      };
      expect(shards.shards.map((shard) => shard.id).filter((shard) => shard !== 'meta' && shard !== '0')).toHaveLength(
        hosted.length,
      );
    }
  });

  it('serves every key from every node, hosting its group or not', async () => {
    for (let k = 0; k < 16; k++) expect(await put((k % 5) + 1, `spread-${k}`, `value-${k}`)).toBe('ok');
    for (const id of cluster.ids)
      for (let k = 0; k < 16; k++) {
        // A definite refusal while leadership moves (a balancing transfer) is retried, as a client does.
        const answer = await eventually(async () => {
          const read = await request(`${cluster.url(id)}/v1/kv/spread-${k}`);
          return /DRAM_ERR_(NOT|NO)_LEADER/u.test(read.text) ? undefined : read;
        }, 50);
        expect(answer.status, `node ${id} key spread-${k}: ${answer.text}`).toBe(200);
        expect(answer.text).toBe(`value-${k}`);
      }
  });

  it('serves every key from every node over the binary protocol too, hosting its group or not', async () => {
    for (const id of cluster.ids) {
      // A client that knows this one node only: every key, of any group, goes through it.
      const client = DramClient.connect({ nodes: [{ id, ...cluster.clientAddress(id) }], route: 'any' });
      try {
        for (let k = 0; k < 8; k++) {
          const key = `binary-${id}-${k}`;
          await client.put(key, new TextEncoder().encode(`value-${k}`));
          const read = await client.get(key);
          expect(read === undefined ? undefined : new TextDecoder().decode(read.value), `node ${id} ${key}`).toBe(
            `value-${k}`,
          );
        }
      } finally {
        client.close();
      }
    }
  }, 60_000);
});

/** The meta leader as node `id` sees it. */
function metaLeader(id: number): Promise<number | undefined> {
  return metaLeaderSeenBy(cluster, id);
}

async function setGrace(nodeGoneGraceMs: number): Promise<void> {
  const answer = await request(
    `${cluster.url(1)}/v1/placement/settings`,
    'PUT',
    JSON.stringify({ nodeGoneGraceMs }),
    'application/json',
  );
  expect(answer.status, answer.text).toBe(200);
}

describe('a node gone', () => {
  it('moves nothing when a node restarts within the grace period', async () => {
    await setGrace(60_000);
    const leader = await eventually(() => metaLeader(1), 100);
    const victim = cluster.ids.find((id) => id !== leader) ?? 0;
    await cluster.kill(victim);
    cluster.start(victim, { init: false, args: ['--kv-groups', String(groupCount)] });
    await eventually(async () => ((await groupStatus(cluster.url(victim))).length > 0 ? true : undefined), 300);
    // A few planning rounds with every node back: still no move, nothing in the history.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const seen = await placement(1);
    expect(seen.moves).toEqual([]);
    expect(seen.history).toEqual([]);
    expect(seen.groups.every((group) => group.replicas.length === factor)).toBe(true);
  }, 60_000);

  it('re-creates the groups of a node gone past the grace period elsewhere, losing no acknowledged write', async () => {
    await setGrace(2000);
    const leader = await eventually(() => metaLeader(1), 100);
    const victim = cluster.ids.find((id) => id !== leader && id !== 1) ?? 0;
    const before = await eventually(() => votersByGroup(cluster.ids), 100);
    const lost = [...before].filter(([, members]) => members.includes(victim)).map(([group]) => group);
    expect(lost.length).toBeGreaterThan(0);
    await cluster.kill(victim);
    const live = cluster.ids.filter((id) => id !== victim);

    // A small bounded write load through the live nodes while the groups move.
    const acknowledged = new Map<string, string>();
    const load = { writing: true };
    const loading = (async () => {
      for (let k = 0; k < 400 && load.writing; k++) {
        const key = `load-${k}`;
        const value = `v${k}`;
        if ((await put(live[k % live.length] ?? 1, key, value)) === 'ok') acknowledged.set(key, value);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const after = await eventually(async () => {
      const voters = await votersByGroup(live);
      if (voters === undefined) return undefined;
      const settled = [...voters.values()].every((members) => members.length === factor && !members.includes(victim));
      return settled ? voters : undefined;
    }, 900);
    load.writing = false;
    await loading;
    for (const [group, members] of after) {
      expect(members, `group ${group}`).toHaveLength(factor);
      expect(members).not.toContain(victim);
    }
    const seen = await eventually(async () => {
      const answer = await placement(live[0] ?? 1);
      return answer.moves.length === 0 ? answer : undefined;
    }, 100);
    const moved = seen.history.filter((move) => move.remove === victim && move.outcome === 'finished');
    expect(moved.map((move) => move.group).sort((a, b) => a - b)).toEqual(lost.sort((a, b) => a - b));
    expect(moved.every((move) => move.reason.startsWith(`node ${victim} gone`))).toBe(true);
    expect(acknowledged.size).toBeGreaterThan(0);
    for (const [key, value] of acknowledged) {
      const answer = await request(`${cluster.url(live[0] ?? 1)}/v1/kv/${key}`);
      expect(answer.status, key).toBe(200);
      expect(answer.text, key).toBe(value);
    }
  }, 180_000);

  it('drains a live node that cluster.remove takes out while the cluster has room, and says what moved', async () => {
    const leader = await eventually(() => metaLeader(1), 100);
    const up: number[] = [];
    for (const id of cluster.ids) if (await request(`${cluster.url(id)}/v1/status`).catch(() => undefined)) up.push(id);
    const before = await eventually(() => votersByGroup(up), 100);
    const live = new Set(up);
    const leaving = [...live].find((id) => id !== leader && id !== 1) ?? 0;
    const held = [...before].filter(([, members]) => members.includes(leaving)).map(([group]) => group);
    expect(held.length).toBeGreaterThan(0);
    const scheduled = await request(`${cluster.url(1)}/v1/admin/members/${leaving}?wait=false`, 'DELETE');
    expect(scheduled.status, scheduled.text).toBe(202);
    const id = (JSON.parse(scheduled.text) as { action: string }).action;
    const done = await eventually(async () => {
      const answer = JSON.parse((await request(`${cluster.url(1)}/v1/actions/${id}`)).text) as {
        state: { phase: string; payload: { moved?: { group: number; to: number | null }[] } | null; error: unknown };
      };
      return answer.state.phase === 'DONE' || answer.state.phase === 'FAILED' ? answer.state : undefined;
    }, 900);
    expect(done.phase, `${JSON.stringify(done.error)} ${JSON.stringify(await placement(1))}`).toBe('DONE');
    const moved = (done.payload?.moved ?? []).map((move) => move.group).sort((a, b) => a - b);
    for (const group of held) expect(moved).toContain(group);
    const remaining = [...live].filter((id) => id !== leaving);
    const after = await eventually(async () => {
      const voters = await votersByGroup(remaining);
      return voters !== undefined && [...voters.values()].every((m) => m.length === factor && !m.includes(leaving))
        ? voters
        : undefined;
    }, 300);
    expect(after.size).toBe(groupCount);
  }, 180_000);
});

describe('a node joining a placed cluster', () => {
  it('registers a node started with --join and lets placement hand it groups, never adding it everywhere', async () => {
    const joiner = 6;
    const up: number[] = [];
    for (const id of cluster.ids) if (await request(`${cluster.url(id)}/v1/status`).catch(() => undefined)) up.push(id);
    cluster.start(joiner, { init: false, join: cluster.url(up[0] ?? 1) });
    const members = [...up, joiner];
    // Placement spreads replicas to it (it holds none, the others 8 each) until loads are even.
    const after = await eventually(async () => {
      const voters = await votersByGroup(members);
      if (voters === undefined) return undefined;
      const joined = [...voters.values()].filter((m) => m.includes(joiner)).length;
      const settled = [...voters.values()].every((m) => m.length === factor);
      const seen = await placement(up[0] ?? 1);
      return settled && joined >= 4 && seen.moves.length === 0 ? { voters, seen } : undefined;
    }, 1200);
    const placed = [...after.voters].filter(([, m]) => m.includes(joiner)).map(([group]) => group);
    // Each of its groups came to it through a move of the placement controller (with --join alone
    // it would have been made a voter of every group, and the surplus removed from the others).
    const given = new Set(
      after.seen.history.filter((m) => m.add === joiner && m.outcome === 'finished').map((m) => m.group),
    );
    for (const group of placed) expect(given.has(group), `group ${group}`).toBe(true);
    expect(placed.length).toBeLessThan(groupCount);
    expect(after.seen.history.some((m) => m.add === null && m.reason.includes('voters, factor'))).toBe(false);
    // It hosts exactly the groups placed on it, and serves every key.
    const hosted = (await groupStatus(cluster.url(joiner))).map((g) => g.group).sort((a, b) => a - b);
    expect(hosted).toEqual(placed.sort((a, b) => a - b));
    for (let k = 0; k < 16; k++) {
      const read = await eventually(async () => {
        const answer = await request(`${cluster.url(joiner)}/v1/kv/spread-${k}`);
        return answer.status === 200 ? answer : undefined;
      }, 50);
      expect(read.text).toBe(`value-${k}`);
    }
  }, 240_000);
});
