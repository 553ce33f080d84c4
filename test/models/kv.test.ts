// The KV model: put/get/delete, compare-and-set on the modify index (0 = create-only),
// exactly-once retries through client sessions, and snapshot/restore equivalence.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LogIndex } from '../../src/base/ids.ts';
import { encodeKvCommand, type KvCommand } from '../../src/codec/kv.ts';
import { KvModel } from '../../src/models/kv.ts';

const at = (index: number) => index as LogIndex;
const bytes = (text: string) => new TextEncoder().encode(text);

describe('KvModel', () => {
  it('puts, reads, overwrites and deletes with modify indexes', () => {
    const kv = new KvModel();
    expect(kv.apply(at(5), { op: 'put', key: 'a', value: bytes('1') })).toEqual({ ok: true, modifyIndex: 5 });
    expect(kv.apply(at(7), { op: 'put', key: 'a', value: bytes('2') })).toEqual({ ok: true, modifyIndex: 7 });
    expect(kv.get('a')).toEqual({ value: bytes('2'), createIndex: 5, modifyIndex: 7 });
    expect(kv.apply(at(8), { op: 'delete', key: 'a' })).toEqual({ ok: true, modifyIndex: 8 });
    expect(kv.get('a')).toBeUndefined();
    expect(kv.apply(at(9), { op: 'delete', key: 'a' })).toEqual({ ok: false, code: 'key_not_found' });
  });

  it('compare-and-set: 0 creates only, a stale index is refused with the current one', () => {
    const kv = new KvModel();
    expect(kv.apply(at(3), { op: 'put', key: 'k', value: bytes('x'), cas: 0 })).toEqual({ ok: true, modifyIndex: 3 });
    expect(kv.apply(at(4), { op: 'put', key: 'k', value: bytes('y'), cas: 0 })).toEqual({
      ok: false,
      code: 'cas_mismatch',
      currentIndex: 3,
    });
    expect(kv.apply(at(5), { op: 'put', key: 'k', value: bytes('y'), cas: 2 })).toEqual({
      ok: false,
      code: 'cas_mismatch',
      currentIndex: 3,
    });
    expect(kv.apply(at(6), { op: 'put', key: 'k', value: bytes('y'), cas: 3 })).toEqual({ ok: true, modifyIndex: 6 });
    expect(kv.apply(at(7), { op: 'delete', key: 'k', cas: 3 })).toEqual({
      ok: false,
      code: 'cas_mismatch',
      currentIndex: 6,
    });
    expect(new TextDecoder().decode(kv.get('k')?.value)).toBe('y');
  });

  it('applies a retried request once and returns the first outcome', () => {
    const kv = new KvModel();
    const client = { id: 'c1', seq: 1 };
    expect(kv.apply(at(10), { op: 'put', key: 'n', value: bytes('1'), client })).toEqual({ ok: true, modifyIndex: 10 });
    // The same request committed again after a failover (the first answer was lost).
    expect(kv.apply(at(11), { op: 'put', key: 'n', value: bytes('1'), client })).toEqual({ ok: true, modifyIndex: 10 });
    expect(kv.get('n')?.modifyIndex).toBe(10);
    expect(kv.apply(at(12), { op: 'put', key: 'n', value: bytes('2'), client: { id: 'c1', seq: 2 } })).toEqual({
      ok: true,
      modifyIndex: 12,
    });
    expect(kv.apply(at(13), { op: 'put', key: 'n', value: bytes('0'), client: { id: 'c1', seq: 1 } })).toEqual({
      ok: false,
      code: 'stale_request',
      lastSeq: 2,
    });
  });

  it('forgets the least recently used sessions beyond sessionsMax', () => {
    const kv = new KvModel({ sessionsMax: 2 });
    kv.apply(at(1), { op: 'put', key: 'a', value: bytes('1'), client: { id: 'x', seq: 1 } });
    kv.apply(at(2), { op: 'put', key: 'b', value: bytes('1'), client: { id: 'y', seq: 1 } });
    kv.apply(at(3), { op: 'put', key: 'c', value: bytes('1'), client: { id: 'z', seq: 1 } });
    // x was forgotten: a retry of its first request opens a new session (documented); y is remembered.
    expect(kv.apply(at(4), { op: 'put', key: 'a', value: bytes('1'), client: { id: 'x', seq: 1 } })).toEqual({
      ok: true,
      modifyIndex: 4,
    });
    expect(kv.apply(at(5), { op: 'put', key: 'b', value: bytes('1'), client: { id: 'z', seq: 1 } })).toEqual({
      ok: true,
      modifyIndex: 3,
    });
  });

  it('refuses a request from an expired session instead of applying it again (thesis 6.3)', () => {
    const kv = new KvModel({ sessionsMax: 1 });
    expect(kv.apply(at(1), { op: 'put', key: 'a', value: bytes('1'), client: { id: 'x', seq: 1 } })).toMatchObject({
      ok: true,
    });
    expect(kv.apply(at(2), { op: 'put', key: 'a', value: bytes('2'), client: { id: 'x', seq: 2 } })).toEqual({
      ok: true,
      modifyIndex: 2,
    });
    // y's session evicts x's; x's answer to seq 2 was lost and x retries it.
    kv.apply(at(3), { op: 'put', key: 'b', value: bytes('1'), client: { id: 'y', seq: 1 } });
    expect(kv.apply(at(4), { op: 'put', key: 'a', value: bytes('2'), client: { id: 'x', seq: 2 } })).toEqual({
      ok: false,
      code: 'session_expired',
    });
    expect(kv.get('a')?.modifyIndex).toBe(2);
    // A refused request opens no session: the next retry is refused too, on every replica alike.
    expect(kv.apply(at(5), { op: 'put', key: 'a', value: bytes('3'), client: { id: 'x', seq: 3 } })).toEqual({
      ok: false,
      code: 'session_expired',
    });
  });

  it('ignores empty and malformed entries', () => {
    const kv = new KvModel();
    expect(kv.applyEntry(at(1), new Uint8Array())).toBeUndefined();
    expect(kv.applyEntry(at(2), new Uint8Array([0xc1, 0x00]))).toBeUndefined();
    expect(kv.size).toBe(0);
    expect(kv.applyEntry(at(3), encodeKvCommand({ op: 'put', key: 'q', value: bytes('v') }))).toEqual({
      ok: true,
      modifyIndex: 3,
    });
  });

  it('a restored snapshot behaves exactly like the original', () => {
    const commandArb: fc.Arbitrary<KvCommand> = fc.oneof(
      fc.record(
        {
          op: fc.constant('put' as const),
          key: fc.constantFrom('a', 'b', 'c'),
          value: fc.uint8Array({ maxLength: 4 }),
          cas: fc.option(fc.nat({ max: 30 }), { nil: undefined }),
          client: fc.option(fc.record({ id: fc.constantFrom('p', 'q'), seq: fc.nat({ max: 20 }) }), { nil: undefined }),
        },
        { requiredKeys: ['op', 'key', 'value'] },
      ),
      fc.record(
        {
          op: fc.constant('delete' as const),
          key: fc.constantFrom('a', 'b', 'c'),
          cas: fc.option(fc.nat({ max: 30 }), { nil: undefined }),
        },
        { requiredKeys: ['op', 'key'] },
      ),
    ) as fc.Arbitrary<KvCommand>;
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 30 }), fc.array(commandArb, { maxLength: 30 }), (before, after) => {
        const original = new KvModel();
        before.forEach((command, k) => original.apply(at(k + 1), command));
        const copy = new KvModel();
        copy.restore(original.snapshot());
        after.forEach((command, k) => {
          const index = at(before.length + k + 1);
          expect(copy.apply(index, command)).toEqual(original.apply(index, command));
        });
        expect(copy.snapshot()).toEqual(original.snapshot());
      }),
    );
  });
});
