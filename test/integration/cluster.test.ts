// A real three-node cluster on 127.0.0.1, one process per node: the cluster forms; writes to any
// node are readable linearizably from every node; kill -9 of a group's leader, writes resume on a
// new leader, the killed node restarts from its data dir and catches up with nothing lost;
// leadership transfer through the HTTP API and the CLI.

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
});
