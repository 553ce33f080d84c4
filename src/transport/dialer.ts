// The outgoing half of the peer transport: one connection per peer, dialed by this node, on which
// it only ever writes batches. Owns each peer's dial state machine (see `DialState` in
// transport-state.ts): dial, answer the acceptor's hello with our proof, check the acceptor's
// proof, then write the send queue; on a close, redial with jittered backoff, and redial a peer
// that has been silent too long. Invariants: at most one socket per peer, and a socket's events
// act only while it is still the peer's (`peer.socket === socket`); nothing is written before the
// acceptor proved itself; bytes handed to a socket stay within its high-water mark plus one frame.
// Created and driven by PeerTransport (src/transport/peer-transport.ts).

import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { assert } from '../base/assert.ts';
import { FrameReader } from '../codec/frame-reader.ts';
import { nonceBytes, type NetAddress } from '../codec/wire.ts';
import { reconnectDelayMs } from './backoff.ts';
import { createNonce, decodeHello, helloFrame, helloMismatch, helloProof, proofMatches } from './handshake.ts';
import { helloFrameBytesMax, keepAliveInitialDelayMs } from './peer-options.ts';
import type { Peer, TransportState } from './transport-state.ts';

export class Dialer {
  private readonly state: TransportState;
  private readonly random: () => number;

  constructor(state: TransportState, random: () => number) {
    this.state = state;
    this.random = random;
  }

  dial(peer: Peer): void {
    assert(peer.socket === undefined && peer.state === 'idle', `dial of peer ${peer.id} in state ${peer.state}`);
    const { host, port } = peer.address;
    const { localAddress, handshakeTimeoutMs } = this.state.options;
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
      this.abandon(peer, socket, `no handshake within ${handshakeTimeoutMs} ms`);
    }, handshakeTimeoutMs);
    socket.on('connect', () => {
      if (peer.socket === socket) peer.state = 'awaiting_hello';
    });
    socket.on('data', (chunk: Buffer) => {
      this.onData(peer, socket, chunk);
    });
    socket.on('drain', () => {
      if (peer.socket === socket) this.flush(peer);
    });
    socket.on('error', (error) => {
      if (peer.socket === socket) peer.lastError = error.message;
    });
    socket.on('close', () => {
      this.onClose(peer, socket);
    });
  }

  /** Writes queued frames while the socket takes them; the rest waits for 'drain' or the next connection. */
  flush(peer: Peer): void {
    const socket = peer.socket;
    if (peer.state !== 'established' || socket === undefined) return;
    writeQueued(peer, socket, () => socket.writableNeedDrain);
  }

  /** Moves a peer to a new address: its connection, if any, is closed and redialed there by the close handler. */
  move(peer: Peer, address: NetAddress): void {
    peer.address = address;
    const socket = peer.socket;
    if (socket === undefined) return;
    peer.lastError = `peer moved to ${address.host}:${address.port}`;
    peer.state = 'closing';
    socket.destroy();
  }

  /** Forgets a removed peer: no timer left, its queue dropped, its socket closed without a redial. */
  forget(peer: Peer): void {
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
  }

  redialSilentPeers(silenceMsMax: number): void {
    const now = performance.now();
    for (const peer of this.state.peers.values()) {
      const socket = peer.socket;
      if (peer.state !== 'established' || socket === undefined || now - peer.lastHeardMs < silenceMsMax) continue;
      peer.lastHeardMs = now; // one redial per silence period
      peer.lastError = `nothing heard from the peer for ${Math.round(silenceMsMax)} ms: redialing`;
      peer.state = 'closing';
      socket.destroy(); // the close handler logs it and redials with backoff
    }
  }

  /**
   * At stop: hands each established connection its whole (bounded) queue and half-closes it (the
   * peer reads to the end); drops the queues of the others. Resolves once every socket closed.
   */
  closeAll(): Promise<void> {
    const closes: Promise<void>[] = [];
    for (const peer of this.state.peers.values()) {
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
        writeQueued(peer, socket, () => false);
        socket.end();
      } else {
        peer.counters.framesDroppedOnStop += peer.queue.clear();
        socket.destroy();
      }
    }
    return Promise.all(closes).then(() => undefined);
  }

  /** After stop's flush deadline: whatever is still open is destroyed. */
  destroyAll(): void {
    for (const peer of this.state.peers.values()) {
      peer.socket?.destroy();
      clearTimeout(peer.handshakeTimer);
      peer.handshakeTimer = undefined;
    }
  }

  /** A plain TCP connection, or with `tls` a TLS one presenting this node's certificate and checking the peer's. */
  private connect(options: net.TcpNetConnectOpts): net.Socket {
    const peerTls = this.state.options.tls;
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

  private onData(peer: Peer, socket: net.Socket, chunk: Buffer): void {
    const reader = peer.reader;
    if (peer.socket !== socket || reader === undefined) return;
    const read = reader.push(chunk);
    if (read.kind === 'invalid') {
      this.abandon(peer, socket, `bad frame from acceptor: ${read.reason}`);
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
        this.abandon(peer, socket, refusal);
        return;
      }
    }
  }

  /** Checks the acceptor's first hello and answers with our nonce and proof; returns why not when it does not check out. */
  private answerHello(peer: Peer, socket: net.Socket, payload: Uint8Array): string | undefined {
    const { clusterId, nodeId, secret, advertise, wireLimits } = this.state.options;
    const hello = decodeHello(payload, wireLimits);
    if (typeof hello === 'string') return hello;
    const mismatch = helloMismatch(hello, clusterId, peer.id);
    if (mismatch !== undefined) return mismatch;
    if (hello.nonce.length !== nonceBytes) return 'acceptor hello carries no nonce';
    const proof = helloProof({
      secret,
      nonce: hello.nonce,
      clusterId,
      prover: nodeId,
      verifier: peer.id,
      advertised: advertise,
    });
    socket.write(
      helloFrame({
        clusterId,
        nodeId,
        nonce: peer.nonce,
        proof,
        ...(advertise === undefined ? {} : { advertised: advertise }),
      }),
    );
    peer.state = 'awaiting_proof';
    return undefined;
  }

  /** Checks the acceptor's closing hello; once it proves itself the connection carries our batches. */
  private checkAcceptorProof(peer: Peer, payload: Uint8Array): string | undefined {
    const { clusterId, nodeId, secret, wireLimits } = this.state.options;
    const hello = decodeHello(payload, wireLimits);
    if (typeof hello === 'string') return hello;
    const mismatch = helloMismatch(hello, clusterId, peer.id);
    if (mismatch !== undefined) return mismatch;
    const expected = helloProof({ secret, nonce: peer.nonce, clusterId, prover: peer.id, verifier: nodeId });
    if (!proofMatches(expected, hello.proof)) return 'bad proof from acceptor (wrong secret?)';
    clearTimeout(peer.handshakeTimer);
    peer.handshakeTimer = undefined;
    peer.state = 'established';
    peer.counters.connectionsEstablished++;
    this.state.logger.info('peer connected', {
      node: nodeId,
      peer: peer.id,
      afterFailedAttempts: peer.failedAttempts,
    });
    peer.failedAttempts = 0;
    this.flush(peer);
    return undefined;
  }

  private abandon(peer: Peer, socket: net.Socket, reason: string): void {
    if (peer.socket !== socket) return;
    // A dial that never got through TCP is an unreachable peer, not a failed handshake; the close
    // that follows logs it once per streak of failures rather than once per retry.
    if (peer.state === 'established') this.state.counters.connectionsClosedInvalid++;
    else if (peer.state !== 'connecting') this.state.counters.handshakeFailures++;
    if (peer.state !== 'connecting')
      this.state.logger.warn('peer connection abandoned', { node: this.state.options.nodeId, peer: peer.id, reason });
    peer.lastError = reason;
    peer.state = 'closing';
    socket.destroy();
  }

  private onClose(peer: Peer, socket: net.Socket): void {
    if (peer.socket !== socket) return;
    clearTimeout(peer.handshakeTimer);
    peer.handshakeTimer = undefined;
    const wasEstablished = peer.state === 'established';
    if (peer.state === 'awaiting_proof') {
      // The acceptor hung up on our proof: it refused us, and its log says why.
      this.state.counters.handshakeFailures++;
      peer.lastError =
        `closed by the peer during the handshake (refused: wrong secret, cluster or node id?) ${peer.lastError}`.trim();
    }
    peer.socket = undefined;
    peer.reader = undefined;
    peer.state = 'idle';
    if (this.state.runState !== 'running') return;
    if (wasEstablished) this.state.options.onPeerLost?.(peer.id);
    peer.failedAttempts = wasEstablished ? 1 : peer.failedAttempts + 1;
    const { reconnectDelayMsMin, reconnectDelayMsMax } = this.state.options;
    const delayMs = reconnectDelayMs(peer.failedAttempts, reconnectDelayMsMin, reconnectDelayMsMax, this.random);
    this.logClose(peer, wasEstablished, delayMs);
    peer.lastError = '';
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = undefined;
      if (this.state.runState !== 'running') return;
      peer.counters.reconnects++;
      this.dial(peer);
    }, delayMs);
  }

  /** One line when a connection is lost or a streak of failures starts, not one per retry. */
  private logClose(peer: Peer, wasEstablished: boolean, retryInMs: number): void {
    const fields = { node: this.state.options.nodeId, peer: peer.id, error: peer.lastError, retryInMs };
    if (wasEstablished) this.state.logger.warn('peer connection lost', fields);
    else if (peer.failedAttempts === 1) this.state.logger.info('peer unreachable, retrying with backoff', fields);
  }
}

/** Hands queued frames to the socket, counted as sent, until the queue is empty or `full()` says stop. */
function writeQueued(peer: Peer, socket: net.Socket, full: () => boolean): void {
  while (!full()) {
    const frame = peer.queue.shift();
    if (frame === undefined) return;
    socket.write(frame);
    peer.counters.framesSent++;
    peer.counters.bytesSent += frame.length;
  }
}
