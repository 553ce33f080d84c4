// The frames waiting to go to one peer: a FIFO bounded by a frame count and a byte total. When a new
// frame does not fit, the OLDEST frames are evicted until it does. Raft tolerates lost messages, and
// after an outage the newest frames are the useful ones (current term, latest commit, the
// AppendEntries the leader is pipelining now); the old ones would be answered with rejections the
// leader recovers from anyway. Invariant: frames <= framesMax and bytes <= bytesMax after every push.
// Owned by one peer of src/transport/peer-transport.ts.

import { assert } from '../base/assert.ts';

export class SendQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  private queuedBytes = 0;

  readonly framesMax: number;
  readonly bytesMax: number;

  constructor(framesMax: number, bytesMax: number) {
    assert(
      Number.isSafeInteger(framesMax) && framesMax > 0,
      `send queue framesMax must be a positive integer, got ${framesMax}`,
    );
    assert(
      Number.isSafeInteger(bytesMax) && bytesMax > 0,
      `send queue bytesMax must be a positive integer, got ${bytesMax}`,
    );
    this.framesMax = framesMax;
    this.bytesMax = bytesMax;
  }

  get frames(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /** Queues a frame and returns how many older frames were evicted to make room for it. */
  push(frame: Uint8Array): number {
    assert(
      frame.length <= this.bytesMax,
      `a ${frame.length}-byte frame can never fit a ${this.bytesMax}-byte send queue`,
    );
    let evicted = 0;
    while (this.frames >= this.framesMax || this.queuedBytes + frame.length > this.bytesMax) {
      this.shift();
      evicted++;
    }
    this.items.push(frame);
    this.queuedBytes += frame.length;
    return evicted;
  }

  peek(): Uint8Array | undefined {
    return this.items[this.head];
  }

  shift(): Uint8Array | undefined {
    const frame = this.items[this.head];
    if (frame === undefined) return undefined;
    this.head++;
    this.queuedBytes -= frame.length;
    // Compact now and then so the array does not grow with every frame ever sent.
    if (this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** Empties the queue and returns how many frames were discarded. */
  clear(): number {
    const discarded = this.frames;
    this.items = [];
    this.head = 0;
    this.queuedBytes = 0;
    return discarded;
  }
}
