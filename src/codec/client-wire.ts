// The binary client protocol's frames (docs/ARCHITECTURE.md, "Binary client protocol"): msgpack
// maps inside u32 big-endian length-prefixed frames (src/transport/frame-reader.ts). A client
// pipelines requests `{ id, op, key, value?, cas?, consistency?, client? }` on one connection; the
// server answers each with `{ id, ok, index, shard, leader, groups?, value?, code?, message? }`
// as it completes, in any order, matched by `id`. The fields mean what the HTTP headers mean
// (src/api/kv-routes.ts): `index` is X-Dram-Index, `shard` X-Dram-Shard, `leader` X-Dram-Leader
// (0: none known); `code` is a DRAM_ERR_* code of the HTTP registry when `ok` is false. `groups`
// is the number of KV groups (ids 1..groups), so a client can compute the placement itself.
//
// Invariants: decoding validates every field and bounds every size; anything else throws a
// CodecError (the server then drops the connection). Error codes are plain strings here (the
// registry lives in src/api/, above this pure layer); the decoder only checks their shape.
//
// Called by: src/api/binary-server.ts, src/client/client.ts.

import { utf8Length } from '../base/bytes.ts';
import { kvClientIdBytesMax, kvKeyBytesMax, kvValueBytesMax, type KvClientStamp } from './kv.ts';
import { decode, encode } from './msgpack.ts';
import { boolean, bytes, counter, fail, oneOf, record } from './validate.ts';

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

export function encodeClientRequest(request: ClientRequest): Uint8Array {
  return encode(request);
}

export function encodeClientResponse(response: ClientResponse): Uint8Array {
  return encode(response);
}

const requestFields = ['id', 'op', 'key', 'value', 'cas', 'consistency', 'client'] as const;

export function decodeClientRequest(data: Uint8Array): ClientRequest {
  if (data.length > clientRequestBytesMax) fail('request', `${data.length} bytes exceed ${clientRequestBytesMax}`);
  const raw = record(decode(data), 'request');
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
