// The peer handshake's checks (the frames themselves are in src/codec/wire.ts). Each side of
// a connection sends a fresh random nonce and proves to the other that it knows the cluster's shared
// secret with proof = HMAC-SHA256(secret, other side's nonce | protocol version | cluster id |
// prover id | verifier id | advertisement). The nonce makes every proof single-use (a recorded
// handshake cannot be replayed); binding both ids in prover-to-verifier order means a proof is
// worthless at any other node and cannot be reflected back to its sender; binding the dialer's
// advertised addresses means no one on the path can change where the acceptor will dial it.
// Proofs are compared in constant time. Besides the proofs: decoding a frame into a value or the
// reason it was refused, and whether a hello's version, cluster and node are ours. Used by the
// dialer (src/transport/dialer.ts) and the acceptor (acceptor.ts).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../base/ids.ts';
import { frameOf } from '../codec/frame-reader.ts';
import { CodecError } from '../codec/validate.ts';
import {
  claimedHelloVersion,
  decodeFrame,
  encodeHello,
  nonceBytes,
  proofBytes,
  protocolVersion,
  type Advertisement,
  type Frame,
  type HelloFrame,
  type WireLimits,
} from '../codec/wire.ts';

export interface ProofInput {
  readonly secret: string;
  /** The nonce the verifier sent. */
  readonly nonce: Uint8Array;
  readonly clusterId: string;
  readonly prover: NodeId;
  readonly verifier: NodeId;
  /** The prover's advertisement, when its hello carries one (dialers only). */
  readonly advertised?: Advertisement | undefined;
}

export function createNonce(): Uint8Array {
  return randomBytes(nonceBytes);
}

export function helloProof(input: ProofInput): Uint8Array {
  // The nonce has a fixed length and JSON is unambiguous, so no two inputs share a byte string.
  const advertised =
    input.advertised === undefined
      ? null
      : [
          input.advertised.raft.host,
          input.advertised.raft.port,
          input.advertised.http?.host ?? null,
          input.advertised.http?.port ?? null,
        ];
  const context = JSON.stringify([
    'dram-peer-hello',
    protocolVersion,
    input.clusterId,
    input.prover,
    input.verifier,
    advertised,
  ]);
  return createHmac('sha256', input.secret).update(input.nonce).update(context, 'utf8').digest();
}

export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  // timingSafeEqual throws on a length mismatch; the length of a proof is no secret.
  if (expected.length !== proofBytes || received.length !== proofBytes) return false;
  return timingSafeEqual(expected, received);
}

/** A received frame, or why it is refused (a bad frame is an expected outcome of a peer's bytes). */
export function decodePeerFrame(payload: Uint8Array, limits: WireLimits): Frame | string {
  try {
    return decodeFrame(payload, limits);
  } catch (error) {
    // decodeFrame throws CodecError only; anything else is a bug in the codec and must surface.
    if (error instanceof CodecError) return error.message;
    throw error;
  }
}

export function decodeHello(payload: Uint8Array, limits: WireLimits): HelloFrame | string {
  const claimed = claimedHelloVersion(payload);
  if (claimed !== undefined && claimed !== protocolVersion) return versionMismatch(claimed);
  const frame = decodePeerFrame(payload, limits);
  if (typeof frame === 'string') return `undecodable hello: ${frame}`;
  if (frame.kind !== 'hello') return 'expected a hello first';
  return frame;
}

function versionMismatch(version: number): string {
  return `protocol version ${version}, expected ${protocolVersion}`;
}

/** Why a hello's version, cluster id or (when `expectedNode` is given) node id is not ours. */
export function helloMismatch(
  hello: HelloFrame,
  clusterId: string,
  expectedNode: NodeId | undefined,
): string | undefined {
  if (hello.version !== protocolVersion) return versionMismatch(hello.version);
  if (hello.clusterId !== clusterId)
    return `cluster id ${JSON.stringify(hello.clusterId)}, expected ${JSON.stringify(clusterId)}`;
  if (expectedNode !== undefined && hello.nodeId !== expectedNode)
    return `node id ${hello.nodeId}, expected ${expectedNode}`;
  return undefined;
}

/** One hello as a frame to write: `nonce` and `proof` empty where that side has none to send. */
export function helloFrame(hello: Omit<HelloFrame, 'kind' | 'version'>): Uint8Array {
  return frameOf(encodeHello({ version: protocolVersion, ...hello }));
}
