// Garbage frames at a real node's peer port and binary client port (issue 16 part 5): random bytes,
// random frames, msgpack maps shaped almost like a request, a hello or a batch, and oversized
// length prefixes, some before the peer handshake and some after a handshake completed with the
// cluster secret (an authenticated peer gone mad). Every malformed frame closes its connection or,
// on the client port, answers an error; the node never crashes or hangs (a fresh connection is
// served after every input), and the canary key and the meta model (members, actions) are the same
// at the end (node 3 is stopped so the test can speak as it). fast-check drives it: seeded (GARBAGE_SEED), bounded in runs (GARBAGE_RUNS) and in
// time per input; a failure prints the input and the seed that replays it.

import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/base/ids.ts';
import {
  decodeClientRequest,
  decodeClientResponse,
  encodeClientRequest,
  type ClientResponse,
} from '../../src/codec/client-wire.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { decodeFrame, encodeHello, protocolVersion, type HelloFrame } from '../../src/codec/wire.ts';
import { FrameReader, frameOf } from '../../src/codec/frame-reader.ts';
import { createNonce, helloProof } from '../../src/transport/handshake.ts';
import { eventually, formed, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const seed = Number(process.env['GARBAGE_SEED'] ?? 16);
const runsMax = Number(process.env['GARBAGE_RUNS'] ?? 60);
/** How long a connection may stay open after a complete malformed frame before that counts as a hang. */
const verdictMsMax = 3_000;
const secret = 'dram-integration-test-secret';
const clusterId = 'dram';
const wireLimits = {
  messagesPerFrameMax: 1024,
  entriesPerMessageMax: 1024,
  entryBytesMax: 1 << 20,
  snapshotChunkBytesMax: 1 << 20,
};

let cluster: ProcessCluster;
let crashed = false;
let before: string;

/** What refused frames must never change: the canary key and the meta model's members and actions. */
async function observed(): Promise<string> {
  const canary = await request(`${cluster.url(1)}/v1/kv/canary`);
  const members = await request(`${cluster.url(1)}/v1/admin/members`);
  const actions = await request(`${cluster.url(1)}/v1/actions`);
  return JSON.stringify([canary.status, canary.text, members.text, JSON.parse(actions.text)]);
}

beforeAll(async () => {
  cluster = processCluster(3);
  void cluster.exited(1).then(() => {
    crashed = true;
  });
  await formed(cluster, 4);
  await eventually(async () =>
    (await request(`${cluster.url(1)}/v1/kv/canary`, 'PUT', 'sing')).status === 200 ? true : undefined,
  );
  // The peer test speaks as node 3 with the cluster secret; the real node 3 is stopped so its own
  // redials cannot replace that connection (two of three still make every quorum).
  await cluster.kill(3);
  before = await eventually(async () => {
    const seen = await observed();
    return seen.startsWith('[200,') ? seen : undefined;
  });
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

interface Probe {
  readonly socket: net.Socket;
  readonly payloads: Uint8Array[];
  closed(): boolean;
}

/** A connection that collects the frames it receives (undecoded) and notes its close. */
function connect(address: { readonly host: string; readonly port: number }): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(address);
    const reader = new FrameReader(1 << 24);
    const payloads: Uint8Array[] = [];
    let closed = false;
    socket.on('data', (chunk: Buffer) => {
      const read = reader.push(chunk);
      if (read.kind === 'frames') payloads.push(...read.payloads);
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {
      closed = true;
    });
    socket.once('connect', () => {
      resolve({ socket, payloads, closed: () => closed });
    });
    socket.once('error', reject);
  });
}

async function until(what: string, condition: () => boolean, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One garbage input: raw bytes, or frames (payloads put behind a length prefix). */
type Garbage = { readonly raw: Uint8Array } | { readonly frames: readonly Uint8Array[] };

function bytesOf(garbage: Garbage): Uint8Array {
  return 'raw' in garbage ? garbage.raw : Buffer.concat(garbage.frames.map((payload) => frameOf(payload)));
}

const junk = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 16 }),
  fc.array(fc.nat(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.nat(), { maxKeys: 3 }),
);

/** Maps shaped almost like a client request: real field names, values of any type. */
const requestLike = fc
  .record(
    {
      id: fc.oneof(fc.nat(), junk),
      op: fc.oneof(fc.constantFrom('get', 'put', 'delete', 'auth', 'PUT', ''), junk),
      key: fc.oneof(
        fc.string({ minLength: 1, maxLength: 8 }).map((key) => `g-${key}`),
        junk,
      ),
      value: junk,
      cas: junk,
      consistency: fc.oneof(fc.constantFrom('stale', 'lease', 'x'), junk),
      client: fc.oneof(fc.record({ id: junk, seq: junk }), junk),
      token: junk,
      extra: junk,
    },
    { requiredKeys: [] },
  )
  .map((value) => encode(value));

/** Maps shaped almost like a peer frame: a hello or a batch with misshapen fields. */
const peerLike = fc.oneof(
  fc
    .record(
      {
        kind: fc.oneof(fc.constantFrom('hello', 'batch', 'x'), junk),
        version: fc.oneof(fc.constantFrom(protocolVersion, protocolVersion + 1, 0), junk),
        clusterId: fc.oneof(fc.constant(clusterId), junk),
        nodeId: fc.oneof(fc.constantFrom(1, 3, 99), junk),
        nonce: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), junk),
        proof: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), junk),
      },
      { requiredKeys: [] },
    )
    .map((value) => encode(value)),
  fc
    .record({
      kind: fc.constant('batch'),
      batch: fc.array(
        fc.record(
          {
            group: fc.oneof(fc.constantFrom(0, 1, 2, 99), junk),
            message: fc.oneof(
              fc.record(
                {
                  type: fc.oneof(
                    fc.constantFrom('AppendEntries', 'Heartbeat', 'RequestVote', 'Propose', 'InstallSnapshot'),
                    junk,
                  ),
                  from: junk,
                  to: junk,
                  term: junk,
                  index: junk,
                  entries: junk,
                },
                { requiredKeys: [] },
              ),
              junk,
            ),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    })
    .map((value) => encode(value)),
);

function garbage(shaped: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Garbage> {
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((raw) => ({ raw })),
    fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 3 }).map((frames) => ({ frames })),
    fc.array(shaped, { minLength: 1, maxLength: 3 }).map((frames) => ({ frames })),
    // A length prefix past every limit, with a few bytes after it.
    fc.tuple(fc.integer({ min: 1 << 28, max: 0xffffffff }), fc.uint8Array({ maxLength: 8 })).map(([length, rest]) => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(length);
      return { raw: Buffer.concat([head, rest]) };
    }),
  );
}

/** Whether `payload` would be taken as a client request (then it may be answered ok: it is not garbage). */
function clientValid(payload: Uint8Array): boolean {
  try {
    decodeClientRequest(payload);
    return true;
  } catch {
    return false;
  }
}

function peerValid(payload: Uint8Array): boolean {
  try {
    decodeFrame(payload, wireLimits);
    return true;
  } catch {
    return false;
  }
}

/** The node still serves: a fresh client connection answers a stale read of the canary. */
async function clientPortServes(): Promise<void> {
  const probe = await connect(cluster.clientAddress(1));
  try {
    probe.socket.write(frameOf(encodeClientRequest({ id: 7, op: 'get', key: 'canary', consistency: 'stale' })));
    await until('answer from a fresh client connection', () => probe.payloads.length > 0, verdictMsMax);
    const answer = decodeClientResponse(probe.payloads[0] ?? new Uint8Array(0));
    expect(answer.ok).toBe(true);
  } finally {
    probe.socket.destroy();
  }
}

const runs = { seed, numRuns: runsMax, endOnFailure: true, interruptAfterTimeLimit: 240_000 } as const;

describe('garbage frames at a real node', () => {
  it('binary client port: a malformed frame closes the connection or answers an error', async () => {
    await fc.assert(
      fc.asyncProperty(garbage(requestLike), async (input) => {
        const probe = await connect(cluster.clientAddress(1));
        try {
          probe.socket.write(bytesOf(input));
          const complete = 'frames' in input;
          const malformed = complete && input.frames.some((payload) => !clientValid(payload));
          if (malformed) {
            await until('close or error answer', () => probe.closed() || probe.payloads.length > 0, verdictMsMax);
            const answers: ClientResponse[] = probe.payloads.map((payload) => decodeClientResponse(payload));
            // Frames before the first malformed one may be answered; the malformed one never is, with ok.
            if (!probe.closed())
              expect(answers.some((answer) => !answer.ok && answer.code !== 'DRAM_ERR_KEY_NOT_FOUND')).toBe(true);
          }
        } finally {
          probe.socket.destroy();
        }
        expect(crashed).toBe(false);
        await clientPortServes();
      }),
      runs,
    );
    expect(await observed()).toBe(before);
  }, 300_000);

  it('peer port: a malformed frame before or after the handshake closes the connection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), garbage(peerLike), async (authenticated, input) => {
        const probe = await connect(cluster.raftAddress(1));
        try {
          await until('the acceptor hello', () => probe.payloads.length > 0, verdictMsMax);
          const hello = decodeFrame(probe.payloads[0] ?? new Uint8Array(0), wireLimits) as HelloFrame;
          if (authenticated) {
            const as = 3 as NodeId;
            const proof = helloProof({ secret, nonce: hello.nonce, clusterId, prover: as, verifier: hello.nodeId });
            probe.socket.write(
              frameOf(encodeHello({ version: protocolVersion, clusterId, nodeId: as, nonce: createNonce(), proof })),
            );
            await until('the handshake verdict', () => probe.payloads.length > 1 || probe.closed(), verdictMsMax);
            if (probe.closed()) throw new Error(`handshake refused: ${cluster.logs(1).slice(-1500)}`);
          }
          probe.socket.write(bytesOf(input));
          const complete = 'frames' in input;
          // Before the handshake anything but a dialer's proper hello is refused, even incomplete bytes (by the handshake timeout).
          const mustClose = authenticated ? complete && input.frames.some((payload) => !peerValid(payload)) : true;
          if (mustClose) await until('the connection closed', () => probe.closed(), verdictMsMax);
        } finally {
          probe.socket.destroy();
        }
        expect(crashed).toBe(false);
        await clientPortServes();
      }),
      runs,
    );
    // The cluster still writes and nothing changed.
    await eventually(async () =>
      (await request(`${cluster.url(1)}/v1/kv/after-garbage`, 'PUT', 'x')).status === 200 ? true : undefined,
    );
    await request(`${cluster.url(1)}/v1/kv/after-garbage`, 'DELETE');
    expect(await observed()).toBe(before);
  }, 300_000);
});
