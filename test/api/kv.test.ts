// The KV routes against a live in-process three-node cluster, through fastify inject(): the round
// trip with its headers, writes on followers (handed to the leader inside Raft, sent again after a
// leader change, applied once), compare-and-set, size limits, bad input (never
// a 500, never a state change), stale reads on an isolated follower, and exactly-once retries.

import { afterEach, describe, expect, it } from 'vitest';
import { asGroupId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import type { MultiRaftHost } from '../../src/multiraft/host.ts';
import type { GroupMessage } from '../../src/multiraft/ports.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../../src/codec/kv.ts';
import {
  agreedLeader,
  errorCode,
  keyIn,
  kvGroups,
  kvModel,
  placement,
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

function start(options?: Parameters<typeof startCluster>[0]): ApiCluster {
  cluster = startCluster(options);
  return cluster;
}

const group2: GroupId = kvGroups[1] ?? asGroupId(2);

function followersOf(running: ApiCluster, leader: ApiNode): ApiNode[] {
  return [...running.nodes.values()].filter((n) => n !== leader);
}

function firstFollower(running: ApiCluster, leader: ApiNode): ApiNode {
  const follower = followersOf(running, leader)[0];
  if (follower === undefined) throw new Error('no follower');
  return follower;
}

describe('KV API', () => {
  it('puts, gets and deletes raw bytes with index, shard and leader headers', async () => {
    const running = start();
    const key = keyIn(group2, 'round');
    const leader = await agreedLeader(running, group2);
    // A JSON content type is still stored raw: even malformed JSON is just bytes to the KV store.
    const put = await leader.app.inject({
      method: 'PUT',
      url: `/v1/kv/${key}`,
      headers: { 'content-type': 'application/json' },
      payload: '{"half":',
    });
    expect(put.statusCode).toBe(200);
    const index = put.json<{ index: number }>().index;
    expect(index).toBeGreaterThan(0);
    expect(put.headers['x-dram-index']).toBe(String(index));
    expect(put.headers['x-dram-shard']).toBe(String(group2));
    expect(put.headers['x-dram-leader']).toBe(String(leader.id));

    const get = await leader.app.inject({ method: 'GET', url: `/v1/kv/${key}` });
    expect(get.statusCode).toBe(200);
    expect(get.body).toBe('{"half":');
    expect(get.headers['content-type']).toBe('application/octet-stream');
    expect(get.headers['x-dram-index']).toBe(String(index));
    expect(get.headers['x-dram-shard']).toBe(String(group2));
    expect(get.headers['x-dram-leader']).toBe(String(leader.id));

    const removed = await leader.app.inject({ method: 'DELETE', url: `/v1/kv/${key}` });
    expect(removed.statusCode).toBe(200);
    expect(removed.json<{ index: number }>().index).toBeGreaterThan(index);

    const gone = await leader.app.inject({ method: 'GET', url: `/v1/kv/${key}` });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toEqual({ error: true, code: 'DRAM_ERR_KEY_NOT_FOUND', message: 'key not found' });
    expect(gone.headers['x-dram-index']).toBe('0');
    expect(gone.headers['x-dram-shard']).toBe(String(group2));

    const again = await leader.app.inject({ method: 'DELETE', url: `/v1/kv/${key}` });
    expect(again.statusCode).toBe(404);
    expect(errorCode(again)).toBe('DRAM_ERR_KEY_NOT_FOUND');
  });

  it('stores an empty body, and a percent-encoded key with spaces and non-ASCII characters', async () => {
    const running = start();
    const key = 'ünïcode key/with slash';
    const group = placement.groupOf(key);
    const leader = await agreedLeader(running, group);
    const url = `/v1/kv/${encodeURIComponent(key)}`;
    expect((await leader.app.inject({ method: 'PUT', url })).statusCode).toBe(200);
    expect(kvModel(leader, group).get(key)?.value.length).toBe(0);
    const get = await leader.app.inject({ method: 'GET', url });
    expect(get.statusCode).toBe(200);
    expect(get.headers['x-dram-shard']).toBe(String(group));
  });

  it('refuses a key whose percent-encoding is not UTF-8 (a lone surrogate, a cut sequence) with a 4xx, never a 500', async () => {
    const running = start();
    const node = [...running.nodes.values()][0];
    if (node === undefined) throw new Error('no node');
    for (const url of ['/v1/kv/%ED%A0%80', '/v1/kv/a%F0%9F%98', '/v1/kv/%C3']) {
      const answer = await node.app.inject({ method: 'PUT', url, payload: 'x' });
      expect(answer.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(answer.statusCode, url).toBeLessThan(500);
    }
  });

  it('takes a write on a follower through Raft (no HTTP hop) and answers once the follower applied it', async () => {
    const running = start();
    const key = keyIn(group2, 'fwd');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    const put = await follower.app.inject({
      method: 'PUT',
      url: `/v1/kv/${key}`,
      payload: 'via follower',
      headers: { 'content-type': 'text/plain' },
    });
    expect(put.statusCode).toBe(200);
    expect(put.headers['x-dram-leader']).toBe(String(leader.id));
    expect(running.forwards.get(follower.id) ?? 0).toBe(0);
    const index = put.json<{ index: number }>().index;
    expect(put.headers['x-dram-index']).toBe(String(index));
    expect(kvModel(follower, group2).get(key)?.modifyIndex).toBe(index);
    expect(kvModel(leader, group2).get(key)?.modifyIndex).toBe(index);

    for (const node of running.nodes.values()) {
      const get = await node.app.inject({ method: 'GET', url: `/v1/kv/${key}?consistency=linearizable` });
      expect(get.statusCode).toBe(200);
      expect(get.body).toBe('via follower');
      expect(get.headers['x-dram-index']).toBe(String(index));
      expect(get.headers['x-dram-leader']).toBe(String(leader.id));
      const lease = await node.app.inject({ method: 'GET', url: `/v1/kv/${key}?consistency=lease` });
      expect(lease.statusCode).toBe(200);
      expect(lease.body).toBe('via follower');
    }
  });

  it('sends a forwarded write again to the next leader when its leader is lost, and applies it once', async () => {
    const running = start();
    const key = keyIn(group2, 'moved');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    // The leader hears nothing from now on: the follower's Propose is lost, the others elect anew.
    running.network.cut.add(leader.id);
    const put = await follower.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'moved' });
    expect(put.statusCode).toBe(200);
    const index = put.json<{ index: number }>().index;
    expect(put.headers['x-dram-leader']).not.toBe(String(leader.id));
    running.network.cut.delete(leader.id);
    await waitFor('every node applied the write, once', () =>
      [...running.nodes.values()].every((node) => kvModel(node, group2).get(key)?.modifyIndex === index)
        ? true
        : undefined,
    );
  });

  it('applies a Propose that reached the leader twice once: the second copy is a no-op', async () => {
    const running = start();
    const key = keyIn(group2, 'twice');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    // Deliver every Propose to the leader twice, as when a copy sent again after a lost
    // connection finds the first one arrived after all.
    const host = leader.host;
    running.network.hosts.set(leader.id, {
      receive: (batch: readonly GroupMessage[], from: NodeId) => {
        host.receive(batch, from);
        const proposals = batch.filter(({ message }) => message.type === 'Propose');
        if (proposals.length > 0) host.receive(proposals, from);
      },
    } as unknown as MultiRaftHost);
    const lastBefore = host.groupStatus(group2)?.status.lastIndex ?? 0;
    const put = await follower.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'once' });
    expect(put.statusCode).toBe(200);
    const index = put.json<{ index: number }>().index;
    expect(index).toBe(lastBefore + 1);
    await waitFor('both copies applied everywhere', () =>
      [...running.nodes.values()].every((node) => (node.host.groupStatus(group2)?.appliedIndex ?? 0) >= index + 1)
        ? true
        : undefined,
    );
    for (const node of running.nodes.values()) expect(kvModel(node, group2).get(key)?.modifyIndex).toBe(index);
  });

  it('answers 503 DRAM_ERR_NO_LEADER at once on a node that knows no leader, writes nothing, and opens its session with the next write', async () => {
    const running = start();
    const key = keyIn(group2, 'noleader');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    running.network.cut.add(follower.id);
    await waitFor('the cut-off follower to lose its leader', () =>
      follower.host.groupLeader(group2) === 0 ? true : undefined,
    );
    const put = await follower.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'x' });
    expect(put.statusCode).toBe(503);
    expect(put.json()).toMatchObject({ error: true, code: 'DRAM_ERR_NO_LEADER', details: { group: group2 } });
    expect(put.headers['x-dram-leader']).toBe('0');
    expect(put.headers['x-dram-shard']).toBe(String(group2));
    running.network.cut.delete(follower.id);
    for (const node of running.nodes.values()) expect(kvModel(node, group2).get(key)).toBeUndefined();
    // That refused write was this node's first in the group: the next one still opens its session.
    await agreedLeader(running, group2);
    const again = await follower.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'y' });
    expect(again.statusCode).toBe(200);
    const after = await follower.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'z' });
    expect(after.statusCode).toBe(200);
  });

  it('compare-and-set: cas=0 creates only, a stale index answers 412 with the current one', async () => {
    const running = start();
    const key = keyIn(group2, 'cas');
    const leader = await agreedLeader(running, group2);
    const url = `/v1/kv/${key}`;
    const created = await leader.app.inject({ method: 'PUT', url: `${url}?cas=0`, payload: 'one' });
    expect(created.statusCode).toBe(200);
    const first = created.json<{ index: number }>().index;

    const twice = await leader.app.inject({ method: 'PUT', url: `${url}?cas=0`, payload: 'two' });
    expect(twice.statusCode).toBe(412);
    expect(twice.json()).toMatchObject({
      error: true,
      code: 'DRAM_ERR_CAS_MISMATCH',
      details: { currentIndex: first },
    });
    expect(twice.headers['x-dram-index']).toBe(String(first));

    const stale = await leader.app.inject({ method: 'PUT', url: `${url}?cas=${first + 1000}`, payload: 'two' });
    expect(stale.statusCode).toBe(412);
    const staleDelete = await leader.app.inject({ method: 'DELETE', url: `${url}?cas=${first + 1000}` });
    expect(staleDelete.statusCode).toBe(412);
    expect(new TextDecoder().decode(kvModel(leader, group2).get(key)?.value)).toBe('one');

    const swapped = await leader.app.inject({ method: 'PUT', url: `${url}?cas=${first}`, payload: 'two' });
    expect(swapped.statusCode).toBe(200);
    const second = swapped.json<{ index: number }>().index;
    const deleted = await leader.app.inject({ method: 'DELETE', url: `${url}?cas=${second}` });
    expect(deleted.statusCode).toBe(200);
    expect(kvModel(leader, group2).get(key)).toBeUndefined();
  });

  it('refuses oversized keys and values with 413 and changes nothing', async () => {
    const running = start();
    const leader = await agreedLeader(running, group2);
    const sizes = new Map([...running.nodes.values()].map((n) => [n.id, kvGroups.map((g) => kvModel(n, g).size)]));
    const longKey = 'k'.repeat(kvKeyBytesMax + 1);
    const veryLongKey = 'é'.repeat(4 * kvKeyBytesMax); // far past the router's parameter limit
    const cases = [
      { url: `/v1/kv/${longKey}`, payload: 'v', code: 'DRAM_ERR_KEY_TOO_LARGE' },
      { url: `/v1/kv/${encodeURIComponent(veryLongKey)}`, payload: 'v', code: 'DRAM_ERR_KEY_TOO_LARGE' },
      {
        url: `/v1/kv/${keyIn(group2, 'big')}`,
        payload: Buffer.alloc(kvValueBytesMax + 1, 1),
        code: 'DRAM_ERR_VALUE_TOO_LARGE',
      },
    ];
    for (const { url, payload, code } of cases) {
      const response = await leader.app.inject({
        method: 'PUT',
        url,
        payload,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(response.statusCode).toBe(413);
      expect(errorCode(response)).toBe(code);
    }
    const getLong = await leader.app.inject({ method: 'GET', url: `/v1/kv/${longKey}` });
    expect(getLong.statusCode).toBe(413);
    for (const node of running.nodes.values())
      expect(kvGroups.map((g) => kvModel(node, g).size)).toEqual(sizes.get(node.id));
  });

  it('answers bad input with 4xx codes, never a 500, and changes nothing', async () => {
    const running = start();
    const key = keyIn(group2, 'bad');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    const commitBefore = leader.host.status().find((s) => s.group === group2)?.status.lastIndex;
    const requests = [
      { method: 'GET', url: `/v1/kv/${key}?consistency=strong`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      {
        method: 'GET',
        url: `/v1/kv/${key}?consistency=stale&consistency=lease`,
        status: 400,
        code: 'DRAM_ERR_BAD_REQUEST',
      },
      { method: 'GET', url: `/v1/kv/${key}?consistancy=stale`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cas=abc`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cas=-1`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cas=`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cas=1.5`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cas=99999999999999999999`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}?cass=0`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'DELETE', url: `/v1/kv/${key}?cas=x`, status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      {
        method: 'PUT',
        url: `/v1/kv/${key}`,
        headers: { 'x-dram-client-id': 'c1' },
        status: 400,
        code: 'DRAM_ERR_BAD_REQUEST',
      },
      {
        method: 'PUT',
        url: `/v1/kv/${key}`,
        headers: { 'x-dram-client-id': 'c1', 'x-dram-request-seq': 'one' },
        status: 400,
        code: 'DRAM_ERR_BAD_REQUEST',
      },
      {
        method: 'PUT',
        url: `/v1/kv/${key}`,
        headers: { 'x-dram-client-id': 'c'.repeat(200), 'x-dram-request-seq': '1' },
        status: 400,
        code: 'DRAM_ERR_BAD_REQUEST',
      },
      {
        method: 'PUT',
        url: `/v1/kv/${key}`,
        headers: { 'content-type': '///' },
        status: 415,
        code: 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
      },
      { method: 'PUT', url: '/v1/kv/%E0%A4%A', status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: '/v1/kv/', status: 400, code: 'DRAM_ERR_BAD_REQUEST' },
      { method: 'PUT', url: `/v1/kv/${key}/more`, status: 404, code: 'DRAM_ERR_ROUTE_NOT_FOUND' },
      { method: 'PATCH', url: `/v1/kv/${key}`, status: 404, code: 'DRAM_ERR_ROUTE_NOT_FOUND' },
    ] as const;
    for (const node of [leader, follower]) {
      for (const request of requests) {
        const body = request.method === 'PUT' ? { payload: 'value' } : {};
        const response = await node.app.inject({
          method: request.method,
          url: request.url,
          ...body,
          headers: 'headers' in request ? request.headers : {},
        });
        expect({ url: request.url, status: response.statusCode }).toEqual({ url: request.url, status: request.status });
        expect(response.json()).toMatchObject({ error: true, code: request.code });
        expect(typeof response.json<{ message?: unknown }>().message).toBe('string');
      }
    }
    for (const node of running.nodes.values()) expect(kvModel(node, group2).get(key)).toBeUndefined();
    expect(leader.host.status().find((s) => s.group === group2)?.status.lastIndex).toBe(commitBefore);
    expect(running.forwards.size).toBe(0);
  });

  it('serves stale reads from a follower cut off from the cluster; a linearizable read there fails', async () => {
    const running = start({ forwarding: true, requestTimeoutMs: 1000 });
    const key = keyIn(group2, 'stale');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    const put = await leader.app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: 'old' });
    expect(put.statusCode).toBe(200);
    const index = put.json<{ index: number }>().index;
    await waitFor('the follower to apply the write', () =>
      kvModel(follower, group2).get(key) === undefined ? undefined : true,
    );

    running.network.cut.add(follower.id);
    const stale = await follower.app.inject({ method: 'GET', url: `/v1/kv/${key}?consistency=stale` });
    expect(stale.statusCode).toBe(200);
    expect(stale.body).toBe('old');
    expect(stale.headers['x-dram-index']).toBe(String(index));
    expect(stale.headers['x-dram-shard']).toBe(String(group2));

    const linearizable = await follower.app.inject({ method: 'GET', url: `/v1/kv/${key}` });
    expect(linearizable.statusCode).toBeGreaterThanOrEqual(500);
    expect(['DRAM_ERR_TIMEOUT', 'DRAM_ERR_NO_LEADER', 'DRAM_ERR_FORWARD_FAILED']).toContain(errorCode(linearizable));
  });

  it('applies a retried write once when the client stamps it, and refuses an older seq', async () => {
    const running = start();
    const key = keyIn(group2, 'once');
    const leader = await agreedLeader(running, group2);
    const follower = firstFollower(running, leader);
    const stamped = (seq: number, value: string, node: ApiNode = leader) =>
      node.app.inject({
        method: 'PUT',
        url: `/v1/kv/${key}`,
        payload: value,
        headers: { 'x-dram-client-id': 'client-a', 'x-dram-request-seq': String(seq) },
      });

    const first = await stamped(1, 'v1');
    expect(first.statusCode).toBe(200);
    const firstIndex = first.json<{ index: number }>().index;
    const retry = await stamped(1, 'v1');
    expect(retry.statusCode).toBe(200);
    expect(retry.json<{ index: number }>().index).toBe(firstIndex);
    expect(kvModel(leader, group2).get(key)?.modifyIndex).toBe(firstIndex);

    const second = await stamped(2, 'v2');
    const secondIndex = second.json<{ index: number }>().index;
    expect(secondIndex).toBeGreaterThan(firstIndex);
    // The retry of seq 2 arrives at a follower this time: forwarded, still applied once.
    const retriedViaFollower = await stamped(2, 'v2', follower);
    expect(retriedViaFollower.statusCode).toBe(200);
    expect(retriedViaFollower.json<{ index: number }>().index).toBe(secondIndex);

    const older = await stamped(1, 'v1');
    expect(older.statusCode).toBe(409);
    expect(older.json()).toMatchObject({ code: 'DRAM_ERR_STALE_REQUEST', details: { lastSeq: 2 } });
    const record = kvModel(leader, group2).get(key);
    expect(new TextDecoder().decode(record?.value)).toBe('v2');
    expect(record?.modifyIndex).toBe(secondIndex);
  });
});
