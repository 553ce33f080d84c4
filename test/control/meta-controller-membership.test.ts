// The meta controller (src/control/controller.ts) keeping group 0's membership, on the meta leader
// of a placed cluster, over a fake host. A node removed from group 0 has its handshakes refused for
// good, so it must stay while it is in the cluster. Found by jepsen-like's membership nemesis
// (seed 7): (1) at start, node 3 led group 0 and hosted groups 1 and 3 (nodes 1-4) before the
// first placement was recorded, and removed node 5; (2) later, placement had moved every replica
// off node 5, a live registered node, and it was removed. Either way placement then saw node 5's
// groups without a leader, a cluster.remove drain waited on them until it timed out, and node 5's
// clients got 503 NO_LEADER after it restarted.

import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex, NodeId, Term } from '../../src/base/ids.ts';
import { decodeMetaCommand } from '../../src/codec/meta.ts';
import { MetaController, type ControllerHost } from '../../src/control/controller.ts';
import { initialPlacement } from '../../src/control/placement-initial.ts';
import { MetaModel, metaGroupId } from '../../src/models/meta.ts';
import type { ProposalOutcome } from '../../src/multiraft/host.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { ConfChange, Status } from '../../src/raft/types.ts';
import { idleClock } from '../support/idle-clock.ts';
import { nodeRecord } from '../support/node-record.ts';

const n = (id: number): NodeId => id as NodeId;
const g = (id: number): GroupId => id as GroupId;

function status(self: NodeId, role: Status['role'], voters: readonly NodeId[]): Status {
  return {
    id: self,
    role,
    term: 2 as Term,
    vote: self,
    leader: role === 'leader' ? self : n(1),
    commit: 10 as LogIndex,
    applied: 10 as LogIndex,
    lastIndex: 10 as LogIndex,
    firstIndex: 1 as LogIndex,
    confState: confStateOf(voters),
    transferTarget: n(0),
    leaseValid: false,
    quiesced: false,
    progress: voters.map((id) => ({
      id,
      match: 10 as LogIndex,
      next: 11 as LogIndex,
      state: 'replicate' as const,
      learner: false,
      recentActive: true,
      inflightMessages: 0,
    })),
  };
}

const nodes = [1, 2, 3, 4, 5].map(n);
const groups = [1, 2, 3, 4].map(g);
const initialGroups = initialPlacement(nodes, groups, 3);
const self = n(3);

/** Node 3 leads group 0 (voters 1-5) and hosts the kv groups `hosted` (its own first placement by default). */
function setup(hosted = initialGroups.filter(({ voters }) => voters.includes(self))) {
  const model = new MetaModel();
  const changes: ConfChange[] = [];
  const host: ControllerHost = {
    propose: (_group, data): Promise<ProposalOutcome> =>
      Promise.resolve({ kind: 'applied', index: 1 as LogIndex, result: model.apply(decodeMetaCommand(data)) }),
    proposeConfChange: (_group, change): Promise<ProposalOutcome> => {
      changes.push(change);
      return Promise.resolve({ kind: 'applied', index: 1 as LogIndex, result: undefined });
    },
    status: () => [
      { group: metaGroupId, status: status(self, 'leader', nodes), appliedIndex: 10, appliedTerm: 2 },
      ...hosted.map(({ group, voters }) => ({
        group,
        status: status(self, 'follower', voters),
        appliedIndex: 10,
        confIndex: 1,
      })),
    ],
    groupStatus: (group) =>
      group === metaGroupId ? { group, status: status(self, 'leader', nodes), appliedIndex: 10 } : undefined,
  };
  const controller = new MetaController({
    nodeId: self,
    host,
    model,
    clock: idleClock,
    wallNowMs: () => 1000,
    effects: {
      transferLeadership: () => Promise.resolve({ ok: true, detail: null }),
      removeFromKvGroups: () => Promise.resolve({ ok: true, detail: null }),
    },
    initialGroups,
    initialKvFactor: 3,
  });
  const steps = async (count: number): Promise<void> => {
    for (let step = 0; step < count; step++) await controller.tick();
  };
  return { model, changes, steps };
}

const kvRecords = (model: MetaModel): number[] =>
  model
    .groups()
    .filter((record) => record.kind === 'kv')
    .map((record) => record.id);

describe('meta controller: group 0 membership on a placed cluster', () => {
  it('removes no node before the first placement is recorded', async () => {
    const { model, changes, steps } = setup();
    // Enough steps to record the factor and every group's first placement.
    await steps(10);
    expect(changes).toEqual([]);
    expect(kvRecords(model)).toEqual(groups);
  });

  it('keeps a registered node that holds no replica, and removes it once it is leaving', async () => {
    const { model, changes, steps } = setup();
    await steps(10);
    // Placement moved every replica off node 5: no record lists it, but it is registered.
    for (const group of groups)
      model.apply({ type: 'group.set', group: { id: group, kind: 'kv', replicas: [1, 2, 3].map(n), confIndex: 5 } });
    for (const id of nodes) model.apply({ type: 'node.upsert', node: nodeRecord(id, 'ACTIVE') });
    await steps(3);
    expect(changes).toEqual([]);
    model.apply({ type: 'node.upsert', node: nodeRecord(5, 'LEAVING') });
    await steps(1);
    expect(changes).toEqual([{ changes: [{ type: 'remove_node', node: n(5) }], transition: 'auto' }]);
  });
});
