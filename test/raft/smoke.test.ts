import { describe, expect, it } from 'vitest';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';

function cluster(size: number) {
  const ids = Array.from({ length: size }, (_, i) => asNodeId(i + 1));
  const rng = createRng(1);
  const nodes = new Map<NodeId, MemoryNode>(ids.map((id) => [id, new MemoryNode(id, confStateOf(ids), rng.fork())]));
  const settle = () => {
    for (let round = 0; round < 1000; round++) {
      const messages: Message[] = [];
      for (const node of nodes.values()) {
        const handled = node.handleReady();
        if (handled) messages.push(...handled.messages);
      }
      if (messages.length === 0) return;
      for (const message of messages) nodes.get(message.to)?.raft.step(message);
    }
    throw new Error('did not settle');
  };
  return { ids, nodes, settle };
}

describe('raft smoke', () => {
  it('elects a leader and replicates to every node', () => {
    const { nodes, settle } = cluster(3);
    const first = nodes.get(asNodeId(1));
    expect(first).toBeDefined();
    if (!first) return;
    settle(); // apply the bootstrap configuration entry
    first.raft.campaign();
    settle();
    expect(first.raft.status().role).toBe('leader');
    const result = first.raft.propose(new TextEncoder().encode('hello'));
    expect(result.kind).toBe('accepted');
    settle();
    for (const node of nodes.values()) {
      expect(
        node.applied.map((entry) => (entry.kind === 'normal' ? new TextDecoder().decode(entry.data) : 'conf')),
      ).toEqual(['conf', '', 'hello']);
    }
  });
});
