// The peer set at run time, over real loopback sockets: setPeer adds a peer that is dialed at once
// and moves one to a new address; with discovery on, a dialer that is not a peer but proves the
// shared secret is accepted, dialed back at the address its hello advertised and reported to the
// node; a known peer advertising another address is reported but not moved (the node decides:
// the address it dials may rightly be a proxy); a hello that does not authenticate (wrong secret, or an advertisement its proof does not
// cover) adds and reports nothing; peersMax bounds the strangers learned; an advertised 0.0.0.0
// becomes the address the dialer connected from; removePeer forgets a peer (both directions
// closed, not redialed, its handshakes refused and logged once) until setPeer adds it back.
// Every wait is bounded (support.ts).

import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/base/ids.ts';
import { encodeHello, protocolVersion, type Advertisement } from '../../src/codec/wire.ts';
import { frameOf } from '../../src/codec/frame-reader.ts';
import { createNonce, helloProof } from '../../src/transport/handshake.ts';
import type { NetAddress } from '../../src/codec/wire.ts';
import type { PeerDiscovery } from '../../src/transport/peer-options.ts';
import {
  clusterId,
  Harness,
  heartbeatBatch,
  n,
  rawClient,
  secret,
  settle,
  waitFor,
  type RawClient,
  type TestNode,
} from './support.ts';

let harness = new Harness();

afterEach(async () => {
  await harness.closeAll();
  harness = new Harness();
});

interface Learned {
  readonly peer: NodeId;
  readonly advertised: Advertisement;
}

function discovery(learned: Learned[], peersMax = 16): PeerDiscovery {
  return { peersMax, onPeerAdvertised: (peer, advertised) => learned.push({ peer, advertised }) };
}

function only(addresses: ReadonlyMap<NodeId, NetAddress>, ...ids: number[]): Map<NodeId, NetAddress> {
  return new Map([...addresses].filter(([id]) => ids.includes(id)));
}

function address(addresses: ReadonlyMap<NodeId, NetAddress>, id: number): NetAddress {
  const found = addresses.get(n(id));
  if (found === undefined) throw new Error(`no address for node ${id}`);
  return found;
}

function delivered(node: TestNode, from: number): boolean {
  return node.received.some((received) => received.from === n(from));
}

/** Sends the dialer's hello as node `as`, advertising `advertised`, with a proof computed over `provedAdvertisement` and `proverSecret`. */
async function rawHello(
  client: RawClient,
  as: NodeId,
  advertised: Advertisement,
  provedAdvertisement: Advertisement = advertised,
  proverSecret: string = secret,
): Promise<void> {
  const acceptorHello = client.hellos[0];
  if (acceptorHello === undefined) throw new Error('no acceptor hello');
  const proof = helloProof({
    secret: proverSecret,
    nonce: acceptorHello.nonce,
    clusterId,
    prover: as,
    verifier: acceptorHello.nodeId,
    advertised: provedAdvertisement,
  });
  client.socket.write(
    frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId: as, nonce: createNonce(), proof, advertised })),
  );
  await waitFor('the handshake verdict', () => client.hellos.length > 1 || client.closed);
}

describe('peer set at run time', () => {
  it('setPeer adds a peer that is dialed at once, and moves a peer to its new address', async () => {
    const addresses = await harness.addresses(3);
    const one = await harness.started(n(1), only(addresses, 1));
    const two = await harness.started(n(2), only(addresses, 1, 2));
    expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1))).toEqual({
      kind: 'dropped',
      reason: 'unknown_peer',
    });
    expect(one.transport.setPeer(n(2), address(addresses, 2))).toBe('added');
    expect(one.transport.setPeer(n(2), address(addresses, 2))).toBe('unchanged');
    expect(one.transport.setPeer(n(1), address(addresses, 3))).toBe('self');
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 2));
    await waitFor('node 2 to hear from node 1', () => delivered(two, 1));

    // Node 2 comes back at node 3's address: after the move, node 1 reaches it there.
    await two.transport.stop();
    const moved = new Map([
      [n(1), address(addresses, 1)],
      [n(2), address(addresses, 3)],
    ]);
    const twoAgain = await harness.started(n(2), moved);
    expect(one.transport.setPeer(n(2), address(addresses, 3))).toBe('moved');
    expect(one.transport.peerAddresses().get(n(2))).toEqual(address(addresses, 3));
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 3));
    await waitFor('node 2 at its new address to hear from node 1', () => delivered(twoAgain, 1));
  });

  it('with discovery, accepts a new node that proves the secret, dials it back where it advertised, and reports it', async () => {
    const addresses = await harness.addresses(3);
    const learned: Learned[] = [];
    const one = await harness.started(n(1), only(addresses, 1, 2), { discovery: discovery(learned) });
    const advertised: Advertisement = {
      raft: address(addresses, 3),
      http: { host: address(addresses, 3).host, port: 8003 },
    };
    const three = await harness.started(n(3), only(addresses, 1, 3), { advertise: advertised });
    three.transport.send(n(1), heartbeatBatch(n(3), n(1), 1));
    await waitFor('node 1 to accept node 3', () => delivered(one, 3));
    expect(learned).toEqual([{ peer: n(3), advertised }]);
    expect(one.transport.peerAddresses().get(n(3))).toEqual(address(addresses, 3));
    // The acceptor now dials the newcomer too: connections are one-way.
    one.transport.send(n(3), heartbeatBatch(n(1), n(3), 2));
    await waitFor('node 3 to hear from node 1', () => delivered(three, 1));
  });

  it('reports, but does not move, a known peer that advertises another address', async () => {
    const addresses = await harness.addresses(3);
    const learned: Learned[] = [];
    // Node 1 reaches node 2 at node 3's address (think: a proxy in front of node 2).
    const viaProxy = new Map([
      [n(1), address(addresses, 1)],
      [n(2), address(addresses, 3)],
    ]);
    const one = await harness.started(n(1), viaProxy, { discovery: discovery(learned) });
    const two = await harness.started(n(2), only(addresses, 1, 2), { advertise: { raft: address(addresses, 2) } });
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
    await waitFor('node 1 to accept node 2', () => delivered(one, 2));
    expect(learned).toEqual([{ peer: n(2), advertised: { raft: address(addresses, 2) } }]);
    expect(one.transport.peerAddresses().get(n(2))).toEqual(address(addresses, 3));
  });

  it('an advertised 0.0.0.0 becomes the address the dialer connected from', async () => {
    const addresses = await harness.addresses(3);
    const learned: Learned[] = [];
    const one = await harness.started(n(1), only(addresses, 1), { discovery: discovery(learned) });
    const real = address(addresses, 3);
    const three = await harness.started(n(3), only(addresses, 1, 3), {
      advertise: { raft: { host: '0.0.0.0', port: real.port } },
    });
    three.transport.send(n(1), heartbeatBatch(n(3), n(1), 1));
    await waitFor('node 1 to accept node 3', () => delivered(one, 3));
    expect(learned).toEqual([{ peer: n(3), advertised: { raft: real } }]);
    expect(one.transport.peerAddresses().get(n(3))).toEqual(real);
  });

  it('adds and reports nothing for a hello that does not authenticate', async () => {
    const addresses = await harness.addresses(3);
    const learned: Learned[] = [];
    const one = await harness.started(n(1), only(addresses, 1), { discovery: discovery(learned) });
    const claimed: Advertisement = { raft: address(addresses, 3) };
    const elsewhere: Advertisement = { raft: address(addresses, 2) };
    const cases = [
      {
        name: 'wrong secret',
        send: (client: RawClient) => rawHello(client, n(3), claimed, claimed, 'not the cluster secret at all'),
        reason: 'bad proof (wrong secret?)',
      },
      {
        name: 'advertisement not covered by the proof',
        send: (client: RawClient) => rawHello(client, n(3), claimed, elsewhere),
        reason: 'bad proof (wrong secret?)',
      },
      {
        name: 'advertisement added to a proof without one',
        send: (client: RawClient) => rawHelloWithoutAdvertisementInProof(client, n(3), claimed),
        reason: 'bad proof (wrong secret?)',
      },
    ];
    for (const { name, send, reason } of cases) {
      const client = await rawClient(harness, one.address, address(addresses, 3).host);
      await send(client);
      await waitFor(`${name}: the connection closed`, () => client.closed);
      expect({ name, hellos: client.hellos.length }).toEqual({ name, hellos: 1 });
      expect(
        one.log.some((line) => line.message === 'peer handshake refused' && line.fields['reason'] === reason),
      ).toBe(true);
    }
    // A stranger that advertises nothing cannot be dialed back, so it is not accepted either.
    const silent = await rawClient(harness, one.address, address(addresses, 3).host);
    const acceptorHello = silent.hellos[0];
    if (acceptorHello === undefined) throw new Error('no acceptor hello');
    const proof = helloProof({ secret, nonce: acceptorHello.nonce, clusterId, prover: n(3), verifier: n(1) });
    silent.socket.write(
      frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId: n(3), nonce: createNonce(), proof })),
    );
    await waitFor('the stranger without an address refused', () => silent.closed);
    await settle();
    expect(learned).toEqual([]);
    expect([...one.transport.peerAddresses().keys()]).toEqual([]);
    expect(one.transport.stats().handshakeFailures).toBe(cases.length + 1);
  });

  it('learns at most peersMax peers; a known peer may still connect', async () => {
    const addresses = await harness.addresses(3);
    const learned: Learned[] = [];
    const one = await harness.started(n(1), only(addresses, 1, 2), { discovery: discovery(learned, 1) });
    const two = await harness.started(n(2), only(addresses, 1, 2), { advertise: { raft: address(addresses, 2) } });
    const three = await harness.started(n(3), only(addresses, 1, 3), { advertise: { raft: address(addresses, 3) } });
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
    three.transport.send(n(1), heartbeatBatch(n(3), n(1), 1));
    await waitFor('node 2 delivered', () => delivered(one, 2));
    await waitFor('node 3 refused', () =>
      one.log.some((line) => line.fields['reason'] === 'node 3 is not a peer of node 1, which has peersMax 1 peers'),
    );
    expect(delivered(one, 3)).toBe(false);
    expect([...one.transport.peerAddresses().keys()]).toEqual([n(2)]);
    expect(learned.map((entry) => entry.peer)).toEqual([n(2)]);
  });

  it('removePeer closes both directions, drops the queue, never redials, refuses the peer (logged once) until setPeer adds it back', async () => {
    const addresses = await harness.addresses(2);
    const learned: Learned[] = [];
    const one = await harness.started(n(1), addresses, { discovery: discovery(learned) });
    const advertised: Advertisement = { raft: address(addresses, 2) };
    const two = await harness.started(n(2), addresses, { advertise: advertised });
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1));
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
    await waitFor('both directions up', () => delivered(one, 2) && delivered(two, 1));

    expect(one.transport.removePeer(n(1))).toBe('self');
    expect(one.transport.removePeer(n(2))).toBe('removed');
    expect(one.transport.removePeer(n(2))).toBe('unknown');
    expect([...one.transport.stats().peers.keys()]).toEqual([]);
    expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), 2))).toEqual({
      kind: 'dropped',
      reason: 'unknown_peer',
    });
    // Node 2 still counts node 1 as a peer and keeps redialing (every 50 ms at most here): refused each time.
    const refusedBefore = one.transport.stats().handshakeFailures;
    await waitFor('node 2 refused several times', () => one.transport.stats().handshakeFailures >= refusedBefore + 3);
    const received = one.received.length;
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 2));
    await settle();
    expect(one.received.length).toBe(received);
    expect(one.transport.peerAddresses().has(n(2))).toBe(false);
    expect(learned.map((entry) => entry.peer)).toEqual([n(2)]);
    const refusals = one.log.filter(
      (line) =>
        line.message === 'peer handshake refused' && line.fields['reason'] === 'node 2 was removed from the cluster',
    );
    expect(refusals).toHaveLength(1);
    // Nothing of node 1 dials node 2 any more: node 2 hears nothing new from it.
    const heardByTwo = two.received.length;
    await settle();
    expect(two.received.length).toBe(heardByTwo);

    // Added back on purpose: dialed again and accepted again.
    expect(one.transport.setPeer(n(2), address(addresses, 2))).toBe('added');
    one.transport.send(n(2), heartbeatBatch(n(1), n(2), 3));
    two.transport.send(n(1), heartbeatBatch(n(2), n(1), 3));
    await waitFor('both directions up again', () => two.received.length > heardByTwo && one.received.length > received);
  });
});

/** A hello advertising `advertised` whose proof was computed as if it advertised nothing. */
async function rawHelloWithoutAdvertisementInProof(
  client: RawClient,
  as: NodeId,
  advertised: Advertisement,
): Promise<void> {
  const acceptorHello = client.hellos[0];
  if (acceptorHello === undefined) throw new Error('no acceptor hello');
  const proof = helloProof({
    secret,
    nonce: acceptorHello.nonce,
    clusterId,
    prover: as,
    verifier: acceptorHello.nodeId,
  });
  client.socket.write(
    frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId: as, nonce: createNonce(), proof, advertised })),
  );
  await waitFor('the handshake verdict', () => client.hellos.length > 1 || client.closed);
}
