// A real three-node cluster on 127.0.0.1, one process per node: the cluster forms; writes to any
// node are readable linearizably from every node; kill -9 of a group's leader, writes resume on a
// new leader, the killed node restarts from its data dir and catches up with nothing lost;
// leadership transfer through the HTTP API and the CLI, for the meta group too; each leader change
// shows in /v1/status with its cause, and an automatic failover in dram_failovers_total.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DramClient } from '../../src/client/client.ts';
import { eventually, formed, groupStatus, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = processCluster(3);
  // Formed: every node reports a leader for every group.
  await formed(cluster, 4);
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

async function put(id: number, key: string, value: string): Promise<number> {
  return eventually(async () => {
    const answer = await request(`${cluster.url(id)}/v1/kv/${key}`, 'PUT', value);
    return answer.status === 200 ? Number(answer.headers.get('x-dram-index')) : undefined;
  }, 100);
}

interface LeaderChange {
  readonly from: number;
  readonly to: number;
  readonly term: number;
  readonly cause: string;
}

/** One group's leader and last leader change as node `id` sees them (the meta group included). */
async function leadership(id: number, group: number): Promise<{ leader: number; change: LeaderChange | null }> {
  const answer = await request(`${cluster.url(id)}/v1/status`);
  const body = JSON.parse(answer.text) as {
    groups: { group: number; leader: number; lastLeaderChange: LeaderChange | null }[];
  };
  const status = body.groups.find((g) => g.group === group);
  return { leader: status?.leader ?? 0, change: status?.lastLeaderChange ?? null };
}

async function leaderOfKey(key: string): Promise<{ group: number; leader: number }> {
  const answer = await request(`${cluster.url(1)}/v1/kv/${key}?consistency=stale`);
  return { group: Number(answer.headers.get('x-dram-shard')), leader: Number(answer.headers.get('x-dram-leader')) };
}

describe('three dram processes', () => {
  it('writes to any node are readable linearizably from every node', async () => {
    for (const id of cluster.ids) await put(id, `key-${id}`, `value-${id}`);
    for (const reader of cluster.ids) {
      for (const writer of cluster.ids) {
        const answer = await request(`${cluster.url(reader)}/v1/kv/key-${writer}`);
        expect(answer.status).toBe(200);
        expect(answer.text).toBe(`value-${writer}`);
      }
    }
  });

  it('the binary client protocol writes and reads through the leaders, and sees HTTP writes', async () => {
    const client = DramClient.connect({ nodes: cluster.ids.map((id) => ({ id, ...cluster.clientAddress(id) })) });
    try {
      const written = await eventually(async () => client.put('binary-key', new TextEncoder().encode('over tcp')));
      expect(written.index).toBeGreaterThan(0);
      const read = await client.get('binary-key');
      expect(new TextDecoder().decode(read?.value)).toBe('over tcp');
      const viaHttp = await client.get('key-2');
      expect(new TextDecoder().decode(viaHttp?.value)).toBe('value-2');
      expect((await request(`${cluster.url(3)}/v1/kv/binary-key`)).text).toBe('over tcp');
    } finally {
      client.close();
    }
  });

  it('survives kill -9 of a leader and the restarted node catches up with nothing lost', async () => {
    await put(1, 'durable', 'before');
    const { group, leader } = await leaderOfKey('durable');
    expect(leader).toBeGreaterThan(0);
    await cluster.kill(leader, 'SIGKILL');
    const survivor = cluster.ids.find((id) => id !== leader) ?? 1;
    await put(survivor, 'durable', 'after');
    const moved = await eventually(async () => {
      const groups = await groupStatus(cluster.url(survivor));
      const now = groups.find((g) => g.group === group)?.leader ?? 0;
      return now !== 0 && now !== leader ? now : undefined;
    });
    expect(moved).not.toBe(leader);
    // The new leader saw the old one and won an election no transfer started: an automatic failover.
    const change = await eventually(async () => {
      const { change } = await leadership(moved, group);
      return change?.to === moved ? change : undefined;
    });
    expect(change).toMatchObject({ from: leader, to: moved, cause: 'automatic' });
    const metrics = (await request(`${cluster.url(moved)}/metrics`)).text;
    expect(metrics).toMatch(new RegExp(`^dram_failovers_total\\{group="${group}"\\} [1-9]`, 'm'));
    cluster.start(leader, { init: false }); // rejoins from its data dir, no re-init
    const caughtUp = await eventually(async () => {
      const answer = await request(`${cluster.url(leader)}/v1/kv/durable?consistency=stale`);
      return answer.status === 200 && answer.text === 'after' ? answer.text : undefined;
    }, 150);
    expect(caughtUp).toBe('after');
    // Nothing lost anywhere (groups the restarted node led may still be electing: retry).
    for (const id of cluster.ids) {
      const text = await eventually(async () => {
        const answer = await request(`${cluster.url(id)}/v1/kv/key-1`);
        return answer.status === 200 ? answer.text : undefined;
      });
      expect(text).toBe('value-1');
    }
  }, 60_000);

  it('moves a leader through the admin API and through the CLI', async () => {
    const { group, leader } = await leaderOfKey('key-1');
    const target = cluster.ids.find((id) => id !== leader) ?? 1;
    const status = await eventually(async () => {
      const answer = await request(
        `${cluster.url(target)}/v1/admin/groups/${group}/transfer-leadership`,
        'POST',
        JSON.stringify({ to: target }),
        'application/json',
      );
      return answer.status === 503 ? undefined : answer.status; // no leader yet: retry
    });
    expect([200, 202]).toContain(status);
    await eventually(async () =>
      (await groupStatus(cluster.url(target))).find((g) => g.group === group)?.leader === target ? true : undefined,
    );
    const next = cluster.ids.find((id) => id !== target) ?? 1;
    await promisify(execFile)(process.execPath, [
      bin,
      'failover',
      String(group),
      '--to',
      String(next),
      '--url',
      cluster.url(next),
    ]);
    await eventually(async () =>
      (await groupStatus(cluster.url(next))).find((g) => g.group === group)?.leader === next ? true : undefined,
    );
    expect(
      await eventually(async () => {
        const answer = await request(`${cluster.url(next)}/v1/kv/key-1`);
        return answer.status === 200 ? answer.text : undefined;
      }),
    ).toBe('value-1');
  }, 60_000);

  it('moves the meta group (group 0) leader with dram failover, shown in dram status as a transfer', async () => {
    // The node that leads the meta group by its own account (a node's view of others may lag).
    const from = await eventually(async () => {
      for (const id of cluster.ids) if ((await leadership(id, 0)).leader === id) return id;
      return undefined;
    });
    const to = cluster.ids.find((id) => id !== from) ?? 1;
    // Asked of a node that does not lead the meta group: forwarded to its leader.
    const asked = cluster.ids.find((id) => id !== from && id !== to) ?? 1;
    await promisify(execFile)(process.execPath, [
      bin,
      'failover',
      '0',
      '--to',
      String(to),
      '--url',
      cluster.url(asked),
    ]);
    const change = await eventually(async () => {
      const { leader, change } = await leadership(to, 0);
      return leader === to && change?.to === to ? change : undefined;
    });
    expect(change).toMatchObject({ from, to, cause: 'transfer' });
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'status', '--url', cluster.url(to)]);
    expect(stdout).toContain(`${from}->${to} transfer term ${change.term}`);
  }, 60_000);
});
