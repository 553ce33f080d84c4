// The inbound half of the peer transport: the listening socket and the connections peers (or
// strangers) opened to this node, on which they only ever write batches. Owns the acceptor's side
// of the handshake (our nonce first; check the dialer's cluster, id and proof; answer with our own
// proof), the bound on handshakes still pending (a newcomer over a bound evicts the oldest pending
// one, of its own address, else of the address holding the most, so a flood never evicts a peer's
// fresh connection before the flood's own older ones), discovery of authenticated strangers, and
// the delivery of each authenticated frame to `onBatch`. Invariants: nothing a dialer says is used
// before its proof checked out; an authenticated connection holds at most one slot per peer (a
// newer one replaces it); every message delivered comes from the authenticated peer and is
// addressed to this node; bad input closes the connection, is logged and counted, never thrown.
// Created and driven by PeerTransport (src/transport/peer-transport.ts).

import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import type { NodeId } from '../base/ids.ts';
import { FrameReader, frameHeaderBytes } from '../codec/frame-reader.ts';
import { nonceBytes } from '../codec/wire.ts';
import type { Advertisement, HelloFrame, NetAddress } from '../codec/wire.ts';
import {
  createNonce,
  decodeHello,
  decodePeerFrame,
  helloFrame,
  helloMismatch,
  helloProof,
  proofMatches,
} from './handshake.ts';
import { helloFrameBytesMax, keepAliveInitialDelayMs } from './peer-options.ts';
import type { TransportState } from './transport-state.ts';

/** Under a flood, evictions of pending handshakes are logged at most this often (with a count). */
const evictionLogMs = 1_000;

/** A connection some peer (or stranger) opened to us. `peer` is set once its proof checked out. */
interface Inbound {
  readonly socket: net.Socket;
  readonly reader: FrameReader;
  readonly nonce: Uint8Array;
  readonly remote: string;
  /** The dialer's IP as the kernel reports it; replaces an unspecified advertised host. */
  readonly remoteHost: string;
  peer: NodeId | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

export class Acceptor {
  private readonly state: TransportState;
  /** Adds a discovered peer at its advertised raft address (PeerTransport.setPeer). */
  private readonly addPeer: (id: NodeId, address: NetAddress) => void;
  private readonly server: net.Server;
  private readonly inbound = new Set<Inbound>();
  /** Evictions not logged yet: under a flood they are logged at most once per `evictionLogMs`. */
  private evictionsUnlogged = 0;
  private evictionLoggedMs = -Infinity;

  constructor(state: TransportState, addPeer: (id: NodeId, address: NetAddress) => void) {
    this.state = state;
    this.addPeer = addPeer;
    this.server = this.createServer();
  }

  /** Binds the listening socket; rejects (and the transport is spent) when the address cannot be bound. */
  async listen(): Promise<NetAddress> {
    const { listenHost, listenPort, nodeId } = this.state.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.state.runState = 'stopped';
        reject(error);
      };
      this.server.once('error', onError);
      this.server.listen({ host: listenHost, port: listenPort }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (error) => {
      this.state.logger.error('peer transport server error', { node: nodeId, error: error.message });
    });
    const bound = this.server.address();
    assert(bound !== null && typeof bound === 'object', 'a TCP server has an address object');
    return { host: bound.address, port: bound.port };
  }

  /** Closes the connections a removed peer opened to us. */
  closePeer(id: NodeId): void {
    for (const connection of this.inbound)
      if (connection.peer === id && !connection.closed) this.closeInbound(connection);
  }

  /** At stop: every inbound connection closed, the listening socket too; resolves once the server closed. */
  close(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
    for (const connection of this.inbound) this.closeInbound(connection);
    return serverClosed;
  }

  private createServer(): net.Server {
    const options = this.state.options;
    const serverOptions = { noDelay: true, keepAlive: true, keepAliveInitialDelay: keepAliveInitialDelayMs };
    const onSocket = (socket: net.Socket): void => {
      this.accept(socket);
    };
    const peerTls = options.tls;
    if (peerTls === undefined) return net.createServer(serverOptions, onSocket);
    const server = tls.createServer(
      {
        ...serverOptions,
        ...peerTls,
        requestCert: true,
        rejectUnauthorized: true,
        handshakeTimeout: options.handshakeTimeoutMs,
      },
      onSocket,
    );
    server.on('tlsClientError', (error, socket) => {
      this.state.counters.handshakeFailures++;
      const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
      this.state.logger.warn('inbound TLS handshake failed', { node: options.nodeId, remote, reason: error.message });
    });
    return server;
  }

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    const { options, logger } = this.state;
    if (this.state.runState !== 'running') {
      this.state.counters.inboundConnectionsRefused++;
      logger.warn('inbound connection refused', {
        node: options.nodeId,
        remote,
        reason: `transport ${this.state.runState}`,
      });
      socket.destroy();
      return;
    }
    this.makeRoomForHandshake(socket.remoteAddress ?? '');
    const connection: Inbound = {
      socket,
      reader: new FrameReader(helloFrameBytesMax),
      nonce: createNonce(),
      remote,
      remoteHost: socket.remoteAddress ?? '',
      peer: undefined,
      handshakeTimer: undefined,
      closed: false,
    };
    this.inbound.add(connection);
    connection.handshakeTimer = setTimeout(() => {
      this.refuse(connection, `no handshake within ${options.handshakeTimeoutMs} ms`, undefined);
    }, options.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      this.onData(connection, chunk);
    });
    // The 'close' that follows every error does the clean-up; an error needs no more than that.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.onClose(connection);
    });
    const { clusterId, nodeId } = options;
    socket.write(helloFrame({ clusterId, nodeId, nonce: connection.nonce, proof: new Uint8Array(0) }));
  }

  private onClose(connection: Inbound): void {
    connection.closed = true;
    clearTimeout(connection.handshakeTimer);
    this.inbound.delete(connection);
    // Not when a newer connection from the same peer replaced this one.
    const peer = connection.peer;
    if (
      peer !== undefined &&
      this.state.runState === 'running' &&
      ![...this.inbound].some((other) => other.peer === peer && !other.closed)
    )
      this.state.options.onPeerLost?.(peer);
  }

  /** Evicts the oldest pending handshake when a newcomer from `remoteHost` would break a bound (see the header). */
  private makeRoomForHandshake(remoteHost: string): void {
    const { handshakesPendingMax, handshakesPendingPerAddressMax } = this.state.options;
    const pendingByHost = new Map<string, Inbound[]>();
    let pending = 0;
    for (const connection of this.inbound) {
      if (connection.peer !== undefined || connection.closed) continue;
      pending++;
      const list = pendingByHost.get(connection.remoteHost);
      if (list === undefined) pendingByHost.set(connection.remoteHost, [connection]);
      else list.push(connection);
    }
    let victims = pendingByHost.get(remoteHost);
    if ((victims?.length ?? 0) < handshakesPendingPerAddressMax) {
      if (pending < handshakesPendingMax) return;
      for (const list of pendingByHost.values()) if (list.length > (victims?.length ?? 0)) victims = list;
    }
    const victim = victims?.[0];
    if (victim === undefined) return;
    this.state.counters.handshakesEvicted++;
    this.evictionsUnlogged++;
    const nowMs = performance.now();
    if (nowMs - this.evictionLoggedMs >= evictionLogMs) {
      this.state.logger.warn('pending handshakes evicted for newer connections', {
        node: this.state.options.nodeId,
        evicted: this.evictionsUnlogged,
        lastRemote: victim.remote,
        handshakesPendingMax,
        handshakesPendingPerAddressMax,
      });
      this.evictionsUnlogged = 0;
      this.evictionLoggedMs = nowMs;
    }
    this.closeInbound(victim);
  }

  private onData(connection: Inbound, chunk: Buffer): void {
    if (connection.closed) return;
    const read = connection.reader.push(chunk);
    if (read.kind === 'invalid') {
      this.rejectFrame(connection, read.reason);
      return;
    }
    for (const payload of read.payloads) {
      // The previous frame may have closed this connection, or the host may have stopped us.
      if (connection.socket.destroyed || this.state.runState !== 'running') return;
      if (connection.peer === undefined) this.checkHello(connection, payload);
      else this.deliver(connection, connection.peer, payload);
    }
  }

  private checkHello(connection: Inbound, payload: Uint8Array): void {
    const { nodeId, clusterId, secret, wireLimits, frameBytesMax } = this.state.options;
    const hello = decodeHello(payload, wireLimits);
    if (typeof hello === 'string') {
      this.refuse(connection, hello, undefined);
      return;
    }
    const claimed = hello.nodeId;
    const refusal =
      helloMismatch(hello, clusterId, undefined) ??
      this.strangerRefusal(hello) ??
      this.proofRefusal(hello, connection.nonce);
    if (refusal !== undefined) {
      this.refuse(connection, refusal, claimed);
      return;
    }
    clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = undefined;
    // Authenticated: only now may what the dialer says about itself be used.
    if (hello.advertised !== undefined) this.learn(claimed, hello.advertised, connection.remoteHost);
    connection.peer = claimed;
    connection.reader.setPayloadBytesMax(frameBytesMax);
    const proof = helloProof({ secret, nonce: hello.nonce, clusterId, prover: nodeId, verifier: claimed });
    connection.socket.write(helloFrame({ clusterId, nodeId, nonce: new Uint8Array(0), proof }));
    // A peer keeps one connection to us: a newer one means the older is dead and not yet noticed.
    for (const other of this.inbound) {
      if (other !== connection && other.peer === claimed) {
        other.closed = true;
        other.socket.destroy();
      }
    }
    this.state.logger.info('peer accepted', { node: nodeId, peer: claimed, remote: connection.remote });
  }

  /** Why a dialer that is not (or cannot become) our peer is refused; undefined when it may go on to its proof. */
  private strangerRefusal(hello: HelloFrame): string | undefined {
    const { nodeId, discovery } = this.state.options;
    const { peers, removed } = this.state;
    const claimed = hello.nodeId;
    if (claimed === nodeId) return `node ${claimed} is not a peer of node ${nodeId}`;
    if (removed.has(claimed)) return `node ${claimed} was removed from the cluster`;
    if (peers.has(claimed)) return undefined;
    if (discovery === undefined) return `node ${claimed} is not a peer of node ${nodeId}`;
    if (hello.advertised === undefined)
      return `node ${claimed} is not a peer of node ${nodeId} and advertised no address`;
    if (peers.size >= discovery.peersMax)
      return `node ${claimed} is not a peer of node ${nodeId}, which has peersMax ${discovery.peersMax} peers`;
    return undefined;
  }

  private proofRefusal(hello: HelloFrame, nonce: Uint8Array): string | undefined {
    const { nodeId, clusterId, secret } = this.state.options;
    if (hello.nonce.length !== nonceBytes) return 'dialer hello carries no nonce';
    const expected = helloProof({
      secret,
      nonce,
      clusterId,
      prover: hello.nodeId,
      verifier: nodeId,
      advertised: hello.advertised,
    });
    return proofMatches(expected, hello.proof) ? undefined : 'bad proof (wrong secret?)';
  }

  /** An authenticated dialer's advertisement: a new peer is dialed where it said; the node hears of it either way. */
  private learn(peer: NodeId, advertised: Advertisement, remoteHost: string): void {
    const discovery = this.state.options.discovery;
    if (discovery === undefined) return;
    const resolved: Advertisement = {
      raft: resolveHost(advertised.raft, remoteHost),
      ...(advertised.http === undefined ? {} : { http: resolveHost(advertised.http, remoteHost) }),
    };
    if (!this.state.peers.has(peer)) this.addPeer(peer, resolved.raft);
    discovery.onPeerAdvertised(peer, resolved);
  }

  private deliver(connection: Inbound, from: NodeId, payload: Uint8Array): void {
    const frame = decodePeerFrame(payload, this.state.options.wireLimits);
    if (typeof frame === 'string') {
      this.rejectFrame(connection, frame);
      return;
    }
    if (frame.kind !== 'batch') {
      this.rejectFrame(connection, 'hello after the handshake');
      return;
    }
    const self = this.state.options.nodeId;
    const misaddressed = frame.batch.find(({ message }) => message.from !== from || message.to !== self);
    if (misaddressed !== undefined) {
      this.rejectFrame(
        connection,
        `message from ${misaddressed.message.from} to ${misaddressed.message.to} on a connection from ${from} to ${self}`,
      );
      return;
    }
    const peer = this.state.peers.get(from);
    assert(peer !== undefined, 'an authenticated connection belongs to a known peer');
    peer.counters.framesReceived++;
    peer.counters.bytesReceived += frameHeaderBytes + payload.length;
    peer.lastHeardMs = performance.now();
    this.state.options.onBatch(from, frame.batch);
  }

  private refuse(connection: Inbound, reason: string, claimed: NodeId | undefined): void {
    if (connection.closed) return;
    this.state.counters.handshakeFailures++;
    const fields = { node: this.state.options.nodeId, remote: connection.remote, reason };
    // A removed node that keeps running redials every reconnectDelayMsMax: say so once, not every time.
    const removedLogged = claimed === undefined ? undefined : this.state.removed.get(claimed);
    if (removedLogged !== true)
      this.state.logger.warn(
        'peer handshake refused',
        claimed === undefined ? fields : { ...fields, claimedPeer: claimed },
      );
    if (removedLogged === false && claimed !== undefined) this.state.removed.set(claimed, true);
    this.closeInbound(connection);
  }

  private rejectFrame(connection: Inbound, reason: string): void {
    if (connection.closed) return;
    if (connection.peer === undefined) {
      this.refuse(connection, reason, undefined);
      return;
    }
    this.state.counters.connectionsClosedInvalid++;
    this.state.logger.warn('peer connection closed: bad frame', {
      node: this.state.options.nodeId,
      peer: connection.peer,
      remote: connection.remote,
      reason,
    });
    this.closeInbound(connection);
  }

  /** Marks an inbound connection closed and destroys its socket (its 'close' handler forgets it). */
  private closeInbound(connection: Inbound): void {
    connection.closed = true;
    clearTimeout(connection.handshakeTimer);
    connection.socket.destroy();
  }
}

const unspecifiedHosts: ReadonlySet<string> = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/**
 * A node listening on every interface advertises 0.0.0.0 (or ::), which no one can dial: the
 * address it dialed us from is then the best guess of where it can be reached.
 */
function resolveHost(address: NetAddress, remoteHost: string): NetAddress {
  if (!unspecifiedHosts.has(address.host) || remoteHost.length === 0) return address;
  return {
    host: remoteHost.startsWith('::ffff:') ? remoteHost.slice('::ffff:'.length) : remoteHost,
    port: address.port,
  };
}
