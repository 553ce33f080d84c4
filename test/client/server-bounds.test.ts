// The binary client port under hostile clients (issue 19 item 3), against an in-process cluster
// (test/api/cluster.ts) and real sockets on 127.0.0.0/8: connections per address are capped,
// idle connections and stalled partial frames are closed, a connection that pipelines reads and
// never takes its answers stops being read instead of piling answers up in memory, and a key
// that is not valid UTF-8 is refused alone rather than stored with replacement characters.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryServer, type BinaryServerOptions } from '../../src/api/binary-server.ts';
import type { ApiMetrics } from '../../src/api/ports.ts';
import { encodeClientRequest } from '../../src/codec/client-wire.ts';
import { encodeKvCommand } from '../../src/codec/kv.ts';
import { frameOf } from '../../src/codec/frame-reader.ts';
import {
  agreedLeader,
  keyIn,
  kvGroups,
  kvModel,
  placement,
  startCluster,
  waitFor,
  type ApiCluster,
  type ApiNode,
} from '../api/cluster.ts';
import { firstLedNode, startBinaryServer } from './binary-port.ts';
import { rawConnection } from './raw-connection.ts';

let cluster: ApiCluster;
let node: ApiNode;

beforeAll(async () => {
  cluster = startCluster({ forwarding: false });
  node = await firstLedNode(cluster);
});

afterAll(async () => {
  await cluster.stop();
});

async function withServer(
  options: Partial<BinaryServerOptions>,
  run: (port: number, server: BinaryServer) => Promise<void>,
): Promise<void> {
  const { server, port } = await startBinaryServer(node, options);
  try {
    await run(port, server);
  } finally {
    await server.stop();
  }
}

describe('binary client port bounds', () => {
  it('caps connections per address; a closed connection frees its slot; other addresses still get in', async () => {
    const refused: (string | undefined)[] = [];
    await withServer(
      { connectionsPerAddressMax: 2, onConnectionRefused: (_open, address) => refused.push(address) },
      async (port, server) => {
        const first = await rawConnection(port);
        const second = await rawConnection(port);
        await waitFor('two connections open', () => (server.connections === 2 ? true : undefined));
        const third = await rawConnection(port);
        await waitFor('the third connection closed', () => (third.closed() ? true : undefined));
        expect(refused).toEqual(['127.0.0.1']);
        const elsewhere = await rawConnection(port, '127.0.0.2');
        await waitFor('a connection from another address admitted', () =>
          server.connections === 3 ? true : undefined,
        );
        first.socket.destroy();
        await waitFor('the first connection gone', () => (server.connections === 2 ? true : undefined));
        const again = await rawConnection(port);
        again.socket.write(frameOf(encodeClientRequest({ id: 1, op: 'get', key: 'absent', consistency: 'stale' })));
        expect(await waitFor('an answer on the freed slot', () => again.answers[0])).toMatchObject({ id: 1 });
        for (const connection of [second, elsewhere, again]) connection.socket.destroy();
      },
    );
  });

  it('closes a connection that stays idle, and one whose partial frame makes no progress', async () => {
    const timedOut: string[] = [];
    await withServer(
      { idleMs: 1000, partialFrameMs: 100, onConnectionTimedOut: (reason) => timedOut.push(reason) },
      async (port) => {
        const idle = await rawConnection(port);
        await waitFor('the idle connection closed', () => (idle.closed() ? true : undefined));
        // A header announcing 1000 bytes, then 10 of them, then nothing: a slow-loris frame.
        const partial = await rawConnection(port);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(1000);
        partial.socket.write(Buffer.concat([header, Buffer.alloc(10)]));
        // Keep it busy enough that the idle timer alone would not close it.
        const keepBusy = setInterval(() => partial.socket.write(Buffer.alloc(0)), 50);
        try {
          await waitFor('the stalled frame closed its connection', () => (partial.closed() ? true : undefined));
        } finally {
          clearInterval(keepBusy);
        }
        expect(timedOut.some((reason) => reason.startsWith('idle'))).toBe(true);
        expect(timedOut.some((reason) => reason.includes('partial frame'))).toBe(true);
      },
    );
  });

  it('stops reading a connection whose unsent answers exceed unsentBytesMax, and answers everything once it reads', async () => {
    const group = kvGroups[0];
    if (group === undefined) throw new Error('no group');
    const key = keyIn(group, 'big');
    const leader = await agreedLeader(cluster, group);
    const value = new Uint8Array(512 * 1024).fill(7);
    expect((await leader.host.propose(group, encodeKvCommand({ op: 'put', key, value }))).kind).toBe('applied');
    await waitFor('the value replicated to the node under test', () =>
      kvModel(node, group).get(key) === undefined ? undefined : true,
    );
    let served = 0;
    const metrics: Pick<ApiMetrics, 'proposal' | 'read'> = {
      proposal: () => undefined,
      read: () => {
        served++;
      },
    };
    const requests = 200;
    await withServer({ unsentBytesMax: 1 << 20, metrics }, async (port) => {
      const greedy = await rawConnection(port);
      greedy.socket.pause();
      const frames = Array.from({ length: requests }, (_, id) =>
        frameOf(encodeClientRequest({ id, op: 'get', key, consistency: 'stale' })),
      );
      greedy.socket.write(Buffer.concat(frames));
      // Wait until the server stops serving this connection (no change over 20 checks, bounded).
      let last = -1;
      let steady = 0;
      for (let check = 0; check < 500 && steady < 20; check++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        steady = served === last ? steady + 1 : 0;
        last = served;
      }
      // Unbounded, all 200 (100 MiB) would be served into memory; bounded, only what the limit
      // and the kernel's socket buffers hold.
      expect(served).toBeLessThan(requests / 2);
      greedy.socket.resume();
      await waitFor('every answer once the client reads', () =>
        greedy.answers.length === requests ? true : undefined,
      );
      expect(new Set(greedy.answers.map((answer) => answer.id)).size).toBe(requests);
      expect(greedy.answers.every((answer) => answer.ok && answer.value?.length === value.length)).toBe(true);
      greedy.socket.destroy();
    });
  }, 30_000);

  it('refuses a key that is not valid UTF-8 by id and keeps serving the connection', async () => {
    await withServer({}, async (port) => {
      const connection = await rawConnection(port);
      const request = encodeClientRequest({ id: 5, op: 'put', key: 'caf\u00e9', value: new Uint8Array([1]) });
      const at = Buffer.from(request).indexOf(Buffer.from([0xc3, 0xa9]));
      request.set([0xff, 0xfe], at);
      connection.socket.write(frameOf(request));
      connection.socket.write(frameOf(encodeClientRequest({ id: 6, op: 'get', key: 'absent', consistency: 'stale' })));
      await waitFor('both answers', () => (connection.answers.length === 2 ? true : undefined));
      expect(connection.answers.find((answer) => answer.id === 5)).toMatchObject({
        ok: false,
        code: 'DRAM_ERR_BAD_REQUEST',
      });
      expect(connection.answers.find((answer) => answer.id === 6)).toMatchObject({ code: 'DRAM_ERR_KEY_NOT_FOUND' });
      expect(connection.closed()).toBe(false);
      // Nothing was stored under the mended key.
      expect(kvModel(node, placement.groupOf('caf\uFFFD\uFFFD')).get('caf\uFFFD\uFFFD')).toBeUndefined();
      connection.socket.destroy();
    });
  });
});
