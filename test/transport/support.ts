// Helpers for the peer transport tests: per-node loopback addresses, free ports, a recording
// logger, transports that clean up after themselves, raw sockets that speak (or garble) the
// protocol, and a bounded wait. Every wait has a deadline and a bounded number of polls, and no
// test asserts on how long anything took.

import net from 'node:net';
import type { GroupId, LogIndex, NodeId, Term } from '../../src/base/ids.ts';
import { decodeFrame, encodeHello, protocolVersion } from '../../src/codec/wire.ts';
import type { GroupMessage, HelloFrame, PeerBatch, WireLimits } from '../../src/codec/wire.ts';
import type { Message, MessageType } from '../../src/raft/types.ts';
import { FrameReader, frameOf } from '../../src/codec/frame-reader.ts';
import { createNonce, helloProof } from '../../src/transport/handshake.ts';
import { PeerTransport } from '../../src/transport/peer-transport.ts';
import type { NetAddress } from '../../src/codec/wire.ts';
import type { LogFields, PeerTransportOptions, TransportLogger } from '../../src/transport/peer-options.ts';
import { eventually } from '../support/poll.ts';

export const clusterId = 'test-cluster';
export const secret = 'correct horse battery staple';
export const wireLimits: WireLimits = {
  messagesPerFrameMax: 64,
  entriesPerMessageMax: 16,
  entryBytesMax: 1024,
  snapshotChunkBytesMax: 4096,
};
export const frameBytesMax = 64 * 1024;

export const n = (value: number): NodeId => value as NodeId;
export const g = (value: number): GroupId => value as GroupId;

const pollIntervalMs = 5;
const waitMsMax = 5_000;

/** Polls `condition` until it holds; fails (does not hang) after a bounded number of polls. */
export function waitFor(what: string, condition: () => boolean): Promise<boolean> {
  return eventually(what, condition, { tries: waitMsMax / pollIntervalMs, everyMs: pollIntervalMs });
}

/** Lets pending socket events run, for checks that something did NOT happen. */
export async function settle(rounds = 20): Promise<void> {
  for (let round = 0; round < rounds; round++) await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
}

let aliasesWork: boolean | undefined;

/** Node k's own loopback address (127.0.0.(10+k)) where Linux gives us the whole of 127/8, else 127.0.0.1. */
export async function hostOf(node: number): Promise<string> {
  aliasesWork ??= await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen(0, '127.0.0.2', () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
  return aliasesWork ? `127.0.0.${10 + node}` : '127.0.0.1';
}

export async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields;
}

export function recordingLogger(lines: LogLine[]): TransportLogger {
  return {
    info: (message, fields) => lines.push({ level: 'info', message, fields }),
    warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
    error: (message, fields) => lines.push({ level: 'error', message, fields }),
  };
}

export interface Received {
  readonly from: NodeId;
  readonly batch: PeerBatch;
}

/** One node under test: its transport, what it received and what it logged. */
export interface TestNode {
  readonly id: NodeId;
  readonly address: NetAddress;
  readonly transport: PeerTransport;
  readonly received: Received[];
  readonly log: LogLine[];
}

/** Tracks everything a test opened so `closeAll` can release it whatever happened. */
export class Harness {
  private readonly transports: PeerTransport[] = [];
  private readonly sockets: net.Socket[] = [];
  private readonly servers: net.Server[] = [];

  /** Addresses for nodes 1..count, each on its own loopback address where possible. */
  async addresses(count: number): Promise<Map<NodeId, NetAddress>> {
    const addresses = new Map<NodeId, NetAddress>();
    for (let k = 1; k <= count; k++) {
      const host = await hostOf(k);
      addresses.set(n(k), { host, port: await freePort(host) });
    }
    return addresses;
  }

  /** Builds (not starts) node `id` of the cluster at `addresses`; `overrides` model misconfigured nodes. */
  node(
    id: NodeId,
    addresses: ReadonlyMap<NodeId, NetAddress>,
    overrides: Partial<PeerTransportOptions> = {},
  ): TestNode {
    const address = addresses.get(id);
    if (address === undefined) throw new Error(`no address for node ${id}`);
    const received: Received[] = [];
    const log: LogLine[] = [];
    const transport = new PeerTransport({
      nodeId: id,
      clusterId,
      secret,
      listenHost: address.host,
      listenPort: address.port,
      // This node's own entry stays in: the transport ignores it, as src/node/ config lists every member.
      peers: addresses,
      localAddress: address.host,
      frameBytesMax,
      wireLimits,
      sendQueueFramesMax: 8,
      sendQueueBytesMax: 1024 * 1024,
      reconnectDelayMsMin: 5,
      reconnectDelayMsMax: 50,
      handshakeTimeoutMs: 2_000,
      stopFlushMsMax: 1_000,
      handshakesPendingMax: 16,
      handshakesPendingPerAddressMax: 4,
      random: () => 0.5,
      logger: recordingLogger(log),
      onBatch: (from, batch) => received.push({ from, batch }),
      ...overrides,
    });
    this.transports.push(transport);
    return { id, address, transport, received, log };
  }

  async started(
    id: NodeId,
    addresses: ReadonlyMap<NodeId, NetAddress>,
    overrides: Partial<PeerTransportOptions> = {},
  ): Promise<TestNode> {
    const node = this.node(id, addresses, overrides);
    await node.transport.start();
    return node;
  }

  track<T extends net.Socket | net.Server>(handle: T): T {
    if (handle instanceof net.Socket) this.sockets.push(handle);
    else this.servers.push(handle);
    return handle;
  }

  async closeAll(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await Promise.all(this.transports.map((transport) => transport.stop()));
  }
}

/** A raw TCP client that records the frames the acceptor sends and whether it was closed. */
export interface RawClient {
  readonly socket: net.Socket;
  readonly hellos: HelloFrame[];
  closed: boolean;
}

export async function rawClient(harness: Harness, to: NetAddress, localAddress: string): Promise<RawClient> {
  const socket = harness.track(net.connect({ host: to.host, port: to.port, localAddress }));
  const client: RawClient = { socket, hellos: [], closed: false };
  const reader = new FrameReader(frameBytesMax);
  socket.on('data', (chunk: Buffer) => {
    const read = reader.push(chunk);
    if (read.kind === 'frames') {
      for (const payload of read.payloads) {
        const frame = decodeFrame(payload, wireLimits);
        if (frame.kind === 'hello') client.hellos.push(frame);
      }
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    client.closed = true;
  });
  await waitFor('the acceptor hello', () => client.hellos.length > 0);
  return client;
}

/** Completes the handshake as node `as` would (with the given cluster and secret) and waits for the verdict. */
export async function rawHandshake(
  client: RawClient,
  as: NodeId,
  options: { readonly clusterId?: string; readonly secret?: string; readonly version?: number } = {},
): Promise<void> {
  const acceptorHello = client.hellos[0];
  if (acceptorHello === undefined) throw new Error('no acceptor hello');
  const cluster = options.clusterId ?? clusterId;
  const proof = helloProof({
    secret: options.secret ?? secret,
    nonce: acceptorHello.nonce,
    clusterId: cluster,
    prover: as,
    verifier: acceptorHello.nodeId,
  });
  client.socket.write(
    frameOf(
      encodeHello({
        version: options.version ?? protocolVersion,
        clusterId: cluster,
        nodeId: as,
        nonce: createNonce(),
        proof,
      }),
    ),
  );
  await waitFor('the handshake verdict', () => client.hellos.length > 1 || client.closed);
}

/** A raw TCP server playing node `as` on the acceptor's side of the handshake, proving itself with `secret`. */
export interface RawAcceptor {
  readonly sockets: net.Socket[];
  readonly batches: PeerBatch[];
  /** Frames that arrived before the handshake completed, or after a refused one. */
  readonly strayFrames: number;
  ended: boolean;
}

export async function rawAcceptor(
  harness: Harness,
  at: NetAddress,
  as: NodeId,
  proverSecret: string,
): Promise<RawAcceptor> {
  const acceptor = { sockets: [] as net.Socket[], batches: [] as PeerBatch[], strayFrames: 0, ended: false };
  const server = harness.track(
    net.createServer((socket) => {
      harness.track(socket);
      acceptor.sockets.push(socket);
      const nonce = createNonce();
      const reader = new FrameReader(frameBytesMax);
      let authenticated = false;
      socket.on('data', (chunk: Buffer) => {
        const read = reader.push(chunk);
        if (read.kind === 'invalid') throw new Error(read.reason);
        for (const payload of read.payloads) {
          const frame = decodeFrame(payload, wireLimits);
          if (frame.kind === 'batch' && authenticated) acceptor.batches.push(frame.batch);
          else if (frame.kind === 'hello' && !authenticated) {
            authenticated = true;
            const proof = helloProof({
              secret: proverSecret,
              nonce: frame.nonce,
              clusterId,
              prover: as,
              verifier: frame.nodeId,
            });
            socket.write(
              frameOf(
                encodeHello({ version: protocolVersion, clusterId, nodeId: as, nonce: new Uint8Array(0), proof }),
              ),
            );
          } else acceptor.strayFrames++;
        }
      });
      socket.on('error', () => undefined);
      socket.on('end', () => {
        acceptor.ended = true;
      });
      socket.write(
        frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId: as, nonce, proof: new Uint8Array(0) })),
      );
    }),
  );
  await new Promise<void>((resolve) => server.listen(at.port, at.host, resolve));
  return acceptor;
}

/** One message of every type from `from` to `to`, each in its own group; `marker` tags the Heartbeat. */
export function everyMessageType(from: NodeId, to: NodeId, marker = 0): GroupMessage[] {
  const term = 3 as Term;
  const index = (value: number): LogIndex => value as LogIndex;
  const envelope = { from, to, term };
  const confState = { voters: [from, to], votersOutgoing: [], learners: [n(9)], learnersNext: [], autoLeave: false };
  const messages: Record<MessageType, Message> = {
    RequestVote: {
      type: 'RequestVote',
      ...envelope,
      preVote: true,
      lastLogIndex: index(7),
      lastLogTerm: 2 as Term,
      transfer: false,
    },
    RequestVoteResponse: { type: 'RequestVoteResponse', ...envelope, preVote: false, granted: true },
    AppendEntries: {
      type: 'AppendEntries',
      ...envelope,
      prevLogIndex: index(7),
      prevLogTerm: 2 as Term,
      entries: [
        { kind: 'normal', term, index: index(8), data: Uint8Array.of(1, 2, 3) },
        {
          kind: 'conf',
          term,
          index: index(9),
          change: { changes: [{ type: 'add_learner', node: n(9) }], transition: 'auto' },
        },
      ],
      commit: index(6),
    },
    AppendEntriesResponse: {
      type: 'AppendEntriesResponse',
      ...envelope,
      success: false,
      index: index(7),
      hintIndex: index(5),
      hintTerm: 2 as Term,
    },
    Heartbeat: { type: 'Heartbeat', ...envelope, commit: index(6), readRound: 4, sentTick: marker, quiesce: true },
    HeartbeatResponse: { type: 'HeartbeatResponse', ...envelope, readRound: 4, sentTick: 11 },
    InstallSnapshot: {
      type: 'InstallSnapshot',
      ...envelope,
      meta: { index: index(5), term: 2 as Term, confState },
      offset: 0,
      totalBytes: 3,
      snapshotChecksum: 0x1234_5678,
      chunk: Uint8Array.of(9, 8, 7),
      chunkChecksum: 0xffff_ffff,
    },
    InstallSnapshotResponse: {
      type: 'InstallSnapshotResponse',
      ...envelope,
      snapshotIndex: index(5),
      snapshotTerm: 2 as Term,
      nextOffset: 3,
      needSnapshot: true,
    },
    TimeoutNow: { type: 'TimeoutNow', ...envelope },
    ReadIndex: { type: 'ReadIndex', ...envelope, requestId: 42 },
    ReadIndexResponse: { type: 'ReadIndexResponse', ...envelope, requestId: 42, index: index(6) },
    Propose: { type: 'Propose', ...envelope, payloads: [Uint8Array.of(4, 5), Uint8Array.of()] },
  };
  return Object.values(messages).map((message, k) => ({ group: g(k + 1), message }));
}

/** A one-heartbeat batch whose `sentTick` carries a sequence number, to see which frames arrived. */
export function heartbeatBatch(from: NodeId, to: NodeId, sequence: number): PeerBatch {
  return [
    {
      group: g(1),
      message: {
        type: 'Heartbeat',
        from,
        to,
        term: 1 as Term,
        commit: 0 as LogIndex,
        readRound: 0,
        sentTick: sequence,
        quiesce: false,
      },
    },
  ];
}

export function sequenceOf(received: Received): number {
  const message = received.batch[0]?.message;
  return message?.type === 'Heartbeat' ? message.sentTick : -1;
}

/** Byte arrays as plain arrays, so a received Buffer view compares equal to the Uint8Array sent. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}
