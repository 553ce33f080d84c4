// The binary client protocol's server (docs/ARCHITECTURE.md, "Binary client protocol"): one TCP
// listener per node, length-prefixed msgpack frames (src/codec/client-wire.ts). Each connection
// pipelines requests; each is handled concurrently against the host exactly like the HTTP KV
// handlers (src/api/kv-routes.ts) and answered as soon as it completes, out of order, matched by id.
//
// Like HTTP, any node takes any key: a write is proposed here and, on a follower, handed to the
// leader inside Raft (src/api/kv-outcomes.ts, writeKv); a linearizable read on a follower gets its
// read index from the leader and is served here. A read the core refuses answers
// DRAM_ERR_NOT_LEADER with the leader this node knows in `leader` (DRAM_ERR_NO_LEADER when none),
// and the smart client (src/client/) retries there. A key of a group this node does not host (with
// placement, groups live on subsets of the nodes) is handed, as the HTTP routes do, to a node
// that hosts it: one signed HTTP request through the Forward port (at most one hop: that node
// proposes or reads it itself), its answer turned into this protocol's (forwardElsewhere).
//
// Invariants (every limit is an option with a default below, asserted at construction):
//  - at most `inFlightMax` requests of one connection are being handled at once, and none is
//    started while its unsent answers (queued here or in the socket) reach `unsentBytesMax`: the
//    server then stops reading the socket (frames already received wait in a per-connection
//    backlog of at most one read chunk) until answers drain. A client that pipelines and never
//    reads holds at most unsentBytesMax + inFlightMax answers;
//  - at most `connectionsMax` connections are open, at most `connectionsPerAddressMax` from one
//    address; a further one is closed as soon as accepted;
//  - a connection with nothing in flight and no bytes either way for `idleMs` is closed, and so is
//    one whose partly received frame makes no progress (no frame completes) for `partialFrameMs`
//    while the server is reading it;
//  - a closed connection keeps nothing: its backlog, outbox and reader are dropped at once, and
//    answers that complete later are discarded;
//  - a request whose key or client id is not valid UTF-8 is answered DRAM_ERR_BAD_REQUEST alone
//    (the connection stays);
//  - with `auth.token` set, a connection may do nothing until an `auth` frame presents a token: a
//    request before that answers DRAM_ERR_UNAUTHORIZED, a write on a read-token connection
//    DRAM_ERR_FORBIDDEN, both decided before anything is proposed or read (the connection stays;
//    a wrong token answers DRAM_ERR_UNAUTHORIZED and leaves the connection without a grant);
//  - a garbage, undecodable or oversized frame closes that connection only; nothing is thrown;
//  - answers completed in the same tick go out as one socket write (coalesced on setImmediate);
//  - a write answers ok only when applied, a definite failure only when certainly not applied,
//    DRAM_ERR_INDETERMINATE otherwise (as over HTTP).
//
// Called by: src/node/node.ts (when `client` is configured), test/client/.

import net from 'node:net';
import type { GroupId, NodeId } from '../base/ids.ts';
import { assert } from '../base/assert.ts';
import {
  boundedMessage,
  ClientRequestRefused,
  clientRequestBytesMax,
  decodeClientFrame,
  type ClientAuthRequest,
  encodeClientResponse,
  type ClientRequest,
  type ClientResponse,
} from '../codec/client-wire.ts';
import type { KvCommand } from '../codec/kv.ts';
import type { KvPlacement } from '../models/kv-placement.ts';
import { KvModel } from '../models/kv.ts';
import type { ReadOutcome } from '../multiraft/host.ts';
import { FrameReader, frameOf } from '../codec/frame-reader.ts';
import { tokenGrant } from './auth.ts';
import { ApiError, isApiError, isErrorCode, type ErrorCode } from './errors.ts';
import { forwardCallToAny, notLeaderError, type ForwardCall, type ForwardContext } from './forwarding.ts';
import { clientIdHeader, requestSeqHeader } from './kv-input.ts';
import { indexHeader, leaderHeader } from './kv-routes.ts';
import { leaderOf } from './host-view.ts';
import { groupStoppedMeanwhile, kvModelOf, NodeSession, readLabel, readRefusalError, writeKv } from './kv-outcomes.ts';
import type { ApiHost, ApiMetrics, Forward } from './ports.ts';

/** Requests of one connection handled at once; past it the socket is paused. */
export const clientInFlightMax = 1024;
/** Client connections open at once; the listener closes any further one at once. */
export const clientConnectionsMax = 1024;
/** Client connections open at once from one address. */
export const clientConnectionsPerAddressMax = 256;
/** Answers of one connection not yet taken by the peer, in bytes, past which no request is started. */
export const clientUnsentBytesMax = 8 << 20;
/** A connection with nothing in flight and no traffic for this long is closed. */
export const clientIdleMs = 5 * 60_000;
/** A frame begun but not completed for this long (while the server reads) closes the connection. */
export const clientPartialFrameMs = 10_000;

export interface BinaryServerOptions {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly placement: KvPlacement;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly metrics?: Pick<ApiMetrics, 'proposal' | 'read'>;
  /** The HTTP API's tokens (--token, --read-token); without `token` every connection may do anything. */
  readonly auth?: { readonly token?: string | undefined; readonly readToken?: string | undefined };
  /** The nodes hosting a group (the meta model's record): a key of a group not hosted here goes to one of them. */
  readonly locate?: ((group: GroupId) => readonly NodeId[]) | undefined;
  /** Whether this node's replica of a hosted group was removed from it (the meta model says so): served elsewhere. */
  readonly removedHere?: ((group: GroupId) => boolean) | undefined;
  /** How a request for a group not hosted here reaches a node that hosts it (with `locate`). */
  readonly forward?: Forward | undefined;
  /** Called once per connection closed for a protocol error (a bad frame). */
  readonly onProtocolError?: (reason: string) => void;
  readonly inFlightMax?: number;
  readonly connectionsMax?: number;
  readonly connectionsPerAddressMax?: number;
  readonly unsentBytesMax?: number;
  readonly idleMs?: number;
  readonly partialFrameMs?: number;
  /** Called when a connection is refused because `connectionsMax` (or, with `address`, `connectionsPerAddressMax`) are open. */
  readonly onConnectionRefused?: (open: number, address?: string) => void;
  /** Called when a connection is closed for being idle or for a stalled partial frame. */
  readonly onConnectionTimedOut?: (reason: string) => void;
}

interface Limits {
  readonly inFlightMax: number;
  readonly connectionsMax: number;
  readonly connectionsPerAddressMax: number;
  readonly unsentBytesMax: number;
  readonly idleMs: number;
  readonly partialFrameMs: number;
}

function limitsOf(options: BinaryServerOptions): Limits {
  const connectionsMax = options.connectionsMax ?? clientConnectionsMax;
  const limits: Limits = {
    inFlightMax: options.inFlightMax ?? clientInFlightMax,
    connectionsMax,
    connectionsPerAddressMax:
      options.connectionsPerAddressMax ?? Math.min(clientConnectionsPerAddressMax, connectionsMax),
    unsentBytesMax: options.unsentBytesMax ?? clientUnsentBytesMax,
    idleMs: options.idleMs ?? clientIdleMs,
    partialFrameMs: options.partialFrameMs ?? clientPartialFrameMs,
  };
  for (const [name, value] of Object.entries(limits))
    assert(Number.isSafeInteger(value) && value > 0, `binary server: ${name} must be a positive integer, got ${value}`);
  assert(
    limits.connectionsPerAddressMax <= limits.connectionsMax,
    'binary server: connectionsPerAddressMax exceeds connectionsMax',
  );
  return limits;
}

interface Context extends ForwardContext {
  readonly nodeId: NodeId;
  readonly locate: ((group: GroupId) => readonly NodeId[]) | undefined;
  readonly removedHere: ((group: GroupId) => boolean) | undefined;
  readonly host: ApiHost;
  readonly session: NodeSession;
  readonly placement: KvPlacement;
  readonly metrics: Pick<ApiMetrics, 'proposal' | 'read'> | undefined;
  readonly auth: { readonly token: string; readonly readToken?: string | undefined } | undefined;
}

/** What a connection may do: its auth frame's grant ('full' from the start when no token is configured). */
type Grant = 'none' | 'read' | 'full';

/** What an answer says about the key; filled in like the HTTP headers, overwritten as outcomes learn more. */
interface Answer {
  index: number;
  shard: number;
  leader: number;
}

export class BinaryServer {
  private readonly options: BinaryServerOptions;
  private readonly context: Context;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Open connections per remote address. */
  private readonly perAddress = new Map<string, number>();
  private readonly limits: Limits;
  private listening: { host: string; port: number } | undefined;

  constructor(options: BinaryServerOptions) {
    this.options = options;
    this.limits = limitsOf(options);
    this.context = {
      nodeId: options.nodeId,
      forward: options.forward,
      locate: options.locate,
      removedHere: options.removedHere,
      host: options.host,
      session: new NodeSession(options.nodeId),
      placement: options.placement,
      metrics: options.metrics,
      auth:
        options.auth?.token === undefined || options.auth.token === ''
          ? undefined
          : { token: options.auth.token, readToken: options.auth.readToken },
    };
    this.server = net.createServer((socket) => {
      this.serve(socket);
    });
    // The kernel accepts the connection; node closes it at once and reports it here.
    this.server.maxConnections = this.limits.connectionsMax;
    this.server.on('drop', () => {
      options.onConnectionRefused?.(this.sockets.size);
    });
  }

  /** Listens; resolves with the bound address (port 0 picks a free one). */
  start(): Promise<{ readonly host: string; readonly port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listenPort, this.options.listenHost, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        const port = typeof address === 'object' && address !== null ? address.port : this.options.listenPort;
        this.listening = { host: this.options.listenHost, port };
        resolve(this.listening);
      });
    });
  }

  get address(): { readonly host: string; readonly port: number } | undefined {
    return this.listening;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Stops accepting and drops every connection (answers still pending are lost with them). */
  stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (this.listening === undefined) return Promise.resolve();
    this.listening = undefined;
    return new Promise((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  private serve(socket: net.Socket): void {
    const address = socket.remoteAddress ?? '?';
    const fromAddress = (this.perAddress.get(address) ?? 0) + 1;
    if (fromAddress > this.limits.connectionsPerAddressMax) {
      this.options.onConnectionRefused?.(this.sockets.size, address);
      socket.destroy();
      return;
    }
    this.perAddress.set(address, fromAddress);
    this.sockets.add(socket);
    new ClientConnection(socket, this.context, this.limits, {
      onClosed: () => {
        this.sockets.delete(socket);
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.perAddress.set(address, left);
        else this.perAddress.delete(address);
      },
      onProtocolError: this.options.onProtocolError,
      onConnectionTimedOut: this.options.onConnectionTimedOut,
    });
  }
}

interface ConnectionHooks {
  /** The connection closed, for whatever reason: the server forgets it. */
  readonly onClosed: () => void;
  readonly onProtocolError: ((reason: string) => void) | undefined;
  readonly onConnectionTimedOut: ((reason: string) => void) | undefined;
}

/**
 * One client connection: the frames read and not yet started (`backlog`), the requests in flight
 * and the answers not yet written (`outbox`), within the limits in the file header. Lives from
 * accept until its socket closes; nothing of it stays reachable after (answers still running find
 * it closed).
 */
class ClientConnection {
  private readonly socket: net.Socket;
  private readonly context: Context;
  private readonly limits: Limits;
  private readonly hooks: ConnectionHooks;
  private reader: FrameReader | undefined = new FrameReader(clientRequestBytesMax);
  private backlog: Uint8Array[] = [];
  private backlogNext = 0;
  private inFlight = 0;
  private closed = false;
  private outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  /** What the requests in flight are expected to answer (a GET: the value's size when it started). */
  private reservedBytes = 0;
  private flushScheduled = false;
  private partialTimer: NodeJS.Timeout | undefined;
  private grant: Grant;

  constructor(socket: net.Socket, context: Context, limits: Limits, hooks: ConnectionHooks) {
    this.socket = socket;
    this.context = context;
    this.limits = limits;
    this.hooks = hooks;
    this.grant = context.auth === undefined ? 'full' : 'none';
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    socket.on('drain', () => {
      this.pump();
    });
    const idleMs = limits.idleMs;
    socket.setTimeout(idleMs, () => {
      if (this.inFlight === 0 && this.outboxBytes === 0 && socket.writableLength === 0)
        this.timedOut(`idle for ${idleMs} ms`);
    });
    socket.on('error', () => {
      this.close(undefined);
    });
    socket.on('close', () => {
      this.close(undefined);
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.reader === undefined) return;
    const result = this.reader.push(chunk);
    if (result.kind === 'invalid') {
      this.close(result.reason);
      return;
    }
    for (const payload of result.payloads) this.backlog.push(payload);
    this.watchPartialFrame(result.payloads.length > 0);
    this.pump();
  }

  private close(reason: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.partialTimer);
    this.hooks.onClosed();
    // Nothing of a closed connection may stay reachable: answers still running find it closed.
    this.reader = undefined;
    this.backlog = [];
    this.outbox = [];
    this.outboxBytes = 0;
    if (reason !== undefined) this.hooks.onProtocolError?.(reason);
    this.socket.destroy();
  }

  private timedOut(reason: string): void {
    this.hooks.onConnectionTimedOut?.(reason);
    this.close(undefined);
  }

  /** The deadline runs while a frame is partly here, the server reads, and no frame completes. */
  private watchPartialFrame(progressed: boolean): void {
    const waiting = !this.closed && !this.socket.isPaused() && (this.reader?.buffered ?? 0) > 0;
    if (progressed || !waiting) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    }
    const partialFrameMs = this.limits.partialFrameMs;
    if (waiting && this.partialTimer === undefined)
      this.partialTimer = setTimeout(() => {
        this.timedOut(`a partial frame made no progress for ${partialFrameMs} ms`);
      }, partialFrameMs);
  }

  /** A request starts when its answer fits under unsentBytesMax, or when nothing else is pending. */
  private fits(bytes: number): boolean {
    const committed = this.socket.writableLength + this.outboxBytes + this.reservedBytes;
    return (
      this.inFlight < this.limits.inFlightMax && (committed === 0 || committed + bytes <= this.limits.unsentBytesMax)
    );
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.outbox.length === 0) return;
    const frames = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    // Taken at once (under the socket's high-water mark): no 'drain' will come, so pump now.
    if (this.socket.write(frames.length === 1 ? (frames[0] ?? new Uint8Array(0)) : Buffer.concat(frames))) this.pump();
  }

  private queueAnswer(response: ClientResponse): void {
    const frame = frameOf(encodeClientResponse(response));
    this.outbox.push(frame);
    this.outboxBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flush();
      });
    }
  }

  private answer(response: ClientResponse, reserved: number): void {
    this.inFlight--;
    this.reservedBytes -= reserved;
    if (this.closed) return;
    this.queueAnswer(response);
    this.pump();
  }

  /** Starts what the backlog holds while not congested; reads on only when it is empty and not congested. */
  private pump(): void {
    while (!this.closed && this.backlogNext < this.backlog.length) {
      const payload = this.backlog[this.backlogNext];
      if (payload === undefined) break;
      let request: ClientRequest | ClientAuthRequest;
      try {
        request = decodeClientFrame(payload);
      } catch (error) {
        this.backlogNext++;
        if (error instanceof ClientRequestRefused) {
          this.queueAnswer(refusedAnswer(this.context, error.id, 'DRAM_ERR_BAD_REQUEST', error.message));
          continue;
        }
        this.close(error instanceof Error ? error.message : String(error));
        return;
      }
      if (request.op === 'auth') {
        this.backlogNext++;
        this.grant = grantOf(this.context, request);
        this.queueAnswer(authAnswer(this.context, request.id, this.grant));
        continue;
      }
      const refusal = accessRefusal(this.grant, request);
      if (refusal !== undefined) {
        this.backlogNext++;
        this.queueAnswer(refusedAnswer(this.context, request.id, refusal.code, refusal.message));
        continue;
      }
      const reserved = answerBytesEstimate(this.context, request);
      if (!this.fits(reserved)) break;
      this.backlogNext++;
      this.inFlight++;
      this.reservedBytes += reserved;
      void handle(this.context, request).then((response) => {
        this.answer(response, reserved);
      });
    }
    if (this.closed) return;
    if (this.backlogNext >= this.backlog.length) {
      this.backlog.length = 0;
      this.backlogNext = 0;
    }
    const hold = this.backlog.length > 0 || !this.fits(1);
    if (hold && !this.socket.isPaused()) this.socket.pause();
    else if (!hold && this.socket.isPaused()) this.socket.resume();
    this.watchPartialFrame(false);
  }
}

/** Bytes an answer to `request` will take, as far as can be told when it starts: a GET's value now, plus framing. */
function answerBytesEstimate(context: Context, request: ClientRequest): number {
  const framing = 512;
  if (request.op !== 'get') return framing;
  const model = context.host.model(context.placement.groupOf(request.key));
  return framing + (model instanceof KvModel ? (model.get(request.key)?.value.length ?? 0) : 0);
}

/** The answer to a request refused before it ran (content that is not UTF-8, missing rights). */
function refusedAnswer(context: Context, id: number, code: ErrorCode, message: string): ClientResponse {
  return {
    id,
    ok: false,
    index: 0,
    shard: 0,
    leader: 0,
    groups: context.placement.groups.length,
    code,
    message: boundedMessage(message),
  };
}

function grantOf(context: Context, request: ClientAuthRequest): Grant {
  if (context.auth === undefined) return 'full';
  return tokenGrant(context.auth, request.token) ?? 'none';
}

function authAnswer(context: Context, id: number, grant: Grant): ClientResponse {
  if (grant !== 'none') return { id, ok: true, index: 0, shard: 0, leader: 0, groups: context.placement.groups.length };
  return refusedAnswer(context, id, 'DRAM_ERR_UNAUTHORIZED', 'the token is not valid');
}

/** Why a connection with `grant` may not run `request`, or undefined (the HTTP rules: a read token reads). */
function accessRefusal(grant: Grant, request: ClientRequest): { code: ErrorCode; message: string } | undefined {
  if (grant === 'full') return undefined;
  if (grant === 'none')
    return { code: 'DRAM_ERR_UNAUTHORIZED', message: 'this node needs a token: send an auth frame first' };
  if (request.op === 'get') return undefined;
  return { code: 'DRAM_ERR_FORBIDDEN', message: `the read-only token cannot ${request.op}` };
}

/** One request, start to answer; never rejects. */
export async function handle(context: Context, request: ClientRequest): Promise<ClientResponse> {
  const group = context.placement.groupOf(request.key);
  if (
    context.locate !== undefined &&
    (context.host.groupLeader(group) === undefined || context.removedHere?.(group) === true)
  )
    return forwardElsewhere(context, request, group);
  const model = context.host.model(group);
  const state: Answer = {
    shard: group,
    leader: leaderOf(context.host, group),
    index: model instanceof KvModel ? (model.get(request.key)?.modifyIndex ?? 0) : 0,
  };
  const groups = context.placement.groups.length;
  try {
    let value: Uint8Array | undefined;
    if (request.op === 'get') value = await read(context, state, group, request);
    else await write(context, state, group, commandOf(request));
    return { id: request.id, ok: true, ...state, groups, ...(value === undefined ? {} : { value }) };
  } catch (error) {
    if (groupStoppedMeanwhile(error, context.locate)) return forwardElsewhere(context, request, group);
    return failedAnswer(request.id, state, groups, error);
  }
}

/** The answer for an error thrown while handling a request (an ApiError's code; anything else is internal). */
function failedAnswer(id: number, state: Answer, groups: number, error: unknown): ClientResponse {
  const apiError = isApiError(error)
    ? error
    : new ApiError('DRAM_ERR_INTERNAL', `internal error: ${error instanceof Error ? error.message : String(error)}`);
  const hint = apiError.details?.['leaderHint'];
  if (typeof hint === 'number') state.leader = hint;
  return { id, ok: false, ...state, groups, code: apiError.code, message: boundedMessage(apiError.message) };
}

/**
 * A key of a group this node does not host: the request goes over HTTP to a node that hosts it
 * (forwardCallToAny: the first member reached), and that node's answer comes back in this
 * protocol. A write that got no answer is DRAM_ERR_INDETERMINATE; an unstamped write is stamped by
 * the node that proposes it (its NodeSession), as over HTTP.
 */
async function forwardElsewhere(context: Context, request: ClientRequest, group: GroupId): Promise<ClientResponse> {
  const members = (context.locate?.(group) ?? []).filter((node) => node !== context.nodeId);
  const state: Answer = { shard: group, leader: 0, index: 0 };
  const groups = context.placement.groups.length;
  const write = request.op !== 'get';
  try {
    const call = forwardCallOf(request);
    const response = await forwardCallToAny(
      context,
      { group, members, onFailure: write ? 'indeterminate' : 'forward_failed' },
      call,
    );
    state.index = Number(response.headers[indexHeader] ?? 0) || 0;
    state.leader = Number(response.headers[leaderHeader] ?? 0) || 0;
    if (response.status === 200) {
      const value = request.op === 'get' ? new Uint8Array(response.body) : undefined;
      return { id: request.id, ok: true, ...state, groups, ...(value === undefined ? {} : { value }) };
    }
    throw remoteError(response.status, response.body, write);
  } catch (error) {
    return failedAnswer(request.id, state, groups, error);
  }
}

/** The HTTP request the KV routes take for a binary request (client stamp, cas and consistency included). */
function forwardCallOf(request: ClientRequest): ForwardCall {
  const query = new URLSearchParams();
  if (request.cas !== undefined) query.set('cas', String(request.cas));
  if (request.op === 'get' && request.consistency !== undefined) query.set('consistency', request.consistency);
  const headers: Record<string, string> = {};
  if (request.client !== undefined) {
    // A header carries visible ASCII only: another id could not reach the node that hosts the group.
    if (!/^[\x20-\x7e]+$/u.test(request.client.id))
      throw new ApiError(
        'DRAM_ERR_BAD_REQUEST',
        'a client id outside printable ASCII cannot be forwarded to a node hosting the key',
      );
    headers[clientIdHeader] = request.client.id;
    headers[requestSeqHeader] = String(request.client.seq);
  }
  if (request.op === 'put') headers['content-type'] = 'application/octet-stream';
  const search = query.toString();
  return {
    method: request.op === 'get' ? 'GET' : request.op === 'put' ? 'PUT' : 'DELETE',
    url: `/v1/kv/${encodeURIComponent(request.key)}${search === '' ? '' : `?${search}`}`,
    headers,
    body: request.op === 'put' ? Buffer.from(request.value ?? new Uint8Array(0)) : undefined,
    forwarded: false,
  };
}

/**
 * The error a forwarded request's non-200 answer carries: its own code when it is one of ours (the
 * node that served it decided whether it is definite); otherwise indeterminate for a write (it may
 * have been applied) and a forward failure for a read.
 */
function remoteError(status: number, body: Buffer, write: boolean): ApiError {
  let answer: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) answer = parsed as Record<string, unknown>;
  } catch {
    // Not ours: handled below as an unknown answer.
  }
  const code = answer['code'];
  const message = typeof answer['message'] === 'string' ? answer['message'] : `HTTP ${status}`;
  const details = answer['details'];
  if (isErrorCode(code))
    return new ApiError(
      code,
      message,
      typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : undefined,
    );
  if (write) return new ApiError('DRAM_ERR_INDETERMINATE', `forwarded write got an unknown answer (${message})`);
  return new ApiError('DRAM_ERR_FORWARD_FAILED', `forwarded read got an unknown answer (${message})`);
}

function commandOf(request: ClientRequest): KvCommand {
  const extra = {
    ...(request.cas === undefined ? {} : { cas: request.cas }),
    ...(request.client === undefined ? {} : { client: request.client }),
  };
  if (request.op === 'delete') return { op: 'delete', key: request.key, ...extra };
  return { op: 'put', key: request.key, value: request.value ?? new Uint8Array(0), ...extra };
}

async function write(context: Context, state: Answer, group: GroupId, command: KvCommand): Promise<void> {
  const answer = await writeKv(context.host, context.session, context.metrics, group, command);
  state.leader = leaderOf(context.host, group);
  if (answer.ok) {
    state.index = answer.modifyIndex;
    return;
  }
  if (answer.index !== undefined) state.index = answer.index;
  throw answer.error;
}

async function read(context: Context, state: Answer, group: GroupId, request: ClientRequest): Promise<Uint8Array> {
  const consistency = request.consistency ?? 'linearizable';
  if (consistency === 'stale') {
    context.metrics?.read(consistency, 'served');
    return valueOf(state, kvModelOf(context.host, group), request.key);
  }
  const outcome: ReadOutcome = await context.host.read(group, consistency);
  context.metrics?.read(consistency, outcome.kind === 'ready' ? 'served' : readLabel(outcome.reason));
  if (outcome.kind === 'ready') {
    state.leader = leaderOf(context.host, group);
    return valueOf(state, kvModelOf(context.host, group), request.key);
  }
  if (outcome.reason === 'not_leader' || outcome.reason === 'leader_changed')
    throw notLeaderError(group, outcome.leaderHint, `node ${outcome.leaderHint} leads it`);
  throw readRefusalError(group, outcome.reason);
}

function valueOf(state: Answer, model: KvModel, key: string): Uint8Array {
  const record = model.get(key);
  if (record === undefined) {
    state.index = 0;
    throw new ApiError('DRAM_ERR_KEY_NOT_FOUND', 'key not found');
  }
  state.index = record.modifyIndex;
  return record.value;
}
