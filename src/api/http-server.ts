// The HTTP server under the routes: its limits and every answer it gives below fastify's routing,
// in dram's error shape like any other (docs/errors.md).
//  - limits (`HttpLimits`): the request head (request line and headers) is at most `headBytesMax`
//    bytes; the head must arrive within `headTimeoutMs` and the whole request within
//    `receiveTimeoutMs` of its first byte (node checks every `timeoutCheckMs`), else 408
//    DRAM_ERR_REQUEST_TIMEOUT and the connection is closed; at most `connectionsMax` connections
//    are open at once, and one over the limit is answered 503 DRAM_ERR_OVERLOADED and closed (with
//    TLS, closed at once: an answer would need the TLS handshake first);
//  - with `HttpTls`, the server speaks HTTPS only;
//  - parser-level errors (node's 'clientError': a bad request line, an unknown method, bad
//    framing such as Content-Length with Transfer-Encoding, a NUL in a header, the HTTP/2
//    preface, a head over the limit) are answered 400 DRAM_ERR_BAD_REQUEST or 431
//    DRAM_ERR_HEADERS_TOO_LARGE, then the connection is closed: after such an error the stream
//    cannot be trusted to frame another request;
//  - an `Expect` other than 100-continue is 417 DRAM_ERR_EXPECTATION_FAILED; CONNECT (which
//    node hands to a 'connect' listener rather than a route) is 404 DRAM_ERR_ROUTE_NOT_FOUND.
// A URL too long for the head limit is refused before it is read to its end, so a key that long
// gets 431, not the 413 DRAM_ERR_KEY_TOO_LARGE of a key that fits in the head.
//
// Called by: src/api/app.ts (fastify's server options, then `guardHttpServer` on the server it made).

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { assert } from '../base/assert.ts';
import { ApiError, errorBody, rawErrorResponse, routeNotFoundError } from './errors.ts';

export interface HttpLimits {
  /** Open connections at once; one more is answered 503 and closed. */
  readonly connectionsMax: number;
  /** Request line plus headers (node's maxHeaderSize). */
  readonly headBytesMax: number;
  /** From a request's first byte until its head has arrived. */
  readonly headTimeoutMs: number;
  /** From a request's first byte until its whole body has arrived; at least `headTimeoutMs`. */
  readonly receiveTimeoutMs: number;
  /** How often node looks for requests past their deadline (a deadline is late by up to this). */
  readonly timeoutCheckMs: number;
  /** How long a connection refused for the limit may stay open while its answer is read. */
  readonly refusedLingerMs: number;
}

// A 1 MiB value at 64 KiB/s arrives in 16 s; a client slower than that is indistinguishable from
// one holding the connection on purpose.
export const httpLimitsDefault: HttpLimits = {
  connectionsMax: 1024,
  headBytesMax: 16 * 1024,
  headTimeoutMs: 10_000,
  receiveTimeoutMs: 30_000,
  timeoutCheckMs: 1000,
  refusedLingerMs: 1000,
};

export function assertHttpLimits(limits: HttpLimits): void {
  for (const [name, value] of Object.entries(limits))
    assert(Number.isSafeInteger(value) && value > 0, `http limit ${name} must be a positive integer, got ${value}`);
  assert(limits.headTimeoutMs <= limits.receiveTimeoutMs, 'headTimeoutMs must not exceed receiveTimeoutMs');
}

/** The HTTP API's own certificate and key (PEM): with them it serves HTTPS only. */
export interface HttpTls {
  readonly cert: string;
  readonly key: string;
}

/** The fastify options that set up node's server with these limits (the rest is `guardHttpServer`). */
export function httpServerOptions(limits: HttpLimits, tls?: HttpTls) {
  const server = {
    maxHeaderSize: limits.headBytesMax,
    headersTimeout: limits.headTimeoutMs,
    requestTimeout: limits.receiveTimeoutMs,
    connectionsCheckingInterval: limits.timeoutCheckMs,
    // Checked by the request guard, whose refusal has a body; node's has none.
    requireHostHeader: false,
  };
  return {
    // fastify hands `https` (not `http`) to node's https.createServer, which takes the same limits.
    ...(tls === undefined ? { http: server } : { https: { ...server, cert: tls.cert, key: tls.key } }),
    // fastify sets node's requestTimeout from its own option, after creating the server.
    requestTimeout: limits.receiveTimeoutMs,
    // The request guard answers requests that arrive while closing, in dram's shape.
    return503OnClosing: false,
    clientErrorHandler: (error: Error, socket: Socket) => {
      answerClientError(error, socket, limits);
    },
  } as const;
}

/** The answer to an error node's HTTP parser (or its request timer) raised on a connection. */
export function clientErrorOf(error: Error, limits: HttpLimits): ApiError {
  const { code, reason } = error as Error & { code?: unknown; reason?: unknown };
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(
        'DRAM_ERR_HEADERS_TOO_LARGE',
        `the request line and headers are larger than ${limits.headBytesMax} bytes`,
        { bytesMax: limits.headBytesMax },
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(
        'DRAM_ERR_REQUEST_TIMEOUT',
        `the request did not arrive in time (head within ${limits.headTimeoutMs} ms, whole request within ${limits.receiveTimeoutMs} ms)`,
      );
    case 'HPE_PAUSED_H2_UPGRADE':
      return new ApiError('DRAM_ERR_BAD_REQUEST', 'HTTP/2 is not served here; use HTTP/1.1', { cause: code });
    default:
      return new ApiError(
        'DRAM_ERR_BAD_REQUEST',
        `malformed HTTP request: ${typeof reason === 'string' ? reason : error.message}`,
        typeof code === 'string' ? { cause: code } : undefined,
      );
  }
}

/** Whether a response already started on this connection (node's own check before it answers). */
function responseStarted(socket: Duplex): boolean {
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  return current?.headersSent === true;
}

function answerClientError(error: Error, socket: Duplex, limits: HttpLimits): void {
  const code = (error as Error & { code?: unknown }).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || socket.destroyed) {
    socket.destroy();
    return;
  }
  if (socket.writable && !responseStarted(socket)) socket.write(rawErrorResponse(clientErrorOf(error, limits)));
  socket.destroy();
}

/**
 * Puts the connection limit in front of node's own connection handling, and answers what node
 * hands to listeners rather than to routes (a failed expectation, CONNECT).
 */
export function guardHttpServer(server: Server, limits: HttpLimits, tls = false): void {
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  let open = 0;
  server.on('connection', (socket: Socket) => {
    if (open >= limits.connectionsMax) {
      // Before the TLS handshake there is no way to say why: just close.
      if (tls) socket.destroy();
      else refuseConnection(socket, limits);
      return;
    }
    open++;
    socket.once('close', () => {
      open--;
    });
    for (const handler of handlers) handler.call(server, socket);
  });

  server.on('checkExpectation', (request, response) => {
    const error = new ApiError(
      'DRAM_ERR_EXPECTATION_FAILED',
      `cannot meet Expect: ${JSON.stringify(request.headers.expect ?? '')}; only 100-continue is served`,
    );
    const body = JSON.stringify(errorBody(error));
    response.shouldKeepAlive = false;
    response.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    response.end(body);
  });

  server.on('connect', (request, socket: Duplex) => {
    if (socket.writable)
      socket.write(rawErrorResponse(routeNotFoundError(request.method ?? 'CONNECT', request.url ?? '')));
    socket.destroy();
  });
}

function refuseConnection(socket: Socket, limits: HttpLimits): void {
  const error = new ApiError(
    'DRAM_ERR_OVERLOADED',
    `this node has ${limits.connectionsMax} HTTP connections open, its limit; retry after a pause`,
    { connectionsMax: limits.connectionsMax },
  );
  // Read and drop what the client sends meanwhile, so that closing does not reset the connection
  // before the answer is read; close at the latest after the linger time.
  socket.on('error', () => socket.destroy());
  socket.resume();
  socket.setTimeout(limits.refusedLingerMs, () => socket.destroy());
  socket.end(rawErrorResponse(error));
}
