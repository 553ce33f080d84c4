// The cryptographic half of the peer handshake (the frames are in src/codec/wire.ts). Each side of
// a connection sends a fresh random nonce and proves to the other that it knows the cluster's shared
// secret with proof = HMAC-SHA256(secret, other side's nonce | protocol version | cluster id |
// prover id | verifier id | advertisement). The nonce makes every proof single-use (a recorded
// handshake cannot be replayed); binding both ids in prover-to-verifier order means a proof is
// worthless at any other node and cannot be reflected back to its sender; binding the dialer's
// advertised addresses means no one on the path can change where the acceptor will dial it.
// Proofs are compared in constant time.
// Called by src/transport/peer-transport.ts only.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../base/ids.ts';
import { nonceBytes, proofBytes, protocolVersion, type Advertisement } from '../codec/wire.ts';

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
