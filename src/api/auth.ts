// Who may call which route of the HTTP API (docs/security.md). Off unless a token is configured:
//  - with `token`, every route needs `Authorization: Bearer <token>`, except the status page (`/`),
//    `/metrics` and `/v1/status`;
//  - with `readToken` too, that token may read (GET and HEAD, and routes that declare
//    `access: 'read'`, such as queries), and `/metrics` and `/v1/status` need one of the two tokens;
//  - a missing or wrong token is 401 DRAM_ERR_UNAUTHORIZED (with a WWW-Authenticate challenge); the
//    read token on anything else is 403 DRAM_ERR_FORBIDDEN; either is decided from the request head
//    in an onRequest hook, before the body is read or any route runs, so a refused request changes
//    nothing;
//  - members call each other (forwarding to a leader, membership fan-out, a joining node, the meta
//    controller's own effects) with the cluster secret, never with a user's token: an
//    `X-Dram-Peer-Auth: <node>.<unix ms>.<hex HMAC-SHA256(secret, context)>` header whose context
//    binds the cluster id, the calling node, the time, the method and the URL. It is accepted within
//    `peerAuthSkewMsMax` of the receiver's clock; with TLS off it can be replayed within that
//    window by someone who can read the traffic, like a bearer token can (turn TLS on for that).
// Tokens and proofs are compared in constant time (through SHA-256 digests, so lengths leak nothing).
//
// The binary client port (src/api/binary-server.ts) checks the same tokens with tokenGrant: an
// `auth` frame first on the connection; without it every request is refused DRAM_ERR_UNAUTHORIZED,
// and a read-only connection's writes DRAM_ERR_FORBIDDEN, before anything is proposed.
//
// Called by: src/api/app.ts (installAuth), src/api/binary-server.ts (tokenGrant), src/node/ (peerAuthHeaders for its outgoing calls), the
// route plugins (readAccess for a POST that only reads).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ApiError, sendApiError } from './errors.ts';

export interface ApiAuth {
  /** The full-access token; without it, authentication is off. */
  readonly token?: string | undefined;
  /** A token that may only read; needs `token`. */
  readonly readToken?: string | undefined;
  /** The cluster secret, which members prove in X-Dram-Peer-Auth. */
  readonly secret: string;
  readonly clusterId: string;
  /** Wall-clock milliseconds, for the peer proof's time window (default Date.now). */
  readonly wallNowMs?: () => number;
}

/**
 * What a route needs: `page` never a token (the status page: it holds no data), `status` the read
 * token when one is configured, `read` either token, `write` the full token.
 */
export type RouteAccess = 'page' | 'status' | 'read' | 'write';

interface AccessConfig {
  readonly access?: RouteAccess;
}

// What a route needs is part of its config (fastify's per-route `config`).
declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** Route options for a route that only reads although its method is POST (a query). */
export const readAccess = { config: { access: 'read' } } as const;

export const peerAuthHeader = 'x-dram-peer-auth';
/** A peer proof older or newer than this, by the receiver's clock, is refused. */
export const peerAuthSkewMsMax = 60_000;

const statusRoutes: ReadonlySet<string> = new Set(['/metrics', '/v1/status']);

/** What a route needs, from its declared access, its URL and its method. */
export function routeAccess(method: string, url: string | undefined, config: unknown): RouteAccess {
  const declared = (config as AccessConfig | undefined)?.access;
  if (declared !== undefined) return declared;
  if (url !== undefined && statusRoutes.has(url)) return 'status';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function sameText(received: string, expected: string): boolean {
  return timingSafeEqual(digest(received), digest(expected));
}

type PeerKey = Pick<ApiAuth, 'secret' | 'clusterId'>;

function peerContext(auth: PeerKey, node: string, atMs: string, method: string, url: string): string {
  return JSON.stringify(['dram-peer-http', auth.clusterId, node, atMs, method.toUpperCase(), url]);
}

function peerProof(auth: PeerKey, node: string, atMs: string, method: string, url: string): string {
  return createHmac('sha256', auth.secret)
    .update(peerContext(auth, node, atMs, method, url), 'utf8')
    .digest('hex');
}

/** The header a member adds to its call `method url` to another member. */
export function peerAuthHeaders(
  auth: PeerKey,
  node: number,
  method: string,
  url: string,
  nowMs: number,
): Record<string, string> {
  const atMs = String(Math.floor(nowMs));
  return { [peerAuthHeader]: `${node}.${atMs}.${peerProof(auth, String(node), atMs, method, url)}` };
}

function peerProofValid(auth: ApiAuth, header: string, method: string, url: string): boolean {
  const match = /^(\d{1,16})\.(\d{1,16})\.([0-9a-f]{64})$/u.exec(header);
  if (match === null) return false;
  const [, node = '', atMs = '', proof = ''] = match;
  const nowMs = (auth.wallNowMs ?? Date.now)();
  if (Math.abs(nowMs - Number(atMs)) > peerAuthSkewMsMax) return false;
  return sameText(proof, peerProof(auth, node, atMs, method, url));
}

type Grant = 'none' | 'read' | 'full';

/** What the request's credentials grant, or the 401 that refuses them. */
function grantOf(auth: ApiAuth & { readonly token: string }, request: FastifyRequest): Grant | ApiError {
  const peer = request.headers[peerAuthHeader];
  if (typeof peer === 'string') {
    if (peerProofValid(auth, peer, request.method, request.url)) return 'full';
    return new ApiError('DRAM_ERR_UNAUTHORIZED', 'the member credential (X-Dram-Peer-Auth) is not valid');
  }
  const header = request.headers.authorization;
  if (header === undefined) return 'none';
  const match = /^Bearer +(\S+) *$/iu.exec(header);
  if (match?.[1] === undefined)
    return new ApiError('DRAM_ERR_UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return tokenGrant(auth, match[1]) ?? new ApiError('DRAM_ERR_UNAUTHORIZED', 'the token is not valid');
}

/** What a presented token grants, or undefined when it is neither token (HTTP and the binary client port). */
export function tokenGrant(
  auth: { readonly token: string; readonly readToken?: string | undefined },
  presented: string,
): 'full' | 'read' | undefined {
  // Both comparisons always run: which token matched takes no more time than a miss.
  const full = sameText(presented, auth.token);
  const read = auth.readToken !== undefined && sameText(presented, auth.readToken);
  if (full) return 'full';
  if (read) return 'read';
  return undefined;
}

/** Why the request is refused, or undefined to let it through. */
export function authRefusal(
  auth: ApiAuth & { readonly token: string },
  request: FastifyRequest,
  access: RouteAccess,
): ApiError | undefined {
  if (access === 'page') return undefined;
  if (access === 'status' && auth.readToken === undefined) return undefined;
  const grant = grantOf(auth, request);
  if (grant instanceof ApiError) return grant;
  if (grant === 'full') return undefined;
  if (grant === 'none') return new ApiError('DRAM_ERR_UNAUTHORIZED', 'this route needs Authorization: Bearer <token>');
  if (access === 'write')
    return new ApiError('DRAM_ERR_FORBIDDEN', `the read-only token cannot ${request.method} this route`);
  return undefined;
}

export interface RouteEntry {
  readonly method: string;
  readonly url: string;
  readonly access: RouteAccess;
}

const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route of an app built by buildApp (complete once `app.ready()` resolved), with what it needs: the list the tests walk. */
export function routeTable(app: FastifyInstance): readonly RouteEntry[] {
  return routeTables.get(app) ?? [];
}

/**
 * Records every route with its access (an onRoute hook, so it must run before the routes are
 * registered) and, with a token, installs the check (an onRequest hook: the head only).
 */
export function installAuth(app: FastifyInstance, auth: ApiAuth | undefined): void {
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat())
      table.push({ method, url: route.url, access: routeAccess(method, route.url, route.config) });
  });
  const token = auth?.token;
  if (auth === undefined || token === undefined || token === '') return;
  const configured = { ...auth, token };
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    const access = request.is404
      ? routeAccess(request.method, undefined, undefined)
      : routeAccess(request.method, request.routeOptions.url, request.routeOptions.config);
    const error = authRefusal(configured, request, access);
    if (error === undefined) {
      done();
      return;
    }
    if (error.code === 'DRAM_ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="dram"');
    // The body, if any, was not read: the connection cannot carry another request.
    if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined)
      reply.header('connection', 'close');
    void sendApiError(reply, error);
  });
}
