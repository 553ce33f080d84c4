// The peer transport over real loopback sockets: batches of every message type arrive exactly, one
// frame per send; peers with the wrong secret, cluster id or node id are refused, logged and
// deliver nothing; garbage, oversized and misaddressed frames close the offending connection while
// good peers carry on; a peer that stops and comes back is redialed while its queue stays bounded;
// outgoing connections come from the configured local address; stop() flushes what was queued.
// Every wait is bounded (support.ts); nothing asserts on timing.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogIndex, Term } from '../../src/base/ids.ts';
import { encodeBatch, protocolVersion } from '../../src/codec/wire.ts';
import type { PeerBatch } from '../../src/codec/wire.ts';
import { frameOf } from '../../src/codec/frame-reader.ts';
import type { PeerStats } from '../../src/transport/peer-stats.ts';
import {
  Harness,
  secret,
  everyMessageType,
  g,
  heartbeatBatch,
  n,
  plain,
  rawAcceptor,
  rawClient,
  rawHandshake,
  sequenceOf,
  settle,
  waitFor,
} from './support.ts';
import type { TestNode } from './support.ts';

let harness = new Harness();

afterEach(async () => {
  await harness.closeAll();
  harness = new Harness();
});

function connected(node: TestNode, peer: number): boolean {
  return node.transport.stats().peers.get(n(peer))?.connected ?? false;
}

function peerStats(node: TestNode, peer: number): PeerStats {
  const stats = node.transport.stats().peers.get(n(peer));
  if (stats === undefined) throw new Error(`node ${node.id} has no peer ${peer}`);
  return stats;
}

describe('peer transport', () => {
  it('two nodes exchange batches of every message type, one frame per send', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const two = await harness.started(n(2), addresses);
    const sends = 3;
    for (let round = 0; round < sends; round++) {
      expect(one.transport.send(n(2), everyMessageType(n(1), n(2), round))).toEqual({ kind: 'queued' });
      expect(two.transport.send(n(1), everyMessageType(n(2), n(1), round))).toEqual({ kind: 'queued' });
    }
    await waitFor('both directions delivered', () => one.received.length === sends && two.received.length === sends);
    for (let round = 0; round < sends; round++) {
      expect(plain(two.received[round])).toEqual(plain({ from: n(1), batch: everyMessageType(n(1), n(2), round) }));
      expect(plain(one.received[round])).toEqual(plain({ from: n(2), batch: everyMessageType(n(2), n(1), round) }));
    }
    const expectedBytes = sends * (4 + encodeBatch(everyMessageType(n(1), n(2), 0)).length);
    expect(peerStats(one, 2)).toMatchObject({
      framesSent: sends,
      framesReceived: sends,
      bytesSent: expectedBytes,
      connectionsEstablished: 1,
      framesDroppedQueueFull: 0,
    });
    expect(peerStats(two, 1)).toMatchObject({ framesSent: sends, framesReceived: sends, bytesReceived: expectedBytes });
    expect(one.transport.stats().handshakeFailures).toBe(0);
    expect([...one.transport.stats().peers.keys()]).toEqual([n(2)]);
  });

  it("carries an empty batch (the host's ping between quiet nodes) as one", async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const two = await harness.started(n(2), addresses);
    expect(one.transport.send(n(2), [])).toEqual({ kind: 'queued' });
    await waitFor('the ping delivered', () => two.received.length === 1);
    expect(plain(two.received[0])).toEqual(plain({ from: n(1), batch: [] }));
  });

  it('three nodes deliver to each other, each send one frame on the right connection', async () => {
    const addresses = await harness.addresses(3);
    const nodes = [
      await harness.started(n(1), addresses),
      await harness.started(n(2), addresses),
      await harness.started(n(3), addresses),
    ];
    for (const sender of nodes) {
      for (const receiver of nodes) {
        if (sender !== receiver) sender.transport.send(receiver.id, everyMessageType(sender.id, receiver.id));
      }
    }
    await waitFor('six batches', () => nodes.every((node) => node.received.length === 2));
    for (const node of nodes) {
      expect(node.received.map((received) => received.from).sort()).toEqual(
        nodes.filter((other) => other !== node).map((other) => other.id),
      );
      for (const received of node.received)
        expect(plain(received.batch)).toEqual(plain(everyMessageType(received.from, node.id)));
      for (const other of nodes) {
        if (other !== node) expect(peerStats(node, other.id)).toMatchObject({ framesSent: 1, framesReceived: 1 });
      }
    }
  });

  it('outgoing connections come from the configured local address', async () => {
    const addresses = await harness.addresses(2);
    const seen: string[] = [];
    const two = addresses.get(n(2));
    if (two === undefined) throw new Error('no address');
    // Node 2 is a bare server here, so the test sees exactly what the kernel reports.
    const server = harness.track(
      net.createServer((socket) => {
        seen.push(socket.remoteAddress ?? '');
        socket.destroy();
      }),
    );
    await new Promise<void>((resolve) => server.listen(two.port, two.host, resolve));
    const one = await harness.started(n(1), addresses);
    await waitFor('a connection', () => seen.length > 0);
    expect(seen[0]).toBe(one.address.host);
    // And a real acceptor logs the same source address for the authenticated peer.
    const three = await harness.addresses(3);
    const a = await harness.started(n(1), three);
    const b = await harness.started(n(3), three);
    await waitFor('node 3 accepted node 1', () =>
      b.log.some((line) => line.message === 'peer accepted' && line.fields['peer'] === 1),
    );
    const accepted = b.log.find((line) => line.message === 'peer accepted' && line.fields['peer'] === 1);
    expect(String(accepted?.fields['remote'])).toMatch(new RegExp(`^${a.address.host.replaceAll('.', '\\.')}:`));
  });

  it.each([
    {
      name: 'a wrong secret',
      overrides: { secret: 'not the cluster secret at all' },
      reason: 'bad proof (wrong secret?)',
      refusedBy: 'acceptor' as const,
    },
    {
      name: 'an unknown node id',
      overrides: {},
      id: 9,
      reason: 'node 9 is not a peer of node 1',
      refusedBy: 'acceptor' as const,
    },
    {
      name: 'a wrong cluster id',
      overrides: { clusterId: 'other-cluster' },
      reason: 'cluster id "test-cluster", expected "other-cluster"',
      refusedBy: 'dialer' as const,
    },
  ])('a peer with $name is refused, logged and delivers nothing', async ({ overrides, id, reason, refusedBy }) => {
    const addresses = await harness.addresses(3);
    const intruderId = n(id ?? 2);
    const intruderAddresses = new Map([...addresses].filter(([node]) => node !== n(2)));
    const address = addresses.get(n(2));
    if (address === undefined) throw new Error('no address');
    intruderAddresses.set(intruderId, address);
    const one = await harness.started(n(1), addresses);
    const three = await harness.started(n(3), addresses);
    const intruder = await harness.started(intruderId, intruderAddresses, overrides);
    intruder.transport.send(n(1), heartbeatBatch(intruderId, n(1), 1));
    const watcher = refusedBy === 'acceptor' ? one : intruder;
    await waitFor('the refusal to be logged', () => watcher.log.some((line) => line.fields['reason'] === reason));
    await waitFor('several refusals (it keeps retrying)', () => intruder.transport.stats().handshakeFailures >= 2);
    expect(watcher.log.find((line) => line.fields['reason'] === reason)?.level).toBe('warn');
    // The good peer still gets through, and nothing of the intruder's was delivered or counted.
    three.transport.send(n(1), heartbeatBatch(n(3), n(1), 7));
    await waitFor('the good peer delivered', () => one.received.length > 0);
    await settle();
    expect(one.received.map((received) => received.from)).toEqual([n(3)]);
    expect(peerStats(intruder, 1)).toMatchObject({
      connected: false,
      framesSent: 0,
      connectionsEstablished: 0,
      queuedFrames: 1,
    });
    if (refusedBy === 'acceptor') expect(one.transport.stats().handshakeFailures).toBeGreaterThan(0);
    if (intruderId === n(2)) expect(peerStats(one, 2).framesReceived).toBe(0);
  });

  it('a hello with the wrong cluster id is refused by the acceptor too', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const client = await rawClient(harness, one.address, (await harness.addresses(2)).get(n(2))?.host ?? '127.0.0.1');
    await rawHandshake(client, n(2), { clusterId: 'other-cluster' });
    await waitFor('closed', () => client.closed);
    expect(client.hellos).toHaveLength(1);
    expect(
      one.log.some(
        (line) =>
          line.message === 'peer handshake refused' &&
          line.fields['reason'] === 'cluster id "other-cluster", expected "test-cluster"',
      ),
    ).toBe(true);
  });

  it('a hello of a newer protocol version is refused with a reason naming both versions', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const client = await rawClient(harness, one.address, addresses.get(n(2))?.host ?? '127.0.0.1');
    await rawHandshake(client, n(2), { version: protocolVersion + 1 });
    await waitFor('closed', () => client.closed);
    expect(client.hellos).toHaveLength(1);
    expect(one.transport.stats().handshakeFailures).toBeGreaterThan(0);
    const reasons = one.log
      .filter((line) => line.message === 'peer handshake refused')
      .map((line) => line.fields['reason']);
    expect(reasons).toContain(`protocol version ${protocolVersion + 1}, expected ${protocolVersion}`);
  });

  it('garbage, a zero length and oversized lengths close the connection; good peers carry on', async () => {
    // Raw clients speak as node 3, which is a member but not running: a raw client authenticated
    // as node 2 would replace the real node 2's connection (one connection per peer).
    const addresses = await harness.addresses(3);
    const one = await harness.started(n(1), addresses);
    const two = await harness.started(n(2), addresses);
    const local = addresses.get(n(3))?.host ?? '127.0.0.1';
    const attacks: { name: string; bytes: Uint8Array; authenticated: boolean }[] = [
      {
        name: 'garbage before the handshake',
        bytes: frameOf(Uint8Array.of(0xc1, 0xff, 0x00, 0x13)),
        authenticated: false,
      },
      {
        name: 'an oversized length before the handshake',
        bytes: Uint8Array.of(0xff, 0xff, 0xff, 0xff),
        authenticated: false,
      },
      { name: 'a zero length', bytes: Uint8Array.of(0, 0, 0, 0), authenticated: false },
      {
        name: 'garbage after the handshake',
        bytes: frameOf(Uint8Array.of(0x93, 0xc1, 0xc1, 0xc1)),
        authenticated: true,
      },
      {
        name: 'a length over frameBytesMax after the handshake',
        bytes: Uint8Array.of(0x00, 0x01, 0x00, 0x01),
        authenticated: true,
      },
      {
        name: 'a message not from the authenticated peer',
        bytes: frameOf(encodeBatch(heartbeatBatch(n(2), n(1), 1))),
        authenticated: true,
      },
    ];
    for (const attack of attacks) {
      const client = await rawClient(harness, one.address, local);
      if (attack.authenticated) {
        await rawHandshake(client, n(3));
        expect(client.closed, attack.name).toBe(false);
      }
      client.socket.write(attack.bytes);
      await waitFor(`closed after ${attack.name}`, () => client.closed);
    }
    expect(one.transport.stats()).toMatchObject({ handshakeFailures: 3, connectionsClosedInvalid: 3 });
    expect(one.log.filter((line) => line.level === 'warn' && /refused|bad frame/.test(line.message))).toHaveLength(6);
    expect(one.received).toEqual([]);
    // The real node 2 still delivers.
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 5));
    await waitFor('node 2 delivered', () => one.received.length === 1);
    expect(sequenceOf(one.received[0] ?? { from: n(0), batch: [] })).toBe(5);
  });

  it('reports a peer lost when its connections close, and not when the transport itself stops', async () => {
    const addresses = await harness.addresses(2);
    const lost: number[] = [];
    const one = await harness.started(n(1), addresses, { onPeerLost: (peer) => lost.push(peer) });
    const twoLost: number[] = [];
    const two = await harness.started(n(2), addresses, { onPeerLost: (peer) => twoLost.push(peer) });
    // Both directions up: node 1 dials node 2 and node 2 dials node 1.
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 0));
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 0));
    await waitFor('both directions delivered', () => one.received.length === 1 && two.received.length === 1);
    expect(lost).toEqual([]);
    await two.transport.stop();
    await waitFor('node 1 hears that node 2 is gone', () => lost.length > 0);
    expect(new Set(lost)).toEqual(new Set([2]));
    expect(twoLost).toEqual([]);
  });

  it('redials a peer that stops and comes back, keeping the send queue within bounds meanwhile', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const two = await harness.started(n(2), addresses);
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 0));
    await waitFor('first delivery', () => two.received.length === 1);
    await two.transport.stop();
    await waitFor('node 1 notices', () => !connected(one, 2));
    const queueFramesMax = 8;
    const sendsWhileDown = 20;
    for (let sequence = 1; sequence <= sendsWhileDown; sequence++) {
      expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), sequence))).toEqual({ kind: 'queued' });
      expect(peerStats(one, 2).queuedFrames).toBeLessThanOrEqual(queueFramesMax);
    }
    expect(peerStats(one, 2)).toMatchObject({
      queuedFrames: queueFramesMax,
      framesDroppedQueueFull: sendsWhileDown - queueFramesMax,
    });
    await waitFor('a few failed redials', () => peerStats(one, 2).reconnects >= 2);

    const back = await harness.started(n(2), addresses);
    await waitFor('the queued frames', () => back.received.length === queueFramesMax);
    // The oldest frames were the ones dropped: what arrives is the newest, in order.
    expect(back.received.map(sequenceOf)).toEqual(
      Array.from({ length: queueFramesMax }, (_, k) => sendsWhileDown - queueFramesMax + 1 + k),
    );
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 99));
    await waitFor('a fresh send', () => back.received.length === queueFramesMax + 1);
    expect(peerStats(one, 2)).toMatchObject({
      connected: true,
      connectionsEstablished: 2,
      framesSent: 1 + queueFramesMax + 1,
    });
    expect(one.log.some((line) => line.message === 'peer connection lost' && line.fields['peer'] === 2)).toBe(true);
  });

  it('redials a connected peer it has heard nothing from for peerSilenceMsMax, and stays quiet about one that talks', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses, { peerSilenceMsMax: 100 });
    const two = await harness.started(n(2), addresses);
    expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), 0))).toEqual({ kind: 'queued' });
    await waitFor('first connection', () => peerStats(one, 2).connectionsEstablished === 1);
    // Node 2 never sends to node 1: node 1 hears silence and replaces its connection.
    await waitFor('a redial after silence', () => peerStats(one, 2).connectionsEstablished >= 2);
    // Once node 2 talks steadily, node 1 keeps its connection.
    const established = peerStats(one, 2).connectionsEstablished;
    for (let beat = 1; beat <= 30; beat++) {
      two.transport.send(n(1), heartbeatBatch(n(2), n(1), beat));
      await settle(2);
    }
    expect(peerStats(one, 2).connectionsEstablished).toBeLessThanOrEqual(established + 1);
  });

  it('delivers what was sent before the peer first came up', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1));
    await waitFor('a failed dial', () => peerStats(one, 2).reconnects >= 1);
    const two = await harness.started(n(2), addresses);
    await waitFor('delivery', () => two.received.length === 1);
  });

  it('stop() flushes queued frames to connected peers and releases everything', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const two = await harness.started(n(2), addresses);
    await waitFor('connected', () => connected(one, 2));
    for (let sequence = 1; sequence <= 5; sequence++) one.transport.send(n(2), heartbeatBatch(n(1), n(2), sequence));
    await one.transport.stop();
    await waitFor('all five', () => two.received.length === 5);
    expect(two.received.map(sequenceOf)).toEqual([1, 2, 3, 4, 5]);
    expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), 6))).toEqual({ kind: 'dropped', reason: 'not_running' });
    await one.transport.stop(); // idempotent
  });

  it('sends nothing to an acceptor that cannot prove it knows the secret', async () => {
    const addresses = await harness.addresses(2);
    const two = addresses.get(n(2));
    if (two === undefined) throw new Error('no address');
    const impostor = await rawAcceptor(harness, two, n(2), 'an impostor guessing the secret');
    const one = await harness.started(n(1), addresses);
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1));
    await waitFor('the refusal', () =>
      one.log.some((line) => line.fields['reason'] === 'bad proof from acceptor (wrong secret?)'),
    );
    await waitFor('a retry', () => impostor.sockets.length >= 2);
    await settle();
    expect(impostor.batches).toEqual([]);
    expect(peerStats(one, 2)).toMatchObject({ connected: false, framesSent: 0, queuedFrames: 1 });
    expect(one.transport.stats().handshakeFailures).toBeGreaterThan(0);
  });

  it('stop() hands frames still queued behind a slow reader to the socket before closing it', async () => {
    const addresses = await harness.addresses(2);
    const two = addresses.get(n(2));
    if (two === undefined) throw new Error('no address');
    const slow = await rawAcceptor(harness, two, n(2), secret);
    const one = await harness.started(n(1), addresses, { sendQueueFramesMax: 64, sendQueueBytesMax: 8 * 1024 * 1024 });
    await waitFor('connected', () => connected(one, 2));
    for (const socket of slow.sockets) socket.pause();
    // Large frames until the kernel buffers are full and frames wait in our queue (bounded loop).
    const entries = Array.from({ length: 16 }, (_, k) => ({
      kind: 'normal' as const,
      term: 1 as Term,
      index: (k + 1) as LogIndex,
      data: new Uint8Array(1024),
    }));
    const bulky = (sequence: number): PeerBatch => [
      {
        group: g(sequence),
        message: {
          type: 'AppendEntries',
          from: n(1),
          to: n(2),
          term: 1 as Term,
          prevLogIndex: 0 as LogIndex,
          prevLogTerm: 0 as Term,
          entries,
          commit: 0 as LogIndex,
        },
      },
    ];
    let sends = 0;
    while (peerStats(one, 2).queuedFrames < 8 && sends < 5_000) one.transport.send(n(2), bulky(sends++));
    expect(peerStats(one, 2).queuedFrames).toBe(8);
    expect(peerStats(one, 2).framesDroppedQueueFull).toBe(0);
    const stopped = one.transport.stop();
    for (const socket of slow.sockets) socket.resume();
    await stopped;
    await waitFor('the end of the stream', () => slow.ended);
    expect(slow.batches.map((batch) => batch[0]?.group)).toEqual(Array.from({ length: sends }, (_, k) => k));
  });

  it('refuses to send what a peer would refuse, or to a node it does not know', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    expect(one.transport.send(n(7), heartbeatBatch(n(1), n(7), 1))).toEqual({
      kind: 'dropped',
      reason: 'unknown_peer',
    });
    const tooMany = Array.from({ length: 65 }, () => heartbeatBatch(n(1), n(2), 1)).flat();
    expect(one.transport.send(n(2), tooMany)).toEqual({ kind: 'dropped', reason: 'over_limits' });
    // Twenty chunks within snapshotChunkBytesMax, but together over frameBytesMax (64 KiB).
    const chunk = new Uint8Array(4096);
    const confState = { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
    const meta = { index: 1 as LogIndex, term: 1 as Term, confState };
    const big: PeerBatch = Array.from({ length: 20 }, (_, k) => ({
      group: g(k),
      message: {
        type: 'InstallSnapshot',
        from: n(1),
        to: n(2),
        term: 1 as Term,
        meta,
        offset: 0,
        totalBytes: 4096,
        snapshotChecksum: 0,
        chunk,
        chunkChecksum: 0,
      },
    }));
    expect(one.transport.send(n(2), big)).toEqual({ kind: 'dropped', reason: 'frame_too_large' });
    expect(peerStats(one, 2).framesDroppedOverLimits).toBe(2);
    expect(one.transport.stats().framesDroppedUnknownPeer).toBe(1);
    expect(() => one.transport.send(n(2), heartbeatBatch(n(3), n(2), 1))).toThrow(/sent to peer 2 by node 1/);
  });
});
