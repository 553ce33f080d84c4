// The peer wire format: every message type and the hello survive a round trip exactly; garbage,
// random byte mutations and random field replacements of valid frames give a CodecError or a valid
// frame, never another exception; each named limit is enforced at the bound, and the sender-side
// check (`batchOverLimits`) agrees with the receiver.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, NodeId, Term } from '../../src/base/ids.ts';
import { decode, encode } from '../../src/codec/msgpack.ts';
import { CodecError } from '../../src/codec/validate.ts';
import {
  batchOverLimits,
  decodeFrame,
  encodeBatch,
  encodeHello,
  nonceBytes,
  proofBytes,
  protocolVersion,
} from '../../src/codec/wire.ts';
import type { GroupMessage, PeerBatch, WireLimits } from '../../src/codec/wire.ts';
import type {
  ConfEntry,
  ConfState,
  Entry,
  Message,
  MessageType,
  NormalEntry,
  SnapshotMeta,
} from '../../src/raft/types.ts';

const limits: WireLimits = {
  messagesPerFrameMax: 16,
  entriesPerMessageMax: 8,
  entryBytesMax: 64,
  snapshotChunkBytesMax: 128,
};

const node = fc.maxSafeNat().map((value) => value as NodeId);
const termArb = fc.maxSafeNat().map((value) => value as Term);
const indexArb = fc.maxSafeNat().map((value) => value as LogIndex);
const nodes = fc.array(node, { maxLength: 5 });
const confStateArb: fc.Arbitrary<ConfState> = fc.record({
  voters: nodes,
  votersOutgoing: nodes,
  learners: nodes,
  learnersNext: nodes,
  autoLeave: fc.boolean(),
});
const metaArb: fc.Arbitrary<SnapshotMeta> = fc.record({ index: indexArb, term: termArb, confState: confStateArb });

/** An entry without its index: AppendEntries carries consecutive entries from prevLogIndex + 1 (contiguousEntries). */
const entryArb: fc.Arbitrary<Omit<NormalEntry, 'index'> | Omit<ConfEntry, 'index'>> = fc.oneof(
  fc.record({
    kind: fc.constant('normal' as const),
    term: termArb,
    data: fc.uint8Array({ maxLength: limits.entryBytesMax }),
  }),
  fc.record({
    kind: fc.constant('conf' as const),
    term: termArb,
    change: fc.record({
      changes: fc.array(
        fc.record({
          type: fc.constantFrom('add_voter' as const, 'add_learner' as const, 'remove_node' as const),
          node,
        }),
        { maxLength: 4 },
      ),
      transition: fc.constantFrom('auto' as const, 'joint' as const),
    }),
  }),
);

const envelope = { from: node, to: node, term: termArb };

/** prevLogIndex and the entries after it, placed at prevLogIndex + 1, + 2, ... */
function contiguousEntries(
  bodies: fc.Arbitrary<Omit<NormalEntry, 'index'> | Omit<ConfEntry, 'index'>>,
  entriesMax: number,
): fc.Arbitrary<{ prevLogIndex: LogIndex; entries: Entry[] }> {
  return fc
    .record({
      prevLogIndex: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - entriesMax }),
      bodies: fc.array(bodies, { maxLength: entriesMax }),
    })
    .map(({ prevLogIndex, bodies: list }) => ({
      prevLogIndex: prevLogIndex as LogIndex,
      entries: list.map((body, k) => ({ ...body, index: (prevLogIndex + 1 + k) as LogIndex })),
    }));
}

const messageArbs: { readonly [T in MessageType]: fc.Arbitrary<Extract<Message, { type: T }>> } = {
  RequestVote: fc.record({
    type: fc.constant('RequestVote' as const),
    ...envelope,
    preVote: fc.boolean(),
    lastLogIndex: indexArb,
    lastLogTerm: termArb,
    transfer: fc.boolean(),
  }),
  RequestVoteResponse: fc.record({
    type: fc.constant('RequestVoteResponse' as const),
    ...envelope,
    preVote: fc.boolean(),
    granted: fc.boolean(),
  }),
  AppendEntries: fc
    .record({
      type: fc.constant('AppendEntries' as const),
      ...envelope,
      log: contiguousEntries(entryArb, limits.entriesPerMessageMax),
      prevLogTerm: termArb,
      commit: indexArb,
    })
    .map(({ log, ...rest }) => ({ ...rest, prevLogIndex: log.prevLogIndex, entries: log.entries })),
  AppendEntriesResponse: fc.record({
    type: fc.constant('AppendEntriesResponse' as const),
    ...envelope,
    success: fc.boolean(),
    index: indexArb,
    hintIndex: indexArb,
    hintTerm: termArb,
  }),
  Heartbeat: fc.record({
    type: fc.constant('Heartbeat' as const),
    ...envelope,
    commit: indexArb,
    readRound: fc.maxSafeNat(),
    sentTick: fc.maxSafeNat(),
    quiesce: fc.boolean(),
  }),
  HeartbeatResponse: fc.record({
    type: fc.constant('HeartbeatResponse' as const),
    ...envelope,
    readRound: fc.maxSafeNat(),
    sentTick: fc.maxSafeNat(),
  }),
  InstallSnapshot: fc.record({
    type: fc.constant('InstallSnapshot' as const),
    ...envelope,
    meta: metaArb,
    offset: fc.maxSafeNat(),
    totalBytes: fc.maxSafeNat(),
    snapshotChecksum: fc.nat({ max: 0xffff_ffff }),
    chunk: fc.uint8Array({ maxLength: limits.snapshotChunkBytesMax }),
    chunkChecksum: fc.nat({ max: 0xffff_ffff }),
  }),
  InstallSnapshotResponse: fc.record({
    type: fc.constant('InstallSnapshotResponse' as const),
    ...envelope,
    snapshotIndex: indexArb,
    snapshotTerm: termArb,
    nextOffset: fc.maxSafeNat(),
    needSnapshot: fc.boolean(),
  }),
  TimeoutNow: fc.record({ type: fc.constant('TimeoutNow' as const), ...envelope }),
  ReadIndex: fc.record({ type: fc.constant('ReadIndex' as const), ...envelope, requestId: fc.maxSafeInteger() }),
  ReadIndexResponse: fc.record({
    type: fc.constant('ReadIndexResponse' as const),
    ...envelope,
    requestId: fc.maxSafeInteger(),
    index: indexArb,
  }),
  Propose: fc.record({
    type: fc.constant('Propose' as const),
    ...envelope,
    payloads: fc.array(fc.uint8Array({ maxLength: limits.entryBytesMax }), { maxLength: limits.entriesPerMessageMax }),
  }),
};
const messageArb: fc.Arbitrary<Message> = fc.oneof(...Object.values(messageArbs));
const groupMessageArb: fc.Arbitrary<GroupMessage> = fc.record({
  group: fc.maxSafeNat().map((value) => value as GroupId),
  message: messageArb,
});
const batchArb: fc.Arbitrary<PeerBatch> = fc.array(groupMessageArb, {
  minLength: 1,
  maxLength: limits.messagesPerFrameMax,
});

/** Byte arrays as plain arrays, so a Buffer view and the Uint8Array it came from compare equal. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

/** Decoding either succeeds or throws a CodecError; anything else fails the property. */
function decodesOrRefuses(payload: Uint8Array): void {
  try {
    decodeFrame(payload, limits);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
  }
}

function refusal(payload: Uint8Array): string {
  try {
    decodeFrame(payload, limits);
  } catch (error) {
    if (error instanceof CodecError) return error.message;
    throw error;
  }
  return 'accepted';
}

const g = (value: number): GroupId => value as GroupId;
const n = (value: number): NodeId => value as NodeId;

function heartbeat(): Message {
  return {
    type: 'Heartbeat',
    from: n(1),
    to: n(2),
    term: 3 as Term,
    commit: 4 as LogIndex,
    readRound: 0,
    sentTick: 9,
    quiesce: false,
  };
}

function appendEntries(entries: readonly Entry[]): Message {
  return {
    type: 'AppendEntries',
    from: n(1),
    to: n(2),
    term: 3 as Term,
    prevLogIndex: 1 as LogIndex,
    prevLogTerm: 1 as Term,
    entries,
    commit: 1 as LogIndex,
  };
}

/** `count` entries of `dataBytes` each, from index 2 (appendEntries' prevLogIndex is 1). */
/** A follower's Propose of `count` payloads; the first is `firstBytes` long, the others 1 byte. */
function propose(count: number, firstBytes: number): Message {
  const payloads = Array.from({ length: count }, (_, k) => new Uint8Array(k === 0 ? firstBytes : 1));
  return { type: 'Propose', from: n(2), to: n(1), term: 3 as Term, payloads };
}

function normals(count: number, dataBytes: number): Entry[] {
  return Array.from({ length: count }, (_, k) => ({
    kind: 'normal',
    term: 3 as Term,
    index: (2 + k) as LogIndex,
    data: new Uint8Array(dataBytes),
  }));
}

describe('peer wire format', () => {
  it('round-trips batches of every message type exactly', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const frame = decodeFrame(encodeBatch(batch), limits);
        expect(frame.kind).toBe('batch');
        expect(plain(frame)).toEqual(plain({ kind: 'batch', batch }));
      }),
      { numRuns: 300 },
    );
  });

  it.each(Object.keys(messageArbs) as MessageType[])('round-trips %s exactly', (type) => {
    fc.assert(
      fc.property(messageArbs[type], (message: Message) => {
        const frame = decodeFrame(encodeBatch([{ group: g(7), message }]), limits);
        expect(plain(frame)).toEqual(plain({ kind: 'batch', batch: [{ group: 7, message }] }));
      }),
      { numRuns: 50 },
    );
  });

  it('reads the snapshot fields added within version 4 as absent when an older peer sends none', () => {
    const older = {
      kind: 'batch',
      batch: [
        {
          group: 7,
          message: {
            type: 'InstallSnapshot',
            from: 1,
            to: 2,
            term: 3,
            offset: 0,
            totalBytes: 2,
            chunk: new Uint8Array([1, 2]),
            meta: {
              index: 5,
              term: 2,
              confState: { voters: [1, 2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
            },
          },
        },
        {
          group: 7,
          message: {
            type: 'InstallSnapshotResponse',
            from: 2,
            to: 1,
            term: 3,
            snapshotIndex: 5,
            snapshotTerm: 2,
            nextOffset: 2,
          },
        },
      ],
    };
    const frame = decodeFrame(encode(older), limits);
    if (typeof frame === 'string' || frame.kind !== 'batch') throw new Error(`not decoded: ${JSON.stringify(frame)}`);
    const [install, response] = frame.batch.map((item) => item.message);
    expect(install).toMatchObject({ type: 'InstallSnapshot', snapshotChecksum: undefined, chunkChecksum: undefined });
    expect(response).toMatchObject({ type: 'InstallSnapshotResponse', needSnapshot: false });
  });

  it('round-trips hellos, with and without nonce and proof', () => {
    const nonce = new Uint8Array(nonceBytes).fill(1);
    const proof = new Uint8Array(proofBytes).fill(2);
    for (const hello of [
      { version: protocolVersion, clusterId: 'prod-eu-1', nodeId: n(3), nonce, proof: new Uint8Array(0) },
      { version: protocolVersion, clusterId: 'ünïcode-✓', nodeId: n(4), nonce, proof },
      { version: 99, clusterId: 'x', nodeId: n(5), nonce: new Uint8Array(0), proof },
    ]) {
      expect(plain(decodeFrame(encodeHello(hello), limits))).toEqual(plain({ kind: 'hello', ...hello }));
    }
  });

  it('refuses random bytes with a CodecError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (garbage) => {
        decodesOrRefuses(garbage);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses random byte mutations of valid frames with a CodecError only', () => {
    const mutation = fc.record({
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      how: fc.constantFrom('set', 'insert', 'delete', 'truncate'),
    });
    fc.assert(
      fc.property(batchArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (batch, mutations) => {
        let bytes = Array.from(encodeBatch(batch));
        for (const { at, byte, how } of mutations) {
          const position = bytes.length === 0 ? 0 : at % bytes.length;
          if (how === 'set') bytes[position] = byte;
          else if (how === 'insert') bytes.splice(position, 0, byte);
          else if (how === 'delete') bytes.splice(position, 1);
          else bytes = bytes.slice(0, position);
        }
        decodesOrRefuses(Uint8Array.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses valid frames with one field replaced by anything with a CodecError only', () => {
    fc.assert(
      fc.property(
        batchArb,
        fc.nat(),
        fc.nat(),
        fc.anything({ withBigInt: false, withTypedArray: true }),
        (batch, pick, fieldPick, replacement) => {
          const frame = decode(encodeBatch(batch)) as { batch: { message: Record<string, unknown> }[] };
          const item = frame.batch[pick % frame.batch.length];
          if (item === undefined) return;
          const keys = Object.keys(item.message);
          const key = keys[fieldPick % keys.length];
          if (key === undefined) return;
          item.message[key] = replacement;
          let mutated: Uint8Array;
          try {
            mutated = encode(frame);
          } catch {
            return; // not every JavaScript value is msgpack; those can never arrive on the wire
          }
          decodesOrRefuses(mutated);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses unknown frame kinds, unknown message types and missing fields, naming the field', () => {
    expect(refusal(encode({ kind: 'gossip' }))).toBe('frame.kind: expected one of hello, batch');
    expect(
      refusal(encode({ kind: 'batch', batch: [{ group: 1, message: { ...heartbeat(), type: 'Gossip' } }] })),
    ).toMatch(/^frame\.batch\[0\]\.message\.type: expected one of RequestVote, /);
    const withoutTick: Record<string, unknown> = { ...heartbeat() };
    delete withoutTick['sentTick'];
    expect(refusal(encode({ kind: 'batch', batch: [{ group: 1, message: withoutTick }] }))).toBe(
      'frame.batch[0].message.sentTick: expected a non-negative integer',
    );
    expect(refusal(encode({ kind: 'batch', batch: [{ group: -1, message: heartbeat() }] }))).toBe(
      'frame.batch[0].group: expected a non-negative integer',
    );
    expect(refusal(encode({ kind: 'batch', batch: [{ group: 1, message: { ...heartbeat(), term: 1.5 } }] }))).toBe(
      'frame.batch[0].message.term: expected a non-negative integer',
    );
    expect(
      refusal(
        encode({
          kind: 'hello',
          version: 1,
          clusterId: 'c',
          nodeId: 1,
          nonce: new Uint8Array(5),
          proof: new Uint8Array(0),
        }),
      ),
    ).toBe('frame.nonce: expected 0 or 32 bytes, got 5');
    expect(
      refusal(
        encode({
          kind: 'hello',
          version: 1,
          clusterId: 'c'.repeat(257),
          nodeId: 1,
          nonce: new Uint8Array(0),
          proof: new Uint8Array(0),
        }),
      ),
    ).toBe('frame.clusterId: longer than 256 bytes');
    expect(refusal(encode([1, 2, 3]))).toBe('frame: expected a map');
  });

  it('refuses an AppendEntries run that does not start right after prevLogIndex', () => {
    const frame = decode(encodeBatch([{ group: g(1), message: appendEntries(normals(2, 1)) }])) as {
      batch: { message: Record<string, unknown> }[];
    };
    const item = frame.batch[0];
    if (item === undefined) throw new Error('test setup: no message');
    item.message['prevLogIndex'] = 4;
    expect(refusal(encode(frame))).toBe(
      'frame.batch[0].message.entries: the run starts at 2, not at prevLogIndex + 1 = 5',
    );
  });

  it('encodes the same entries once for every peer, and never serves a stale run for entries that differ', () => {
    const log = normals(3, 4);
    const [first, middle, last] = log as [Entry, Entry, Entry];
    const toPeer = (entries: readonly Entry[]): unknown =>
      plain(decodeFrame(encodeBatch([{ group: g(1), message: appendEntries(entries) }]), limits));
    expect(toPeer([first, middle, last])).toEqual(toPeer(log));
    const replaced: Entry = { kind: 'normal', term: 3 as Term, index: 3 as LogIndex, data: Uint8Array.of(9, 9) };
    expect(toPeer([first, replaced, last])).toEqual(
      plain({ kind: 'batch', batch: [{ group: 1, message: appendEntries([first, replaced, last]) }] }),
    );
    expect(toPeer([first, middle])).toEqual(
      plain({ kind: 'batch', batch: [{ group: 1, message: appendEntries([first, middle]) }] }),
    );
  });

  it('enforces each named limit at its bound, and the sender-side check agrees', () => {
    const cases: { name: string; atBound: PeerBatch; overBound: PeerBatch; error: string }[] = [
      {
        name: 'messagesPerFrameMax',
        atBound: Array.from({ length: limits.messagesPerFrameMax }, () => ({ group: g(1), message: heartbeat() })),
        overBound: Array.from({ length: limits.messagesPerFrameMax + 1 }, () => ({
          group: g(1),
          message: heartbeat(),
        })),
        error: 'frame.batch: array of 17 exceeds 16',
      },
      {
        name: 'entriesPerMessageMax',
        atBound: [{ group: g(1), message: appendEntries(normals(limits.entriesPerMessageMax, 1)) }],
        overBound: [{ group: g(1), message: appendEntries(normals(limits.entriesPerMessageMax + 1, 1)) }],
        error: 'frame.batch[0].message.entries: 9 entries exceed 8',
      },
      {
        name: 'entryBytesMax',
        atBound: [{ group: g(1), message: appendEntries(normals(1, limits.entryBytesMax)) }],
        overBound: [{ group: g(1), message: appendEntries(normals(1, limits.entryBytesMax + 1)) }],
        error: 'frame.batch[0].message.entries entry 2: 65 bytes exceed 64',
      },
      {
        name: 'entriesPerMessageMax',
        atBound: [{ group: g(1), message: propose(limits.entriesPerMessageMax, 1) }],
        overBound: [{ group: g(1), message: propose(limits.entriesPerMessageMax + 1, 1) }],
        error: 'frame.batch[0].message.payloads: array of 9 exceeds 8',
      },
      {
        name: 'entryBytesMax',
        atBound: [{ group: g(1), message: propose(2, limits.entryBytesMax) }],
        overBound: [{ group: g(1), message: propose(2, limits.entryBytesMax + 1) }],
        error: 'frame.batch[0].message.payloads[0]: 65 bytes exceed 64',
      },
      {
        name: 'snapshotChunkBytesMax',
        atBound: [{ group: g(1), message: snapshotChunk(limits.snapshotChunkBytesMax) }],
        overBound: [{ group: g(1), message: snapshotChunk(limits.snapshotChunkBytesMax + 1) }],
        error: 'frame.batch[0].message.chunk: 129 bytes exceed 128',
      },
    ];
    for (const { name, atBound, overBound, error } of cases) {
      expect(refusal(encodeBatch(atBound)), name).toBe('accepted');
      expect(batchOverLimits(atBound, limits), name).toBeUndefined();
      expect(refusal(encodeBatch(overBound)), name).toBe(error);
      expect(batchOverLimits(overBound, limits), name).toContain(name);
    }
  });

  it('sender-side check agrees with the decoder on random batches', () => {
    const loose: WireLimits = {
      messagesPerFrameMax: 20,
      entriesPerMessageMax: 10,
      entryBytesMax: 80,
      snapshotChunkBytesMax: 160,
    };
    const looseEntry = fc.record({
      kind: fc.constant('normal' as const),
      term: termArb,
      data: fc.uint8Array({ maxLength: loose.entryBytesMax }),
    });
    const looseMessage: fc.Arbitrary<Message> = fc.oneof(
      messageArbs.Heartbeat,
      fc
        .record({
          type: fc.constant('AppendEntries' as const),
          ...envelope,
          log: contiguousEntries(looseEntry, loose.entriesPerMessageMax),
          prevLogTerm: termArb,
          commit: indexArb,
        })
        .map(({ log, ...rest }) => ({ ...rest, prevLogIndex: log.prevLogIndex, entries: log.entries })),
      fc.record({
        type: fc.constant('InstallSnapshot' as const),
        ...envelope,
        meta: metaArb,
        offset: fc.nat(),
        totalBytes: fc.nat(),
        snapshotChecksum: fc.nat({ max: 0xffff_ffff }),
        chunk: fc.uint8Array({ maxLength: loose.snapshotChunkBytesMax }),
        chunkChecksum: fc.nat({ max: 0xffff_ffff }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ group: fc.nat().map(g), message: looseMessage }), {
          minLength: 1,
          maxLength: loose.messagesPerFrameMax,
        }),
        (batch) => {
          expect(batchOverLimits(batch, limits) === undefined).toBe(refusal(encodeBatch(batch)) === 'accepted');
        },
      ),
      { numRuns: 300 },
    );
  });
});

function snapshotChunk(chunkBytes: number): Message {
  const meta: SnapshotMeta = {
    index: 5 as LogIndex,
    term: 2 as Term,
    confState: { voters: [n(1), n(2)], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
  };
  return {
    type: 'InstallSnapshot',
    from: n(1),
    to: n(2),
    term: 3 as Term,
    meta,
    offset: 0,
    totalBytes: chunkBytes,
    snapshotChecksum: 0,
    chunk: new Uint8Array(chunkBytes),
    chunkChecksum: 0,
  };
}
