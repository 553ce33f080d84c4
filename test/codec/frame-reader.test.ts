// Framing: payloads come out whole and in order however the stream is cut into chunks; a zero or
// oversized length is refused as soon as its header arrives; the send queue stays within its
// bounds by evicting the oldest frames; reconnect delays stay within their bounds and grow.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reconnectDelayMs } from '../../src/transport/backoff.ts';
import { FrameReader, frameOf } from '../../src/codec/frame-reader.ts';
import { SendQueue } from '../../src/transport/send-queue.ts';

function cut(stream: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const positions = [...new Set(cuts.map((position) => position % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const position of [...positions, stream.length]) {
    chunks.push(stream.subarray(start, position));
    start = position;
  }
  return chunks;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const result = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

describe('frame reader', () => {
  it('yields every payload whole and in order, however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (payloads, cuts) => {
          const reader = new FrameReader(40);
          const received: number[][] = [];
          for (const chunk of cut(concat(payloads.map(frameOf)), cuts)) {
            const read = reader.push(chunk);
            expect(read.kind).toBe('frames');
            if (read.kind === 'frames') received.push(...read.payloads.map((payload) => Array.from(payload)));
          }
          expect(received).toEqual(payloads.map((payload) => Array.from(payload)));
          expect(reader.buffered).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a zero length and an oversized length as soon as the header is in', () => {
    expect(new FrameReader(10).push(Uint8Array.of(0, 0, 0, 0))).toEqual({
      kind: 'invalid',
      reason: 'zero frame length',
    });
    const reader = new FrameReader(10);
    expect(reader.push(Uint8Array.of(0, 0))).toEqual({ kind: 'frames', payloads: [] });
    expect(reader.push(Uint8Array.of(0, 11))).toEqual({ kind: 'invalid', reason: 'frame length 11 exceeds 10' });
    expect(new FrameReader(10).push(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toEqual({
      kind: 'invalid',
      reason: 'frame length 4294967295 exceeds 10',
    });
  });

  it('raises its bound when told to (after the handshake)', () => {
    const reader = new FrameReader(4);
    reader.setPayloadBytesMax(8);
    const read = reader.push(frameOf(new Uint8Array(8).fill(7)));
    expect(read.kind === 'frames' ? read.payloads.map((payload) => payload.length) : read.reason).toEqual([8]);
  });
});

describe('send queue', () => {
  it('stays within its frame and byte bounds, evicting the oldest frames', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 10, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { maxLength: 40 }),
        (framesMax, bytesMax, sizes) => {
          const queue = new SendQueue(framesMax, bytesMax);
          let evicted = 0;
          sizes.forEach((size, sequence) => {
            evicted += queue.push(new Uint8Array(size).fill(sequence));
            expect(queue.frames).toBeLessThanOrEqual(framesMax);
            expect(queue.bytes).toBeLessThanOrEqual(bytesMax);
          });
          const kept: number[] = [];
          for (let frame = queue.shift(); frame !== undefined; frame = queue.shift()) kept.push(frame[0] ?? -1);
          // What is left is the newest frames, in order, and every frame is either kept or counted.
          expect(kept).toEqual(sizes.map((_, sequence) => sequence).slice(sizes.length - kept.length));
          expect(kept.length + evicted).toBe(sizes.length);
          expect(queue.bytes).toBe(0);
        },
      ),
    );
  });
});

describe('reconnect backoff', () => {
  it('stays within [min, max] and its ceiling doubles per failure', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (failedAttempts, minMs, random) => {
          const maxMs = minMs * 40;
          const delayMs = reconnectDelayMs(failedAttempts, minMs, maxMs, () => random);
          expect(delayMs).toBeGreaterThanOrEqual(minMs);
          expect(delayMs).toBeLessThanOrEqual(Math.min(maxMs, minMs * 2 ** (failedAttempts - 1)));
        },
      ),
    );
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => reconnectDelayMs(attempt, 10, 300, () => 1))).toEqual([
      10, 20, 40, 80, 160, 300, 300,
    ]);
    expect(reconnectDelayMs(3, 10, 300, () => 0)).toBe(20);
  });
});
