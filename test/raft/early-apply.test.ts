// RaftNode.takeCommittedEntries / appliedEarly: a host whose Ready is still being written may apply
// what became committed meanwhile. Checked here: the entries come in order and only once (the
// next Ready does not hand them out again), the leader can commit on its followers' disks alone,
// and nothing comes out while the outstanding Ready applies a configuration entry, nor from a
// configuration entry on.

import { describe, expect, it } from 'vitest';
import { asNodeId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';

const ids = [1, 2, 3].map(asNodeId);

function threeNodes() {
  const rng = createRng(5);
  const nodes = new Map<NodeId, MemoryNode>(ids.map((id) => [id, new MemoryNode(id, confStateOf(ids), rng.fork())]));
  const deliver = (messages: readonly Message[]) => {
    for (const message of messages) nodes.get(message.to)?.raft.step(message);
  };
  /** Every node but `skip` handles its Readies completely until nothing moves. */
  const settle = (skip?: NodeId) => {
    for (let round = 0; round < 100; round++) {
      const messages: Message[] = [];
      for (const node of nodes.values()) {
        if (node.id === skip) continue;
        const handled = node.handleReady();
        if (handled !== undefined) messages.push(...handled.messages);
      }
      if (messages.length === 0) return;
      deliver(messages);
    }
  };
  const leader = nodes.get(asNodeId(1));
  if (leader === undefined) throw new Error('no node 1');
  settle();
  leader.raft.campaign();
  settle();
  expect(leader.raft.status().role).toBe('leader');
  return { nodes, leader, settle, deliver };
}

describe('applying committed entries while a Ready is in flight', () => {
  it('hands out what the followers committed, once, in order, while the leader has not stored it', () => {
    const { leader, settle, deliver } = threeNodes();
    const applied = leader.appliedIndex;
    expect(leader.raft.propose(new Uint8Array([1])).kind).toBe('accepted');
    expect(leader.raft.propose(new Uint8Array([2])).kind).toBe('accepted');
    // The leader's Ready goes out, its write stays in flight (not persisted, not advanced).
    const inFlight = leader.raft.ready();
    expect(inFlight.entries.length).toBe(2);
    expect(leader.raft.takeCommittedEntries()).toEqual([]);
    deliver(inFlight.messages);
    settle(leader.id); // the followers store the entries and acknowledge; the answers reach the leader
    const early = leader.raft.takeCommittedEntries();
    expect(early.map((entry) => entry.index)).toEqual([applied + 1, applied + 2]);
    expect(leader.raft.takeCommittedEntries()).toEqual([]);
    leader.applyEntries(early);
    leader.raft.appliedEarly(early);
    leader.persist(inFlight);
    leader.raft.advance(inFlight);
    expect(leader.raft.log.applied).toBe(applied + 2);
    // The next Ready does not apply them again.
    if (leader.raft.hasReady())
      expect(leader.raft.ready().committedEntries.filter((entry) => entry.index <= applied + 2)).toEqual([]);
  });

  it('stops before a configuration entry', () => {
    const { leader, settle, deliver } = threeNodes();
    expect(leader.raft.propose(new Uint8Array([1])).kind).toBe('accepted');
    expect(
      leader.raft.proposeConfChange({ changes: [{ type: 'add_learner', node: asNodeId(4) }], transition: 'auto' }).kind,
    ).toBe('accepted');
    const first = leader.raft.ready();
    deliver(first.messages);
    settle(leader.id);
    const early = leader.raft.takeCommittedEntries();
    expect(early.map((entry) => entry.kind)).toEqual(['normal']);
    leader.applyEntries(early);
    leader.raft.appliedEarly(early);
    leader.persist(first);
    leader.raft.advance(first);
    // The configuration entry comes in a Ready of its own, and the core applies it at advance().
    const second = leader.raft.ready();
    expect(second.committedEntries.map((entry) => entry.kind)).toEqual(['conf']);
    leader.persist(second);
    leader.apply(second);
    leader.raft.advance(second);
    expect(leader.raft.status().confState.learners).toEqual([4]);
  });

  it('gives nothing while the outstanding Ready applies a configuration entry, even once later entries commit', () => {
    const { nodes, leader, settle } = threeNodes();
    const follower = nodes.get(asNodeId(2));
    if (follower === undefined) throw new Error('no node 2');
    // Node 2 steps what it is sent but handles no Ready: the leader commits with node 3 and tells node 2.
    expect(
      leader.raft.proposeConfChange({ changes: [{ type: 'add_learner', node: asNodeId(4) }], transition: 'auto' }).kind,
    ).toBe('accepted');
    settle(follower.id);
    const held = follower.raft.ready();
    expect(held.committedEntries.map((entry) => entry.kind)).toContain('conf');
    // While that Ready is out, a normal entry commits on the leader and node 3 and reaches node 2.
    expect(leader.raft.propose(new Uint8Array([7])).kind).toBe('accepted');
    settle(follower.id);
    const lastHeld = held.committedEntries[held.committedEntries.length - 1]?.index ?? 0;
    expect(follower.raft.log.committed).toBeGreaterThan(lastHeld);
    expect(follower.raft.takeCommittedEntries()).toEqual([]);
    // Once the configuration entry is applied, the entry after it comes out.
    follower.persist(held);
    follower.apply(held);
    follower.raft.advance(held);
    expect(follower.raft.takeCommittedEntries().map((entry) => entry.index)).toEqual([lastHeld + 1]);
  });
});
