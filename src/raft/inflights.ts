// The window of AppendEntries in flight to one follower: a FIFO of (last index, bytes) per message,
// bounded by a count and a byte total. Acknowledging index i frees every message ending at or below i.
// Invariants (asserted, kept on in production): the count never exceeds messagesMax; the byte total
// is the sum of the messages' sizes, so it is never negative and is zero when nothing is in flight.

import { assert } from '../base/assert.ts';

export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  readonly messagesMax: number;
  readonly bytesMax: number;

  constructor(messagesMax: number, bytesMax: number) {
    assert(Number.isSafeInteger(messagesMax) && messagesMax > 0, `inflights: messagesMax ${messagesMax}`);
    assert(Number.isSafeInteger(bytesMax) && bytesMax >= 0, `inflights: bytesMax ${bytesMax} (0: no byte bound)`);
    this.messagesMax = messagesMax;
    this.bytesMax = bytesMax;
  }

  get count(): number {
    return this.lastIndexes.length - this.head;
  }

  get bytesInFlight(): number {
    return this.bytes;
  }

  full(): boolean {
    return this.count >= this.messagesMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  add(lastIndex: number, bytes: number): void {
    // The byte limit may be crossed by the message that reaches it; the count never is.
    assert(this.count < this.messagesMax, 'inflights: add to a full window');
    assert(bytes >= 0, `inflights: a message of ${bytes} bytes`);
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  freeLE(index: number): void {
    while (this.head < this.lastIndexes.length && (this.lastIndexes[this.head] ?? Infinity) <= index) {
      this.bytes -= this.sizes[this.head] ?? 0;
      this.head++;
    }
    assert(
      this.bytes >= 0 && (this.count > 0 || this.bytes === 0),
      `inflights: ${this.bytes} bytes for ${this.count} messages`,
    );
    if (this.head > 64 && this.head * 2 > this.lastIndexes.length) {
      this.lastIndexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Frees the oldest message: a heartbeat answer proves the follower alive, so a lost append must not hold the window shut. */
  freeFirstOne(): void {
    const first = this.lastIndexes[this.head];
    if (first !== undefined) this.freeLE(first);
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
