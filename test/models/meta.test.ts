// The meta model (group 0): the action queue's rules (schedule once per id, the queue limit, phase
// transitions, stale updates, cancel, retention by time and by count), the registry commands, the
// codec's refusal of malformed bytes, and snapshot/restore equivalence under random commands.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, NodeId } from '../../src/base/ids.ts';
import { CodecError } from '../../src/codec/validate.ts';
import {
  decodeMetaCommand,
  decodeMetaSnapshot,
  encodeMetaCommand,
  metaCommandVersion,
  type ActionRequest,
  type MetaCommand,
} from '../../src/codec/meta.ts';
import { decode, encode } from '../../src/codec/msgpack.ts';
import { MetaModel, metaModelDefaults } from '../../src/models/meta.ts';

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const request = (n: number, kind = 'agent.replicante.io/test.success'): ActionRequest => ({
  id: uuid(n),
  kind,
  args: null,
  metadata: {},
  createdMs: 1000 + n,
  node: 1 as NodeId,
  timeoutMs: 60_000,
});
const schedule = (n: number, atMs = 2000 + n): MetaCommand => ({ type: 'action.schedule', action: request(n), atMs });

describe('MetaModel actions', () => {
  it('schedules an id once: a retry of the same request and another request with the id are told apart', () => {
    const meta = new MetaModel();
    expect(meta.apply(schedule(1))).toEqual({ ok: true });
    expect(meta.apply(schedule(1, 9999))).toEqual({ ok: false, code: 'exists', sameRequest: true });
    const other: MetaCommand = { type: 'action.schedule', action: { ...request(1), args: { x: 1 } }, atMs: 5 };
    expect(meta.apply(other)).toEqual({ ok: false, code: 'exists', sameRequest: false });
    expect(meta.queue()).toHaveLength(1);
    expect(meta.action(uuid(1))).toMatchObject({
      scheduledMs: 2001,
      createdMs: 1001,
      finishedMs: null,
      state: { phase: 'NEW', payload: null, error: null },
      version: 0,
    });
  });

  it('refuses a schedule beyond actionsQueuedMax and accepts again once one finished', () => {
    const meta = new MetaModel({ ...metaModelDefaults, actionsQueuedMax: 2 });
    expect(meta.apply(schedule(1))).toEqual({ ok: true });
    expect(meta.apply(schedule(2))).toEqual({ ok: true });
    expect(meta.apply(schedule(3))).toEqual({ ok: false, code: 'queue_full', queued: 2, queuedMax: 2 });
    expect(meta.action(uuid(3))).toBeUndefined();
    const done = { phase: 'DONE', payload: null, error: null } as const;
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 0, state: done, atMs: 3000 })).toEqual({
      ok: true,
    });
    expect(meta.apply(schedule(3))).toEqual({ ok: true });
  });

  it('moves NEW -> RUNNING -> DONE, records start and finish times, and never changes a finished record', () => {
    const meta = new MetaModel();
    meta.apply(schedule(1));
    const running = { phase: 'RUNNING', payload: { count: 1 }, error: null } as const;
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 0, state: running, atMs: 3000 })).toEqual({
      ok: true,
    });
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 1, state: running, atMs: 3500 })).toEqual({
      ok: true,
    });
    expect(meta.action(uuid(1))).toMatchObject({ startedMs: 3000, finishedMs: null, version: 2 });
    const done = { phase: 'DONE', payload: { count: 2 }, error: null } as const;
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 2, state: done, atMs: 4000 })).toEqual({
      ok: true,
    });
    expect(meta.action(uuid(1))).toMatchObject({ startedMs: 3000, finishedMs: 4000, state: done });
    expect(meta.queue()).toHaveLength(0);
    const failed = { phase: 'FAILED', payload: null, error: 'late' } as const;
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 3, state: failed, atMs: 5000 })).toEqual({
      ok: false,
      code: 'finished',
      phase: 'DONE',
    });
    expect(meta.apply({ type: 'action.cancel', id: uuid(1), reason: 'x', atMs: 5000 })).toEqual({
      ok: false,
      code: 'finished',
      phase: 'DONE',
    });
    expect(meta.action(uuid(1))?.state).toEqual(done);
  });

  it('refuses a stale update (planned against an older version) and a move back to NEW', () => {
    const meta = new MetaModel();
    meta.apply(schedule(1));
    const running = { phase: 'RUNNING', payload: null, error: null } as const;
    meta.apply({ type: 'action.update', id: uuid(1), version: 0, state: running, atMs: 3000 });
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 0, state: running, atMs: 3001 })).toEqual({
      ok: false,
      code: 'stale',
      version: 1,
    });
    const back = { phase: 'NEW', payload: null, error: null } as const;
    expect(meta.apply({ type: 'action.update', id: uuid(1), version: 1, state: back, atMs: 3001 })).toMatchObject({
      ok: false,
      code: 'bad_transition',
    });
    expect(meta.apply({ type: 'action.update', id: uuid(9), version: 0, state: running, atMs: 1 })).toEqual({
      ok: false,
      code: 'unknown_action',
    });
  });

  it('cancel fails an unfinished action with the reason, keeping its payload', () => {
    const meta = new MetaModel();
    meta.apply(schedule(1));
    expect(meta.apply({ type: 'action.cancel', id: uuid(1), reason: 'operator', atMs: 4000 })).toEqual({ ok: true });
    expect(meta.action(uuid(1))).toMatchObject({
      finishedMs: 4000,
      state: { phase: 'FAILED', payload: null, error: { error_msg: 'cancelled: operator' } },
    });
  });

  it('keeps finished records 14 days by the commands times, and at most actionsFinishedMax', () => {
    const day = 24 * 3600 * 1000;
    const meta = new MetaModel({ ...metaModelDefaults, actionsFinishedMax: 2 });
    for (const n of [1, 2, 3]) {
      meta.apply(schedule(n));
      meta.apply({ type: 'action.cancel', id: uuid(n), reason: 'r', atMs: n * day });
    }
    expect(meta.finishedActions().map((a) => a.id)).toEqual([uuid(2), uuid(3)]);
    meta.apply(schedule(4, 16 * day + 1));
    expect(meta.finishedActions().map((a) => a.id)).toEqual([uuid(3)]);
    meta.apply(schedule(5, 17 * day + 1));
    expect(meta.finishedActions()).toEqual([]);
  });
});

describe('MetaModel registry', () => {
  it('records the cluster id, nodes, groups and replication factors, and forgets removed ones', () => {
    const meta = new MetaModel();
    meta.apply({ type: 'cluster.set', clusterId: 'c1' });
    const node = {
      id: 2 as NodeId,
      address: { member: 'http://10.0.0.2:8000', client: 'http://10.0.0.2:8000', raft: '10.0.0.2:9000' },
      agentVersion: '0.1.0',
      storeVersion: '0.1.0',
      attributes: { 'dram.io/zone': 'a', 'dram.io/n': 3, 'dram.io/b': true, 'dram.io/none': null },
      status: 'ACTIVE',
    } as const;
    meta.apply({ type: 'node.upsert', node });
    meta.apply({
      type: 'group.set',
      group: { id: 3 as GroupId, kind: 'kv', replicas: [1, 2].map((n) => n as NodeId) },
    });
    meta.apply({ type: 'replication.set', kind: 'kv', factor: 3 });
    expect(meta.clusterId).toBe('c1');
    expect(meta.node(2 as NodeId)).toEqual(node);
    expect(meta.groups()).toEqual([{ id: 3, kind: 'kv', replicas: [1, 2] }]);
    expect(meta.replicationFactor('kv')).toBe(3);
    meta.apply({ type: 'node.remove', node: 2 as NodeId });
    meta.apply({ type: 'group.remove', group: 3 as GroupId });
    expect(meta.nodes()).toEqual([]);
    expect(meta.groups()).toEqual([]);
  });
});

describe('meta codec', () => {
  it('round-trips every command type', () => {
    const commands: MetaCommand[] = [
      { type: 'cluster.set', clusterId: 'c' },
      { type: 'node.remove', node: 3 as NodeId },
      { type: 'group.remove', group: 0 as GroupId },
      { type: 'replication.set', kind: 'kv', factor: 3 },
      schedule(7),
      {
        type: 'action.update',
        id: uuid(7),
        version: 2,
        state: { phase: 'RUNNING', payload: [1, 'a'], error: null },
        atMs: 9,
      },
      { type: 'action.cancel', id: uuid(7), reason: 'r', atMs: 10 },
    ];
    for (const command of commands) expect(decodeMetaCommand(encodeMetaCommand(command))).toEqual(command);
  });

  it('refuses malformed commands with a CodecError naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ type: 42 }, /meta.type/u],
      [{ ...schedule(1), action: { ...request(1), id: 'NOT-A-UUID' } }, /meta.action.id/u],
      [{ ...schedule(1), action: { ...request(1), kind: 'nokind' } }, /meta.action.kind/u],
      [{ ...schedule(1), action: { ...request(1), metadata: { a: 1 } } }, /meta.action.metadata.a/u],
      [{ ...schedule(1), action: { ...request(1), args: 'x'.repeat(70_000) } }, /meta.action.args/u],
      [{ ...schedule(1), action: { ...request(1), node: 0 } }, /meta.action.node/u],
      [{ type: 'action.update', id: uuid(1), version: 0, state: { phase: 'GONE' }, atMs: 1 }, /state.phase/u],
      [{ type: 'replication.set', kind: 'kv', factor: 0 }, /factor/u],
    ];
    for (const [value, message] of bad) expect(() => decodeMetaCommand(encode(value))).toThrow(message);
    let deep: unknown = 1;
    for (let k = 0; k < 40; k++) deep = [deep];
    expect(() => decodeMetaCommand(encode({ ...schedule(1), action: { ...request(1), args: deep } }))).toThrow(
      /deeper/u,
    );
  });

  it('garbage bytes are refused with a CodecError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeMetaCommand(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(CodecError);
        }
        try {
          decodeMetaSnapshot(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(CodecError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a command of a newer dram (a newer command version, or a type this version does not know) stops the replica with a clear error instead of being skipped', () => {
    // Skipping it would let this replica's state diverge from the newer ones that applied it.
    const meta = new MetaModel();
    const newer = encode({ v: metaCommandVersion + 1, type: 'cluster.set', clusterId: 'prod' });
    expect(() => meta.applyEntry(1 as LogIndex, newer)).toThrow(
      new RegExp(
        `command version ${metaCommandVersion + 1}.*this dram reads up to ${metaCommandVersion}.*upgrade`,
        'u',
      ),
    );
    const unknown = encode({ v: 1, type: 'database.frobnicate', name: 'x' });
    expect(() => meta.applyEntry(2 as LogIndex, unknown)).toThrow(/database\.frobnicate.*newer dram.*upgrade/u);
    // The current version's commands carry their version and apply.
    const current = encodeMetaCommand({ type: 'cluster.set', clusterId: 'prod' });
    expect(decode(current)).toMatchObject({ v: 1 });
    expect(meta.applyEntry(3 as LogIndex, current)).toMatchObject({ ok: true });
    // Written before commands carried a version: read as version 1.
    expect(meta.applyEntry(4 as LogIndex, encode({ type: 'cluster.set', clusterId: 'prod' }))).toMatchObject({
      ok: true,
    });
  });

  it('a malformed entry applies as nothing (the replica carries on)', () => {
    const meta = new MetaModel();
    expect(meta.applyEntry(1 as LogIndex, new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, code: 'malformed' });
    expect(meta.applyEntry(1 as LogIndex, new Uint8Array())).toBeUndefined();
  });
});

describe('MetaModel snapshot', () => {
  const phase = fc.constantFrom<'RUNNING' | 'DONE' | 'FAILED'>('RUNNING', 'DONE', 'FAILED');
  const command: fc.Arbitrary<MetaCommand> = fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((n) => schedule(n)),
    fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 }), phase, fc.jsonValue({ maxDepth: 2 }))
      .map(([n, version, p, payload]) => ({
        type: 'action.update' as const,
        id: uuid(n),
        version,
        state: { phase: p, payload: JSON.parse(JSON.stringify(payload)) as null, error: null },
        atMs: 5000 + n,
      })),
    fc
      .integer({ min: 1, max: 6 })
      .map((n) => ({ type: 'action.cancel' as const, id: uuid(n), reason: 'r', atMs: 7000 })),
    fc.integer({ min: 1, max: 4 }).map((n) => ({ type: 'replication.set' as const, kind: 'kv' as const, factor: n })),
    fc.string({ maxLength: 8 }).map((clusterId) => ({ type: 'cluster.set' as const, clusterId })),
  );

  it('restore(snapshot()) gives a model that answers every later command the same way', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 30 }), fc.array(command, { maxLength: 10 }), (before, after) => {
        const options = { ...metaModelDefaults, actionsQueuedMax: 4, actionsFinishedMax: 3 };
        const original = new MetaModel(options);
        for (const c of before) original.apply(encodeAndBack(c));
        const copy = new MetaModel(options);
        copy.restore(original.snapshot());
        expect(copy.snapshot()).toEqual(original.snapshot());
        for (const c of after) expect(copy.apply(c)).toEqual(original.apply(c));
        expect(copy.queue()).toEqual(original.queue());
        expect(copy.finishedActions()).toEqual(original.finishedActions());
      }),
      { numRuns: 200 },
    );
  });
});

function encodeAndBack(command: MetaCommand): MetaCommand {
  return decodeMetaCommand(encodeMetaCommand(command));
}
