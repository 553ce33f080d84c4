// The core asks its host for a snapshot every snapshotIntervalEntries applied entries, once per
// interval, at the index the host has applied; the host's compaction then moves firstIndex.

import { describe, expect, it } from 'vitest';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';

describe('snapshot requests', () => {
  it('asks once per interval, at the applied index, and the log compacts behind it', () => {
    const ids = [1, 2, 3].map(asNodeId);
    const rng = createRng(3);
    const nodes = new Map<NodeId, MemoryNode>(
      ids.map((id) => [id, new MemoryNode(id, confStateOf(ids), rng.fork(), { snapshotIntervalEntries: 5 })]),
    );
    const requests = new Map<NodeId, number[]>(ids.map((id) => [id, []]));
    const settle = () => {
      for (let round = 0; round < 100; round++) {
        const messages: Message[] = [];
        for (const node of nodes.values()) {
          const handled = node.handleReady();
          if (handled === undefined) continue;
          if (handled.ready.snapshotRequest !== undefined) requests.get(node.id)?.push(handled.ready.snapshotRequest);
          messages.push(...handled.messages);
        }
        if (messages.length === 0) return;
        for (const message of messages) nodes.get(message.to)?.raft.step(message);
      }
    };
    settle();
    const leader = nodes.get(asNodeId(1));
    if (leader === undefined) throw new Error('no node 1');
    leader.raft.campaign();
    settle();
    expect(leader.raft.status().role).toBe('leader');
    for (let k = 0; k < 12; k++) {
      expect(leader.raft.propose(new Uint8Array([k])).kind).toBe('accepted');
      settle();
    }
    // 1 bootstrap entry + 1 empty leader entry + 12 proposals = 14 applied.
    for (const node of nodes.values()) {
      expect(node.appliedIndex).toBe(14);
      const asked = requests.get(node.id) ?? [];
      expect(asked.length).toBe(2);
      expect(asked[0]).toBeGreaterThanOrEqual(5);
      expect((asked[1] ?? 0) - (asked[0] ?? 0)).toBeGreaterThanOrEqual(5);
      expect(node.storage.firstIndex()).toBe((asked[1] ?? 0) + 1);
    }
    // Compact now: a snapshot is asked for at the applied index at once, below the interval;
    // then there is nothing left to compact until another entry is applied.
    const follower = nodes.get(asNodeId(2));
    if (follower === undefined) throw new Error('no node 2');
    expect(follower.raft.requestSnapshot()).toBe(true);
    settle();
    expect(requests.get(follower.id)?.at(-1)).toBe(14);
    expect(follower.storage.firstIndex()).toBe(15);
    expect(follower.raft.requestSnapshot()).toBe(false);
  });
});
