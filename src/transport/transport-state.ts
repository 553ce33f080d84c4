// The state the peer transport (peer-transport.ts), its dialer (dialer.ts) and its acceptor
// (acceptor.ts) share: the options, the run state, the known and the removed peers and the
// transport-wide counters. One object per transport, created by PeerTransport; the dialer owns
// each peer's outgoing connection, the acceptor the inbound ones, the transport the peer set.

import type net from 'node:net';
import type { NodeId } from '../base/ids.ts';
import type { FrameReader } from '../codec/frame-reader.ts';
import type { NetAddress } from '../codec/wire.ts';
import type { PeerTransportOptions, TransportLogger } from './peer-options.ts';
import { newPeerCounters, type PeerCounters, type TransportCounters } from './peer-stats.ts';
import { SendQueue } from './send-queue.ts';

export type RunState = 'new' | 'running' | 'stopping' | 'stopped';

/**
 * idle -> connecting -> (TCP up) awaiting_hello -> (our proof sent) awaiting_proof -> (theirs
 * checked) established; `closing` once we destroyed the socket ourselves, until its 'close'.
 */
export type DialState = 'idle' | 'connecting' | 'awaiting_hello' | 'awaiting_proof' | 'established' | 'closing';

/** What this node knows about one peer: the outgoing connection, its queue and counters. */
export interface Peer {
  readonly id: NodeId;
  address: NetAddress;
  readonly queue: SendQueue;
  readonly counters: PeerCounters;
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

export interface TransportState {
  readonly options: PeerTransportOptions;
  readonly logger: TransportLogger;
  runState: RunState;
  readonly peers: Map<NodeId, Peer>;
  /** Removed peers, oldest first, with whether their refused handshake was logged yet (once is enough). */
  readonly removed: Map<NodeId, boolean>;
  readonly counters: TransportCounters;
}

export function newPeer(id: NodeId, address: NetAddress, options: PeerTransportOptions): Peer {
  return {
    id,
    address,
    queue: new SendQueue(options.sendQueueFramesMax, options.sendQueueBytesMax),
    counters: newPeerCounters(),
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
