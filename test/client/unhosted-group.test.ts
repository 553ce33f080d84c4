// The binary protocol on a node that does not host a key's group (placement puts groups on
// subsets of the nodes): the request goes to a node that hosts it, over the Forward port, as the
// HTTP routes do, and its answer comes back in the binary protocol. The in-process three-node
// cluster (test/api/cluster.ts) hosts every group on every node, so node 1's binary server is given
// a view of its host in which group `hidden` does not exist (what an unhosted group looks like to
// the API: no leader, no model, proposals and reads refused as unknown_group).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryServer } from '../../src/api/binary-server.ts';
import type { ApiHost, Forward } from '../../src/api/ports.ts';
import { asNodeId, type GroupId } from '../../src/base/ids.ts';
import { DramClient, DramError } from '../../src/client/client.ts';
import {
  agreedLeader,
  keyIn,
  kvGroups,
  kvModel,
  nodeIds,
  startCluster,
  injectForwarded,
  type ApiCluster,
} from '../api/cluster.ts';
import { startBinaryServer } from './binary-port.ts';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const str = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

const hidden = kvGroups[0] as GroupId;
let cluster: ApiCluster;
let server: BinaryServer;
let client: DramClient;
const forwarded: { node: number; method: string; url: string; headers: Record<string, string> }[] = [];

/** Node `host` as the API would see it if it did not host `group`. */
function withoutGroup(host: ApiHost, group: GroupId): ApiHost {
  return {
    ...Object.fromEntries(
      (
        ['transferLeadership', 'compactNow', 'proposeConfChange', 'status', 'groupStatus', 'backupSnapshot'] as const
      ).map((name) => [name, host[name].bind(host)]),
    ),
    propose: (g, data, key) =>
      g === group
        ? Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } })
        : host.propose(g, data, key),
    read: (g, mode) =>
      g === group
        ? Promise.resolve({ kind: 'refused', reason: 'unknown_group', leaderHint: asNodeId(0) })
        : host.read(g, mode),
    groupLeader: (g) => (g === group ? undefined : host.groupLeader(g)),
    model: (g) => (g === group ? undefined : host.model(g)),
  } as ApiHost;
}

beforeAll(async () => {
  cluster = startCluster({ forwarding: true });
  const self = cluster.node(asNodeId(1));
  // Node 1's Forward: inject()s into the target's app, as the cluster's own does, and records the call.
  const forward: Forward = async (to, request) => {
    forwarded.push({ node: to, method: request.method, url: request.url, headers: { ...request.headers } });
    return injectForwarded(cluster.node(to).app, request);
  };
  ({ server } = await startBinaryServer(self, {
    host: withoutGroup(self.host, hidden),
    locate: (group) => (group === hidden ? nodeIds.filter((id) => id !== self.id) : nodeIds),
    forward,
  }));
  for (const group of kvGroups) await agreedLeader(cluster, group);
  client = DramClient.connect({
    nodes: [{ id: 1, host: '127.0.0.1', port: server.address?.port ?? 0 }],
    route: 'any',
  });
});

afterAll(async () => {
  client.close();
  await server.stop();
  await cluster.stop();
});

describe('binary protocol, a key of a group this node does not host', () => {
  it('puts, gets, cas and deletes through a node that hosts it', async () => {
    const key = keyIn(hidden, 'elsewhere');
    const put = await client.put(key, text('v1'));
    expect(put.shard).toBe(hidden);
    expect(put.index).toBeGreaterThan(0);
    // Written through the group's own replicas (node 1's real replica gets it too, by Raft).
    expect(str(kvModel(cluster.node(asNodeId(2)), hidden).get(key)?.value)).toBe('v1');
    const got = await client.get(key);
    expect(str(got?.value)).toBe('v1');
    expect(got?.index).toBe(put.index);
    const mismatch = await client.put(key, text('v2'), { cas: put.index + 1000 }).catch((error: unknown) => error);
    expect(mismatch).toBeInstanceOf(DramError);
    expect((mismatch as DramError).code).toBe('DRAM_ERR_CAS_MISMATCH');
    const swapped = await client.put(key, text('v2'), { cas: put.index });
    expect(swapped.index).toBeGreaterThan(put.index);
    await client.delete(key);
    // Absent now: the hosting node's DRAM_ERR_KEY_NOT_FOUND, which the client answers as undefined.
    expect(await client.get(key)).toBeUndefined();
    // Every one of them went over the Forward port to a node hosting the group, never to node 1.
    expect(forwarded.length).toBeGreaterThanOrEqual(6);
    expect(forwarded.every(({ node }) => node !== 1)).toBe(true);
    expect(forwarded.find(({ method }) => method === 'PUT')?.url).toMatch(/^\/v1\/kv\/elsewhere/u);
  });

  it('keeps a stamped write exactly-once across the hop', async () => {
    const key = keyIn(hidden, 'stamped');
    const client2 = { id: 'unhosted-test', seq: 1 };
    const first = await client.put(key, text('once'), { client: client2 });
    const again = await client.put(key, text('once'), { client: client2 });
    expect(again.index).toBe(first.index);
    const stampedForward = forwarded.filter(({ url }) => url.includes('stamped'));
    expect(stampedForward[0]?.headers['x-dram-client-id']).toBe('unhosted-test');
    expect(stampedForward[0]?.headers['x-dram-request-seq']).toBe('1');
  });

  it('serves keys of the groups it hosts itself, without a hop', async () => {
    const before = forwarded.length;
    const other = kvGroups[1] as GroupId;
    const key = keyIn(other, 'local');
    await client.put(key, text('here'));
    expect(str((await client.get(key))?.value)).toBe('here');
    expect(forwarded.length).toBe(before);
  });
});
