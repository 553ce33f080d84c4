// What the peer transport is built from: its options, the limits a three-node cluster on one
// machine uses, and the check of both at construction (a bad option is a programmer's or an
// operator's error, asserted, never a runtime outcome). Also the transport's constants that other
// code needs to agree with (the hello bound, the secret's minimum length). Pure data and checks;
// used by src/transport/peer-transport.ts (which checks the options once), src/node/ (which builds
// them from configuration) and the tests.

import net from 'node:net';
import { assert } from '../base/assert.ts';
import type { NodeId } from '../base/ids.ts';
import { frameHeaderBytes, frameLengthMax } from '../codec/frame-reader.ts';
import { clusterIdBytes, clusterIdBytesMax, hostValid } from '../codec/wire.ts';
import type { Advertisement, NetAddress, PeerBatch, WireLimits } from '../codec/wire.ts';

/** A hello is a few hundred bytes; strangers may not make us buffer more than this before proving who they are. */
export const helloFrameBytesMax = 1024;
/**
 * TCP keep-alive probes start after this much silence. Quiescent groups send nothing for long
 * stretches, and without probes a silently vanished peer is noticed only at the next write.
 */
export const keepAliveInitialDelayMs = 10_000;
/** The shared secret must be at least this long: a short one is a configuration error. */
export const secretCharsMin = 16;
/** Removed peers remembered at most (to refuse their handshakes); beyond it the oldest is forgotten. */
export const removedPeersMax = 1024;

export type LogFields = Readonly<Record<string, string | number | boolean>>;

export interface TransportLogger {
  info(message: string, fields: LogFields): void;
  warn(message: string, fields: LogFields): void;
  error(message: string, fields: LogFields): void;
}

/** Learning peers from their handshakes (see src/transport/peer-transport.ts). */
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
  readonly peers: ReadonlyMap<NodeId, NetAddress>;
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
  /** Inbound connections not authenticated yet, at once; a newcomer beyond it evicts the oldest (see acceptor.ts). */
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

/** A TCP port a peer can be dialed at (0, "any free port", is for listening only). */
export function portValid(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 0xffff;
}

/** Asserts a peer's address before the transport dials it. */
export function checkPeerAddress(id: NodeId, address: NetAddress): void {
  assert(portValid(address.port), `peer transport: peer ${id} has a bad port ${address.port}`);
}

export function checkOptions(options: PeerTransportOptions): void {
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
  checkSizes(options);
  assert(
    options.secret.length >= secretCharsMin,
    `peer transport: the shared secret must be at least ${secretCharsMin} characters`,
  );
  const clusterBytes = clusterIdBytes(options.clusterId);
  assert(
    clusterBytes > 0 && clusterBytes <= clusterIdBytesMax,
    `peer transport: cluster id must be 1..${clusterIdBytesMax} bytes`,
  );
  checkAddresses(options);
  if (options.discovery !== undefined) positive(options.discovery.peersMax, 'discovery.peersMax');
}

/** The bounds that must fit one another: a frame in its header and in a send queue, the reconnect range. */
function checkSizes(options: PeerTransportOptions): void {
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
}

function checkAddresses(options: PeerTransportOptions): void {
  assert(
    options.localAddress === undefined || net.isIP(options.localAddress) !== 0,
    `peer transport: localAddress ${options.localAddress ?? ''} is not an IP address`,
  );
  for (const [id, address] of options.peers) checkPeerAddress(id, address);
  const advertise = options.advertise;
  if (advertise === undefined) return;
  for (const address of [advertise.raft, advertise.http]) {
    assert(
      address === undefined || (hostValid(address.host) && portValid(address.port)),
      `peer transport: cannot advertise ${address?.host ?? ''}:${address?.port ?? 0}`,
    );
  }
}
