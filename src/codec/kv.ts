// Wire and snapshot formats of the KV model: commands carried in Raft entries, and the model's
// snapshot. Decoding validates every field; a malformed command is refused with CodecError.

import { utf8Length } from '../base/bytes.ts';
import { decode, encode } from './msgpack.ts';
import { bytes, counter, fail, list, oneOf, record } from './validate.ts';

export const kvKeyBytesMax = 1024;
export const kvValueBytesMax = 1 << 20;
export const kvClientIdBytesMax = 128;

export interface KvClientStamp {
  /** A client's id and its request sequence number: a retried request is applied once. */
  readonly id: string;
  readonly seq: number;
}

export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array; readonly cas?: number; readonly client?: KvClientStamp }
  | { readonly op: 'delete'; readonly key: string; readonly cas?: number; readonly client?: KvClientStamp };

export function encodeKvCommand(command: KvCommand): Uint8Array {
  return encode(command);
}

function text(value: unknown, path: string, bytesMax: number): string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  if (utf8Length(value) > bytesMax) fail(path, `longer than ${bytesMax} bytes`);
  return value;
}

export function decodeKvCommand(data: Uint8Array): KvCommand {
  const raw = record(decode(data), 'kv');
  const op = oneOf(raw['op'], 'kv.op', ['put', 'delete'] as const);
  const key = text(raw['key'], 'kv.key', kvKeyBytesMax);
  const cas = raw['cas'] === undefined ? undefined : counter(raw['cas'], 'kv.cas');
  let client: KvClientStamp | undefined;
  if (raw['client'] !== undefined) {
    const stamp = record(raw['client'], 'kv.client');
    client = { id: text(stamp['id'], 'kv.client.id', kvClientIdBytesMax), seq: counter(stamp['seq'], 'kv.client.seq') };
  }
  const extra = { ...(cas === undefined ? {} : { cas }), ...(client === undefined ? {} : { client }) };
  if (op === 'delete') return { op, key, ...extra };
  return { op, key, value: bytes(raw['value'], 'kv.value', kvValueBytesMax), ...extra };
}

export interface KvSnapshotRecord {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface KvSnapshotSession {
  readonly id: string;
  readonly seq: number;
  readonly lastIndex: number;
  readonly outcome: unknown;
}

export interface KvSnapshot {
  readonly version: 1;
  readonly records: readonly KvSnapshotRecord[];
  readonly sessions: readonly KvSnapshotSession[];
}

export function encodeKvSnapshot(snapshot: KvSnapshot): Uint8Array {
  return encode(snapshot);
}

export function decodeKvSnapshot(data: Uint8Array): KvSnapshot {
  const raw = record(decode(data), 'kvsnap');
  if (raw['version'] !== 1) fail('kvsnap.version', `unsupported ${String(raw['version'])}`);
  const records = list(raw['records'], 'kvsnap.records', Number.MAX_SAFE_INTEGER).map((item, k) => {
    const r = record(item, `kvsnap.records[${k}]`);
    return {
      key: text(r['key'], `kvsnap.records[${k}].key`, kvKeyBytesMax),
      value: bytes(r['value'], `kvsnap.records[${k}].value`, kvValueBytesMax),
      createIndex: counter(r['createIndex'], `kvsnap.records[${k}].createIndex`),
      modifyIndex: counter(r['modifyIndex'], `kvsnap.records[${k}].modifyIndex`),
    };
  });
  const sessions = list(raw['sessions'], 'kvsnap.sessions', Number.MAX_SAFE_INTEGER).map((item, k) => {
    const s = record(item, `kvsnap.sessions[${k}]`);
    return { id: text(s['id'], `kvsnap.sessions[${k}].id`, kvClientIdBytesMax), seq: counter(s['seq'], `kvsnap.sessions[${k}].seq`), lastIndex: counter(s['lastIndex'], `kvsnap.sessions[${k}].lastIndex`), outcome: s['outcome'] };
  });
  return { version: 1, records, sessions };
}
