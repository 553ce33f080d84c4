// A hostile client floods a node's peer port (issue 19 item 2): hundreds of connections held open
// without a word, reopened as soon as they are closed. A restarted peer must still get in: pending
// handshakes are bounded apart from authenticated connections and per address, and a newcomer
// evicts the oldest pending one instead of being refused. A real flood on 127.0.0.0/8, bounded in
// connections held, connections opened in all, and time.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Harness, heartbeatBatch, hostOf, n, waitFor } from './support.ts';

let harness = new Harness();

afterEach(async () => {
  await harness.closeAll();
  harness = new Harness();
});

interface Flood {
  opened(): number;
  stop(): void;
}

/** Holds `held` silent connections to `to` from `from`, reopening each one closed, at most `openedMax` in all. */
function flood(to: { host: string; port: number }, from: string, held: number, openedMax: number): Flood {
  let opened = 0;
  let stopped = false;
  const sockets = new Set<net.Socket>();
  const open = (): void => {
    if (stopped || opened >= openedMax) return;
    opened++;
    const socket = net.connect({ host: to.host, port: to.port, localAddress: from });
    sockets.add(socket);
    // Read (and drop) the acceptor's hello, or the end of a closed connection is never seen.
    socket.resume();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      setImmediate(open);
    });
  };
  for (let k = 0; k < held; k++) open();
  return {
    opened: () => opened,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
  };
}

describe('peer port under a flood of unauthenticated connections', () => {
  it('a restarted peer is accepted while 300 silent connections are held and reopened', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses);
    const oneAddress = addresses.get(n(1));
    if (oneAddress === undefined) throw new Error('no address');
    // The flood comes from its own loopback address where Linux allows it (a third "host").
    const floodHost = (await hostOf(2)) === '127.0.0.1' ? '127.0.0.1' : '127.0.0.99';
    const attack = flood(oneAddress, floodHost, 300, 20_000);
    try {
      await waitFor('the flood filling the pending slots', () => one.transport.stats().handshakesEvicted > 300);
      // Node 2 (re)starts now, in the middle of the flood, and must get through to node 1.
      const two = await harness.started(n(2), addresses);
      await waitFor('node 2 accepted by node 1', () => two.transport.stats().peers.get(n(1))?.connected ?? false);
      two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
      await waitFor('a batch from node 2 delivered', () => one.received.some(({ from }) => from === n(2)));
      // The flood was still running all along.
      expect(attack.opened()).toBeGreaterThan(300);
    } finally {
      attack.stop();
    }
  }, 30_000);

  it('a flood from one address cannot hold more than handshakesPendingPerAddressMax pending handshakes', async () => {
    const addresses = await harness.addresses(1);
    const one = await harness.started(n(1), addresses, { handshakesPendingPerAddressMax: 4 });
    const oneAddress = addresses.get(n(1));
    if (oneAddress === undefined) throw new Error('no address');
    const attack = flood(oneAddress, oneAddress.host, 20, 20);
    try {
      await waitFor('twenty connections opened', () => attack.opened() === 20);
      await waitFor('all but four evicted', () => one.transport.stats().handshakesEvicted === 16);
      // Evictions are counted exactly and logged in summary, not once per connection.
      const warnings = one.log.filter((line) => line.message === 'pending handshakes evicted for newer connections');
      expect(warnings.length).toBeLessThan(16);
    } finally {
      attack.stop();
    }
  });
});
