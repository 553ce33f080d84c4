// The KV model's snapshots (src/models/kv.ts, kv-image.ts): a snapshot taken between two entries
// and written in slices while later entries are applied holds exactly the state at the entry it
// was taken after; once written, its segments become the model's image and reads still answer
// the same; overlapping snapshots and a restore in the middle of one stay correct; a version-1
// snapshot (msgpack, checked in as written by the model before version 2) is migrated.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes } from '../../src/base/bytes.ts';
import type { LogIndex } from '../../src/base/ids.ts';
import type { KvCommand } from '../../src/codec/kv.ts';
import { KvModel } from '../../src/models/kv.ts';
import type { SnapshotSlices } from '../../src/models/model.ts';

const at = (index: number) => index as LogIndex;
const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'é', '\u{1F600}', 'ab', 'ba'];

const commandArb = fc.oneof(
  fc.record(
    {
      op: fc.constant('put' as const),
      key: fc.constantFrom(...keys),
      value: fc.uint8Array({ maxLength: 40 }),
      cas: fc.option(fc.nat({ max: 40 }), { nil: undefined }),
      client: fc.option(fc.record({ id: fc.constantFrom('p', 'q'), seq: fc.nat({ max: 20 }) }), { nil: undefined }),
    },
    { requiredKeys: ['op', 'key', 'value'] },
  ),
  fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...keys) }),
) as fc.Arbitrary<KvCommand>;

type Step =
  | { readonly kind: 'apply'; readonly command: KvCommand }
  | { readonly kind: 'capture' }
  | { readonly kind: 'drain'; readonly capture: number; readonly slices: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: commandArb.map((command) => ({ kind: 'apply' as const, command })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'capture' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('drain' as const),
      capture: fc.nat({ max: 3 }),
      slices: fc.nat({ max: 3 }),
    }),
  },
);

/** Everything a model answers about the keys, as plain data. */
function view(model: KvModel): unknown {
  return { size: model.size, records: keys.map((key) => model.get(key) ?? null) };
}

interface Capture {
  readonly slices: SnapshotSlices;
  readonly taken: Uint8Array[];
  /** A model that applied the same commands up to the capture and never snapshotted. */
  readonly expected: unknown;
  done: boolean;
}

describe('KvModel snapshots', () => {
  it('a snapshot written in slices while entries are applied holds the state it was taken at', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80 }), (steps) => {
        // Tiny slices: many segments, runs copied across them.
        const model = new KvModel({ sessionsMax: 10, sliceBytes: 64 });
        const plain = new KvModel({ sessionsMax: 10 });
        const captures: Capture[] = [];
        let index = 0;
        const drain = (capture: Capture, slices: number): void => {
          for (let k = 0; k < slices && !capture.done; k++) {
            const next = capture.slices.next();
            if (next.done === true) capture.done = true;
            else capture.taken.push(next.value);
          }
        };
        for (const step of steps) {
          if (step.kind === 'apply') {
            index++;
            expect(model.apply(at(index), step.command)).toEqual(plain.apply(at(index), step.command));
          } else if (step.kind === 'capture') {
            captures.push({ slices: model.snapshotSlices(), taken: [], expected: view(plain), done: false });
          } else {
            const capture = captures[step.capture];
            if (capture !== undefined) drain(capture, step.slices);
          }
          expect(view(model)).toEqual(view(plain));
        }
        for (const capture of captures) {
          drain(capture, Number.MAX_SAFE_INTEGER);
          const restored = new KvModel({ sessionsMax: 10 });
          restored.restore(concatBytes(capture.taken));
          expect(view(restored)).toEqual(capture.expected);
        }
        expect(view(model)).toEqual(view(plain));
        // A model whose snapshots became its image applies later commands as one that never snapshotted.
        for (const key of keys) {
          index++;
          const command: KvCommand = { op: 'put', key, value: new Uint8Array([index & 0xff]), cas: 0 };
          expect(model.apply(at(index), command)).toEqual(plain.apply(at(index), command));
        }
        expect(view(model)).toEqual(view(plain));
        expect(model.snapshot()).toEqual(plain.snapshot());
      }),
    );
  });

  it('a restore in the middle of a snapshot does not let the stale snapshot replace the new state', () => {
    const model = new KvModel({ sessionsMax: 10, sliceBytes: 16 });
    for (let k = 1; k <= 20; k++) model.apply(at(k), { op: 'put', key: `k${k}`, value: new Uint8Array(8) });
    const other = new KvModel();
    other.apply(at(1), { op: 'put', key: 'other', value: new Uint8Array([1]) });
    const slices = model.snapshotSlices();
    slices.next();
    model.restore(other.snapshot());
    for (let next = slices.next(); next.done !== true; next = slices.next());
    expect(model.size).toBe(1);
    expect(model.get('k1')).toBeUndefined();
    expect(model.get('other')?.value).toEqual(new Uint8Array([1]));
    // The same with a restore of nothing, which leaves the image object as it was (empty).
    const fresh = new KvModel({ sessionsMax: 10, sliceBytes: 16 });
    for (let k = 1; k <= 20; k++) fresh.apply(at(k), { op: 'put', key: `k${k}`, value: new Uint8Array(8) });
    const stale = fresh.snapshotSlices();
    stale.next();
    fresh.restore(new Uint8Array(0));
    for (let next = stale.next(); next.done !== true; next = stale.next());
    expect(fresh.size).toBe(0);
    expect(fresh.get('k1')).toBeUndefined();
  });

  it('restores a version-1 snapshot (checked in, written by the model before version 2) by migration', () => {
    const v1 = readFileSync(new URL('./fixtures/kv-v1.snapshot', import.meta.url));
    const model = new KvModel();
    model.restore(new Uint8Array(v1), 1);
    const text = (key: string) => new TextDecoder().decode(model.get(key)?.value);
    expect(model.size).toBe(2);
    expect(text('alpha')).toBe('three');
    expect(model.get('alpha')).toMatchObject({ createIndex: 2, modifyIndex: 4 });
    expect(text('beta')).toBe('two');
    expect(model.get('gamma')).toBeUndefined();
    // Sessions came along: a retry of c1's seq 2 gets its recorded outcome, c2's seq 2 was a cas failure.
    expect(
      model.apply(at(8), { op: 'put', key: 'alpha', value: new Uint8Array(0), client: { id: 'c1', seq: 2 } }),
    ).toEqual({ ok: true, modifyIndex: 4 });
    expect(model.apply(at(9), { op: 'put', key: 'z', value: new Uint8Array(0), client: { id: 'c2', seq: 2 } })).toEqual(
      {
        ok: false,
        code: 'cas_mismatch',
        currentIndex: 3,
      },
    );
    // And the next snapshot is version 2, which restores to the same state.
    const again = new KvModel();
    again.restore(model.snapshot());
    expect(view(again)).toEqual(view(model));
  });
});
