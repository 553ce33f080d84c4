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
// Called by src/node/ (wiring) and the multi-Raft host (`send` once per peer per turn, `onBatch`).

import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import type { NodeId } from '../base/ids.ts';
import { CodecError } from '../codec/validate.ts';
import {
  batchOverLimits,
  clusterIdBytes,
  clusterIdBytesMax,
  decodeFrame,
  encodeBatch,
  encodeHello,
  hostValid,
  nonceBytes,
  protocolVersion,
} from '../codec/wire.ts';
import type { Advertisement, Frame, HelloFrame, PeerBatch, WireLimits } from '../codec/wire.ts';
import { reconnectDelayMs } from './backoff.ts';
import { FrameReader, frameHeaderBytes, frameLengthMax, frameOf } from '../codec/frame-reader.ts';
import { createNonce, helloProof, proofMatches } from './handshake.ts';
import { SendQueue } from './send-queue.ts';

/** A hello is a few hundred bytes; strangers may not make us buffer more than this before proving who they are. */
export const helloFrameBytesMax = 1024;
/**
 * TCP keep-alive probes start after this much silence. Quiescent groups send nothing for long
 * stretches, and without probes a silently vanished peer is noticed only at the next write.
 */
export const keepAliveInitialDelayMs = 10_000;
/** Under a flood, evictions of pending handshakes are logged at most this often (with a count). */
const evictionLogMs = 1_000;
/** The shared secret must be at least this long: a short one is a configuration error. */
export const secretCharsMin = 16;

export type LogFields = Readonly<Record<string, string | number | boolean>>;

export interface TransportLogger {
  info(message: string, fields: LogFields): void;
  warn(message: string, fields: LogFields): void;
  error(message: string, fields: LogFields): void;
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Learning peers from their handshakes (see the file header). */
export interface PeerDiscovery {
  /** Peers this node keeps at most; a stranger beyond it is refused, a known peer may still move. */
  readonly peersMax: number;
  /**
   * After an authenticated hello that carries an advertisement, with unspecified hosts resolved
   * (an unknown peer has been added at its advertised raft address by then; a known one is left
   * where it is: call setPeer to move it). Must not throw.
   */
  readonly onPeerAdvertised: (peer: NodeId, advertised: Advertisement) => void;
}

export interface PeerTls {
  readonly cert: string;
  readonly key: string;
  /** The certificate authority both sides' certificates must chain to. */
  readonly ca: string;
}

export interface PeerTransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** Shared by every node of the cluster; proves membership at the handshake. */
  readonly secret: string;
  readonly listenHost: string;
  /** 0 picks a free port (tests); `start()` answers with the one bound. */
  readonly listenPort: number;
  /** The members known at start; this node's own entry, if listed, is ignored. More come from setPeer() and discovery. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** This node's own addresses, sent in its hello to every peer it dials (and covered by its proof). */
  readonly advertise?: Advertisement;
  /** Accept and learn authenticated dialers that are not peers yet; without it only known peers may connect. */
  readonly discovery?: PeerDiscovery;
  /** Source address for outgoing connections, so a test can partition nodes by source address. */
  readonly localAddress?: string;
  /** Largest frame payload sent or accepted (after the handshake). */
  readonly frameBytesMax: number;
  readonly wireLimits: WireLimits;
  readonly sendQueueFramesMax: number;
  /** Must be at least `frameBytesMax` plus the frame header, so any sendable frame fits. */
  readonly sendQueueBytesMax: number;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
  /** Time allowed from dialing (or accepting) to a completed handshake. */
  readonly handshakeTimeoutMs: number;
  /** Inbound connections not authenticated yet, at once; a newcomer beyond it evicts the oldest (see the header). */
  readonly handshakesPendingMax: number;
  /** Of those, from one remote address. */
  readonly handshakesPendingPerAddressMax: number;
  /** How long `stop()` waits for queued frames to be flushed and connections to close. */
  readonly stopFlushMsMax: number;
  /**
   * Redial a peer we have heard nothing from for this long (0: never). A partition that drops
   * packets leaves TCP connections open but stalled, and TCP's own retransmission backoff then
   * delays recovery by seconds after the partition heals; with groups heartbeating, silence this
   * long means the path is broken, and a fresh connection recovers at once.
   */
  readonly peerSilenceMsMax?: number;
  /** Jitter for reconnect delays, in [0, 1). Defaults to Math.random; tests pass a seeded one. */
  readonly random?: () => number;
  readonly logger: TransportLogger;
  /** Mutual TLS on every peer connection (PEM texts); without it, plain TCP. */
  readonly tls?: PeerTls | undefined;
  /** Called once per received frame, in order per peer. Must not throw: a throw is a host bug and is not caught. */
  readonly onBatch: (from: NodeId, batch: PeerBatch) => void;
  /** An established connection to or from this peer closed while running (a hint that it may be down). */
  readonly onPeerLost?: (peer: NodeId) => void;
}

/** Limits that fit a three-node cluster on one machine; src/node/ sets its own from configuration. */
export const peerTransportLimitsDefault = {
  frameBytesMax: 16 * 1024 * 1024,
  sendQueueFramesMax: 4096,
  sendQueueBytesMax: 64 * 1024 * 1024,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 5_000,
  handshakeTimeoutMs: 2_000,
  stopFlushMsMax: 1_000,
  handshakesPendingMax: 64,
  handshakesPendingPerAddressMax: 8,
} as const;

/** What setPeer() changed. A moved peer is redialed at its new address with its queue kept. */
export type SetPeerResult = 'added' | 'moved' | 'unchanged' | 'self';

/** What removePeer() changed: `unknown` is still remembered as removed (its handshakes are refused). */
export type RemovePeerResult = 'removed' | 'unknown' | 'self';

/** Removed peers remembered at most (to refuse their handshakes); beyond it the oldest is forgotten. */
export const removedPeersMax = 1024;

export type SendResult =
  | { readonly kind: 'queued' }
  | { readonly kind: 'dropped'; readonly reason: 'not_running' | 'unknown_peer' | 'over_limits' | 'frame_too_large' };

export interface PeerStats {
  readonly connected: boolean;
  readonly queuedFrames: number;
  readonly queuedBytes: number;
  readonly framesSent: number;
  /** Frame bytes handed to the socket, headers included. */
  readonly bytesSent: number;
  readonly framesReceived: number;
  readonly bytesReceived: number;
  /** Oldest frames evicted from a full send queue. */
  readonly framesDroppedQueueFull: number;
  /** Frames refused at `send` for breaking the wire limits or `frameBytesMax`. */
  readonly framesDroppedOverLimits: number;
  /** Frames still queued when the transport stopped without a connection to flush them on. */
  readonly framesDroppedOnStop: number;
  /** Dial attempts after a failed or lost connection. */
  readonly reconnects: number;
  readonly connectionsEstablished: number;
}

export interface TransportStats {
  readonly peers: ReadonlyMap<NodeId, PeerStats>;
  /** Handshakes refused, either way (bad proof, cluster, node id, version, timeout, undecodable hello). */
  readonly handshakeFailures: number;
  /** Authenticated connections closed for a bad frame (undecodable, over a limit, misaddressed). */
  readonly connectionsClosedInvalid: number;
  /** Inbound connections refused because the transport was not running. */
  readonly inboundConnectionsRefused: number;
  /** Unauthenticated inbound connections closed to make room for a newer one. */
  readonly handshakesEvicted: number;
  readonly framesDroppedUnknownPeer: number;
}

type Counters = {
  -readonly [K in keyof PeerStats as K extends 'connected' | 'queuedFrames' | 'queuedBytes' ? never : K]: number;
};

/**
 * idle -> connecting -> (TCP up) awaiting_hello -> (our proof sent) awaiting_proof -> (theirs
 * checked) established; `closing` once we destroyed the socket ourselves, until its 'close'.
 */
type DialState = 'idle' | 'connecting' | 'awaiting_hello' | 'awaiting_proof' | 'established' | 'closing';

/** What this node knows about one peer: the outgoing connection, its queue and counters. */
interface Peer {
  readonly id: NodeId;
  address: PeerAddress;
  readonly queue: SendQueue;
  readonly counters: Counters;
  state: DialState;
  socket: net.Socket | undefined;
  reader: FrameReader | undefined;
  /** Our nonce on the current outgoing connection; the acceptor proves itself over it. */
  nonce: Uint8Array;
  handshakeTimer: NodeJS.Timeout | undefined;
  reconnectTimer: NodeJS.Timeout | undefined;
  failedAttempts: number;
  lastError: string;
  /** When a frame from this peer last arrived (performance.now()), for the silence watchdog. */
  lastHeardMs: number;
}

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

type RunState = 'new' | 'running' | 'stopping' | 'stopped';

export class PeerTransport {
  private readonly options: PeerTransportOptions;
  private readonly random: () => number;
  private readonly logger: TransportLogger;
  private readonly peers = new Map<NodeId, Peer>();
  /** Removed peers, oldest first, with whether their refused handshake was logged yet (once is enough). */
  private readonly removed = new Map<NodeId, boolean>();
  private readonly inbound = new Set<Inbound>();
  private readonly server: net.Server;
  private runState: RunState = 'new';
  private stopping: Promise<void> | undefined;
  private silenceWatchdog: NodeJS.Timeout | undefined;
  private handshakeFailures = 0;
  private connectionsClosedInvalid = 0;
  private inboundConnectionsRefused = 0;
  private handshakesEvicted = 0;
  /** Evictions not logged yet: under a flood they are logged at most once per `evictionLogMs`. */
  private evictionsUnlogged = 0;
  private evictionLoggedMs = -Infinity;
  private framesDroppedUnknownPeer = 0;

  constructor(options: PeerTransportOptions) {
    checkOptions(options);
    this.options = options;
    this.random = options.random ?? Math.random;
    this.logger = options.logger;
    for (const [id, address] of options.peers) {
      if (id !== options.nodeId) this.peers.set(id, this.newPeer(id, address));
    }
    const serverOptions = { noDelay: true, keepAlive: true, keepAliveInitialDelay: keepAliveInitialDelayMs };
    const onSocket = (socket: net.Socket): void => {
      this.accept(socket);
    };
    const peerTls = options.tls;
    if (peerTls === undefined) {
      this.server = net.createServer(serverOptions, onSocket);
      return;
    }
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
      this.handshakeFailures++;
      const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
      this.logger.warn('inbound TLS handshake failed', { node: options.nodeId, remote, reason: error.message });
    });
    this.server = server;
  }

  /** Listens, then dials every peer. Rejects (and the instance is spent) when the address cannot be bound. */
  async start(): Promise<PeerAddress> {
    assert(this.runState === 'new', `start() on a ${this.runState} transport`);
    const { listenHost, listenPort } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.runState = 'stopped';
        reject(error);
      };
      this.server.once('error', onError);
      this.server.listen({ host: listenHost, port: listenPort }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (error) => {
      this.logger.error('peer transport server error', { node: this.options.nodeId, error: error.message });
    });
    this.runState = 'running';
    const bound = this.server.address();
    assert(bound !== null && typeof bound === 'object', 'a TCP server has an address object');
    this.logger.info('peer transport listening', { node: this.options.nodeId, host: bound.address, port: bound.port });
    for (const peer of this.peers.values()) {
      peer.lastHeardMs = performance.now();
      this.dial(peer);
    }
    const silenceMsMax = this.options.peerSilenceMsMax ?? 0;
    if (silenceMsMax > 0) {
      this.silenceWatchdog = setInterval(
        () => {
          this.redialSilentPeers(silenceMsMax);
        },
        Math.max(10, Math.floor(silenceMsMax / 4)),
      );
      this.silenceWatchdog.unref();
    }
    return { host: bound.address, port: bound.port };
  }

  private newPeer(id: NodeId, address: PeerAddress): Peer {
    return {
      id,
      address,
      queue: new SendQueue(this.options.sendQueueFramesMax, this.options.sendQueueBytesMax),
      counters: {
        framesSent: 0,
        bytesSent: 0,
        framesReceived: 0,
        bytesReceived: 0,
        framesDroppedQueueFull: 0,
        framesDroppedOverLimits: 0,
        framesDroppedOnStop: 0,
        reconnects: 0,
        connectionsEstablished: 0,
      },
      state: 'idle',
      socket: undefined,
      reader: undefined,
      nonce: new Uint8Array(0),
      handshakeTimer: undefined,
      reconnectTimer: undefined,
      failedAttempts: 0,
      lastError: '',
      lastHeardMs: 0,
    };
  }

  /**
   * Adds a peer, or moves a known one to a new address: its connection is dropped and redialed
   * there (with backoff), its queue kept. A running transport dials a new peer at once.
   */
  setPeer(id: NodeId, address: PeerAddress): SetPeerResult {
    assert(
      Number.isInteger(address.port) && address.port > 0 && address.port <= 0xffff,
      `peer transport: peer ${id} has a bad port ${address.port}`,
    );
    if (id === this.options.nodeId) return 'self';
    // Added back on purpose (src/node/ decides): its handshakes are accepted again.
    this.removed.delete(id);
    const known = this.peers.get(id);
    if (known === undefined) {
      const peer = this.newPeer(id, address);
      this.peers.set(id, peer);
      if (this.runState === 'running') {
        peer.lastHeardMs = performance.now();
        this.dial(peer);
      }
      this.logger.info('peer added', { node: this.options.nodeId, peer: id, host: address.host, port: address.port });
      return 'added';
    }
    if (known.address.host === address.host && known.address.port === address.port) return 'unchanged';
    known.address = address;
    this.logger.info('peer moved', { node: this.options.nodeId, peer: id, host: address.host, port: address.port });
    const socket = known.socket;
    if (socket !== undefined) {
      // The close handler redials, now at the new address.
      known.lastError = `peer moved to ${address.host}:${address.port}`;
      known.state = 'closing';
      socket.destroy();
    }
    return 'moved';
  }

  /**
   * Forgets a peer (it was removed from the cluster): its outgoing connection and the inbound ones
   * it opened are closed, its queued frames dropped, it is not redialed, sends to it are dropped
   * as `unknown_peer`, and its handshakes are refused until setPeer() adds it again.
   */
  removePeer(id: NodeId): RemovePeerResult {
    if (id === this.options.nodeId) return 'self';
    this.removed.delete(id);
    this.removed.set(id, false);
    for (const oldest of this.removed.keys()) {
      if (this.removed.size <= removedPeersMax) break;
      this.removed.delete(oldest);
    }
    for (const connection of this.inbound)
      if (connection.peer === id && !connection.closed) this.closeInbound(connection);
    const peer = this.peers.get(id);
    if (peer === undefined) return 'unknown';
    this.peers.delete(id);
    clearTimeout(peer.reconnectTimer);
    clearTimeout(peer.handshakeTimer);
    peer.reconnectTimer = undefined;
    peer.handshakeTimer = undefined;
    peer.queue.clear();
    // Detached first, so the socket's close handler sees a stale socket and does not redial.
    const socket = peer.socket;
    peer.socket = undefined;
    peer.reader = undefined;
    peer.state = 'idle';
    socket?.destroy();
    this.logger.info('peer removed', { node: this.options.nodeId, peer: id });
    return 'removed';
  }

  /** The address this node dials for each peer. */
  peerAddresses(): ReadonlyMap<NodeId, PeerAddress> {
    return new Map([...this.peers.values()].map((peer) => [peer.id, peer.address]));
  }

  private redialSilentPeers(silenceMsMax: number): void {
    const now = performance.now();
    for (const peer of this.peers.values()) {
      const socket = peer.socket;
      if (peer.state !== 'established' || socket === undefined || now - peer.lastHeardMs < silenceMsMax) continue;
      peer.lastHeardMs = now; // one redial per silence period
      peer.lastError = `nothing heard from the peer for ${Math.round(silenceMsMax)} ms: redialing`;
      peer.state = 'closing';
      socket.destroy(); // the close handler logs it and redials with backoff
    }
  }

  /**
   * Queues everything this node has for `to` in this turn as one frame and writes it when connected.
   * Dropping is an expected outcome (Raft retries), reported as a value and counted. An empty
   * batch is a ping (the host's, between nodes whose groups are all quiet): it is delivered as one.
   */
  send(to: NodeId, batch: PeerBatch): SendResult {
    if (this.runState !== 'running') return { kind: 'dropped', reason: 'not_running' };
    const peer = this.peers.get(to);
    if (peer === undefined) {
      this.framesDroppedUnknownPeer++;
      return { kind: 'dropped', reason: 'unknown_peer' };
    }
    for (const { message } of batch) {
      assert(
        message.from === this.options.nodeId && message.to === to,
        `message ${message.type} from ${message.from} to ${message.to} sent to peer ${to} by node ${this.options.nodeId}`,
      );
    }
    const overLimits = batchOverLimits(batch, this.options.wireLimits);
    const payload = overLimits === undefined ? encodeBatch(batch) : undefined;
    if (payload === undefined || payload.length > this.options.frameBytesMax) {
      peer.counters.framesDroppedOverLimits++;
      const reason =
        overLimits ?? `frame of ${payload?.length ?? 0} bytes exceeds frameBytesMax ${this.options.frameBytesMax}`;
      this.logger.warn('batch dropped: a peer would refuse it', { node: this.options.nodeId, peer: to, reason });
      return { kind: 'dropped', reason: overLimits === undefined ? 'frame_too_large' : 'over_limits' };
    }
    peer.counters.framesDroppedQueueFull += peer.queue.push(frameOf(payload));
    this.flush(peer);
    return { kind: 'queued' };
  }

  /** Flushes what can be flushed within `stopFlushMsMax`, then closes every socket and clears every timer. */
  stop(): Promise<void> {
    if (this.runState === 'new') this.runState = 'stopped';
    if (this.runState === 'stopped') return this.stopping ?? Promise.resolve();
    if (this.stopping !== undefined) return this.stopping;
    this.runState = 'stopping';
    this.stopping = this.shutDown().then(() => {
      this.runState = 'stopped';
      this.logger.info('peer transport stopped', { node: this.options.nodeId });
    });
    return this.stopping;
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const peer of this.peers.values()) {
      peers.set(peer.id, {
        ...peer.counters,
        connected: peer.state === 'established',
        queuedFrames: peer.queue.frames,
        queuedBytes: peer.queue.bytes,
      });
    }
    return {
      peers,
      handshakeFailures: this.handshakeFailures,
      connectionsClosedInvalid: this.connectionsClosedInvalid,
      inboundConnectionsRefused: this.inboundConnectionsRefused,
      handshakesEvicted: this.handshakesEvicted,
      framesDroppedUnknownPeer: this.framesDroppedUnknownPeer,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Outgoing connections (this node dials; it only ever writes batches on them)

  private dial(peer: Peer): void {
    assert(peer.socket === undefined && peer.state === 'idle', `dial of peer ${peer.id} in state ${peer.state}`);
    const { host, port } = peer.address;
    const localAddress = this.options.localAddress;
    const connectOptions = {
      host,
      port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: keepAliveInitialDelayMs,
    };
    const socket = this.connect(localAddress === undefined ? connectOptions : { ...connectOptions, localAddress });
    peer.socket = socket;
    peer.state = 'connecting';
    peer.reader = new FrameReader(helloFrameBytesMax);
    peer.nonce = createNonce();
    peer.handshakeTimer = setTimeout(() => {
      this.abandonDial(peer, socket, `no handshake within ${this.options.handshakeTimeoutMs} ms`);
    }, this.options.handshakeTimeoutMs);
    socket.on('connect', () => {
      if (peer.socket === socket) peer.state = 'awaiting_hello';
    });
    socket.on('data', (chunk: Buffer) => {
      this.onDialedData(peer, socket, chunk);
    });
    socket.on('drain', () => {
      if (peer.socket === socket) this.flush(peer);
    });
    socket.on('error', (error) => {
      if (peer.socket === socket) peer.lastError = error.message;
    });
    socket.on('close', () => {
      this.onDialedClose(peer, socket);
    });
  }

  /** A plain TCP connection, or with `tls` a TLS one presenting this node's certificate and checking the peer's. */
  private connect(options: net.TcpNetConnectOpts): net.Socket {
    const peerTls = this.options.tls;
    if (peerTls === undefined) return net.connect(options);
    const socket = tls.connect({
      ...options,
      ...peerTls,
      rejectUnauthorized: true,
      // The CA is the cluster's own; which node this is, the secret handshake proves.
      checkServerIdentity: () => undefined,
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveInitialDelayMs);
    return socket;
  }

  private onDialedData(peer: Peer, socket: net.Socket, chunk: Buffer): void {
    const reader = peer.reader;
    if (peer.socket !== socket || reader === undefined) return;
    const read = reader.push(chunk);
    if (read.kind === 'invalid') {
      this.abandonDial(peer, socket, `bad frame from acceptor: ${read.reason}`);
      return;
    }
    for (const payload of read.payloads) {
      // Acceptors send two hellos and nothing else: anything more means this is not a dram peer of ours.
      const refusal =
        peer.state === 'awaiting_hello'
          ? this.answerHello(peer, socket, payload)
          : peer.state === 'awaiting_proof'
            ? this.checkAcceptorProof(peer, payload)
            : `acceptor sent a frame in state ${peer.state}`;
      if (refusal !== undefined) {
        this.abandonDial(peer, socket, refusal);
        return;
      }
    }
  }

  /** Checks the acceptor's first hello and answers with our nonce and proof; returns why not when it does not check out. */
  private answerHello(peer: Peer, socket: net.Socket, payload: Uint8Array): string | undefined {
    const hello = this.decodeHello(payload);
    if (typeof hello === 'string') return hello;
    const mismatch = this.helloMismatch(hello, peer.id);
    if (mismatch !== undefined) return mismatch;
    if (hello.nonce.length !== nonceBytes) return 'acceptor hello carries no nonce';
    const { clusterId, nodeId, secret, advertise } = this.options;
    const proof = helloProof({
      secret,
      nonce: hello.nonce,
      clusterId,
      prover: nodeId,
      verifier: peer.id,
      advertised: advertise,
    });
    socket.write(
      frameOf(
        encodeHello({
          version: protocolVersion,
          clusterId,
          nodeId,
          nonce: peer.nonce,
          proof,
          ...(advertise === undefined ? {} : { advertised: advertise }),
        }),
      ),
    );
    peer.state = 'awaiting_proof';
    return undefined;
  }

  /** Checks the acceptor's closing hello; once it proves itself the connection carries our batches. */
  private checkAcceptorProof(peer: Peer, payload: Uint8Array): string | undefined {
    const hello = this.decodeHello(payload);
    if (typeof hello === 'string') return hello;
    const mismatch = this.helloMismatch(hello, peer.id);
    if (mismatch !== undefined) return mismatch;
    const { clusterId, nodeId, secret } = this.options;
    const expected = helloProof({ secret, nonce: peer.nonce, clusterId, prover: peer.id, verifier: nodeId });
    if (!proofMatches(expected, hello.proof)) return 'bad proof from acceptor (wrong secret?)';
    clearTimeout(peer.handshakeTimer);
    peer.handshakeTimer = undefined;
    peer.state = 'established';
    peer.counters.connectionsEstablished++;
    this.logger.info('peer connected', { node: nodeId, peer: peer.id, afterFailedAttempts: peer.failedAttempts });
    peer.failedAttempts = 0;
    this.flush(peer);
    return undefined;
  }

  private abandonDial(peer: Peer, socket: net.Socket, reason: string): void {
    if (peer.socket !== socket) return;
    // A dial that never got through TCP is an unreachable peer, not a failed handshake; the close
    // that follows logs it once per streak of failures rather than once per retry.
    if (peer.state === 'established') this.connectionsClosedInvalid++;
    else if (peer.state !== 'connecting') this.handshakeFailures++;
    if (peer.state !== 'connecting')
      this.logger.warn('peer connection abandoned', { node: this.options.nodeId, peer: peer.id, reason });
    peer.lastError = reason;
    peer.state = 'closing';
    socket.destroy();
  }

  private onDialedClose(peer: Peer, socket: net.Socket): void {
    if (peer.socket !== socket) return;
    clearTimeout(peer.handshakeTimer);
    peer.handshakeTimer = undefined;
    const wasEstablished = peer.state === 'established';
    if (peer.state === 'awaiting_proof') {
      // The acceptor hung up on our proof: it refused us, and its log says why.
      this.handshakeFailures++;
      peer.lastError =
        `closed by the peer during the handshake (refused: wrong secret, cluster or node id?) ${peer.lastError}`.trim();
    }
    peer.socket = undefined;
    peer.reader = undefined;
    peer.state = 'idle';
    if (this.runState !== 'running') return;
    if (wasEstablished) this.options.onPeerLost?.(peer.id);
    peer.failedAttempts = wasEstablished ? 1 : peer.failedAttempts + 1;
    const delayMs = reconnectDelayMs(
      peer.failedAttempts,
      this.options.reconnectDelayMsMin,
      this.options.reconnectDelayMsMax,
      this.random,
    );
    // One line when a connection is lost or a streak of failures starts, not one per retry.
    if (wasEstablished)
      this.logger.warn('peer connection lost', {
        node: this.options.nodeId,
        peer: peer.id,
        error: peer.lastError,
        retryInMs: delayMs,
      });
    else if (peer.failedAttempts === 1)
      this.logger.info('peer unreachable, retrying with backoff', {
        node: this.options.nodeId,
        peer: peer.id,
        error: peer.lastError,
        retryInMs: delayMs,
      });
    peer.lastError = '';
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = undefined;
      if (this.runState !== 'running') return;
      peer.counters.reconnects++;
      this.dial(peer);
    }, delayMs);
  }

  /** Writes queued frames while the socket takes them; the rest waits for 'drain' or the next connection. */
  private flush(peer: Peer): void {
    const socket = peer.socket;
    if (peer.state !== 'established' || socket === undefined) return;
    while (!socket.writableNeedDrain) {
      const frame = peer.queue.shift();
      if (frame === undefined) return;
      socket.write(frame);
      peer.counters.framesSent++;
      peer.counters.bytesSent += frame.length;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Inbound connections (a peer dialed us; it only ever writes batches on them)

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    if (this.runState !== 'running') {
      this.inboundConnectionsRefused++;
      this.logger.warn('inbound connection refused', {
        node: this.options.nodeId,
        remote,
        reason: `transport ${this.runState}`,
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
      this.refuse(connection, `no handshake within ${this.options.handshakeTimeoutMs} ms`, undefined);
    }, this.options.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      this.onInboundData(connection, chunk);
    });
    // The 'close' that follows every error does the clean-up; an error needs no more than that.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      connection.closed = true;
      clearTimeout(connection.handshakeTimer);
      this.inbound.delete(connection);
      // Not when a newer connection from the same peer replaced this one.
      const peer = connection.peer;
      if (
        peer !== undefined &&
        this.runState === 'running' &&
        ![...this.inbound].some((other) => other.peer === peer && !other.closed)
      )
        this.options.onPeerLost?.(peer);
    });
    const { clusterId, nodeId } = this.options;
    socket.write(
      frameOf(
        encodeHello({ version: protocolVersion, clusterId, nodeId, nonce: connection.nonce, proof: new Uint8Array(0) }),
      ),
    );
  }

  /** Evicts the oldest pending handshake when a newcomer from `remoteHost` would break a bound (see the header). */
  private makeRoomForHandshake(remoteHost: string): void {
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
    if ((victims?.length ?? 0) < this.options.handshakesPendingPerAddressMax) {
      if (pending < this.options.handshakesPendingMax) return;
      for (const list of pendingByHost.values()) if (list.length > (victims?.length ?? 0)) victims = list;
    }
    const victim = victims?.[0];
    if (victim === undefined) return;
    this.handshakesEvicted++;
    this.evictionsUnlogged++;
    const nowMs = performance.now();
    if (nowMs - this.evictionLoggedMs >= evictionLogMs) {
      this.logger.warn('pending handshakes evicted for newer connections', {
        node: this.options.nodeId,
        evicted: this.evictionsUnlogged,
        lastRemote: victim.remote,
        handshakesPendingMax: this.options.handshakesPendingMax,
        handshakesPendingPerAddressMax: this.options.handshakesPendingPerAddressMax,
      });
      this.evictionsUnlogged = 0;
      this.evictionLoggedMs = nowMs;
    }
    this.closeInbound(victim);
  }

  private onInboundData(connection: Inbound, chunk: Buffer): void {
    if (connection.closed) return;
    const read = connection.reader.push(chunk);
    if (read.kind === 'invalid') {
      this.rejectFrame(connection, read.reason);
      return;
    }
    for (const payload of read.payloads) {
      // The previous frame may have closed this connection, or the host may have stopped us.
      if (connection.socket.destroyed || this.runState !== 'running') return;
      if (connection.peer === undefined) this.checkHello(connection, payload);
      else this.deliver(connection, connection.peer, payload);
    }
  }

  private checkHello(connection: Inbound, payload: Uint8Array): void {
    const hello = this.decodeHello(payload);
    if (typeof hello === 'string') {
      this.refuse(connection, hello, undefined);
      return;
    }
    const { nodeId, clusterId, secret } = this.options;
    const claimed = hello.nodeId;
    const refusal =
      this.helloMismatch(hello, undefined) ?? this.strangerRefusal(hello) ?? this.proofRefusal(hello, connection.nonce);
    if (refusal !== undefined) {
      this.refuse(connection, refusal, claimed);
      return;
    }
    clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = undefined;
    // Authenticated: only now may what the dialer says about itself be used.
    if (hello.advertised !== undefined) this.learn(claimed, hello.advertised, connection.remoteHost);
    connection.peer = claimed;
    connection.reader.setPayloadBytesMax(this.options.frameBytesMax);
    const proof = helloProof({ secret, nonce: hello.nonce, clusterId, prover: nodeId, verifier: claimed });
    connection.socket.write(
      frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId, nonce: new Uint8Array(0), proof })),
    );
    // A peer keeps one connection to us: a newer one means the older is dead and not yet noticed.
    for (const other of this.inbound) {
      if (other !== connection && other.peer === claimed) {
        other.closed = true;
        other.socket.destroy();
      }
    }
    this.logger.info('peer accepted', { node: nodeId, peer: claimed, remote: connection.remote });
  }

  /** Why a dialer that is not (or cannot become) our peer is refused; undefined when it may go on to its proof. */
  private strangerRefusal(hello: HelloFrame): string | undefined {
    const { nodeId, discovery } = this.options;
    const claimed = hello.nodeId;
    if (claimed === nodeId) return `node ${claimed} is not a peer of node ${nodeId}`;
    if (this.removed.has(claimed)) return `node ${claimed} was removed from the cluster`;
    if (this.peers.has(claimed)) return undefined;
    if (discovery === undefined) return `node ${claimed} is not a peer of node ${nodeId}`;
    if (hello.advertised === undefined)
      return `node ${claimed} is not a peer of node ${nodeId} and advertised no address`;
    if (this.peers.size >= discovery.peersMax)
      return `node ${claimed} is not a peer of node ${nodeId}, which has peersMax ${discovery.peersMax} peers`;
    return undefined;
  }

  private proofRefusal(hello: HelloFrame, nonce: Uint8Array): string | undefined {
    const { nodeId, clusterId, secret } = this.options;
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
    const discovery = this.options.discovery;
    if (discovery === undefined) return;
    const resolved: Advertisement = {
      raft: resolveHost(advertised.raft, remoteHost),
      ...(advertised.http === undefined ? {} : { http: resolveHost(advertised.http, remoteHost) }),
    };
    if (!this.peers.has(peer)) this.setPeer(peer, resolved.raft);
    discovery.onPeerAdvertised(peer, resolved);
  }

  private deliver(connection: Inbound, from: NodeId, payload: Uint8Array): void {
    const frame = this.decode(payload);
    if (typeof frame === 'string') {
      this.rejectFrame(connection, frame);
      return;
    }
    if (frame.kind !== 'batch') {
      this.rejectFrame(connection, 'hello after the handshake');
      return;
    }
    const self = this.options.nodeId;
    const misaddressed = frame.batch.find(({ message }) => message.from !== from || message.to !== self);
    if (misaddressed !== undefined) {
      this.rejectFrame(
        connection,
        `message from ${misaddressed.message.from} to ${misaddressed.message.to} on a connection from ${from} to ${self}`,
      );
      return;
    }
    const counters = this.peers.get(from)?.counters;
    assert(counters !== undefined, 'an authenticated connection belongs to a known peer');
    counters.framesReceived++;
    counters.bytesReceived += frameHeaderBytes + payload.length;
    const peer = this.peers.get(from);
    if (peer !== undefined) peer.lastHeardMs = performance.now();
    this.options.onBatch(from, frame.batch);
  }

  private refuse(connection: Inbound, reason: string, claimed: NodeId | undefined): void {
    if (connection.closed) return;
    this.handshakeFailures++;
    const fields = { node: this.options.nodeId, remote: connection.remote, reason };
    // A removed node that keeps running redials every reconnectDelayMsMax: say so once, not every time.
    const removedLogged = claimed === undefined ? undefined : this.removed.get(claimed);
    if (removedLogged !== true)
      this.logger.warn('peer handshake refused', claimed === undefined ? fields : { ...fields, claimedPeer: claimed });
    if (removedLogged === false && claimed !== undefined) this.removed.set(claimed, true);
    this.closeInbound(connection);
  }

  private rejectFrame(connection: Inbound, reason: string): void {
    if (connection.closed) return;
    if (connection.peer === undefined) {
      this.refuse(connection, reason, undefined);
      return;
    }
    this.connectionsClosedInvalid++;
    this.logger.warn('peer connection closed: bad frame', {
      node: this.options.nodeId,
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

  // -------------------------------------------------------------------------------------------
  // Shared helpers

  private decode(payload: Uint8Array): Frame | string {
    try {
      return decodeFrame(payload, this.options.wireLimits);
    } catch (error) {
      // decodeFrame throws CodecError only; anything else is a bug in the codec and must surface.
      if (error instanceof CodecError) return error.message;
      throw error;
    }
  }

  private decodeHello(payload: Uint8Array): HelloFrame | string {
    const frame = this.decode(payload);
    if (typeof frame === 'string') return `undecodable hello: ${frame}`;
    if (frame.kind !== 'hello') return 'expected a hello first';
    return frame;
  }

  /** Why a hello's version, cluster id or (when `expectedNode` is given) node id is not ours. */
  private helloMismatch(hello: HelloFrame, expectedNode: NodeId | undefined): string | undefined {
    if (hello.version !== protocolVersion) return `protocol version ${hello.version}, expected ${protocolVersion}`;
    if (hello.clusterId !== this.options.clusterId)
      return `cluster id ${JSON.stringify(hello.clusterId)}, expected ${JSON.stringify(this.options.clusterId)}`;
    if (expectedNode !== undefined && hello.nodeId !== expectedNode)
      return `node id ${hello.nodeId}, expected ${expectedNode}`;
    return undefined;
  }

  private async shutDown(): Promise<void> {
    if (this.silenceWatchdog !== undefined) clearInterval(this.silenceWatchdog);
    const serverClosed = new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
    for (const connection of this.inbound) this.closeInbound(connection);
    const closes: Promise<void>[] = [];
    for (const peer of this.peers.values()) {
      clearTimeout(peer.reconnectTimer);
      peer.reconnectTimer = undefined;
      const socket = peer.socket;
      if (socket === undefined) {
        peer.counters.framesDroppedOnStop += peer.queue.clear();
        continue;
      }
      closes.push(
        new Promise((resolve) =>
          socket.once('close', () => {
            resolve();
          }),
        ),
      );
      if (peer.state === 'established') {
        // Hand the whole (bounded) queue to the socket and half-close: the peer reads to the end.
        while (peer.queue.frames > 0) {
          const frame = peer.queue.shift();
          if (frame === undefined) break;
          socket.write(frame);
          peer.counters.framesSent++;
          peer.counters.bytesSent += frame.length;
        }
        socket.end();
      } else {
        peer.counters.framesDroppedOnStop += peer.queue.clear();
        socket.destroy();
      }
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.options.stopFlushMsMax).unref());
    await Promise.race([Promise.all(closes), deadline]);
    for (const peer of this.peers.values()) {
      peer.socket?.destroy();
      clearTimeout(peer.handshakeTimer);
      peer.handshakeTimer = undefined;
    }
    await serverClosed;
  }
}

const unspecifiedHosts: ReadonlySet<string> = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/**
 * A node listening on every interface advertises 0.0.0.0 (or ::), which no one can dial: the
 * address it dialed us from is then the best guess of where it can be reached.
 */
function resolveHost(address: PeerAddress, remoteHost: string): PeerAddress {
  if (!unspecifiedHosts.has(address.host) || remoteHost.length === 0) return address;
  return {
    host: remoteHost.startsWith('::ffff:') ? remoteHost.slice('::ffff:'.length) : remoteHost,
    port: address.port,
  };
}

function checkOptions(options: PeerTransportOptions): void {
  const positive = (value: number, name: string): void => {
    assert(
      Number.isSafeInteger(value) && value > 0,
      `peer transport: ${name} must be a positive integer, got ${value}`,
    );
  };
  positive(options.frameBytesMax, 'frameBytesMax');
  positive(options.sendQueueFramesMax, 'sendQueueFramesMax');
  positive(options.sendQueueBytesMax, 'sendQueueBytesMax');
  positive(options.reconnectDelayMsMin, 'reconnectDelayMsMin');
  positive(options.reconnectDelayMsMax, 'reconnectDelayMsMax');
  positive(options.handshakeTimeoutMs, 'handshakeTimeoutMs');
  positive(options.stopFlushMsMax, 'stopFlushMsMax');
  positive(options.handshakesPendingMax, 'handshakesPendingMax');
  positive(options.handshakesPendingPerAddressMax, 'handshakesPendingPerAddressMax');
  assert(
    options.handshakesPendingPerAddressMax <= options.handshakesPendingMax,
    'peer transport: handshakesPendingPerAddressMax exceeds handshakesPendingMax',
  );
  const { messagesPerFrameMax, entriesPerMessageMax, entryBytesMax, snapshotChunkBytesMax } = options.wireLimits;
  positive(messagesPerFrameMax, 'wireLimits.messagesPerFrameMax');
  positive(entriesPerMessageMax, 'wireLimits.entriesPerMessageMax');
  positive(entryBytesMax, 'wireLimits.entryBytesMax');
  positive(snapshotChunkBytesMax, 'wireLimits.snapshotChunkBytesMax');
  assert(
    options.frameBytesMax <= frameLengthMax - frameHeaderBytes,
    `peer transport: frameBytesMax ${options.frameBytesMax} does not fit the u32 frame header`,
  );
  assert(
    options.frameBytesMax >= helloFrameBytesMax,
    `peer transport: frameBytesMax must be at least ${helloFrameBytesMax}`,
  );
  assert(
    options.sendQueueBytesMax >= options.frameBytesMax + frameHeaderBytes,
    'peer transport: sendQueueBytesMax must hold at least one frame of frameBytesMax',
  );
  assert(
    options.reconnectDelayMsMin <= options.reconnectDelayMsMax,
    'peer transport: reconnectDelayMsMin exceeds reconnectDelayMsMax',
  );
  assert(
    options.secret.length >= secretCharsMin,
    `peer transport: the shared secret must be at least ${secretCharsMin} characters`,
  );
  const clusterBytes = clusterIdBytes(options.clusterId);
  assert(
    clusterBytes > 0 && clusterBytes <= clusterIdBytesMax,
    `peer transport: cluster id must be 1..${clusterIdBytesMax} bytes`,
  );
  assert(
    options.localAddress === undefined || net.isIP(options.localAddress) !== 0,
    `peer transport: localAddress ${options.localAddress ?? ''} is not an IP address`,
  );
  for (const [id, address] of options.peers) {
    assert(
      Number.isInteger(address.port) && address.port > 0 && address.port <= 0xffff,
      `peer transport: peer ${id} has a bad port ${address.port}`,
    );
  }
  if (options.discovery !== undefined) positive(options.discovery.peersMax, 'discovery.peersMax');
  const advertise = options.advertise;
  if (advertise !== undefined) {
    for (const address of [advertise.raft, advertise.http]) {
      assert(
        address === undefined ||
          (hostValid(address.host) && Number.isInteger(address.port) && address.port > 0 && address.port <= 0xffff),
        `peer transport: cannot advertise ${address?.host ?? ''}:${address?.port ?? 0}`,
      );
    }
  }
}
