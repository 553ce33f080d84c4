// The meta controller (src/control/controller.ts) on the meta leader of a new placed cluster, over a
// fake host: before the first placement is recorded, the kv groups it hosts are only some of them,
// so a node in none of those (a replica of the others) is not a node that left. Found by
// jepsen-like's membership nemesis: node 3 led group 0 at start, hosted groups 1 and 3 (nodes
// 1-4), removed node 5 from group 0 and so refused its handshakes for good; placement then
// stalled on node 5's groups (no leader report, a drain that never ended).

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

describe('meta controller at the start of a placed cluster', () => {
  it('removes no node from group 0 before the first placement is recorded', async () => {
    const nodes = [1, 2, 3, 4, 5].map(n);
    const groups = [1, 2, 3, 4].map(g);
    const initialGroups = initialPlacement(nodes, groups, 3);
    const self = n(3);
    const hosted = initialGroups.filter(({ voters }) => voters.includes(self));
    expect(hosted.flatMap(({ voters }) => voters)).not.toContain(n(5));
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
    // Enough steps to record the factor and every group's first placement.
    for (let step = 0; step < 10; step++) await controller.tick();
    expect(changes).toEqual([]);
    expect(
      model
        .groups()
        .filter((record) => record.kind === 'kv')
        .map((record) => record.id),
    ).toEqual(groups);
  });
});
