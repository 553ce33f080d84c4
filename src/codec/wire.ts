// The peer wire format: what one node sends another over the transport, as msgpack maps. A frame
// payload is either a `hello` (the connection handshake) or a `batch` (every Raft message one node
// has for one peer in one host turn, each tagged with its group). Decoding validates every field of
// every message type into the core's types, exhaustively over the `Message` union, with every count
// and byte size bounded by a named limit, so a frame from the network is either fully trusted or
// refused with a CodecError; nothing else ever escapes `decodeFrame`.
// A dialer's hello may carry an advertisement (where to reach it: its raft and HTTP addresses), so
// an acceptor can learn a node that joined the cluster; the dialer's proof covers it.
// Callers: src/transport/ (encodes and decodes frames) and the multi-Raft host (builds batches).
// Pure: no I/O. Unknown map keys are ignored (a newer peer may add fields within one protocol
// version); unknown frame kinds and message types are refused.

import type { GroupId, LogIndex, NodeId, Term } from '../base/ids.ts';
import { unreachable } from '../base/assert.ts';
import type { Entry, Message, MessageType } from '../raft/types.ts';
import { decodeEntryRun, encodeEntryRun } from './entry-run.ts';
import { decode, encode } from './msgpack.ts';
import {
  boolean,
  bytes,
  CodecError,
  counter,
  fail,
  integer,
  list,
  logIndex,
  nodeId,
  oneOf,
  record,
  snapshotMeta,
  term,
} from './validate.ts';

/**
 * Bumped on any incompatible change of this file's format; peers of another version are refused at
 * the handshake. 2: the dialer's proof covers its advertisement. 3: AppendEntries carries its
 * entries as one run (src/codec/entry-run.ts) instead of an array of maps. 4: a follower's
 * Propose (proposals forwarded to the leader), which a version-3 peer would refuse. Fields added
 * within version 4, each optional on the wire so a peer of an older release (which ignores unknown
 * keys) and this one still understand each other during a rolling upgrade: InstallSnapshot's
 * `snapshotChecksum` and `chunkChecksum`, InstallSnapshotResponse's `needSnapshot`.
 */
export const protocolVersion = 4;
/** A hello nonce: 256 random bits, so an observed handshake can never be replayed. */
export const nonceBytes = 32;
/** A hello proof: one HMAC-SHA256 digest. */
export const proofBytes = 32;
/** Cluster ids are short names (`prod-eu-1`); the bound keeps a hello small. */
export const clusterIdBytesMax = 256;
/** A host name or IP literal in an advertisement: a DNS name is at most 253 bytes. */
export const hostBytesMax = 253;

/** Bounds on what one batch frame may hold; the transport checks outgoing batches against the same limits. */
export interface WireLimits {
  readonly messagesPerFrameMax: number;
  readonly entriesPerMessageMax: number;
  /** Bytes of one normal entry's data. */
  readonly entryBytesMax: number;
  /** Bytes of one InstallSnapshot chunk. */
  readonly snapshotChunkBytesMax: number;
}

export interface GroupMessage {
  readonly group: GroupId;
  readonly message: Message;
}

/** Everything one node sends one peer in one turn; travels as one frame. */
export type PeerBatch = readonly GroupMessage[];

/**
 * The handshake, three hellos (src/transport/handshake.ts has the proofs): the acceptor sends a
 * fresh `nonce` and no proof; the dialer answers with its own nonce and a proof over the
 * acceptor's; the acceptor closes with a proof over the dialer's nonce and no nonce. Each side
 * checks the other's `version`, `clusterId` and `nodeId`.
 */
export interface HelloFrame {
  readonly kind: 'hello';
  readonly version: number;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** Empty, or exactly `nonceBytes`. */
  readonly nonce: Uint8Array;
  /** Empty, or exactly `proofBytes`. */
  readonly proof: Uint8Array;
  /** Sent by a dialer only: where the acceptor can reach it. */
  readonly advertised?: Advertisement;
}

/** A host and TCP port: where a node's peer listener or HTTP API is, in the transport, the address book and hellos alike. */
export interface NetAddress {
  readonly host: string;
  readonly port: number;
}

/** A node's own addresses as it announces them: its peer (raft) listener and its HTTP API. */
export interface Advertisement {
  readonly raft: NetAddress;
  readonly http?: NetAddress;
}

export interface BatchFrame {
  readonly kind: 'batch';
  readonly batch: PeerBatch;
}

export type Frame = HelloFrame | BatchFrame;

export function encodeHello(hello: Omit<HelloFrame, 'kind'>): Uint8Array {
  const frame: HelloFrame = { kind: 'hello', ...hello };
  return encode(frame);
}

// The core's messages are plain data, so they are written as they are, except that AppendEntries
// carries its entries as one run of bytes (`run`, absent when there are none; the first entry is
// at prevLogIndex + 1): no map per entry to write or read, and the run for a range of entries is
// encoded once for every peer that is sent it in the same turn (runMemo). Decoding rebuilds every
// message field by field, which is what makes the round trip exact and keeps stray fields out.
export function encodeBatch(batch: PeerBatch): Uint8Array {
  return encode({ kind: 'batch', batch: batch.map(wireGroupMessage) });
}

function wireGroupMessage(item: GroupMessage): unknown {
  const { group, message } = item;
  if (message.type !== 'AppendEntries') return item;
  const { type, from, to, term: messageTerm, prevLogIndex, prevLogTerm, entries: sent, commit } = message;
  const fields = { type, from, to, term: messageTerm, prevLogIndex, prevLogTerm, commit };
  return { group, message: sent.length === 0 ? fields : { ...fields, run: encodedRun(sent) } };
}

/**
 * Runs encoded lately, by their first entry: a leader sends the same entries to each follower in
 * a turn, each time in a new array of the same Entry objects (entries are immutable, so the same
 * objects are the same entries). Cleared when it would hold more than runMemoMax runs or
 * runMemoBytesMax bytes (a follower catching up gets appends of up to messageBytesMax each), so it
 * only ever holds the last turn or so.
 */
const runMemo = new Map<Entry, { readonly entries: readonly Entry[]; readonly bytes: Uint8Array }>();
const runMemoMax = 64;
const runMemoBytesMax = 4 << 20;
let runMemoBytes = 0;

function encodedRun(entries: readonly Entry[]): Uint8Array {
  const first = entries[0] as Entry;
  const known = runMemo.get(first);
  if (
    known !== undefined &&
    known.entries.length === entries.length &&
    known.entries.every((entry, k) => entry === entries[k])
  )
    return known.bytes;
  const bytes = encodeEntryRun(entries, 0);
  if (runMemo.size >= runMemoMax || runMemoBytes + bytes.length > runMemoBytesMax) {
    runMemo.clear();
    runMemoBytes = 0;
  }
  runMemo.set(first, { entries, bytes });
  runMemoBytes += bytes.length;
  return bytes;
}

/** Decodes and validates one frame payload; throws CodecError (and only that) when it is not a valid frame. */
export function decodeFrame(payload: Uint8Array, limits: WireLimits): Frame {
  const raw = record(decode(payload), 'frame');
  const kind = oneOf(raw['kind'], 'frame.kind', ['hello', 'batch'] as const);
  if (kind === 'hello') return hello(raw);
  const items = list(raw['batch'], 'frame.batch', limits.messagesPerFrameMax);
  return { kind, batch: items.map((item, k) => groupMessage(item, `frame.batch[${k}]`, limits)) };
}

/**
 * Why an outgoing batch would be refused by a peer with the same limits, or undefined when it fits.
 * Checked before sending: a frame the receiver must refuse would cost the connection, not just the frame.
 */
export function batchOverLimits(batch: PeerBatch, limits: WireLimits): string | undefined {
  if (batch.length > limits.messagesPerFrameMax)
    return `${batch.length} messages exceed messagesPerFrameMax ${limits.messagesPerFrameMax}`;
  for (const { message } of batch) {
    if (message.type === 'InstallSnapshot' && message.chunk.length > limits.snapshotChunkBytesMax) {
      return `snapshot chunk of ${message.chunk.length} bytes exceeds snapshotChunkBytesMax ${limits.snapshotChunkBytesMax}`;
    }
    if (message.type === 'Propose') {
      if (message.payloads.length > limits.entriesPerMessageMax)
        return `${message.payloads.length} entries exceed entriesPerMessageMax ${limits.entriesPerMessageMax}`;
      for (const data of message.payloads)
        if (data.length > limits.entryBytesMax)
          return `entry of ${data.length} bytes exceeds entryBytesMax ${limits.entryBytesMax}`;
      continue;
    }
    if (message.type !== 'AppendEntries') continue;
    if (message.entries.length > limits.entriesPerMessageMax)
      return `${message.entries.length} entries exceed entriesPerMessageMax ${limits.entriesPerMessageMax}`;
    for (const item of message.entries) {
      if (item.kind === 'normal' && item.data.length > limits.entryBytesMax)
        return `entry of ${item.data.length} bytes exceeds entryBytesMax ${limits.entryBytesMax}`;
    }
  }
  return undefined;
}

/**
 * The protocol version a hello payload claims, read before anything else in it is validated (or
 * undefined when it is no hello with a version): a node of another version may lay out the rest of
 * its hello differently, and is to be refused for its version, not for a field this one misreads.
 */
export function claimedHelloVersion(payload: Uint8Array): number | undefined {
  let raw: unknown;
  try {
    raw = decode(payload);
  } catch (error) {
    if (error instanceof CodecError) return undefined;
    throw error;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { kind, version } = raw as Record<string, unknown>;
  return kind === 'hello' && typeof version === 'number' && Number.isSafeInteger(version) ? version : undefined;
}

function hello(raw: Record<string, unknown>): HelloFrame {
  const clusterId = raw['clusterId'];
  if (typeof clusterId !== 'string') fail('frame.clusterId', 'expected a string');
  if (clusterIdBytes(clusterId) > clusterIdBytesMax) fail('frame.clusterId', `longer than ${clusterIdBytesMax} bytes`);
  const advertised =
    raw['advertised'] === undefined || raw['advertised'] === null
      ? undefined
      : advertisement(raw['advertised'], 'frame.advertised');
  return {
    kind: 'hello',
    version: counter(raw['version'], 'frame.version'),
    clusterId,
    nodeId: nodeId(raw['nodeId'], 'frame.nodeId'),
    nonce: emptyOrExactly(raw['nonce'], 'frame.nonce', nonceBytes),
    proof: emptyOrExactly(raw['proof'], 'frame.proof', proofBytes),
    ...(advertised === undefined ? {} : { advertised }),
  };
}

function advertisement(value: unknown, path: string): Advertisement {
  const raw = record(value, path);
  const http = raw['http'] === undefined || raw['http'] === null ? undefined : wireAddress(raw['http'], `${path}.http`);
  return { raft: wireAddress(raw['raft'], `${path}.raft`), ...(http === undefined ? {} : { http }) };
}

function wireAddress(value: unknown, path: string): NetAddress {
  const raw = record(value, path);
  const host = raw['host'];
  if (typeof host !== 'string' || !hostValid(host))
    fail(`${path}.host`, `expected a host name or IP address of 1..${hostBytesMax} bytes`);
  const port = counter(raw['port'], `${path}.port`);
  if (port < 1 || port > 0xffff) fail(`${path}.port`, 'expected a port in 1..65535');
  return { host, port };
}

// Letters, digits and the punctuation of DNS names, IPv4 and IPv6 literals (zone ids included):
// nothing a log line or a connect() call could misread.
const hostPattern = /^[A-Za-z0-9._:%-]+$/u;

/** Whether `host` may be advertised (and dialed): a DNS name or an IP literal, within `hostBytesMax`. */
export function hostValid(host: string): boolean {
  return host.length > 0 && host.length <= hostBytesMax && hostPattern.test(host);
}

const utf8 = new TextEncoder();

/** The UTF-8 size of a cluster id; the transport checks its own against `clusterIdBytesMax` at construction. */
export function clusterIdBytes(clusterId: string): number {
  return utf8.encode(clusterId).length;
}

function emptyOrExactly(value: unknown, path: string, length: number): Uint8Array {
  const result = bytes(value, path, length);
  if (result.length !== 0 && result.length !== length)
    fail(path, `expected 0 or ${length} bytes, got ${result.length}`);
  return result;
}

function groupMessage(value: unknown, path: string, limits: WireLimits): GroupMessage {
  const raw = record(value, path);
  return {
    group: counter(raw['group'], `${path}.group`) as GroupId,
    message: message(raw['message'], `${path}.message`, limits),
  };
}

// A Record over the union, so this fails to compile when the core grows a message type the decoder lacks.
const messageTypeKnown: Readonly<Record<MessageType, true>> = {
  RequestVote: true,
  RequestVoteResponse: true,
  AppendEntries: true,
  AppendEntriesResponse: true,
  Heartbeat: true,
  HeartbeatResponse: true,
  InstallSnapshot: true,
  InstallSnapshotResponse: true,
  TimeoutNow: true,
  ReadIndex: true,
  ReadIndexResponse: true,
  Propose: true,
};
const messageTypes = Object.keys(messageTypeKnown) as MessageType[];

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** Reads one message's fields, each checked and named by its path for the error. */
interface FieldReader {
  readonly raw: Record<string, unknown>;
  readonly path: string;
  field(name: string): [unknown, string];
  index(name: string): LogIndex;
  term(name: string): Term;
  whole(name: string): number;
  flag(name: string): boolean;
}

function fieldReader(raw: Record<string, unknown>, path: string): FieldReader {
  const field = (name: string): [unknown, string] => [raw[name], `${path}.${name}`];
  return {
    raw,
    path,
    field,
    index: (name) => logIndex(...field(name)),
    term: (name) => term(...field(name)),
    whole: (name) => counter(...field(name)),
    flag: (name) => boolean(...field(name)),
  };
}

function message(value: unknown, path: string, limits: WireLimits): Message {
  const raw = record(value, path);
  const type = oneOf(raw['type'], `${path}.type`, messageTypes);
  const read = fieldReader(raw, path);
  const envelope: Envelope = {
    from: nodeId(...read.field('from')),
    to: nodeId(...read.field('to')),
    term: read.term('term'),
  };
  switch (type) {
    case 'AppendEntries':
    case 'AppendEntriesResponse':
    case 'InstallSnapshot':
    case 'InstallSnapshotResponse':
      return replicationMessage(type, envelope, read, limits);
    case 'RequestVote':
      return {
        type,
        ...envelope,
        preVote: read.flag('preVote'),
        lastLogIndex: read.index('lastLogIndex'),
        lastLogTerm: read.term('lastLogTerm'),
        transfer: read.flag('transfer'),
      };
    case 'RequestVoteResponse':
      return { type, ...envelope, preVote: read.flag('preVote'), granted: read.flag('granted') };
    case 'Heartbeat':
      return {
        type,
        ...envelope,
        commit: read.index('commit'),
        readRound: read.whole('readRound'),
        sentTick: read.whole('sentTick'),
        quiesce: read.flag('quiesce'),
      };
    case 'HeartbeatResponse':
      return { type, ...envelope, readRound: read.whole('readRound'), sentTick: read.whole('sentTick') };
    case 'TimeoutNow':
      return { type, ...envelope };
    case 'ReadIndex':
      return { type, ...envelope, requestId: integer(...read.field('requestId')) };
    case 'ReadIndexResponse':
      return { type, ...envelope, requestId: integer(...read.field('requestId')), index: read.index('index') };
    case 'Propose':
      return {
        type,
        ...envelope,
        payloads: list(raw['payloads'], `${path}.payloads`, limits.entriesPerMessageMax).map((data, k) =>
          bytes(data, `${path}.payloads[${k}]`, limits.entryBytesMax),
        ),
      };
    default:
      return unreachable(type, 'message type');
  }
}

/** The messages that carry the log or a snapshot, and their answers. */
function replicationMessage(
  type: 'AppendEntries' | 'AppendEntriesResponse' | 'InstallSnapshot' | 'InstallSnapshotResponse',
  envelope: Envelope,
  read: FieldReader,
  limits: WireLimits,
): Message {
  const { raw, path } = read;
  switch (type) {
    case 'AppendEntries':
      return {
        type,
        ...envelope,
        prevLogIndex: read.index('prevLogIndex'),
        prevLogTerm: read.term('prevLogTerm'),
        entries: entries(raw['run'], read.index('prevLogIndex'), `${path}.entries`, limits),
        commit: read.index('commit'),
      };
    case 'AppendEntriesResponse':
      return {
        type,
        ...envelope,
        success: read.flag('success'),
        index: read.index('index'),
        hintIndex: read.index('hintIndex'),
        hintTerm: read.term('hintTerm'),
      };
    case 'InstallSnapshot':
      return {
        type,
        ...envelope,
        meta: snapshotMeta(...read.field('meta')),
        offset: read.whole('offset'),
        totalBytes: read.whole('totalBytes'),
        snapshotChecksum: optionalChecksum32(read, 'snapshotChecksum'),
        chunk: bytes(raw['chunk'], `${path}.chunk`, limits.snapshotChunkBytesMax),
        chunkChecksum: optionalChecksum32(read, 'chunkChecksum'),
      };
    case 'InstallSnapshotResponse':
      return {
        type,
        ...envelope,
        snapshotIndex: read.index('snapshotIndex'),
        snapshotTerm: read.term('snapshotTerm'),
        nextOffset: read.whole('nextOffset'),
        needSnapshot:
          read.raw['needSnapshot'] === undefined || read.raw['needSnapshot'] === null
            ? false
            : read.flag('needSnapshot'),
      };
    default:
      return unreachable(type, 'replication message type');
  }
}

/** A CRC-32, a whole number below 2^32; undefined when absent (a peer of an older release). */
function optionalChecksum32(read: FieldReader, name: string): number | undefined {
  if (read.raw[name] === undefined || read.raw[name] === null) return undefined;
  const value = read.whole(name);
  if (value > 0xffff_ffff) fail(`${read.path}.${name}`, 'expected a 32-bit checksum');
  return value;
}

/** An AppendEntries run: absent for none, else entries from prevLogIndex + 1 on, within the limits. */
function entries(value: unknown, prevLogIndex: LogIndex, path: string, limits: WireLimits): Entry[] {
  if (value === undefined || value === null) return [];
  const run = bytes(value, path, Number.MAX_SAFE_INTEGER);
  const decoded = decodeEntryRun(
    run,
    0,
    { entryDataBytesMax: limits.entryBytesMax, entriesMax: limits.entriesPerMessageMax },
    path,
  );
  if (decoded[0]?.index !== prevLogIndex + 1)
    fail(path, `the run starts at ${decoded[0]?.index}, not at prevLogIndex + 1 = ${prevLogIndex + 1}`);
  return decoded;
}
