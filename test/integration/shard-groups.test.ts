// Database shards as their own Raft groups, on real processes: a real S3 server (s3rver) holding a
// generated three-shard database and a three-node cluster. Each shard's group runs on exactly the
// nodes the catalog placed the shard on, its model holds the shard's manifest and its replicas'
// load states, and GET /v1/databases/:name/shards names one PRIMARY per shard (the group's
// leader) and SECONDARY copies once loaded; an admin failover of a shard group and the loss of a
// shard's PRIMARY move the role, and the database keeps being served; a removed database's groups
// are stopped and deleted everywhere.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSampleDatabase, sampleDefaults } from '../../examples/sample-db/generate.ts';
import { listDirectory, uploadDirectory } from '../../src/data/upload-directory.ts';
import { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import type { S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverBucket, s3rverNodeFlags, stopS3rverTest } from '../s3/support.ts';
import {
  addDatabase,
  endpointsDir,
  eventually,
  formed,
  processCluster,
  request,
  type ProcessCluster,
} from './cluster-process.ts';

const bucket = 'dram-shards';
const root = mkdtempSync(join(tmpdir(), 'dram-shard-groups-it-'));
let s3: S3rverProcess;
let store: S3ObjectStore;
let cluster: ProcessCluster;

interface Member {
  node: number;
  state: string;
  role: string | null;
  commitOffset: number | null;
  lag: number | null;
}
interface Shard {
  shard: string;
  version: number;
  group: number | null;
  leader: number;
  members: Member[];
}
interface GroupReport {
  group: number;
  shard: string;
  role: string;
  versions: number[];
  recorded: { version: number; node: number; state: string }[];
}

async function json(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: unknown }> {
  const answer = await request(url, method, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  return { status: answer.status, body: answer.text === '' ? {} : (JSON.parse(answer.text) as unknown) };
}

async function shards(name: string, node: number): Promise<Shard[]> {
  return ((await json(`${cluster.url(node)}/v1/databases/${name}/shards`)).body as { shards: Shard[] }).shards;
}

/** The groups node `id` hosts (its /v1/status). */
async function hosted(id: number): Promise<number[]> {
  const status = (await json(`${cluster.url(id)}/v1/status`)).body as { groups: { group: number }[] };
  return status.groups.map((group) => group.group);
}

/** Waits until every shard of the database has a PRIMARY and every other member is SECONDARY. */
async function served(name: string, node: number, nodes: readonly number[]): Promise<Shard[]> {
  return eventually(async () => {
    const found = await shards(name, node);
    const ready = found.every((shard) => {
      const members = shard.members.filter((member) => nodes.includes(member.node));
      return (
        members.filter((member) => member.role === 'PRIMARY').length === 1 &&
        members.every((member) => member.role === 'PRIMARY' || member.role === 'SECONDARY')
      );
    });
    return found.length > 0 && ready ? found : undefined;
  }, 300);
}

async function count(name: string, node: number): Promise<{ status: number; result: unknown }> {
  const answer = await json(`${cluster.url(node)}/v1/databases/${name}/query/count`, 'POST', {});
  return { status: answer.status, result: (answer.body as { result?: unknown }).result };
}

beforeAll(async () => {
  ({ s3, store } = await s3rverBucket(root, bucket));
  const sampleDir = join(root, 'sample');
  await generateSampleDatabase(sampleDir, {
    ...sampleDefaults,
    seed: 15,
    shards: 3,
    eventsPerShard: 500,
    users: 50,
    products: 10,
  });
  await uploadDirectory(store, sampleDir, listDirectory(sampleDir), { bucket, prefix: 'shop/' });
  cluster = processCluster(3, {
    args: [...s3rverNodeFlags(s3), '--endpoints', endpointsDir],
  });
  // Loading the endpoint modules (DuckDB) makes the start slow on a busy machine: wait longer than formed's 15 s.
  for (let attempt = 1; ; attempt++)
    try {
      await formed(cluster, 4);
      break;
    } catch (error) {
      if (attempt >= 6) throw error;
    }
}, 180_000);

afterAll(async () => {
  await stopS3rverTest(cluster, store, s3, root);
});

describe('database shard groups on a three-node cluster', () => {
  it('runs each shard group on exactly its replicas, with the manifest and load states in its model', async () => {
    await addDatabase(cluster, { name: 'shop', source: `s3://${bucket}/shop`, replicas: 2 });
    const found = await served('shop', 2, [1, 2, 3]);
    expect(found).toHaveLength(3);
    const groups = found.map((shard) => shard.group);
    expect(new Set(groups).size).toBe(3);
    for (const shard of found) {
      expect(shard.group).toBeGreaterThanOrEqual(1_000_000);
      expect(shard.members.map((member) => member.state)).toEqual(['loaded', 'loaded']);
      const primary = shard.members.find((member) => member.role === 'PRIMARY');
      expect(primary?.node).toBe(shard.leader);
      for (const member of shard.members) {
        expect(member.commitOffset).toBeGreaterThan(0);
        expect(member.lag).toBeGreaterThanOrEqual(0);
      }
    }
    // Each group is hosted by exactly the shard's members.
    for (const id of cluster.ids) {
      const mine = (await hosted(id)).filter((group) => group >= 1_000_000).sort((a, b) => a - b);
      const expected = found
        .filter((shard) => shard.members.some((member) => member.node === id))
        .map((shard) => shard.group ?? 0)
        .sort((a, b) => a - b);
      expect(mine).toEqual(expected);
    }
    // Every replica's model holds version 1 and both members' `loaded`.
    for (const shard of found)
      for (const member of shard.members)
        await eventually(async () => {
          const answer = await json(`${cluster.url(member.node)}/v1/databases/shop/progress`);
          const report = (answer.body as { groups: GroupReport[] }).groups.find((group) => group.group === shard.group);
          const loaded = report?.recorded.filter((state) => state.version === 1 && state.state === 'loaded');
          return report?.versions.join() === '1' && loaded?.length === 2 ? true : undefined;
        }, 200);
    // The agent API lists the shard groups a node hosts with their roles.
    const agent = (await json(`${cluster.url(found[0]?.leader ?? 1)}/api/unstable/info/shards`)).body as {
      shards: { id: string; role: unknown }[];
    };
    expect(agent.shards.find((shard) => shard.id === String(found[0]?.group))?.role).toBe('Primary');
  });

  it('an admin failover of a shard group moves its PRIMARY and the database stays served', async () => {
    // The action's step runs on the meta leader, which can transfer only groups it hosts (the same
    // holds for kv groups under placement): fail over a shard whose group it holds.
    const status = (await json(`${cluster.url(1)}/v1/status`)).body as { groups: { group: number; leader: number }[] };
    const metaLeader = status.groups.find((group) => group.group === 0)?.leader ?? 0;
    const before = await served('shop', 1, [1, 2, 3]);
    const shard = before.find((entry) => entry.members.some((member) => member.node === metaLeader));
    const secondary = shard?.members.find((member) => member.role === 'SECONDARY')?.node;
    expect(secondary).toBeDefined();
    const moved = await json(
      `${cluster.url(secondary ?? 1)}/v1/admin/groups/${shard?.group}/transfer-leadership`,
      'POST',
      { to: secondary },
    );
    expect(moved).toMatchObject({ status: 200 });
    const after = await eventually(async () => {
      const found = await served('shop', 3, [1, 2, 3]);
      return found.find((entry) => entry.group === shard?.group)?.leader === secondary ? found : undefined;
    }, 200);
    const primary = after.find((entry) => entry.group === shard?.group)?.members.find((m) => m.node === secondary);
    expect(primary?.role).toBe('PRIMARY');
    for (const node of cluster.ids) expect((await count('shop', node)).status).toBe(200);
  });

  it('losing a shard PRIMARY elects another; the database stays served; a removed database leaves no group', async () => {
    expect(
      (
        await json(`${cluster.url(1)}/v1/databases`, 'POST', {
          name: 'all',
          source: `s3://${bucket}/shop`,
          replicas: 'all',
        })
      ).status,
    ).toBe(202);
    const before = await served('all', 1, [1, 2, 3]);
    const victim = before[0]?.leader ?? 0;
    expect(victim).toBeGreaterThan(0);
    const expected = await count('all', victim);
    expect(expected.status).toBe(200);
    await cluster.kill(victim);
    const survivors = cluster.ids.filter((id) => id !== victim);
    const after = await served('all', survivors[0] ?? 1, survivors);
    const leader = after[0]?.leader;
    expect(survivors).toContain(leader);
    expect(after[0]?.members.find((member) => member.node === victim)?.role).toBeNull();
    for (const node of survivors) {
      const answer = await eventually(async () => {
        const found = await count('all', node);
        return found.status === 200 ? found : undefined;
      }, 100);
      expect(answer.result).toEqual(expected.result);
    }
    cluster.start(victim, { init: false });
    await served('all', victim, cluster.ids);

    const all = after.map((shard) => shard.group);
    // Just after the restart the meta group may be between leaders (503, which a client retries).
    const removed = await eventually(async () => {
      const answer = await json(`${cluster.url(1)}/v1/databases/all`, 'DELETE');
      return answer.status === 503 ? undefined : answer;
    }, 100);
    expect(removed.status).toBe(202);
    for (const id of cluster.ids)
      await eventually(async () => {
        const mine = await hosted(id);
        return all.some((group) => group !== null && mine.includes(group)) ? undefined : true;
      }, 200);
  });
});
