// The typed client of the binary protocol (docs/ARCHITECTURE.md, "Binary client protocol";
// frames in src/codec/client-wire.ts). One pipelined TCP connection per node, opened on first
// use. With `route: 'leader'` (the default) each key goes to its group's leader: the group by the
// same hash placement the nodes use (src/models/kv-placement.ts, the group count from the options
// or from the first answer), the leader from the `leader` field of answers. With `route: 'any'`
// requests go round robin over the nodes, since every node takes every key (a follower hands a
// write to the leader inside Raft and serves a linearizable read after asking the leader for a
// read index): no routing state, one hop more for a write that lands on a follower. A DRAM_ERR_NOT_LEADER / DRAM_ERR_NO_LEADER /
// DRAM_ERR_NODE_STOPPED answer (definitely not applied) is retried at the hinted leader, or at the next node after a short
// backoff, up to `retriesMax` times; a connection that could not be opened is retried the same
// way (nothing was sent). Everything else, including a connection lost with the request on it
// (DRAM_ERR_CONNECTION_LOST: the write may or may not be applied), is the caller's to handle.
//
// With `token` (a node's --token or --read-token) every connection sends an `auth` frame first;
// a refused token shows as DRAM_ERR_UNAUTHORIZED (or DRAM_ERR_FORBIDDEN) on the requests.
//
// Bounds: every request has a timeout (`requestTimeoutMs`); at most `inFlightMax` requests wait
// for answers on one connection, and a request past that fails at once with
// DRAM_ERR_CLIENT_OVERLOADED without being sent (the server bounds its side too, per connection,
// by not reading further).

import net from 'node:net';
import { asGroupId, type GroupId } from '../base/ids.ts';
import {
  clientResponseBytesMax,
  decodeClientResponse,
  encodeClientRequest,
  type ClientConsistency,
  type ClientRequest,
  type ClientResponse,
} from '../codec/client-wire.ts';
import type { KvClientStamp } from '../codec/kv.ts';
import { createKvPlacement, type KvPlacement } from '../models/kv-placement.ts';
import { FrameReader, frameOf } from '../codec/frame-reader.ts';

export interface DramNodeAddress {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

export interface DramClientOptions {
  readonly nodes: readonly DramNodeAddress[];
  /** Number of KV groups (ids 1..groups); learned from the first answer when absent. */
  readonly groups?: number;
  /** Retries after NOT_LEADER / NO_LEADER / a refused connection (default 8). */
  readonly retriesMax?: number;
  /** Backoff before a retry without a new leader hint, times the attempt number (default 10 ms). */
  readonly retryDelayMs?: number;
  /** Per request, from send to answer (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Requests waiting for an answer on one node's connection (default 10,000). */
  readonly inFlightMax?: number;
  /** 'leader' (default): each key to its group's leader; 'any': round robin over the nodes. */
  readonly route?: 'leader' | 'any';
  /** The nodes' --token (or --read-token: reads only); sent once per connection. */
  readonly token?: string;
}

/** Client-side codes, next to the server's DRAM_ERR_* codes. */
export type DramClientErrorCode =
  | 'DRAM_ERR_CONNECTION_FAILED'
  | 'DRAM_ERR_CONNECTION_LOST'
  | 'DRAM_ERR_CLIENT_TIMEOUT'
  | 'DRAM_ERR_CLIENT_CLOSED'
  | 'DRAM_ERR_CLIENT_OVERLOADED'
  | 'DRAM_ERR_PROTOCOL';

export class DramError extends Error {
  override readonly name = 'DramError';
  /** A server DRAM_ERR_* code (docs/errors.md) or a DramClientErrorCode. */
  readonly code: string;
  readonly index: number;
  readonly shard: number;
  readonly leader: number;

  constructor(
    code: string,
    message: string,
    answer?: { readonly index: number; readonly shard: number; readonly leader: number },
  ) {
    super(message);
    this.code = code;
    this.index = answer?.index ?? 0;
    this.shard = answer?.shard ?? 0;
    this.leader = answer?.leader ?? 0;
  }
}

export interface WriteResult {
  /** The key's modify index after the write. */
  readonly index: number;
  readonly shard: number;
  readonly leader: number;
}

export interface GetResult extends WriteResult {
  readonly value: Uint8Array;
}

const retryableCodes: ReadonlySet<string> = new Set([
  'DRAM_ERR_NOT_LEADER',
  'DRAM_ERR_NO_LEADER',
  'DRAM_ERR_CONNECTION_FAILED',
  // The node is stopping (shut down or failed): not applied, another member can take it.
  'DRAM_ERR_NODE_STOPPED',
]);

type RequestBody = Omit<ClientRequest, 'id'>;

interface Pending {
  readonly resolve: (response: ClientResponse) => void;
  readonly reject: (error: DramError) => void;
  readonly timer: NodeJS.Timeout;
}

/** One pipelined connection to one node. */
class NodeConnection {
  readonly address: DramNodeAddress;
  private socket: net.Socket | undefined;
  private connected: Promise<net.Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: Uint8Array[] = [];
  private flushScheduled = false;
  private readonly requestTimeoutMs: number;
  private readonly inFlightMax: number;
  private admitted = 0;
  private readonly token: string | undefined;

  constructor(address: DramNodeAddress, requestTimeoutMs: number, inFlightMax: number, token?: string) {
    this.address = address;
    this.token = token;
    this.requestTimeoutMs = requestTimeoutMs;
    this.inFlightMax = inFlightMax;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private connect(): Promise<net.Socket> {
    this.connected ??= new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: this.address.host, port: this.address.port, noDelay: true });
      const reader = new FrameReader(clientResponseBytesMax);
      let open = false;
      socket.once('connect', () => {
        open = true;
        this.socket = socket;
        // First on the connection, so every request after it has its grant; its answer is not
        // waited for (no pending entry): a refused token shows on the requests themselves.
        if (this.token !== undefined)
          socket.write(frameOf(encodeClientRequest({ id: this.nextId++, op: 'auth', token: this.token })));
        resolve(socket);
      });
      socket.on('data', (chunk: Buffer) => {
        const result = reader.push(chunk);
        if (result.kind === 'invalid') {
          this.drop(
            socket,
            new DramError('DRAM_ERR_PROTOCOL', `node ${this.address.id} sent a bad frame: ${result.reason}`),
          );
          return;
        }
        for (const payload of result.payloads) {
          let response: ClientResponse;
          try {
            response = decodeClientResponse(payload);
          } catch (error) {
            this.drop(
              socket,
              new DramError(
                'DRAM_ERR_PROTOCOL',
                `node ${this.address.id} sent a bad answer: ${error instanceof Error ? error.message : String(error)}`,
              ),
            );
            return;
          }
          const waiting = this.pending.get(response.id);
          if (waiting === undefined) continue; // timed out already
          this.pending.delete(response.id);
          clearTimeout(waiting.timer);
          waiting.resolve(response);
        }
      });
      socket.on('error', (error) => {
        if (!open) {
          this.connected = undefined;
          reject(
            new DramError(
              'DRAM_ERR_CONNECTION_FAILED',
              `cannot connect to node ${this.address.id} (${this.address.host}:${this.address.port}): ${error.message}`,
            ),
          );
        }
      });
      socket.on('close', () => {
        if (open)
          this.drop(
            socket,
            new DramError(
              'DRAM_ERR_CONNECTION_LOST',
              `connection to node ${this.address.id} closed with the request in flight; a write may or may not be applied`,
            ),
          );
        else this.connected = undefined;
      });
    });
    return this.connected;
  }

  /** Fails everything in flight on this socket and forgets it (the next request reconnects). */
  private drop(socket: net.Socket, error: DramError): void {
    socket.destroy();
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.connected = undefined;
    this.outbox = [];
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const waiting of pending) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
  }

  async send(body: RequestBody): Promise<ClientResponse> {
    // Counted from here, not from the write: requests waiting for the connection count too.
    if (this.admitted >= this.inFlightMax) {
      throw new DramError(
        'DRAM_ERR_CLIENT_OVERLOADED',
        `${this.admitted} requests already wait for node ${this.address.id} (inFlightMax ${this.inFlightMax}); this one was not sent`,
      );
    }
    this.admitted++;
    try {
      return await this.sendAdmitted(body);
    } finally {
      this.admitted--;
    }
  }

  private async sendAdmitted(body: RequestBody): Promise<ClientResponse> {
    const socket = this.socket ?? (await this.connect());
    const id = this.nextId++;
    const frame = frameOf(encodeClientRequest({ ...body, id }));
    return new Promise<ClientResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id))
          reject(
            new DramError(
              'DRAM_ERR_CLIENT_TIMEOUT',
              `no answer from node ${this.address.id} in ${this.requestTimeoutMs} ms; a write may or may not be applied`,
            ),
          );
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.outbox.push(frame);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flush(socket);
        });
      }
    });
  }

  private flush(socket: net.Socket): void {
    this.flushScheduled = false;
    const frames = this.outbox;
    this.outbox = [];
    if (frames.length === 0 || socket.destroyed) return;
    socket.write(frames.length === 1 ? (frames[0] ?? new Uint8Array(0)) : Buffer.concat(frames));
  }

  close(): void {
    const socket = this.socket;
    if (socket !== undefined)
      this.drop(socket, new DramError('DRAM_ERR_CLIENT_CLOSED', 'the client was closed with the request in flight'));
  }
}

export class DramClient {
  private readonly connections: ReadonlyMap<number, NodeConnection>;
  private readonly order: readonly number[];
  private readonly leaders = new Map<GroupId, number>();
  private placement: KvPlacement | undefined;
  private readonly retriesMax: number;
  private readonly retryDelayMs: number;
  private readonly route: 'leader' | 'any';
  /** The next node of the round robin (route 'any'), an index into `order`. */
  private turn = 0;
  private closed = false;

  private constructor(options: DramClientOptions) {
    if (options.nodes.length === 0) throw new Error('DramClient: at least one node');
    const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    const inFlightMax = options.inFlightMax ?? 10_000;
    if (!Number.isSafeInteger(inFlightMax) || inFlightMax < 1)
      throw new Error('DramClient: inFlightMax must be a positive integer');
    this.connections = new Map(
      options.nodes.map((node) => [node.id, new NodeConnection(node, requestTimeoutMs, inFlightMax, options.token)]),
    );
    this.order = options.nodes.map((node) => node.id);
    this.retriesMax = options.retriesMax ?? 8;
    this.retryDelayMs = options.retryDelayMs ?? 10;
    this.route = options.route ?? 'leader';
    if (options.groups !== undefined) this.placement = placementOf(options.groups);
  }

  /** A client over these nodes. Connections open on first use, so this never fails for a node that is down. */
  static connect(options: DramClientOptions): DramClient {
    return new DramClient(options);
  }

  /** The KV group of `key`, once the group count is known. */
  groupOf(key: string): GroupId | undefined {
    return this.placement?.groupOf(key);
  }

  /** The leader this client would send `group`'s requests to, if it knows one. */
  leaderOf(group: GroupId): number | undefined {
    return this.leaders.get(group);
  }

  async put(
    key: string,
    value: Uint8Array,
    options: { readonly cas?: number; readonly client?: KvClientStamp } = {},
  ): Promise<WriteResult> {
    const response = await this.request({ op: 'put', key, value, ...stamp(options) });
    return resultOf(response);
  }

  /** The value and its modify index, or undefined when the key is absent. */
  async get(key: string, options: { readonly consistency?: ClientConsistency } = {}): Promise<GetResult | undefined> {
    try {
      const response = await this.request({
        op: 'get',
        key,
        ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
      });
      return { ...resultOf(response), value: response.value ?? new Uint8Array(0) };
    } catch (error) {
      if (error instanceof DramError && error.code === 'DRAM_ERR_KEY_NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** Deletes `key`; DRAM_ERR_KEY_NOT_FOUND when it is absent (as over HTTP). */
  async delete(
    key: string,
    options: { readonly cas?: number; readonly client?: KvClientStamp } = {},
  ): Promise<WriteResult> {
    const response = await this.request({ op: 'delete', key, ...stamp(options) });
    return resultOf(response);
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.close();
  }

  private async request(body: RequestBody): Promise<ClientResponse> {
    let target: number | undefined;
    let lastError: DramError | undefined;
    for (let attempt = 0; attempt <= this.retriesMax; attempt++) {
      if (this.closed) throw new DramError('DRAM_ERR_CLIENT_CLOSED', 'the client is closed');
      const group = this.placement?.groupOf(body.key);
      const node = target ?? this.firstTarget(group, attempt);
      const connection = this.connections.get(node);
      if (connection === undefined) throw new Error(`DramClient: no node ${node}`);
      let response: ClientResponse;
      try {
        response = await connection.send(body);
      } catch (error) {
        if (!(error instanceof DramError) || !retryableCodes.has(error.code)) throw error;
        lastError = error;
        if (group !== undefined && this.leaders.get(group) === node) this.leaders.delete(group);
        target = this.next(node);
        await delay(this.retryDelayMs * (attempt + 1));
        continue;
      }
      this.learn(response, node);
      if (response.ok) return response;
      const error = new DramError(response.code ?? 'DRAM_ERR_INTERNAL', response.message ?? 'request failed', response);
      if (!retryableCodes.has(error.code)) throw error;
      lastError = error;
      if (response.leader !== 0 && response.leader !== node && this.connections.has(response.leader)) {
        target = response.leader; // a fresh hint: retry there at once
      } else {
        target = this.next(node);
        await delay(this.retryDelayMs * (attempt + 1));
      }
    }
    throw lastError ?? new DramError('DRAM_ERR_NO_LEADER', 'no leader found');
  }

  private learn(response: ClientResponse, node: number): void {
    if (this.placement === undefined && response.groups !== undefined && response.groups > 0)
      this.placement = placementOf(response.groups);
    if (response.shard === 0) return;
    const group = asGroupId(response.shard);
    if (response.ok && response.leader === node) this.leaders.set(group, node);
    else if (response.leader !== 0 && this.connections.has(response.leader)) this.leaders.set(group, response.leader);
    else if (this.leaders.get(group) === node) this.leaders.delete(group);
  }

  /** Where a request goes first: the next node of the round robin, or the group's leader. */
  private firstTarget(group: GroupId | undefined, attempt: number): number {
    if (this.route === 'any') {
      const node = this.order[this.turn % this.order.length] ?? 0;
      this.turn = (this.turn + 1) % this.order.length;
      return node;
    }
    return (group === undefined ? undefined : this.leaders.get(group)) ?? this.fallback(group, attempt);
  }

  /** Without a known leader: spread groups over the nodes, moving on with each attempt. */
  private fallback(group: GroupId | undefined, attempt: number): number {
    const index = ((group ?? 0) + attempt) % this.order.length;
    return this.order[index] ?? this.order[0] ?? 0;
  }

  private next(node: number): number {
    const index = this.order.indexOf(node);
    return this.order[(index + 1) % this.order.length] ?? node;
  }
}

function placementOf(groups: number): KvPlacement {
  return createKvPlacement(Array.from({ length: groups }, (_, k) => asGroupId(k + 1)));
}

function stamp(options: { readonly cas?: number; readonly client?: KvClientStamp }): {
  cas?: number;
  client?: KvClientStamp;
} {
  return {
    ...(options.cas === undefined ? {} : { cas: options.cas }),
    ...(options.client === undefined ? {} : { client: options.client }),
  };
}

function resultOf(response: ClientResponse): WriteResult {
  return { index: response.index, shard: response.shard, leader: response.leader };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
