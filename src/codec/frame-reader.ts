// Cuts a TCP byte stream into frames: each frame is a u32 big-endian payload length followed by the
// payload. Owns the bytes received but not yet framed. Invariants: a length of zero or above the
// current bound is refused as soon as its four header bytes arrive (nothing more is buffered for
// it), and each received byte is copied at most once (a frame spanning chunks is joined only when
// all of it is here, so a large frame costs O(size), not O(size^2)). Once it has reported `invalid`
// the reader must be dropped with its connection. Pure framing, no I/O of its own: used for every
// connection by the peer transport (src/transport/), the binary server (src/api/binary-server.ts)
// and the client (src/client/client.ts).

import { readUint32BE, writeUint32BE } from '../base/bytes.ts';

export const frameHeaderBytes = 4;
/** The largest length the u32 header can express. */
export const frameLengthMax = 0xffff_ffff;

export type FrameReadResult =
  | { readonly kind: 'frames'; readonly payloads: readonly Uint8Array[] }
  | { readonly kind: 'invalid'; readonly reason: string };

export class FrameReader {
  private chunks: Uint8Array[] = [];
  private bufferedBytes = 0;
  private payloadBytesMax: number;

  constructor(payloadBytesMax: number) {
    this.payloadBytesMax = payloadBytesMax;
  }

  /** The bound changes once a connection is authenticated: strangers get only hello-sized frames. */
  setPayloadBytesMax(payloadBytesMax: number): void {
    this.payloadBytesMax = payloadBytesMax;
  }

  get buffered(): number {
    return this.bufferedBytes;
  }

  push(chunk: Uint8Array): FrameReadResult {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    const payloads: Uint8Array[] = [];
    while (this.bufferedBytes >= frameHeaderBytes) {
      const header = this.take(frameHeaderBytes, false);
      const payloadBytes = readUint32BE(header, 0);
      if (payloadBytes === 0) return { kind: 'invalid', reason: 'zero frame length' };
      if (payloadBytes > this.payloadBytesMax)
        return { kind: 'invalid', reason: `frame length ${payloadBytes} exceeds ${this.payloadBytesMax}` };
      if (this.bufferedBytes < frameHeaderBytes + payloadBytes) break;
      this.take(frameHeaderBytes, true);
      payloads.push(this.take(payloadBytes, true));
    }
    return { kind: 'frames', payloads };
  }

  /** The first `length` buffered bytes (the caller checked they are here), removed when `consume`. */
  private take(length: number, consume: boolean): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= length) {
      const result = first.subarray(0, length);
      if (consume) this.dropPrefix(length);
      return result;
    }
    const result = new Uint8Array(length);
    let filled = 0;
    for (const chunk of this.chunks) {
      if (filled === length) break;
      const part = chunk.subarray(0, Math.min(chunk.length, length - filled));
      result.set(part, filled);
      filled += part.length;
    }
    if (consume) this.dropPrefix(length);
    else {
      // Keep the joined header as the first chunk so it is not joined again on the next push.
      this.dropPrefix(length);
      this.chunks.unshift(result);
      this.bufferedBytes += length;
    }
    return result;
  }

  private dropPrefix(length: number): void {
    let remaining = length;
    this.bufferedBytes -= length;
    while (remaining > 0) {
      const first = this.chunks[0];
      if (first === undefined) break;
      if (first.length <= remaining) {
        this.chunks.shift();
        remaining -= first.length;
      } else {
        this.chunks[0] = first.subarray(remaining);
        remaining = 0;
      }
    }
  }
}

/** One frame on the wire: header and payload in one buffer, so a frame is one socket write. */
export function frameOf(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(frameHeaderBytes + payload.length);
  writeUint32BE(frame, 0, payload.length);
  frame.set(payload, frameHeaderBytes);
  return frame;
}
