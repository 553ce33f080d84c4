// The peer transport: one instance per node, the only code in dram that opens sockets. It owns the
// node's listening socket, one long-lived outgoing TCP connection per peer, the inbound connections
// peers opened to it, and a bounded send queue per peer.
//
// Connections are one-way: a node sends its messages for peer P only on the connection it dialed to
// P, and receives P's messages only on the connection P dialed to it. So there is no tie-breaking of
// duplicate connections, and a source-address partition (`localAddress`) cuts exactly one direction.
// Every frame is a u32 big-endian length and a msgpack payload (src/codec/wire.ts); one `send` call
// is one frame.
//
// Handshake (mutual, three hellos): the acceptor speaks first with a random nonce; the dialer checks
// the acceptor's cluster id and node id and answers with its own nonce and a proof, an HMAC of the
// acceptor's nonce under the shared secret (src/transport/handshake.ts); the acceptor checks cluster
// id, that the node is a known peer, and the proof, then closes with its own proof over the dialer's
// nonce. The dialer writes no batch before it has checked that last proof, so nothing goes to an
// impostor, and it knows it was accepted (a refused dialer backs off instead of redialing at once).
// Until a connection is authenticated its frames are limited to `helloFrameBytesMax` and nothing is
// delivered; a peer that fails is logged with the reason and its connection destroyed.
//
// Strangers cannot lock peers out: unauthenticated inbound connections are bounded apart from
// authenticated ones (at most `handshakesPendingMax`, at most `handshakesPendingPerAddressMax`
// from one address, each for at most `handshakeTimeoutMs`), and a newcomer over either bound
// evicts the oldest pending one (of its own address, else of the address holding the most)
// instead of being refused. So a flood from elsewhere never evicts a peer's fresh connection
// before the flood's own older ones, and an authenticated connection holds its own slot: there is
// at most one per peer (a newer one replaces it), outside the pending bound. After the
// handshake every message must come from the authenticated peer and be addressed to this node.
//
// The peer set changes at run time: src/node/ adds or moves a peer with `setPeer` (a member was
// added through the admin API), and with `discovery` on, a dialer that proves the shared secret is
// accepted even when it is not a peer yet (a node joining the cluster): the address its hello
// advertises (covered by its proof) becomes the one this node dials. A known peer is never moved
// here, only reported: the address this node dials may rightly differ from the one the peer
// listens on (a proxy, NAT), and src/node/ knows which addresses the operator configured.
// Nothing a dialer says is used before its proof checked out. `removePeer` forgets a peer (a node
// removed from the cluster): its connections are closed, its queue dropped, it is not redialed,
// and its handshakes are refused from then on (discovery would otherwise take it straight back)
// until src/node/ adds it again with `setPeer`.
//
// Invariants: nothing read from a socket can throw out of the transport (bad input closes the
// connection, is logged and counted); each send queue stays within its frame and byte bounds (the
// oldest frames are dropped, see send-queue.ts); bytes handed to a socket are bounded by its
// writable high-water mark plus one frame (we wait for 'drain'); after `stop()` resolves no socket,
// server or timer of this instance remains. An instance is started once and stopped once.
// With `tls` every connection is mutual TLS first (both certificates must chain to `tls.ca`; host
// names are not checked: the CA is the cluster's own and the handshake above binds the node ids),
// which protects the frames' confidentiality and integrity; the secret handshake runs inside it
// unchanged. A TLS handshake that fails is logged and counted as a handshake failure. Without
// `tls`, frames after the handshake are not protected (run on a trusted network).
//
// The pieces, one concern each: this file holds the peer set, sending, stats and shutdown; the
// dialer (dialer.ts) the outgoing connections, the acceptor (acceptor.ts) the listening socket and
// inbound connections, handshake.ts the hello checks and proofs, peer-options.ts the options and
// their checks, peer-stats.ts the counters, transport-state.ts what the three share.
// Called by src/node/ (wiring) and the multi-Raft host (`send` once per peer per turn, `onBatch`).

import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import type { NodeId } from '../base/ids.ts';
import { frameOf } from '../codec/frame-reader.ts';
import { batchOverLimits, encodeBatch } from '../codec/wire.ts';
import type { NetAddress, PeerBatch } from '../codec/wire.ts';
import { Acceptor } from './acceptor.ts';
import { Dialer } from './dialer.ts';
import { checkOptions, checkPeerAddress, removedPeersMax } from './peer-options.ts';
import type { PeerTransportOptions } from './peer-options.ts';
import { newTransportCounters, type PeerStats, type TransportStats } from './peer-stats.ts';
import { newPeer, type TransportState } from './transport-state.ts';

/** What setPeer() changed. A moved peer is redialed at its new address with its queue kept. */
export type SetPeerResult = 'added' | 'moved' | 'unchanged' | 'self';

/** What removePeer() changed: `unknown` is still remembered as removed (its handshakes are refused). */
export type RemovePeerResult = 'removed' | 'unknown' | 'self';

export type SendResult =
  | { readonly kind: 'queued' }
  | { readonly kind: 'dropped'; readonly reason: 'not_running' | 'unknown_peer' | 'over_limits' | 'frame_too_large' };

export class PeerTransport {
  private readonly state: TransportState;
  private readonly dialer: Dialer;
  private readonly acceptor: Acceptor;
  private stopping: Promise<void> | undefined;
  private silenceWatchdog: NodeJS.Timeout | undefined;

  constructor(options: PeerTransportOptions) {
    checkOptions(options);
    this.state = {
      options,
      logger: options.logger,
      runState: 'new',
      peers: new Map(),
      removed: new Map(),
      counters: newTransportCounters(),
    };
    for (const [id, address] of options.peers) {
      if (id !== options.nodeId) this.state.peers.set(id, newPeer(id, address, options));
    }
    this.dialer = new Dialer(this.state, options.random ?? Math.random);
    this.acceptor = new Acceptor(this.state, (id, address) => {
      this.setPeer(id, address);
    });
  }

  /** Listens, then dials every peer. Rejects (and the instance is spent) when the address cannot be bound. */
  async start(): Promise<NetAddress> {
    assert(this.state.runState === 'new', `start() on a ${this.state.runState} transport`);
    const bound = await this.acceptor.listen();
    this.state.runState = 'running';
    this.state.logger.info('peer transport listening', {
      node: this.state.options.nodeId,
      host: bound.host,
      port: bound.port,
    });
    for (const peer of this.state.peers.values()) {
      peer.lastHeardMs = performance.now();
      this.dialer.dial(peer);
    }
    const silenceMsMax = this.state.options.peerSilenceMsMax ?? 0;
    if (silenceMsMax > 0) {
      this.silenceWatchdog = setInterval(
        () => {
          this.dialer.redialSilentPeers(silenceMsMax);
        },
        Math.max(10, Math.floor(silenceMsMax / 4)),
      );
      this.silenceWatchdog.unref();
    }
    return bound;
  }

  /**
   * Adds a peer, or moves a known one to a new address: its connection is dropped and redialed
   * there (with backoff), its queue kept. A running transport dials a new peer at once.
   */
  setPeer(id: NodeId, address: NetAddress): SetPeerResult {
    checkPeerAddress(id, address);
    const { options, logger, peers } = this.state;
    if (id === options.nodeId) return 'self';
    // Added back on purpose (src/node/ decides): its handshakes are accepted again.
    this.state.removed.delete(id);
    const known = peers.get(id);
    const fields = { node: options.nodeId, peer: id, host: address.host, port: address.port };
    if (known === undefined) {
      const peer = newPeer(id, address, options);
      peers.set(id, peer);
      if (this.state.runState === 'running') {
        peer.lastHeardMs = performance.now();
        this.dialer.dial(peer);
      }
      logger.info('peer added', fields);
      return 'added';
    }
    if (known.address.host === address.host && known.address.port === address.port) return 'unchanged';
    logger.info('peer moved', fields);
    // The close handler redials, now at the new address.
    this.dialer.move(known, address);
    return 'moved';
  }

  /**
   * Forgets a peer (it was removed from the cluster): its outgoing connection and the inbound ones
   * it opened are closed, its queued frames dropped, it is not redialed, sends to it are dropped
   * as `unknown_peer`, and its handshakes are refused until setPeer() adds it again.
   */
  removePeer(id: NodeId): RemovePeerResult {
    const { options, removed, peers } = this.state;
    if (id === options.nodeId) return 'self';
    removed.delete(id);
    removed.set(id, false);
    for (const oldest of removed.keys()) {
      if (removed.size <= removedPeersMax) break;
      removed.delete(oldest);
    }
    this.acceptor.closePeer(id);
    const peer = peers.get(id);
    if (peer === undefined) return 'unknown';
    peers.delete(id);
    this.dialer.forget(peer);
    this.state.logger.info('peer removed', { node: options.nodeId, peer: id });
    return 'removed';
  }

  /** The address this node dials for each peer. */
  peerAddresses(): ReadonlyMap<NodeId, NetAddress> {
    return new Map([...this.state.peers.values()].map((peer) => [peer.id, peer.address]));
  }

  /**
   * Queues everything this node has for `to` in this turn as one frame and writes it when connected.
   * Dropping is an expected outcome (Raft retries), reported as a value and counted. An empty
   * batch is a ping (the host's, between nodes whose groups are all quiet): it is delivered as one.
   */
  send(to: NodeId, batch: PeerBatch): SendResult {
    if (this.state.runState !== 'running') return { kind: 'dropped', reason: 'not_running' };
    const { options, logger } = this.state;
    const peer = this.state.peers.get(to);
    if (peer === undefined) {
      this.state.counters.framesDroppedUnknownPeer++;
      return { kind: 'dropped', reason: 'unknown_peer' };
    }
    for (const { message } of batch) {
      assert(
        message.from === options.nodeId && message.to === to,
        `message ${message.type} from ${message.from} to ${message.to} sent to peer ${to} by node ${options.nodeId}`,
      );
    }
    const overLimits = batchOverLimits(batch, options.wireLimits);
    const payload = overLimits === undefined ? encodeBatch(batch) : undefined;
    if (payload === undefined || payload.length > options.frameBytesMax) {
      peer.counters.framesDroppedOverLimits++;
      const reason =
        overLimits ?? `frame of ${payload?.length ?? 0} bytes exceeds frameBytesMax ${options.frameBytesMax}`;
      logger.warn('batch dropped: a peer would refuse it', { node: options.nodeId, peer: to, reason });
      return { kind: 'dropped', reason: overLimits === undefined ? 'frame_too_large' : 'over_limits' };
    }
    peer.counters.framesDroppedQueueFull += peer.queue.push(frameOf(payload));
    this.dialer.flush(peer);
    return { kind: 'queued' };
  }

  /** Flushes what can be flushed within `stopFlushMsMax`, then closes every socket and clears every timer. */
  stop(): Promise<void> {
    if (this.state.runState === 'new') this.state.runState = 'stopped';
    if (this.state.runState === 'stopped') return this.stopping ?? Promise.resolve();
    if (this.stopping !== undefined) return this.stopping;
    this.state.runState = 'stopping';
    this.stopping = this.shutDown().then(() => {
      this.state.runState = 'stopped';
      this.state.logger.info('peer transport stopped', { node: this.state.options.nodeId });
    });
    return this.stopping;
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const peer of this.state.peers.values()) {
      peers.set(peer.id, {
        ...peer.counters,
        connected: peer.state === 'established',
        queuedFrames: peer.queue.frames,
        queuedBytes: peer.queue.bytes,
      });
    }
    return { peers, ...this.state.counters };
  }

  private async shutDown(): Promise<void> {
    if (this.silenceWatchdog !== undefined) clearInterval(this.silenceWatchdog);
    const serverClosed = this.acceptor.close();
    const closed = this.dialer.closeAll();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.state.options.stopFlushMsMax).unref());
    await Promise.race([closed, deadline]);
    this.dialer.destroyAll();
    await serverClosed;
  }
}
