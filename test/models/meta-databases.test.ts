// The database catalog as a pure model: placement (deterministic, least loaded), replica states
// (only for assigned nodes of known versions), a reload's version made current once loaded on its
// copies, aliases (loaded databases only, all or nothing, rollback), the snapshot through the meta
// model's codec, garbage refused; and the manifest built from a listing. The shard groups the meta
// model keeps for the catalog: one per shard (db.create, db.stage), dropped with the shard or the
// database, ids never reused, never resurrected by a late record; the catalog's placement following
// the shard group, and the load failures the meta model remembers when a node with a failed copy
// leaves the shard's placement (until a reload's version is current, or the node is removed).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { decodeMetaSnapshot, encodeMetaCommand, encodeMetaSnapshot } from '../../src/codec/meta.ts';
import { databasesCommand, type DatabasesCommand, type DatabaseVersion } from '../../src/codec/meta-databases.ts';
import { buildManifest } from '../../src/control/database-steps.ts';
import { dbGroupIdFirst, MetaModel } from '../../src/models/meta.ts';
import { placeShards } from '../../src/models/meta-databases.ts';

const nodes = [1, 2, 3].map(asNodeId);

function version(number: number, placement: Record<string, NodeId[]>): DatabaseVersion {
  return {
    version: number,
    listedMs: 0,
    global: [],
    shards: Object.entries(placement).map(([shard, held]) => ({
      shard,
      files: [{ path: `shard=${shard}/a.parquet`, bytes: 10, etag: 'e' }],
      nodes: held,
    })),
  };
}

function model(): MetaModel {
  const meta = new MetaModel();
  for (const id of nodes)
    meta.apply({
      type: 'node.upsert',
      node: {
        id,
        address: { member: null, client: null, raft: null },
        agentVersion: '',
        storeVersion: '',
        attributes: {},
        status: 'ACTIVE',
      },
    });
  return meta;
}

const apply = (meta: MetaModel, command: DatabasesCommand) => meta.apply({ type: 'databases', command });
const create = (name: string, v: DatabaseVersion, replicas: number | 'all' = 2): DatabasesCommand => ({
  type: 'db.create',
  spec: { name, bucket: 'bucket', prefix: 'p/', replicas, lazy: false, metadataPattern: null },
  version: v,
  atMs: 1,
});
const loaded = (name: string, v: number, node: number, shards: string[]): DatabasesCommand => ({
  type: 'db.replica',
  name,
  version: v,
  node: asNodeId(node),
  shards,
  state: 'loaded',
  error: null,
  atMs: 2,
});

describe('database catalog', () => {
  it('places each shard on the least loaded nodes, ties by id, and refuses too few nodes', () => {
    const loads = new Map([[asNodeId(1), 1]]);
    expect([...(placeShards(['a', 'b', 'c'], 2, nodes, loads) ?? [])]).toEqual([
      ['a', [2, 3]],
      ['b', [1, 2]],
      ['c', [1, 3]],
    ]);
    expect(placeShards(['a'], 4, nodes, new Map())).toBeUndefined();
    // A reload keeps a shard's nodes.
    expect(placeShards(['a'], 2, nodes, new Map(), new Map([['a', [asNodeId(3), asNodeId(1)]]]))?.get('a')).toEqual([
      1, 3,
    ]);
  });

  it('records states of assigned replicas only, and makes a reload current once loaded on its copies', () => {
    const meta = model();
    expect(apply(meta, create('shop', version(1, { '0': [asNodeId(1), asNodeId(2)] })))).toEqual({ ok: true });
    expect(apply(meta, create('shop', version(1, { '0': [asNodeId(1)] })))).toMatchObject({
      ok: false,
      reason: 'exists',
    });
    expect(apply(meta, loaded('shop', 1, 3, ['0']))).toMatchObject({ ok: false, reason: 'stale' });
    expect(apply(meta, loaded('shop', 7, 1, ['0']))).toMatchObject({ ok: false, reason: 'stale' });
    expect(apply(meta, loaded('shop', 1, 1, ['0']))).toEqual({ ok: true });
    expect(
      apply(meta, { type: 'db.stage', name: 'shop', version: version(2, { '0': [asNodeId(1), asNodeId(2)] }) }),
    ).toEqual({
      ok: true,
    });
    expect(apply(meta, loaded('shop', 2, 1, ['0']))).toEqual({ ok: true });
    expect(meta.databases.database('shop')?.current.version).toBe(1);
    expect(apply(meta, loaded('shop', 2, 2, ['0']))).toEqual({ ok: true });
    const shop = meta.databases.database('shop');
    expect([shop?.current.version, shop?.next, shop?.replicaStates.map((state) => state.version)]).toEqual([
      2,
      null,
      [2, 2],
    ]);
    // A late report for the replaced version changes nothing.
    expect(apply(meta, loaded('shop', 1, 2, ['0']))).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('points aliases at loaded databases only, all or nothing, and rolls back', () => {
    const meta = model();
    apply(meta, create('a', version(1, { '0': [asNodeId(1)] }), 1));
    apply(meta, create('b', version(1, { '0': [asNodeId(2)] }), 'all'));
    apply(meta, loaded('a', 1, 1, ['0']));
    const add = (alias: string, database: string) => ({ op: 'add' as const, alias, database });
    expect(apply(meta, { type: 'alias.swap', changes: [add('live', 'a')] })).toEqual({ ok: true });
    // b is "all": loaded on one of three active nodes is not enough.
    apply(meta, loaded('b', 1, 1, ['0']));
    expect(apply(meta, { type: 'alias.swap', changes: [add('live', 'b'), add('x', 'a')] })).toMatchObject({
      reason: 'not_loaded',
    });
    expect(meta.databases.aliases()).toEqual([{ alias: 'live', database: 'a' }]);
    apply(meta, loaded('b', 1, 2, ['0']));
    apply(meta, loaded('b', 1, 3, ['0']));
    expect(apply(meta, { type: 'alias.swap', changes: [add('live', 'b')] })).toEqual({ ok: true });
    expect(apply(meta, { type: 'alias.swap', changes: [add('a', 'b')] })).toMatchObject({ reason: 'exists' });
    expect(apply(meta, { type: 'alias.rollback' })).toEqual({ ok: true });
    expect(meta.databases.resolve('live')?.name).toBe('a');
    // Dropping a database drops its aliases; the snapshot carries the catalog.
    apply(meta, { type: 'db.drop', name: 'a' });
    expect(meta.databases.aliases()).toEqual([]);
    const copy = new MetaModel();
    copy.restore(meta.snapshot());
    expect(copy.databases.snapshot()).toEqual(meta.databases.snapshot());
  });

  it('refuses garbage commands with a CodecError, never anything else', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        try {
          databasesCommand(value, 'command');
        } catch (error) {
          expect((error as Error).name).toBe('CodecError');
        }
      }),
      { numRuns: 500, seed: 14 },
    );
    expect(() => databasesCommand({ type: 'db.drop', name: '../x' }, 'c')).toThrow(/no "\/", no "\.\."/u);
    const unsafe = create('x', version(1, {}));
    const bad = { ...unsafe, version: { ...version(1, {}), global: [{ path: '../etc/passwd', bytes: 1, etag: 'e' }] } };
    expect(() => databasesCommand(JSON.parse(JSON.stringify(bad)), 'c')).toThrow(/relative path/u);
    expect(encodeMetaCommand({ type: 'databases', command: unsafe }).length).toBeGreaterThan(0);
  });

  it('builds the manifest from a listing: shard folders, global files, one shard without folders', () => {
    const object = (key: string) => ({ key, bytes: 1, etag: key });
    const sharded = buildManifest('p/', [
      object('p/global/users.parquet'),
      object('p/shard=10/a.parquet'),
      object('p/shard=2/b.parquet'),
      object('p/README'),
      object('p/shard=2/'),
    ]);
    expect(sharded).toEqual({
      shards: [
        { shard: '2', files: [{ path: 'shard=2/b.parquet', bytes: 1, etag: 'p/shard=2/b.parquet' }] },
        { shard: '10', files: [{ path: 'shard=10/a.parquet', bytes: 1, etag: 'p/shard=10/a.parquet' }] },
      ],
      global: [{ path: 'global/users.parquet', bytes: 1, etag: 'p/global/users.parquet' }],
      ignored: 1,
    });
    expect(buildManifest('', [object('a.ndjson'), object('x/b.ndjson')])).toMatchObject({
      shards: [{ shard: '0', files: [{ path: 'a.ndjson' }, { path: 'x/b.ndjson' }] }],
    });
    expect(buildManifest('p/', [object('p/a//b')])).toMatch(/cannot be stored as a file/u);
    expect(buildManifest('p/', [object('p/global/x')])).toBe('no data files under the prefix');
  });
});

describe('shard groups in the meta model', () => {
  const at = (...ids: number[]) => ids.map(asNodeId);
  const shardsOf = (meta: MetaModel) =>
    meta
      .groups()
      .filter((group) => group.kind === 'db')
      .map((group) => [group.id - dbGroupIdFirst, group.shard?.database, group.shard?.shard, group.replicas]);

  it('gives each shard a group on its replicas (every active node for "all"), ids in order', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2), 1: at(2, 3) })));
    apply(meta, create('dim', version(1, { 0: [] }), 'all'));
    expect(shardsOf(meta)).toEqual([
      [0, 'shop', '0', [1, 2]],
      [1, 'shop', '1', [2, 3]],
      [2, 'dim', '0', [1, 2, 3]],
    ]);
    expect(meta.shardGroup('shop', '1')?.id).toBe(dbGroupIdFirst + 1);
    // A refused create allocates nothing.
    apply(meta, create('shop', version(1, { 9: at(1) })));
    expect(shardsOf(meta)).toHaveLength(3);
  });

  it('a reload adds groups for new shards, keeps the others, and drops those gone once current', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2), 1: at(2, 3) })));
    apply(meta, { type: 'db.stage', name: 'shop', version: version(2, { 1: at(2, 3), 2: at(1, 3) }) });
    expect(shardsOf(meta).map(([id, , shard]) => [id, shard])).toEqual([
      [0, '0'],
      [1, '1'],
      [2, '2'],
    ]);
    for (const node of [2, 3]) apply(meta, loaded('shop', 2, node, ['1']));
    for (const node of [1, 3]) apply(meta, loaded('shop', 2, node, ['2']));
    expect(meta.databases.database('shop')?.current.version).toBe(2);
    expect(shardsOf(meta).map(([id, , shard]) => [id, shard])).toEqual([
      [1, '1'],
      [2, '2'],
    ]);
  });

  it('drops every group of a removed database, never reuses an id, and ignores late records of them', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2) })));
    const first = meta.shardGroup('shop', '0');
    apply(meta, { type: 'db.drop', name: 'shop' });
    expect(shardsOf(meta)).toEqual([]);
    // The group's leader records its configuration late: nothing comes back.
    meta.apply({ type: 'group.set', group: { id: first?.id as GroupId, kind: 'kv', replicas: at(1, 2) } });
    expect(meta.groups()).toEqual([]);
    apply(meta, create('shop', version(1, { 0: at(1, 2) })));
    const id = (dbGroupIdFirst + 1) as GroupId;
    expect(meta.shardGroup('shop', '0')?.id).toBe(id);
    // A leader's record keeps the group's kind and shard.
    meta.apply({ type: 'group.set', group: { id, kind: 'kv', replicas: at(1, 3), confIndex: 4 } });
    expect(meta.group(id)).toEqual({ id, kind: 'db', replicas: [1, 3], shard: { database: 'shop', shard: '0' } });
    // Through a snapshot, the next id survives.
    const copy = new MetaModel();
    copy.restore(meta.snapshot());
    apply(copy, create('more', version(1, { 0: at(3) }), 1));
    expect(copy.shardGroup('more', '0')?.id).toBe(dbGroupIdFirst + 2);
  });
});

describe('shard placement follows the shard group', () => {
  const at = (...ids: number[]): NodeId[] => ids.map(asNodeId);
  const placed = (meta: MetaModel): readonly NodeId[] | undefined =>
    meta.databases.database('shop')?.current.shards.find((shard) => shard.shard === '0')?.nodes;

  it('a move adds its node to the catalog at its start and the group record removes the old one', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2) })));
    apply(meta, { type: 'db.stage', name: 'shop', version: version(2, { 0: at(1, 2) }) });
    for (const node of [1, 2]) apply(meta, loaded('shop', 1, node, ['0']));
    const id = meta.shardGroup('shop', '0')?.id as GroupId;
    // Node 3 holds no copy yet: its state is refused.
    expect(apply(meta, loaded('shop', 1, 3, ['0']))).toMatchObject({ ok: false, reason: 'stale' });
    const move = { group: id, add: asNodeId(3), remove: asNodeId(1), reason: 'node 1 gone', startedMs: 5 };
    meta.apply({ type: 'placement.move.start', move });
    // From the move's start node 3 is placed (loading: nothing recorded), in both versions.
    expect(placed(meta)).toEqual([1, 2, 3]);
    expect(meta.databases.database('shop')?.next?.shards[0]?.nodes).toEqual([1, 2, 3]);
    expect(apply(meta, loaded('shop', 1, 3, ['0']))).toEqual({ ok: true });
    // The group's leader records the configuration after the replace; the move finishes.
    meta.apply({ type: 'group.set', group: { id, kind: 'db', replicas: at(2, 3), confIndex: 9 } });
    meta.apply({ type: 'placement.move.finish', group: id, outcome: 'finished', detail: '', atMs: 6 });
    expect(placed(meta)).toEqual([2, 3]);
    expect(meta.databases.database('shop')?.next?.shards[0]?.nodes).toEqual([2, 3]);
    // Node 1's states went with its copy; the version still has its two loaded copies.
    const states = meta.databases.database('shop')?.replicaStates.map((state) => [state.version, state.node]);
    expect(states).toEqual([
      [1, 2],
      [1, 3],
    ]);
    expect(apply(meta, loaded('shop', 1, 1, ['0']))).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('a cancelled move takes its node off again; "all" is left alone', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2) })));
    const id = meta.shardGroup('shop', '0')?.id as GroupId;
    meta.apply({
      type: 'placement.move.start',
      move: { group: id, add: asNodeId(3), remove: asNodeId(0), reason: 'short', startedMs: 5 },
    });
    expect(placed(meta)).toEqual([1, 2, 3]);
    meta.apply({ type: 'placement.move.finish', group: id, outcome: 'cancelled', detail: 'gone', atMs: 6 });
    expect(placed(meta)).toEqual([1, 2]);
    apply(meta, create('every', version(1, { 0: [] }), 'all'));
    const every = meta.shardGroup('every', '0')?.id as GroupId;
    meta.apply({ type: 'group.set', group: { id: every, kind: 'db', replicas: at(1, 2), confIndex: 3 } });
    expect(meta.databases.database('every')?.current.shards[0]?.nodes).toEqual([]);
  });

  it('remembers a node that left the shard with a failed copy until a reload or its removal', () => {
    const meta = model();
    apply(meta, create('shop', version(1, { 0: at(1, 2), 1: at(1, 2) })));
    const id = meta.shardGroup('shop', '0')?.id as GroupId;
    const start = (add: number, startedMs: number) =>
      meta.apply({
        type: 'placement.move.start',
        move: { group: id, add: asNodeId(add), remove: asNodeId(0), reason: 'short', startedMs },
      });
    start(3, 5);
    const failed = { ...loaded('shop', 1, 3, ['0']), state: 'failed', error: 'disk full', atMs: 7 } as const;
    expect(apply(meta, failed)).toEqual({ ok: true });
    // The leader recorded the learner; the move is cancelled: node 3 stays placed with its state.
    meta.apply({ type: 'group.set', group: { id, kind: 'db', replicas: at(1, 2, 3), confIndex: 4 } });
    meta.apply({ type: 'placement.move.finish', group: id, outcome: 'cancelled', detail: 'failed', atMs: 8 });
    expect(meta.loadFailures()).toEqual([]);
    // Its learner removed: the catalog drops its state, the model remembers the failure.
    meta.apply({ type: 'group.set', group: { id, kind: 'db', replicas: at(1, 2), confIndex: 6 } });
    expect(placed(meta)).toEqual([1, 2]);
    expect(meta.databases.database('shop')?.replicaStates).toEqual([]);
    const failure = { database: 'shop', shard: '0', node: 3, version: 1, error: 'disk full', atMs: 7 };
    expect(meta.loadFailures()).toEqual([failure]);
    // A node leaving with a loaded copy, or a failed one of another version, is not remembered.
    start(4, 9);
    apply(meta, loaded('shop', 1, 4, ['0']));
    meta.apply({ type: 'placement.move.finish', group: id, outcome: 'cancelled', detail: 'stalled', atMs: 10 });
    expect(meta.loadFailures()).toEqual([failure]);
    // Through a snapshot; one written before load failures were remembered restores none.
    const copy = new MetaModel();
    copy.restore(meta.snapshot());
    expect(copy.loadFailures()).toEqual([failure]);
    const snapshot = decodeMetaSnapshot(meta.snapshot());
    const placement = snapshot.placement ?? { moves: [], history: [], settings: {} };
    const before = { moves: placement.moves, history: placement.history, settings: placement.settings };
    const older = new MetaModel();
    older.restore(encodeMetaSnapshot({ ...snapshot, placement: before }));
    expect(older.loadFailures()).toEqual([]);
    expect(older.groups()).toEqual(meta.groups());
    // A reload's version, once current, clears the failures of the old one.
    apply(meta, { type: 'db.stage', name: 'shop', version: version(2, { 0: at(1, 2), 1: at(1, 2) }) });
    expect(meta.loadFailures()).toEqual([failure]);
    for (const node of [1, 2]) apply(meta, loaded('shop', 2, node, ['0', '1']));
    expect(meta.databases.database('shop')?.current.version).toBe(2);
    expect(meta.loadFailures()).toEqual([]);
    // The node's removal from the cluster clears its failures too.
    expect(copy.apply({ type: 'node.remove', node: asNodeId(3) })).toEqual({ ok: true });
    expect(copy.loadFailures()).toEqual([]);
  });
});
