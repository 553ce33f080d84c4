// A database shard's group model (src/models/shard.ts) and the meta model's shard groups: versions
// recorded once and bounded, replica states only for held versions, retain dropping versions with
// their states, forget dropping the states of nodes that left the group, snapshot and restore (and the bytes of a snapshot of another shard), garbage
// refused without a throw. The meta model's shard groups are tested with the catalog
// (test/models/meta-databases.test.ts).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asNodeId, type LogIndex } from '../../src/base/ids.ts';
import { encodeShardCommand, shardVersionsMax, type ShardCommand, type ShardVersion } from '../../src/codec/shard.ts';
import { ShardModel } from '../../src/models/shard.ts';

const n = asNodeId;
const manifest = (version: number): ShardVersion => ({
  version,
  listedMs: 5,
  files: [{ path: 'shard=0/a.parquet', bytes: 10, etag: `e${version}` }],
  global: [{ path: 'global/users.ndjson', bytes: 3, etag: 'g' }],
});
const record = (version: number, database = 'shop', shard = '0'): ShardCommand => ({
  type: 'shard.version',
  request: `v${version}`,
  database,
  shard,
  version: manifest(version),
});
const replica = (version: number, node: number, state: 'loaded' | 'failed' = 'loaded'): ShardCommand => ({
  type: 'shard.replica',
  request: `r${version}-${node}`,
  version,
  node: n(node),
  state,
  error: state === 'failed' ? 'gone' : null,
  atMs: 9,
});

function applied(...commands: ShardCommand[]): ShardModel {
  const model = new ShardModel();
  commands.forEach((command, k) => model.applyEntry((k + 1) as LogIndex, encodeShardCommand(command)));
  return model;
}

describe('shard model', () => {
  it('records a version once, names its shard, and refuses another shard', () => {
    const model = applied(record(1));
    expect(model.database).toBe('shop');
    expect(model.shard).toBe('0');
    expect(model.manifest(1)).toEqual(manifest(1));
    const again: ShardCommand = { ...(record(1) as Extract<ShardCommand, { type: 'shard.version' }>) };
    expect(model.apply({ ...again, version: { ...manifest(1), files: [] } })).toEqual({ ok: true });
    expect(model.manifest(1)?.files).toHaveLength(1);
    expect(model.apply(record(2, 'shop', '1'))).toMatchObject({ ok: false, code: 'other_shard' });
    expect(model.apply(record(2, 'other'))).toMatchObject({ ok: false, code: 'other_shard' });
    expect(model.versions().map((v) => v.version)).toEqual([1]);
  });

  it('holds at most shardVersionsMax versions', () => {
    const model = applied(...Array.from({ length: shardVersionsMax }, (_, k) => record(k + 1)));
    expect(model.apply(record(shardVersionsMax + 1))).toMatchObject({ ok: false, code: 'full' });
  });

  it('records replica states only for held versions; no record is loading', () => {
    const model = applied(record(1), replica(1, 2), replica(1, 3, 'failed'));
    expect(model.replica(1, n(2))).toEqual({ state: 'loaded', error: null, atMs: 9 });
    expect(model.replica(1, n(3))).toEqual({ state: 'failed', error: 'gone', atMs: 9 });
    expect(model.replica(1, n(1)).state).toBe('loading');
    expect(model.apply(replica(2, 2))).toMatchObject({ ok: false, code: 'stale' });
    expect(model.replica(2, n(2)).state).toBe('loading');
    // A later state replaces the earlier one.
    model.apply(replica(1, 3));
    expect(model.replica(1, n(3)).state).toBe('loaded');
  });

  it('retain drops the other versions and their states', () => {
    const model = applied(record(1), record(2), replica(1, 2), replica(2, 2));
    model.apply({ type: 'shard.retain', request: 'x', versions: [2] });
    expect(model.versions().map((v) => v.version)).toEqual([2]);
    expect(model.replicas()).toEqual([{ version: 2, node: 2, state: 'loaded', error: null, atMs: 9 }]);
    expect(model.apply(replica(1, 2))).toMatchObject({ ok: false, code: 'stale' });
  });

  it("forget drops the named nodes' states of every version, and nothing else", () => {
    const model = applied(record(1), record(2), replica(1, 2), replica(2, 2), replica(1, 3, 'failed'), replica(2, 4));
    const forget: ShardCommand = { type: 'shard.forget', request: 'f', nodes: [n(2), n(5)] };
    expect(model.applyEntry(7 as LogIndex, encodeShardCommand(forget))).toEqual({ ok: true });
    expect(model.replicas().map(({ version, node }) => `${version}/${node}`)).toEqual(['1/3', '2/4']);
    expect(model.replica(2, n(2)).state).toBe('loading');
    // A node that comes back records its states again.
    expect(model.apply(replica(2, 2))).toEqual({ ok: true });
    expect(model.replica(2, n(2)).state).toBe('loaded');
  });

  it('restores what it snapshotted, and an empty snapshot to nothing', () => {
    const model = applied(record(1), record(2), replica(1, 2), replica(2, 3, 'failed'));
    const copy = new ShardModel();
    copy.restore(model.snapshot(), 1);
    expect(copy.snapshot()).toEqual(model.snapshot());
    expect(copy.versions()).toEqual(model.versions());
    expect(copy.replica(2, n(3)).error).toBe('gone');
    copy.restore(new Uint8Array(), 1);
    expect(copy.versions()).toEqual([]);
    expect(copy.database).toBeNull();
  });

  it('carries the request id as its key, and refuses garbage without throwing', () => {
    const model = new ShardModel();
    expect(model.requestKey(encodeShardCommand(replica(1, 2)))).toBe('r1-2');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const outcome = model.applyEntry(1 as LogIndex, bytes);
        expect(outcome).toMatchObject({ ok: false, code: 'malformed' });
        expect(model.requestKey(bytes)).toBeUndefined();
      }),
      { seed: 15, numRuns: 200 },
    );
    expect(model.versions()).toEqual([]);
  });
});
