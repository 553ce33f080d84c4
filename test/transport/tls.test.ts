// Mutual TLS on the peer transport (options.tls), with certificates the test makes: two nodes
// whose certificates chain to the cluster's CA exchange batches as over plain TCP; a node with a
// certificate from another CA is refused in both directions (it neither delivers nor receives)
// and the failure is counted; a plain-TCP node cannot talk to a TLS one. Every wait is bounded.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { makeCertificates } from '../support/tls-certs.ts';
import { Harness, heartbeatBatch, n, settle, waitFor } from './support.ts';

const cluster = makeCertificates('cluster');
const stranger = makeCertificates('stranger');
const clusterTls = { cert: cluster.cert, key: cluster.key, ca: cluster.ca };
let harness = new Harness();

afterEach(async () => {
  await harness.closeAll();
  harness = new Harness();
});

afterAll(() => {
  cluster.remove();
  stranger.remove();
});

describe('peer transport over mutual TLS', () => {
  it('carries batches both ways between nodes with certificates of the cluster CA', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses, { tls: clusterTls });
    const two = await harness.started(n(2), addresses, { tls: clusterTls });
    expect(one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1))).toEqual({ kind: 'queued' });
    expect(two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1))).toEqual({ kind: 'queued' });
    await waitFor('both directions delivered', () => one.received.length === 1 && two.received.length === 1);
    expect(one.transport.stats().handshakeFailures).toBe(0);
  });

  it('refuses a node whose certificate another CA signed, in both directions', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses, { tls: clusterTls });
    // The stranger knows the secret and trusts the cluster CA, but its own certificate is not the cluster's.
    const two = await harness.started(n(2), addresses, {
      tls: { cert: stranger.cert, key: stranger.key, ca: cluster.ca },
    });
    await waitFor('the TLS refusal', () => one.transport.stats().handshakeFailures > 0);
    for (let round = 0; round < 3; round++) {
      one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1));
      two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
      await settle();
    }
    expect({ one: one.received.length, two: two.received.length }).toEqual({ one: 0, two: 0 });
    expect(one.log.some((line) => line.message === 'inbound TLS handshake failed')).toBe(true);
  });

  it('does not talk to a plain-TCP node', async () => {
    const addresses = await harness.addresses(2);
    const one = await harness.started(n(1), addresses, { tls: clusterTls });
    const two = await harness.started(n(2), addresses);
    for (let round = 0; round < 3; round++) {
      one.transport.send(n(2), heartbeatBatch(n(1), n(2), 1));
      two.transport.send(n(1), heartbeatBatch(n(2), n(1), 1));
      await settle();
    }
    expect({ one: one.received.length, two: two.received.length }).toEqual({ one: 0, two: 0 });
  });
});
