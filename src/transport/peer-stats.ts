// What the peer transport counts, per peer and for the whole transport, and the shape `stats()`
// answers with (src/node/ turns it into metrics, docs/metrics.md). Plain data; the counters are
// written by the dialer (src/transport/dialer.ts), the acceptor (acceptor.ts) and the transport
// itself (peer-transport.ts), each counting what it saw.

import type { NodeId } from '../base/ids.ts';

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

/** The counted part of one peer's stats (the rest is read from its connection and queue). */
export type PeerCounters = {
  -readonly [K in keyof PeerStats as K extends 'connected' | 'queuedFrames' | 'queuedBytes' ? never : K]: number;
};

/** The transport-wide counters of `TransportStats`. */
export type TransportCounters = {
  -readonly [K in keyof TransportStats as K extends 'peers' ? never : K]: number;
};

export function newPeerCounters(): PeerCounters {
  return {
    framesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    framesDroppedQueueFull: 0,
    framesDroppedOverLimits: 0,
    framesDroppedOnStop: 0,
    reconnects: 0,
    connectionsEstablished: 0,
  };
}

export function newTransportCounters(): TransportCounters {
  return {
    handshakeFailures: 0,
    connectionsClosedInvalid: 0,
    inboundConnectionsRefused: 0,
    handshakesEvicted: 0,
    framesDroppedUnknownPeer: 0,
  };
}
