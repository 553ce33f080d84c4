// The binary client protocol's frames (docs/ARCHITECTURE.md, "Binary client protocol"): msgpack
// maps inside u32 big-endian length-prefixed frames (src/codec/frame-reader.ts). A client
// pipelines requests `{ id, op, key, value?, cas?, consistency?, client? }` on one connection; the
// server answers each with `{ id, ok, index, shard, leader, groups?, value?, code?, message? }`
// as it completes, in any order, matched by `id`. The fields mean what the HTTP headers mean
// (src/api/kv-routes.ts): `index` is X-Dram-Index, `shard` X-Dram-Shard, `leader` X-Dram-Leader
// (0: none known); `code` is a DRAM_ERR_* code of the HTTP registry when `ok` is false. `groups`
// is the number of KV groups (ids 1..groups), so a client can compute the placement itself.
//
// Authentication (docs/security.md): on a node with --token, a connection's first frame is
// `{ id, op: 'auth', token }`, answered `{ id, ok, ... }` like a request; what it grants (full or
// read-only) holds for the rest of the connection.
//
// Invariants: decoding validates every field and bounds every size; anything else throws a
// CodecError (the server then drops the connection), except a well-framed request whose key or
// client id is not valid UTF-8: that throws a `ClientRequestRefused` carrying the request's id, so
// the server refuses that request alone, as HTTP does (msgpack decoders turn bad bytes into
// U+FFFD, which would store another key than the one sent). Error codes are plain strings here (the
// registry lives in src/api/, above this pure layer); the decoder only checks their shape.
//
// Called by: src/api/binary-server.ts, src/client/client.ts.

import { utf8Length } from '../base/bytes.ts';
import { kvClientIdBytesMax, kvKeyBytesMax, kvValueBytesMax, type KvClientStamp } from './kv.ts';
import { decode, encode } from './msgpack.ts';
import { boolean, bytes, CodecError, counter, fail, oneOf, record } from './validate.ts';

export type ClientOp = 'get' | 'put' | 'delete';
export type ClientConsistency = 'linearizable' | 'lease' | 'stale';

export const clientMessageBytesMax = 4096;
/** A request frame: the value, the key, the client id and a little framing. */
export const clientRequestBytesMax = kvValueBytesMax + kvKeyBytesMax + kvClientIdBytesMax + 256;
/** A response frame: the value and a bounded message. */
export const clientResponseBytesMax = kvValueBytesMax + clientMessageBytesMax + 256;

export interface ClientRequest {
  readonly id: number;
  readonly op: ClientOp;
  readonly key: string;
  /** put only (required there). */
  readonly value?: Uint8Array;
  /** put and delete: only if the key's modify index is this (0: only if absent). */
  readonly cas?: number;
  /** get only; linearizable when absent. */
  readonly consistency?: ClientConsistency;
  /** put and delete: the exactly-once stamp. */
  readonly client?: KvClientStamp;
}

/** A connection's credentials (the --token or --read-token of the node), sent once, first. */
export interface ClientAuthRequest {
  readonly id: number;
  readonly op: 'auth';
  readonly token: string;
}

/** Anything a client sends: a KV request or its credentials. */
export type ClientFrame = ClientRequest | ClientAuthRequest;

/** A token longer than this is refused by the decoder (the node's tokens are far shorter). */
export const clientTokenBytesMax = 1024;

export interface ClientResponse {
  readonly id: number;
  readonly ok: boolean;
  readonly index: number;
  readonly shard: number;
  readonly leader: number;
  readonly groups?: number;
  readonly value?: Uint8Array;
  readonly code?: string;
  readonly message?: string;
}

const errorCodePattern = /^DRAM_ERR_[A-Z_]{1,64}$/u;

function text(value: unknown, path: string, bytesMin: number, bytesMax: number): string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  // UTF-8 takes at least one and at most three bytes per UTF-16 unit: count only when in doubt.
  if (value.length < bytesMin) fail(path, `expected at least ${bytesMin} bytes`);
  if (value.length * 3 > bytesMax) {
    const length = utf8Length(value);
    if (length > bytesMax) fail(path, `${length} UTF-8 bytes exceed ${bytesMax}`);
  }
  return value;
}

function onlyFields(raw: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const name of Object.keys(raw)) if (!allowed.includes(name)) fail(`${path}.${name}`, 'unknown field');
}

function present<T>(name: string, value: T | undefined): Record<string, T> {
  return value === undefined ? {} : { [name]: value };
}

export function encodeClientRequest(request: ClientFrame): Uint8Array {
  return encode(request);
}

export function encodeClientResponse(response: ClientResponse): Uint8Array {
  return encode(response);
}

const requestFields = ['id', 'op', 'key', 'value', 'cas', 'consistency', 'client'] as const;

/** A well-framed request refused for its content: answer `id` with DRAM_ERR_BAD_REQUEST, keep the connection. */
export class ClientRequestRefused extends CodecError {
  readonly id: number;

  constructor(id: number, message: string) {
    super(message);
    this.id = id;
  }
}

/** A KV request; an auth frame is refused (a CodecError). */
export function decodeClientRequest(data: Uint8Array): ClientRequest {
  const frame = decodeClientFrame(data);
  if (frame.op === 'auth') fail('request.op', 'auth is not a KV request');
  return frame;
}

/** What a server reads: a KV request or an auth frame. */
export function decodeClientFrame(data: Uint8Array): ClientFrame {
  const request = decodeRequestFields(data);
  if (request.op === 'auth') return request;
  // Only a string holding U+FFFD may have been mended from bad bytes: check the raw ones then.
  if ((request.key.includes('\uFFFD') || request.client?.id.includes('\uFFFD') === true) && !stringsAreUtf8(data))
    throw new ClientRequestRefused(request.id, 'request.key: not valid UTF-8 (nor is the client id, or one of them)');
  return request;
}

function decodeRequestFields(data: Uint8Array): ClientFrame {
  if (data.length > clientRequestBytesMax) fail('request', `${data.length} bytes exceed ${clientRequestBytesMax}`);
  const raw = record(decode(data), 'request');
  if (raw['op'] === 'auth') {
    onlyFields(raw, 'request', ['id', 'op', 'token']);
    return {
      id: counter(raw['id'], 'request.id'),
      op: 'auth',
      token: text(raw['token'], 'request.token', 1, clientTokenBytesMax),
    };
  }
  onlyFields(raw, 'request', requestFields);
  const id = counter(raw['id'], 'request.id');
  const op = oneOf(raw['op'], 'request.op', ['get', 'put', 'delete'] as const);
  const key = text(raw['key'], 'request.key', 1, kvKeyBytesMax);
  if (op === 'get') {
    if (raw['value'] !== undefined || raw['cas'] !== undefined || raw['client'] !== undefined)
      fail('request', 'get takes no value, cas or client');
    const consistency =
      raw['consistency'] === undefined
        ? undefined
        : oneOf(raw['consistency'], 'request.consistency', ['linearizable', 'lease', 'stale'] as const);
    return { id, op, key, ...present('consistency', consistency) };
  }
  if (raw['consistency'] !== undefined) fail('request.consistency', `${op} takes no consistency`);
  const cas = raw['cas'] === undefined ? undefined : counter(raw['cas'], 'request.cas');
  let client: KvClientStamp | undefined;
  if (raw['client'] !== undefined) {
    const stamp = record(raw['client'], 'request.client');
    onlyFields(stamp, 'request.client', ['id', 'seq']);
    client = {
      id: text(stamp['id'], 'request.client.id', 1, kvClientIdBytesMax),
      seq: counter(stamp['seq'], 'request.client.seq'),
    };
  }
  const extra = { ...present('cas', cas), ...present('client', client) };
  if (op === 'delete') {
    if (raw['value'] !== undefined) fail('request.value', 'delete takes no value');
    return { id, op, key, ...extra };
  }
  return { id, op, key, value: bytes(raw['value'], 'request.value', kvValueBytesMax), ...extra };
}

const responseFields = ['id', 'ok', 'index', 'shard', 'leader', 'groups', 'value', 'code', 'message'] as const;

export function decodeClientResponse(data: Uint8Array): ClientResponse {
  if (data.length > clientResponseBytesMax) fail('response', `${data.length} bytes exceed ${clientResponseBytesMax}`);
  const raw = record(decode(data), 'response');
  onlyFields(raw, 'response', responseFields);
  const ok = boolean(raw['ok'], 'response.ok');
  const groups = raw['groups'] === undefined ? undefined : counter(raw['groups'], 'response.groups');
  const value = raw['value'] === undefined ? undefined : bytes(raw['value'], 'response.value', kvValueBytesMax);
  const code = raw['code'] === undefined ? undefined : text(raw['code'], 'response.code', 1, 80);
  if (code !== undefined && !errorCodePattern.test(code)) fail('response.code', `not a DRAM_ERR_* code: ${code}`);
  if (!ok && code === undefined) fail('response.code', 'required when ok is false');
  if (ok && code !== undefined) fail('response.code', 'only when ok is false');
  const message =
    raw['message'] === undefined ? undefined : text(raw['message'], 'response.message', 0, clientMessageBytesMax);
  return {
    id: counter(raw['id'], 'response.id'),
    ok,
    index: counter(raw['index'], 'response.index'),
    shard: counter(raw['shard'], 'response.shard'),
    leader: counter(raw['leader'], 'response.leader'),
    ...present('groups', groups),
    ...present('value', value),
    ...present('code', code),
    ...present('message', message),
  };
}

/** Cuts a message to the wire bound (by UTF-16 units, a safe under-estimate of the byte bound). */
export function boundedMessage(message: string): string {
  const unitsMax = Math.floor(clientMessageBytesMax / 3);
  return message.length <= unitsMax ? message : `${message.slice(0, unitsMax - 1)}…`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Whether every msgpack string in `data` is valid UTF-8. `data` decoded already, so it is whole;
 * this only walks it: `values` counts the values still to read (a map adds two per entry).
 */
function stringsAreUtf8(data: Uint8Array): boolean {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  const skip = (bytes: number): boolean => {
    at += bytes;
    return at <= data.length;
  };
  const text = (lengthBytes: number): boolean => {
    if (at + lengthBytes > data.length) return false;
    const length = lengthBytes === 1 ? view.getUint8(at) : lengthBytes === 2 ? view.getUint16(at) : view.getUint32(at);
    at += lengthBytes;
    return utf8At(length);
  };
  const utf8At = (length: number): boolean => {
    if (at + length > data.length) return false;
    try {
      strictUtf8.decode(data.subarray(at, at + length));
    } catch {
      return false;
    }
    at += length;
    return true;
  };
  const count = (lengthBytes: 2 | 4): number => {
    const value = lengthBytes === 2 ? view.getUint16(at) : view.getUint32(at);
    at += lengthBytes;
    return value;
  };
  let values = 1;
  while (values > 0) {
    if (at >= data.length) return false;
    const type = view.getUint8(at++);
    values--;
    if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) continue;
    let ok = true;
    if (type <= 0x8f) values += 2 * (type & 0x0f);
    else if (type <= 0x9f) values += type & 0x0f;
    else if (type <= 0xbf) ok = utf8At(type & 0x1f);
    else if (type === 0xd9) ok = text(1);
    else if (type === 0xda) ok = text(2);
    else if (type === 0xdb) ok = text(4);
    else if (type === 0xdc) values += count(2);
    else if (type === 0xdd) values += count(4);
    else if (type === 0xde) values += 2 * count(2);
    else if (type === 0xdf) values += 2 * count(4);
    else if (type >= 0xc4 && type <= 0xc9) {
      // bin 8/16/32: length, bytes; ext 8/16/32: length, a type byte, bytes.
      const lengthBytes = [1, 2, 4][(type - 0xc4) % 3] ?? 4;
      ok = skip(lengthBytes + lengthOf(view, at, lengthBytes) + (type >= 0xc7 ? 1 : 0));
    } else ok = skip(fixedBytes.get(type) ?? data.length);
    if (!ok) return false;
  }
  return true;
}

/** Bytes after the type byte of the fixed-size msgpack types (floats, ints, fixext). */
const fixedBytes: ReadonlyMap<number, number> = new Map([
  [0xca, 4],
  [0xcb, 8],
  [0xcc, 1],
  [0xcd, 2],
  [0xce, 4],
  [0xcf, 8],
  [0xd0, 1],
  [0xd1, 2],
  [0xd2, 4],
  [0xd3, 8],
  [0xd4, 2],
  [0xd5, 3],
  [0xd6, 5],
  [0xd7, 9],
  [0xd8, 17],
]);

function lengthOf(view: DataView, at: number, lengthBytes: number): number {
  if (at + lengthBytes > view.byteLength) return view.byteLength;
  return lengthBytes === 1 ? view.getUint8(at) : lengthBytes === 2 ? view.getUint16(at) : view.getUint32(at);
}
