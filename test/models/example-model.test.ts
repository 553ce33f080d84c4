// The example model of docs/models.md, verbatim (keep the two in step): it applies, snapshots,
// and restores both its versions through the stack the host puts around every model.

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { GroupId, Term } from '../../src/base/ids.ts';
import { ModelStack } from '../../src/models/model-stack.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { asNodeId } from '../../src/base/ids.ts';
import type { LogIndex } from '../../src/base/ids.ts';
import type { Model } from '../../src/models/model.ts';

export class CounterModel implements Model {
  readonly type = 'counter';
  readonly version = 2;
  private total = 0;
  private applied = 0;

  applyEntry(_index: LogIndex, data: Uint8Array): number {
    const [op, argument] = new TextDecoder().decode(data).split(' ');
    if (op === 'inc' && argument !== undefined && /^\d{1,9}$/.test(argument)) this.total += Number(argument);
    else if (op === 'reset') this.total = 0;
    else return this.total; // an empty or unknown entry changes nothing
    this.applied++;
    return this.total;
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(`${this.total},${this.applied}`);
  }

  restore(data: Uint8Array, version: number): void {
    const text = new TextDecoder().decode(data);
    if (version === 1) [this.total, this.applied] = [Number(text || '0'), 0];
    else if (version === 2) [this.total, this.applied] = (text || '0,0').split(',').map(Number) as [number, number];
    else throw new Error(`counter: cannot read a version ${version} snapshot`);
  }
}

const text = (value: string) => new TextEncoder().encode(value);
const at = (index: number) => index as LogIndex;
const frame = (index: number) => ({
  group: 9 as GroupId,
  index: at(index),
  term: 1 as Term,
  confState: confStateOf([asNodeId(1)]),
});

describe('the example model of docs/models.md', () => {
  it('applies, snapshots and restores, and reads its version-1 snapshots', () => {
    const stack = new ModelStack(new CounterModel(), (bytes, previous) => crc32(bytes, previous));
    expect(stack.applyEntry(at(2), text('inc 5'))).toBe(5);
    expect(stack.applyEntry(at(3), new Uint8Array(0))).toBe(5);
    expect(stack.applyEntry(at(4), text('inc 7'))).toBe(12);
    const parts: Uint8Array[] = [];
    const slices = stack.capture([frame(4)]);
    for (let next = slices.next(); next.done !== true; next = slices.next()) parts.push(next.value);
    const restored = new ModelStack(new CounterModel(), (bytes, previous) => crc32(bytes, previous));
    restored.restore(Buffer.concat(parts), frame(4));
    expect(restored.model.snapshot()).toEqual(text('12,2'));
    const old = new CounterModel();
    old.restore(text('40'), 1);
    expect(old.applyEntry(at(5), text('inc 2'))).toBe(42);
    expect(() => {
      old.restore(text('1'), 3);
    }).toThrow(/version 3/);
  });
});
