// A leader's status shows a snapshot transfer's progress (the bytes the follower acknowledged, of
// the total) while the follower is in the snapshot state, and nothing once it left it: the
// placement status reports it for a learner caught up by snapshot (docs/placement.md).

import { describe, expect, it } from 'vitest';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';

describe('snapshot transfer progress in the leader status', () => {
  it('reports acknowledged and total bytes while sending, nothing after', () => {
    const ids = [1, 2, 3].map(asNodeId);
    const joiner = asNodeId(4);
    const rng = createRng(11);
    const options = { snapshotIntervalEntries: 3, snapshotChunkBytesMax: 1, snapshotChunksInflightMax: 1 };
    const nodes = new Map<NodeId, MemoryNode>(
      ids.map((id) => [id, new MemoryNode(id, confStateOf(ids), rng.fork(), options)]),
    );
    nodes.set(joiner, new MemoryNode(joiner, confStateOf([]), rng.fork(), options));
    /** Delivers messages until quiet; snapshot chunks to `held` are kept back while it is held. */
    let held: NodeId | undefined;
    const settle = (): void => {
      for (let round = 0; round < 10_000; round++) {
        const messages: Message[] = [];
        for (const node of nodes.values()) messages.push(...(node.handleReady()?.messages ?? []));
        const deliverable = messages.filter((message) => message.to !== held || message.type !== 'InstallSnapshot');
        if (deliverable.length === 0) return;
        for (const message of deliverable) nodes.get(message.to)?.raft.step(message);
      }
    };
    const leader = nodes.get(asNodeId(1)) as MemoryNode;
    settle();
    leader.raft.campaign();
    settle();
    for (let k = 0; k < 8; k++) {
      expect(leader.raft.propose(new Uint8Array([k, k, k, k])).kind).toBe('accepted');
      settle();
    }
    expect(leader.storage.firstIndex()).toBeGreaterThan(1);
    held = joiner;
    expect(
      leader.raft.proposeConfChange({ changes: [{ type: 'add_learner', node: joiner }], transition: 'auto' }).kind,
    ).toBe('accepted');
    settle();
    // The learner needs compacted entries: the leader sends a snapshot it has not acknowledged yet.
    const member = (): ReturnType<typeof leader.raft.status>['progress'][number] | undefined =>
      leader.raft.status().progress.find((progress) => progress.id === joiner);
    expect(member()?.state).toBe('snapshot');
    const sending = member()?.snapshot;
    expect(sending?.ackedBytes).toBe(0);
    expect(sending?.totalBytes).toBeGreaterThan(1);
    held = undefined;
    leader.raft.tick();
    settle();
    for (let k = 0; k < 20 && member()?.state === 'snapshot'; k++) {
      leader.raft.tick();
      settle();
    }
    expect(member()?.state).toBe('replicate');
    expect(member()?.snapshot).toBeUndefined();
  });
});
