// The shard sync loop's view of this node (src/node/shard-sync.ts `hostedShardGroups`): each
// hosted database shard group with its shard, whether this node leads it (with an entry of its
// term applied), and its members as the group's configuration holds them, joint changes included,
// so the leader drops the load states of a node the group removed (src/control/shard-sync.ts).

import { describe, expect, it } from 'vitest';
import { asNodeId, type GroupId } from '../../src/base/ids.ts';
import { dbGroupIdFirst, MetaModel } from '../../src/models/meta.ts';
import { ShardModel } from '../../src/models/shard.ts';
import { hostedShardGroups, type ShardSyncHost } from '../../src/node/shard-sync.ts';
import type { Status } from '../../src/raft/types.ts';

const n = asNodeId;

describe('hostedShardGroups', () => {
  it("gives each hosted shard group its configuration's members and whether this node leads it", () => {
    const meta = new MetaModel();
    meta.apply({
      type: 'databases',
      command: {
        type: 'db.create',
        spec: { name: 'shop', bucket: 'b', prefix: 'p/', replicas: 2, lazy: false, metadataPattern: null },
        version: { version: 1, listedMs: 0, global: [], shards: [{ shard: '0', files: [], nodes: [n(1), n(2)] }] },
        atMs: 1,
      },
    });
    const group = dbGroupIdFirst as GroupId;
    const model = new ShardModel();
    // In a joint change: node 2 leaves (outgoing voter), node 4 is a learner, node 3 becomes a learner next.
    const status = {
      role: 'leader',
      term: 3,
      confState: {
        voters: [n(1), n(4)],
        votersOutgoing: [n(1), n(2)],
        learners: [n(5)],
        learnersNext: [n(3)],
        autoLeave: true,
      },
    } as unknown as Status;
    const host = (appliedTerm: number): ShardSyncHost => ({
      status: () => [
        { group, status, appliedIndex: 9, appliedTerm },
        { group: 1 as GroupId, status, appliedIndex: 9, appliedTerm },
      ],
      model: (id) => (id === group ? model : undefined),
      propose: () => Promise.reject(new Error('not here')),
    });
    const [hosted, ...others] = hostedShardGroups(host(3), meta);
    expect(others).toEqual([]);
    expect(hosted).toMatchObject({ group, database: 'shop', shard: '0', leading: true });
    expect([...(hosted?.members ?? [])].sort()).toEqual([1, 2, 3, 4, 5]);
    // A leader that has not applied an entry of its term yet does not act as one.
    expect(hostedShardGroups(host(2), meta)[0]?.leading).toBe(false);
  });
});
