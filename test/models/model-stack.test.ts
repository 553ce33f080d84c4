// The stack around a model (src/models/model-stack.ts): a model without snapshot support is
// snapshot-safe (its mutations are kept and replayed); a snapshot records its timeframe and a
// restore applies nothing it includes twice; the envelope's checks refuse a corrupt, truncated,
// misplaced, foreign or newer snapshot with a message naming the group and the index, and load
// nothing of it; an older version reaches the model's restore with its version; bytes without
// the envelope are a format-0 snapshot of version 1.

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, Term } from '../../src/base/ids.ts';
import { openSnapshot, type Checksum, type GroupTimeframe } from '../../src/codec/snapshot.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { asNodeId } from '../../src/base/ids.ts';
import type { Model } from '../../src/models/model.ts';
import { ModelStack, SnapshotRefusedError } from '../../src/models/model-stack.ts';

const checksum: Checksum = (bytes, previous) => crc32(bytes, previous);
const confState = confStateOf([asNodeId(1), asNodeId(2), asNodeId(3)]);
const frame = (index: number, term = 2): GroupTimeframe => ({
  group: 3 as GroupId,
  index: index as LogIndex,
  term: term as Term,
  confState,
});

/** A model without snapshot support that counts how often each index reached it. */
class CountingModel implements Model {
  readonly type = 'counting';
  readonly version = 1;
  readonly applied = new Map<number, number>();
  total = 0;
  applyEntry(index: LogIndex, data: Uint8Array): unknown {
    this.applied.set(index, (this.applied.get(index) ?? 0) + 1);
    this.total += data[0] ?? 0;
    return this.total;
  }
}

/** A model with its own snapshot: a sum, written as text; version 3 reads versions 2 (decimal) and 1 (hex). */
class SumModel implements Model {
  readonly type = 'sum';
  readonly version: number;
  total = 0;
  restoredFrom: number | undefined;
  constructor(version = 3) {
    this.version = version;
  }
  applyEntry(_index: LogIndex, data: Uint8Array): unknown {
    this.total += data[0] ?? 0;
    return this.total;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.total));
  }
  restore(data: Uint8Array, version: number): void {
    const text = new TextDecoder().decode(data);
    this.total = data.length === 0 ? 0 : version === 1 ? parseInt(text, 16) : Number(text);
    this.restoredFrom = version;
  }
}

function drain(stack: ModelStack, timeframe: readonly GroupTimeframe[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const slices = stack.capture(timeframe);
  for (let next = slices.next(); next.done !== true; next = slices.next()) parts.push(next.value);
  return Buffer.concat(parts);
}

function applyRange(stack: ModelStack, from: number, to: number): void {
  for (let index = from; index <= to; index++) stack.applyEntry(index as LogIndex, Uint8Array.of(index));
}

describe('ModelStack', () => {
  it('keeps the mutations of a model without snapshots, and a restore applies no included entry twice', () => {
    const stack = new ModelStack(new CountingModel(), checksum);
    applyRange(stack, 1, 10);
    const snapshot = drain(stack, [frame(10)]);
    // Entries applied while the capture is stored do not leak into it.
    applyRange(stack, 11, 12);
    const restored = new ModelStack(new CountingModel(), checksum);
    restored.restore(snapshot, frame(10));
    applyRange(restored, 11, 15);
    const model = restored.model;
    expect([...model.applied.keys()]).toEqual(Array.from({ length: 15 }, (_, k) => k + 1));
    expect([...model.applied.values()].every((count) => count === 1)).toBe(true);
    expect(model.total).toBe((15 * 16) / 2);
    // And it is recorded again: its next snapshot holds all 15.
    const again = new ModelStack(new CountingModel(), checksum);
    again.restore(drain(restored, [frame(15)]), frame(15));
    expect(again.model.total).toBe(120);
  });

  it('records its timeframe, and a mutation snapshot replaces a model that has state (with create)', () => {
    const stack = new ModelStack(new CountingModel(), checksum, () => new CountingModel());
    applyRange(stack, 1, 4);
    const snapshot = drain(stack, [frame(4, 7)]);
    const opened = openSnapshot(snapshot, checksum);
    expect(opened.format === 1 ? opened.header.timeframe : undefined).toEqual([frame(4, 7)]);
    applyRange(stack, 5, 9);
    stack.restore(snapshot, frame(4, 7));
    expect(stack.model.total).toBe(10);
    expect([...stack.model.applied.keys()]).toEqual([1, 2, 3, 4]);
  });

  it('refuses corrupt, truncated and misplaced snapshots, naming group and index, and loads nothing', () => {
    const source = new ModelStack(new SumModel(), checksum);
    applyRange(source, 1, 5);
    const good = drain(source, [frame(5)]);
    const flipped = new Uint8Array(good);
    flipped[flipped.length - 6] = (flipped[flipped.length - 6] ?? 0) ^ 0x10;
    const cases: [Uint8Array, ReturnType<typeof frame>, RegExp][] = [
      [flipped, frame(5), /group 3: the snapshot at index 5 is refused: checksum mismatch/],
      [good.subarray(0, good.length - 3), frame(5), /group 3: the snapshot at index 5 is refused: checksum mismatch/],
      [good.subarray(0, 7), frame(5), /group 3: the snapshot at index 5 is refused: truncated/],
      [good, frame(6), /index 6 is refused: it says it includes index 5 term 2, but is stored as index 6 term 2/],
      [good, frame(5, 3), /stored as index 5 term 3/],
    ];
    for (const [bytes, at, message] of cases) {
      const target = new ModelStack(new SumModel(), checksum);
      applyRange(target, 1, 2);
      expect(() => {
        target.restore(bytes, at);
      }).toThrow(message);
      expect(target.model.total).toBe(3);
    }
    const ok = new ModelStack(new SumModel(), checksum);
    ok.restore(good, frame(5));
    expect(ok.model.total).toBe(15);
  });

  it('refuses another model type and a newer version; hands an older version to the model', () => {
    const counting = new ModelStack(new CountingModel(), checksum);
    applyRange(counting, 1, 2);
    expect(() => {
      new ModelStack(new SumModel(), checksum).restore(drain(counting, [frame(2)]), frame(2));
    }).toThrow(/holds a counting model, not sum/);
    const newer = new ModelStack(new SumModel(4), checksum);
    applyRange(newer, 1, 2);
    expect(() => {
      new ModelStack(new SumModel(3), checksum).restore(drain(newer, [frame(2)]), frame(2));
    }).toThrow(SnapshotRefusedError);
    const older = new ModelStack(new SumModel(2), checksum);
    applyRange(older, 1, 3);
    const current = new ModelStack(new SumModel(3), checksum);
    current.restore(drain(older, [frame(3)]), frame(3));
    expect(current.model).toMatchObject({ total: 6, restoredFrom: 2 });
  });

  it('reads bytes without the envelope as a format-0 snapshot of model version 1', () => {
    const stack = new ModelStack(new SumModel(), checksum);
    stack.restore(new TextEncoder().encode('ff'), frame(9));
    expect(stack.model).toMatchObject({ total: 255, restoredFrom: 1 });
  });

  it('ends a capture early when a restore comes in the middle of it', () => {
    const stack = new ModelStack(new CountingModel(), checksum, () => new CountingModel());
    applyRange(stack, 1, 3);
    const generation = stack.restoreGeneration;
    const slices = stack.capture([frame(3)]);
    slices.next();
    stack.restore(new Uint8Array(0), frame(0));
    const rest: Uint8Array[] = [];
    for (let next = slices.next(); next.done !== true; next = slices.next()) rest.push(next.value);
    expect(rest).toEqual([]);
    expect(stack.restoreGeneration).not.toBe(generation);
  });
});
