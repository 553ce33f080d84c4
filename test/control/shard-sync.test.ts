// The shard sync planner (src/control/shard-sync.ts): the leader records the catalog's versions of
// its shard and drops superseded ones; every member records its own load state as the catalog has
// it; the leader drops the states of a node that left the group; nothing for a dropped database,
// nothing when the group is in step.

import { describe, expect, it } from 'vitest';
import { asNodeId, type GroupId, type LogIndex } from '../../src/base/ids.ts';
import type { DatabaseVersion } from '../../src/codec/meta-databases.ts';
import { encodeShardCommand } from '../../src/codec/shard.ts';
import { planShardSync, shardVersionOf } from '../../src/control/shard-sync.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { ShardModel } from '../../src/models/shard.ts';

const n = asNodeId;
const group = 1_000_000 as GroupId;
/** The group's configuration, as its leader applied it. */
const members = [n(1), n(2)];

function version(number: number): DatabaseVersion {
  return {
    version: number,
    listedMs: 7,
    global: [{ path: 'global/u.ndjson', bytes: 2, etag: 'g' }],
    shards: ['0', '1'].map((shard) => ({
      shard,
      files: [{ path: `shard=${shard}/a.parquet`, bytes: 10 + number, etag: `e${number}` }],
      nodes: [n(1), n(2)],
    })),
  };
}

function catalog(): MetaModel {
  const meta = new MetaModel();
  meta.apply({
    type: 'databases',
    command: {
      type: 'db.create',
      spec: { name: 'shop', bucket: 'bucket', prefix: 'p/', replicas: 2, lazy: false, metadataPattern: null },
      version: version(1),
      atMs: 1,
    },
  });
  return meta;
}

function applyAll(model: ShardModel, drafts: ReturnType<typeof planShardSync>): void {
  drafts.forEach(({ command }, k) =>
    model.applyEntry((k + 1) as LogIndex, encodeShardCommand({ ...command, request: `q${k}` })),
  );
}

describe('planShardSync', () => {
  it('the leader records the versions the catalog has, then nothing is left to do', () => {
    const meta = catalog();
    const model = new ShardModel();
    const hosted = { group, database: 'shop', shard: '1', leading: true, members, model };
    const steps = planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] });
    expect(steps).toEqual([
      {
        group,
        command: { type: 'shard.version', database: 'shop', shard: '1', version: shardVersionOf(version(1), '1') },
      },
    ]);
    expect(steps[0]?.command).toMatchObject({ version: { files: [{ path: 'shard=1/a.parquet' }], global: [{}] } });
    // A follower records no version.
    expect(planShardSync({ self: n(2), catalog: meta.databases, groups: [{ ...hosted, leading: false }] })).toEqual([]);
    applyAll(model, steps);
    expect(planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] })).toEqual([]);
  });

  it('every member records its own load state as the catalog has it, once', () => {
    const meta = catalog();
    const model = new ShardModel();
    const hosted = { group, database: 'shop', shard: '0', leading: false, members, model };
    applyAll(model, planShardSync({ self: n(1), catalog: meta.databases, groups: [{ ...hosted, leading: true }] }));
    meta.apply({
      type: 'databases',
      command: {
        type: 'db.replica',
        name: 'shop',
        version: 1,
        node: n(2),
        shards: ['0', '1'],
        state: 'failed',
        error: 'gone',
        atMs: 9,
      },
    });
    const steps = planShardSync({ self: n(2), catalog: meta.databases, groups: [hosted] });
    expect(steps.map((step) => step.command)).toEqual([
      { type: 'shard.replica', version: 1, node: 2, state: 'failed', error: 'gone', atMs: 9 },
    ]);
    // Node 1 has nothing recorded in the catalog: nothing to say.
    expect(planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] })).toEqual([]);
    applyAll(model, steps);
    expect(model.replica(1, n(2)).state).toBe('failed');
    expect(planShardSync({ self: n(2), catalog: meta.databases, groups: [hosted] })).toEqual([]);
  });

  it('the leader drops a version the catalog replaced, and nothing is planned for a dropped database', () => {
    const meta = catalog();
    const model = new ShardModel();
    const hosted = { group, database: 'shop', shard: '0', leading: true, members, model };
    applyAll(model, planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] }));
    meta.apply({ type: 'databases', command: { type: 'db.stage', name: 'shop', version: version(2) } });
    applyAll(model, planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] }));
    expect(model.versions().map((v) => v.version)).toEqual([1, 2]);
    for (const node of [1, 2])
      meta.apply({
        type: 'databases',
        command: {
          type: 'db.replica',
          name: 'shop',
          version: 2,
          node: n(node),
          shards: ['0', '1'],
          state: 'loaded',
          error: null,
          atMs: 9,
        },
      });
    expect(meta.databases.database('shop')?.current.version).toBe(2);
    const steps = planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] });
    expect(steps.map((step) => step.command.type)).toEqual(['shard.retain', 'shard.replica']);
    applyAll(model, steps);
    expect(model.versions().map((v) => v.version)).toEqual([2]);
    meta.apply({ type: 'databases', command: { type: 'db.drop', name: 'shop' } });
    expect(planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] })).toEqual([]);
  });

  it('the leader drops the load states of a node that left the group, once', () => {
    const meta = catalog();
    const model = new ShardModel();
    const hosted = { group, database: 'shop', shard: '0', leading: true, members: [n(1), n(2), n(3)], model };
    applyAll(model, planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] }));
    const state = { type: 'shard.replica', version: 1, state: 'failed', error: 'disk full', atMs: 9 } as const;
    applyAll(model, [
      { group, command: { ...state, node: n(3) } },
      { group, command: { ...state, node: n(2), state: 'loaded', error: null } },
    ]);
    expect(planShardSync({ self: n(1), catalog: meta.databases, groups: [hosted] })).toEqual([]);
    // Node 3 is removed from the group: its leader drops its states; a follower leaves that to the leader.
    const after = { ...hosted, members: [n(1), n(2)] };
    expect(planShardSync({ self: n(2), catalog: meta.databases, groups: [{ ...after, leading: false }] })).toEqual([]);
    const steps = planShardSync({ self: n(1), catalog: meta.databases, groups: [after] });
    expect(steps.map((step) => step.command)).toEqual([{ type: 'shard.forget', nodes: [3] }]);
    applyAll(model, steps);
    expect(model.replicas().map((replica) => replica.node)).toEqual([2]);
    expect(model.replica(1, n(3)).state).toBe('loading');
    expect(planShardSync({ self: n(1), catalog: meta.databases, groups: [after] })).toEqual([]);
  });
});
