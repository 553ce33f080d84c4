// What a request may bring in before any route sees it, checked from its head alone so that a
// hostile request costs no parsing and no waiting for its body:
//  - each route declares its body: none (the default, for every GET and DELETE route and any
//    unmatched URL), JSON up to a few KiB, or raw bytes (the KV value). A body where none is
//    taken, or one whose declared length is over the route's limit, is refused before it is read
//    (413, and the connection is closed since the client may still be sending);
//  - the Content-Type of a body is parsed strictly (src/api/media-type.ts): a JSON route takes
//    `application/json` (optionally `charset=utf-8`) only, a raw route any well-formed type or
//    none; anything else is 415 DRAM_ERR_UNSUPPORTED_MEDIA_TYPE;
//  - a JSON body is scanned once, linearly, for its nesting depth before JSON.parse sees it
//    (`jsonDepthMax`); with the small JSON body limits this bounds what parsing one body can cost
//    the event loop, which also runs the Raft turn loop;
//  - headers that identify a request or frame its body (Host, Content-Type, Authorization and
//    every X-Dram-* header) must be given once: node joins or drops repeated ones silently, so a
//    duplicated X-Dram-Client-Id would otherwise reach the exactly-once check as "a, b";
//  - an HTTP/1.1 request must carry Host (checked here rather than by node, whose refusal has no
//    body);
//  - while the app is closing, a request is refused at once with 503 DRAM_ERR_SHUTTING_DOWN.
//
// Called by: src/api/app.ts (installs the hook and the one body parser), the route plugins
// (declare their body with `jsonBody`/`rawBody`).

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { ApiError, routeNotFoundError, sendApiError, toApiError } from './errors.ts';
import { isJsonMediaType, parseMediaType } from './media-type.ts';

/** Deeper JSON than this is refused unparsed; dram's bodies are flat objects (depth 1). */
export const jsonDepthMax = 16;

export type BodyPolicy =
  | { readonly kind: 'none' }
  | { readonly kind: 'json'; readonly bytesMax: number }
  | { readonly kind: 'raw'; readonly bytesMax: number };

const noBody: BodyPolicy = { kind: 'none' };

interface BodyConfig {
  readonly body?: BodyPolicy;
}

// A route's declared body is part of its config (fastify's per-route `config`).
declare module 'fastify' {
  interface FastifyContextConfig {
    body?: BodyPolicy;
  }
}

/** Route options for a route that takes a JSON body of at most `bytesMax` bytes. */
export function jsonBody(bytesMax: number): RouteShorthandOptions {
  return { bodyLimit: bytesMax, config: { body: { kind: 'json', bytesMax } } };
}

/** Route options for a route that takes any bytes (of any well-formed media type) up to `bytesMax`. */
export function rawBody(bytesMax: number): RouteShorthandOptions {
  return { bodyLimit: bytesMax, config: { body: { kind: 'raw', bytesMax } } };
}

/**
 * Route options for a route only members call (`/v1/internal/...`, with the member credential): left
 * out of the API document at /docs, which describes what users call.
 */
export const memberOnly = { schema: { hide: true } } as const satisfies RouteShorthandOptions;

function bodyPolicyOf(request: FastifyRequest): BodyPolicy {
  if (request.is404) return noBody;
  return (request.routeOptions.config as BodyConfig).body ?? noBody;
}

/** Headers that must not be repeated: request identity and body framing. */
const singleHeaders: ReadonlySet<string> = new Set(['host', 'content-type', 'content-length', 'authorization']);

function mustBeSingle(name: string): boolean {
  return singleHeaders.has(name) || name.startsWith('x-dram-');
}

/** The first header that must be given once and was given more than once, from the raw list. */
export function repeatedHeader(rawHeaders: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = (rawHeaders[index] ?? '').toLowerCase();
    if (!mustBeSingle(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/**
 * Whether a JSON text nests arrays and objects deeper than `depthMax`. One pass, constant memory:
 * brackets inside strings do not count; a malformed text is left for JSON.parse to refuse.
 */
export function jsonTooDeep(text: string, depthMax: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index++; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
      continue;
    }
    if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      depth++;
      if (depth > depthMax) return true;
    } else if (code === 0x5d || code === 0x7d) depth--;
  }
  return false;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Why the request is refused from its head, or undefined to let it through. */
function refusal(request: FastifyRequest, closing: boolean): ApiError | undefined {
  if (closing) return new ApiError('DRAM_ERR_SHUTTING_DOWN', 'this node is shutting down; retry at another node');
  if (request.raw.httpVersion === '1.1' && request.headers.host === undefined)
    return new ApiError('DRAM_ERR_BAD_REQUEST', 'an HTTP/1.1 request must carry a Host header');
  const repeated = repeatedHeader(request.raw.rawHeaders);
  if (repeated !== undefined) return new ApiError('DRAM_ERR_BAD_REQUEST', `header ${repeated} must be given once`);
  return bodyRefusal(request, bodyPolicyOf(request), hasBody(request));
}

function bodyRefusal(request: FastifyRequest, policy: BodyPolicy, withBody: boolean): ApiError | undefined {
  if (request.is404) return withBody ? routeNotFoundError(request.method, request.url) : undefined;
  if (policy.kind === 'none') {
    if (!withBody) return undefined;
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    return new ApiError('DRAM_ERR_BODY_TOO_LARGE', `${route} takes no body`, { bytesMax: 0 });
  }
  const length = Number(request.headers['content-length'] ?? 0);
  if (length > policy.bytesMax) {
    const error = toApiError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }, request.url);
    const message = `${error.message} (${length} bytes, at most ${policy.bytesMax})`;
    return new ApiError(error.code, message, { bytes: length, bytesMax: policy.bytesMax });
  }
  return mediaTypeRefusal(request.headers['content-type'], policy, withBody);
}

/** A route that takes a body checks a Content-Type whenever one is given, even on an empty body. */
function mediaTypeRefusal(header: string | undefined, policy: BodyPolicy, withBody: boolean): ApiError | undefined {
  if (header === undefined) {
    if (policy.kind === 'raw' || !withBody) return undefined;
    return new ApiError('DRAM_ERR_UNSUPPORTED_MEDIA_TYPE', 'a JSON body needs Content-Type: application/json');
  }
  const mediaType = parseMediaType(header);
  if (mediaType === undefined)
    return new ApiError('DRAM_ERR_UNSUPPORTED_MEDIA_TYPE', `malformed Content-Type ${JSON.stringify(header)}`);
  if (policy.kind === 'json' && !isJsonMediaType(mediaType))
    return new ApiError(
      'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
      `this route takes application/json (UTF-8), not ${JSON.stringify(header)}`,
    );
  return undefined;
}

/**
 * Installs the head checks (an onRequest hook, so they run before any body is read, for matched
 * and unmatched URLs alike) and the one body parser every route shares.
 */
export function installRequestGuard(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    const error = refusal(request, closing);
    if (error === undefined) {
      done();
      return;
    }
    // The body, if any, was not read: the connection cannot carry another request.
    reply.header('connection', 'close');
    void sendApiError(reply, error);
  });

  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  // The head checks above chose the body's fate; the parser only reads it as its route declared.
  // Every route that takes a body sets its own limit (jsonBody, rawBody), which overrides this one.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1 }, (request, body: Buffer, done) => {
    const policy = bodyPolicyOf(request);
    if (policy.kind === 'raw') {
      done(null, body);
      return;
    }
    if (policy.kind === 'none') {
      done(null, undefined);
      return;
    }
    const text = body.toString('utf8');
    if (jsonTooDeep(text, jsonDepthMax)) {
      done(new ApiError('DRAM_ERR_BAD_REQUEST', `JSON body is nested deeper than ${jsonDepthMax} levels`), undefined);
      return;
    }
    void defaultJsonParser(request, text, done);
  });
}
