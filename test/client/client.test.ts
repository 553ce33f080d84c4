// The binary client protocol end to end: an in-process three-node cluster (test/api/cluster.ts,
// no HTTP forwarding), one BinaryServer per node on 127.0.0.1 port 0, and the typed DramClient.
// The servers bound a connection to 256 requests in flight (below the hosts' proposal queue of
// 1000), so the 3000-request pipeline also exercises pausing the socket until answers drain.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryServer } from '../../src/api/binary-server.ts';
import type { ApiMetrics } from '../../src/api/ports.ts';
import {
  decodeClientRequest,
  encodeClientRequest,
  encodeClientResponse,
  type ClientRequest,
  type ClientResponse,
} from '../../src/codec/client-wire.ts';
import { DramClient, DramError } from '../../src/client/client.ts';
import { KvModel } from '../../src/models/kv.ts';
import { FrameReader, frameOf } from '../../src/codec/frame-reader.ts';
import { agreedLeader, keyIn, kvGroups, placement, startCluster, waitFor, type ApiCluster } from '../api/cluster.ts';
import { startBinaryServer } from './binary-port.ts';
import { rawConnection, type RawConnection } from './raw-connection.ts';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const str = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

let cluster: ApiCluster;
const servers = new Map<number, BinaryServer>();
const protocolErrors: string[] = [];
let client: DramClient;

beforeAll(async () => {
  cluster = startCluster({ forwarding: false });
  for (const node of cluster.nodes.values()) {
    const { server } = await startBinaryServer(node, {
      inFlightMax: 256,
      metrics: node.metrics,
      onProtocolError: (reason) => protocolErrors.push(reason),
    });
    servers.set(node.id, server);
  }
  for (const group of kvGroups) await agreedLeader(cluster, group);
  client = DramClient.connect({
    nodes: [...servers].map(([id, server]) => ({ id, host: '127.0.0.1', port: server.address?.port ?? 0 })),
  });
});

afterAll(async () => {
  client.close();
  for (const server of servers.values()) await server.stop();
  await cluster.stop();
});

function port(id: number): number {
  const found = servers.get(id)?.address?.port;
  if (found === undefined) throw new Error(`no server ${id}`);
  return found;
}

/** How many writes this node proposed and saw applied (its dram_proposals_total{outcome="applied"}). */
async function proposalsApplied(metrics: ApiMetrics): Promise<number> {
  const line = (await metrics.render()).body
    .split('\n')
    .find((l) => l.startsWith('dram_proposals_total{outcome="applied"}'));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** A raw connection to node `id`'s server: send frames, collect decoded answers. */
function raw(id: number): Promise<RawConnection> {
  return rawConnection(port(id));
}

describe('binary client protocol', () => {
  it('puts, gets and deletes through the client, with cas', async () => {
    const written = await client.put('alpha', text('one'));
    expect(written.index).toBeGreaterThan(0);
    expect(written.shard).toBe(placement.groupOf('alpha'));
    const read = await client.get('alpha');
    expect(str(read?.value)).toBe('one');
    expect(read?.index).toBe(written.index);
    expect(str((await client.get('alpha', { consistency: 'stale' }))?.value)).toBeDefined();
    expect(str((await client.get('alpha', { consistency: 'lease' }))?.value)).toBe('one');

    await expect(client.put('alpha', text('two'), { cas: written.index + 1000 })).rejects.toMatchObject({
      code: 'DRAM_ERR_CAS_MISMATCH',
      index: written.index,
    });
    await expect(client.put('alpha', text('two'), { cas: 0 })).rejects.toBeInstanceOf(DramError);
    const swapped = await client.put('alpha', text('two'), { cas: written.index });
    expect(swapped.index).toBeGreaterThan(written.index);
    expect(str((await client.get('alpha'))?.value)).toBe('two');

    await client.delete('alpha');
    expect(await client.get('alpha')).toBeUndefined();
    await expect(client.delete('alpha')).rejects.toMatchObject({ code: 'DRAM_ERR_KEY_NOT_FOUND' });
    const created = await client.put('alpha', text('three'), { cas: 0 });
    expect(created.index).toBeGreaterThan(swapped.index);
  });

  it('routes to the new leader after a leadership transfer', async () => {
    const group = kvGroups[1] ?? kvGroups[0];
    if (group === undefined) throw new Error('no group');
    const key = keyIn(group, 'moving');
    await client.put(key, text('before'));
    const leader = await agreedLeader(cluster, group);
    expect(client.leaderOf(group)).toBe(leader.id);
    const target = [...cluster.nodes.keys()].find((id) => id !== leader.id);
    if (target === undefined) throw new Error('no target');
    leader.host.transferLeadership(group, target);
    await waitFor('the transfer', () => (agreedLeaderNow(group) === target ? true : undefined));
    await client.put(key, text('after'));
    expect(client.leaderOf(group)).toBe(target);
    expect(str((await client.get(key))?.value)).toBe('after');
  });

  it('takes a write on a follower, hands it to the leader inside Raft and answers once applied there', async () => {
    const group = placement.groupOf('hinted');
    const leader = await agreedLeader(cluster, group);
    const follower = [...cluster.nodes.keys()].find((id) => id !== leader.id) ?? leader.id;
    const connection = await raw(follower);
    connection.socket.write(frameOf(encodeClientRequest({ id: 7, op: 'put', key: 'hinted', value: text('x') })));
    const answer = await waitFor('an answer', () => connection.answers[0]);
    expect(answer).toMatchObject({ id: 7, ok: true, leader: leader.id, shard: group });
    const followerModel = cluster.nodes.get(follower)?.host.model(group);
    expect(followerModel instanceof KvModel && followerModel.get('hinted')?.modifyIndex).toBe(answer.index);
    connection.socket.destroy();
  });

  it("with route 'any' sends requests round robin to every node, and each takes any key", async () => {
    const keys = kvGroups.flatMap((group) => [0, 1, 2].map((k) => keyIn(group, `spread${k}`)));
    const spread = DramClient.connect({
      nodes: [...servers].map(([id, server]) => ({ id, host: '127.0.0.1', port: server.address?.port ?? 0 })),
      route: 'any',
    });
    const before = new Map<number, number>();
    for (const [id, node] of cluster.nodes) before.set(id, await proposalsApplied(node.metrics));
    try {
      for (const key of keys) await spread.put(key, text(`v-${key}`));
      for (const key of keys) expect(str((await spread.get(key))?.value)).toBe(`v-${key}`);
    } finally {
      spread.close();
    }
    // Every node proposed a third of the writes itself: the client never went to a leader for them.
    for (const [id, node] of cluster.nodes)
      expect((await proposalsApplied(node.metrics)) - (before.get(id) ?? 0)).toBe(keys.length / cluster.nodes.size);
  });

  it('pipelines many requests on one connection and answers every one by id', async () => {
    const group = placement.groupOf('pipe-0');
    const leader = await agreedLeader(cluster, group);
    const connection = await raw(leader.id);
    const count = 3000;
    const keys = Array.from({ length: 50 }, (_, k) => keyIn(group, `pipe${k}`));
    const frames: Uint8Array[] = [];
    for (let id = 0; id < count; id++) {
      const key = keys[id % keys.length] ?? 'pipe';
      frames.push(
        frameOf(
          encodeClientRequest(
            id % 3 === 0 ? { id, op: 'get', key, consistency: 'stale' } : { id, op: 'put', key, value: text(`v${id}`) },
          ),
        ),
      );
    }
    connection.socket.write(Buffer.concat(frames));
    await waitFor('every answer', () => (connection.answers.length >= count ? true : undefined), 30_000);
    const ids = connection.answers.map((answer) => answer.id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: count }, (_, id) => id));
    for (const answer of connection.answers) {
      if (answer.id % 3 !== 0) expect(answer).toMatchObject({ ok: true, leader: leader.id });
      else if (!answer.ok) expect(answer.code).toBe('DRAM_ERR_KEY_NOT_FOUND');
    }
    connection.socket.destroy();
  });

  it('pipelines concurrent client calls over one connection per node', async () => {
    const results = await Promise.all(Array.from({ length: 500 }, (_, k) => client.put(`many-${k}`, text(`m${k}`))));
    expect(results.every((result) => result.index > 0)).toBe(true);
    const reads = await Promise.all(Array.from({ length: 500 }, (_, k) => client.get(`many-${k}`)));
    expect(reads.map((read) => str(read?.value))).toEqual(Array.from({ length: 500 }, (_, k) => `m${k}`));
  });

  it('closes only the connection that sent garbage or an oversized frame', async () => {
    const good = await raw(1);
    const garbage = await raw(1);
    const oversized = await raw(1);
    const before = protocolErrors.length;
    garbage.socket.write(frameOf(new Uint8Array([0xc1, 0xff, 0x00, 0x13])));
    oversized.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await waitFor('both bad connections closed', () => (garbage.closed() && oversized.closed() ? true : undefined));
    expect(protocolErrors.length).toBe(before + 2);
    good.socket.write(frameOf(encodeClientRequest({ id: 1, op: 'get', key: 'nothing-here', consistency: 'stale' })));
    const answer = await waitFor('an answer on the good connection', () => good.answers[0]);
    expect(answer).toMatchObject({ id: 1, ok: false, code: 'DRAM_ERR_KEY_NOT_FOUND' });
    expect(good.closed()).toBe(false);
    good.socket.destroy();
    expect(str((await client.get('many-1'))?.value)).toBe('m1');
  });
});

describe('bounds', () => {
  it('a server closes connections past connectionsMax at once and keeps serving the others', async () => {
    const node = [...cluster.nodes.values()][0];
    if (node === undefined) throw new Error('no node');
    const refused: number[] = [];
    const { server: small, port: smallPort } = await startBinaryServer(node, {
      connectionsMax: 2,
      onConnectionRefused: (open) => refused.push(open),
    });
    const open = (): Promise<RawConnection> => rawConnection(smallPort);
    try {
      const first = await open();
      const second = await open();
      await waitFor('two connections open on the server', () => (small.connections === 2 ? true : undefined));
      const third = await open();
      await waitFor('the third connection closed', () => (third.closed() ? true : undefined));
      expect(refused).toEqual([2]);
      first.socket.write(frameOf(encodeClientRequest({ id: 7, op: 'get', key: 'nothing-here', consistency: 'stale' })));
      expect(await waitFor('an answer on an admitted connection', () => first.answers[0])).toMatchObject({
        id: 7,
        code: 'DRAM_ERR_KEY_NOT_FOUND',
      });
      first.socket.destroy();
      second.socket.destroy();
    } finally {
      await small.stop();
    }
  });

  it('a client refuses a request past inFlightMax without sending it', async () => {
    // A server that accepts and never answers: every request stays in flight.
    const received: Buffer[] = [];
    const silent = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const silentPort = typeof address === 'object' && address !== null ? address.port : 0;
    const bounded = DramClient.connect({
      nodes: [{ id: 1, host: '127.0.0.1', port: silentPort }],
      groups: 8,
      inFlightMax: 2,
      requestTimeoutMs: 60_000,
    });
    try {
      const waiting = [bounded.put('a', text('1')), bounded.put('b', text('2'))];
      for (const request of waiting) request.catch(() => undefined);
      const error = await bounded.put('c', text('3')).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(DramError);
      expect((error as DramError).code).toBe('DRAM_ERR_CLIENT_OVERLOADED');
      // Only the two admitted requests reached the wire.
      await waitFor('two requests on the wire', () => (Buffer.concat(received).length > 0 ? true : undefined));
      const frames = new FrameReader(1 << 22).push(Buffer.concat(received));
      expect(frames.kind === 'frames' ? frames.payloads.length : -1).toBe(2);
    } finally {
      bounded.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('a stopping node', () => {
  it('a DRAM_ERR_NODE_STOPPED answer (not applied) is retried at another node', async () => {
    // Node 2 is stopping and says so; node 1 serves. Group 1 of 1 is tried at node 2 first.
    const asked: number[] = [];
    const fake = (id: number, answer: (request: ClientRequest) => ClientResponse): Promise<net.Server> =>
      new Promise((resolve) => {
        const server = net.createServer((socket) => {
          const reader = new FrameReader(1 << 22);
          socket.on('data', (chunk: Buffer) => {
            const read = reader.push(chunk);
            if (read.kind !== 'frames') return;
            for (const payload of read.payloads) {
              asked.push(id);
              socket.write(frameOf(encodeClientResponse(answer(decodeClientRequest(payload)))));
            }
          });
        });
        server.listen(0, '127.0.0.1', () => {
          resolve(server);
        });
      });
    const serving = await fake(1, (request) => ({
      id: request.id,
      ok: true,
      index: 3,
      shard: 1,
      leader: 1,
      groups: 1,
    }));
    const stopping = await fake(2, (request) => ({
      id: request.id,
      ok: false,
      index: 0,
      shard: 1,
      leader: 0,
      groups: 1,
      code: 'DRAM_ERR_NODE_STOPPED',
      message: 'this node is stopping',
    }));
    const portOf = (server: net.Server): number => {
      const address = server.address();
      return typeof address === 'object' && address !== null ? address.port : 0;
    };
    const twoNodes = DramClient.connect({
      nodes: [
        { id: 1, host: '127.0.0.1', port: portOf(serving) },
        { id: 2, host: '127.0.0.1', port: portOf(stopping) },
      ],
      groups: 1,
    });
    try {
      expect(await twoNodes.put('k', text('v'))).toMatchObject({ index: 3 });
      expect(asked).toEqual([2, 1]);
    } finally {
      twoNodes.close();
      for (const server of [serving, stopping]) await new Promise((resolve) => server.close(resolve));
    }
  });
});

function agreedLeaderNow(group: number): number | undefined {
  const views = [...cluster.nodes.values()].map((n) => n.host.status().find((s) => s.group === group)?.status);
  const leader = views[0]?.leader ?? 0;
  return leader !== 0 && views.every((v) => v?.leader === leader) ? leader : undefined;
}
