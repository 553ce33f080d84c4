// Regression tests for three safety bugs of the core, driving RaftNode directly (issue 10):
// 1. a restarted node must not use a configuration older than one it saw committed: a Ready that
//    applies a configuration entry makes its commit index durable;
// 2. entries at or below a snapshot restored after ready() are never applied by advance();
// 3. the lease is judged on the host's clock at the moment of the read, not on tick counts, and a
//    leader stepping down withdraws the read states it has not handed out.
// Plus: a read the host gave up on no longer counts against readQueueMax on a follower.

import { describe, expect, it } from 'vitest';
import { asNodeId, type LogIndex, type NodeId, type Term } from '../../src/base/ids.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { ConfState, Entry, Message, Ready } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';

const id = asNodeId;
const term = (t: number) => t as Term;
const index = (i: number) => i as LogIndex;

function promote(node: number, at: number): Entry {
  return {
    kind: 'conf',
    term: term(2),
    index: index(at),
    change: { changes: [{ type: 'add_voter', node: id(node) }], transition: 'auto' },
  };
}

function appendFromLeader(to: NodeId, prev: number, entries: Entry[], commit: number): Message {
  return {
    type: 'AppendEntries',
    from: id(1),
    to,
    term: term(2),
    prevLogIndex: index(prev),
    prevLogTerm: term(prev <= 1 ? 1 : 2),
    entries,
    commit: index(commit),
  };
}

/** Persists a Ready the way the host does: a commit-only hard state stays in memory unless mustSync. */
function persistLikeHost(storage: MemoryStorage, ready: Ready): void {
  if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
  storage.append(ready.entries);
  const commitOnly = ready.snapshot === undefined && ready.entries.length === 0 && !ready.mustSync;
  if (ready.hardState !== undefined && !commitOnly) storage.hardState = ready.hardState;
}

function drain(node: RaftNode, storage: MemoryStorage): void {
  while (node.hasReady()) {
    const ready = node.ready();
    persistLikeHost(storage, ready);
    node.advance(ready);
  }
}

function voters(confState: ConfState): number[] {
  return [...confState.voters].sort((a, b) => a - b);
}

describe('a configuration seen committed survives a restart (bug 1)', () => {
  it('makes the commit index durable with the Ready that applies a configuration entry', () => {
    const initial = { ...confStateOf([1, 2, 3].map(id)), learners: [id(4), id(5)] };
    const storage = MemoryStorage.bootstrap(initial);
    let node = new RaftNode({ id: id(1), rng: createRng(1) }, storage);
    drain(node, storage);
    // The leader (2) promotes learners 4 and 5 (entries 3, 4): node 1 stores them before it learns
    // they are committed, and then learns that from an empty append alone.
    node.step({
      ...appendFromLeader(
        id(1),
        1,
        [{ kind: 'normal', term: term(2), index: index(2), data: new Uint8Array(0) }, promote(4, 3), promote(5, 4)],
        1,
      ),
      from: id(2),
    });
    drain(node, storage);
    node.step({ ...appendFromLeader(id(1), 4, [], 4), from: id(2) });
    drain(node, storage);
    expect(voters(node.currentConfState())).toEqual([1, 2, 3, 4, 5]);
    // Killed now, it restarts from what the host wrote: it must still know {1..5} is in force, or
    // it would campaign (and win with node 2's vote) under {1,2,3}.
    node = new RaftNode({ id: id(1), rng: createRng(1) }, storage);
    drain(node, storage);
    expect(storage.hardState.commit).toBeGreaterThanOrEqual(4);
    expect(voters(node.currentConfState())).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('a snapshot restored while a Ready is being written (bug 2)', () => {
  it('is not rolled back by that Ready applying older configuration entries', () => {
    const storage = MemoryStorage.bootstrap(confStateOf([1, 2, 3].map(id)));
    const node = new RaftNode({ id: id(2), rng: createRng(2) }, storage);
    drain(node, storage);
    const addLearner: Entry = {
      kind: 'conf',
      term: term(2),
      index: index(3),
      change: { changes: [{ type: 'add_learner', node: id(4) }], transition: 'auto' },
    };
    node.step(
      appendFromLeader(
        id(2),
        1,
        [{ kind: 'normal', term: term(2), index: index(2), data: new Uint8Array(0) }, addLearner],
        3,
      ),
    );
    const ready = node.ready();
    expect(ready.committedEntries.map((entry) => entry.index)).toEqual([2, 3]);
    // While that Ready is written, a snapshot at 10 arrives in which 4 is a voter.
    const confState = confStateOf([1, 2, 3, 4].map(id));
    node.step({
      type: 'InstallSnapshot',
      from: id(1),
      to: id(2),
      term: term(2),
      meta: { index: index(10), term: term(2), confState },
      offset: 0,
      totalBytes: 1,
      snapshotChecksum: crc32(Uint8Array.of(7)),
      chunk: Uint8Array.of(7),
      chunkChecksum: crc32(Uint8Array.of(7)),
    });
    persistLikeHost(storage, ready);
    node.advance(ready);
    expect(voters(node.currentConfState())).toEqual([1, 2, 3, 4]);
    expect(node.currentConfState().learners).toEqual([]);
    const next = node.ready();
    expect(next.snapshot?.meta.index).toBe(10);
    expect(next.events.filter((event) => event.kind === 'conf_applied')).toEqual([]);
  });
});

/** Three MemoryNodes with lease reads; messages are delivered until none is left. */
function leaseCluster(): MemoryNode[] {
  const confState = confStateOf([1, 2, 3].map(id));
  const nodes = [1, 2, 3].map(
    (n) =>
      new MemoryNode(id(n), confState, createRng(n), { leaseReads: true, leaseTicks: 8, electionTimeoutTicks: 10 }),
  );
  for (const node of nodes) while (node.handleReady() !== undefined);
  // Restarted voters refuse votes for one election timeout (they may have granted a lease).
  for (const node of nodes.slice(1)) for (let k = 0; k < 10; k++) node.raft.tick(k + 1);
  nodes[0]?.raft.campaign();
  stabilize(nodes);
  expect(nodes[0]?.raft.status().role).toBe('leader');
  return nodes;
}

function stabilize(nodes: MemoryNode[], except: (message: Message) => boolean = () => false): void {
  for (let round = 0; round < 100; round++) {
    const messages: Message[] = [];
    for (const node of nodes) {
      const handled = node.handleReady();
      if (handled !== undefined) messages.push(...handled.messages);
    }
    if (messages.length === 0 && nodes.every((node) => !node.raft.hasReady())) return;
    for (const message of messages) if (!except(message)) nodes[message.to - 1]?.raft.step(message);
  }
  throw new Error('no quiescence');
}

describe('lease reads (bug 3)', () => {
  it('are judged on the clock read at the moment of the read: a stalled leader does not serve from its lease', () => {
    const nodes = leaseCluster();
    const leader = nodes[0];
    if (leader === undefined) throw new Error('no node');
    leader.raft.tick(100); // heartbeats sent at time 100 (in ticks), acknowledged at once
    stabilize(nodes);
    expect(leader.raft.leaseRead(7, 101)).toEqual({ kind: 'queued' });
    const served = leader.raft.ready();
    expect(served.readStates).toEqual([{ requestId: 7, index: leader.raft.log.committed }]);
    leader.persist(served);
    leader.apply(served);
    leader.raft.advance(served);
    // The process stalls for 9 ticks' worth of time without a tick firing: past the lease of 8.
    expect(leader.raft.leaseRead(8, 109.5)).toEqual({ kind: 'queued' });
    const ready = leader.raft.ready();
    expect(ready.readStates).toEqual([]);
    expect(ready.messages.some((message) => message.type === 'Heartbeat' && message.readRound > 0)).toBe(true);
  });

  it('withdraws a lease read state not handed out yet when the leader steps down', () => {
    const nodes = leaseCluster();
    const leader = nodes[0];
    if (leader === undefined) throw new Error('no node');
    leader.raft.tick(100);
    stabilize(nodes);
    expect(leader.raft.leaseRead(9, 100.5)).toEqual({ kind: 'queued' });
    const status = leader.raft.status();
    // A leader of a higher term speaks before the host takes the Ready.
    leader.raft.step({
      type: 'AppendEntries',
      from: id(2),
      to: id(1),
      term: term(status.term + 1),
      prevLogIndex: status.lastIndex,
      prevLogTerm: term(status.term),
      entries: [],
      commit: status.commit,
    });
    const ready = leader.raft.ready();
    expect(ready.readStates).toEqual([]);
    expect(ready.readFailures).toEqual([{ requestId: 9, reason: 'leader_changed' }]);
  });
});

describe('forwarded reads', () => {
  it('stop counting against readQueueMax once the host gives up on them', () => {
    const confState = confStateOf([1, 2, 3].map(id));
    const nodes = [1, 2, 3].map((n) => new MemoryNode(id(n), confState, createRng(n), { readQueueMax: 2 }));
    for (const node of nodes) while (node.handleReady() !== undefined);
    nodes[0]?.raft.campaign();
    stabilize(nodes);
    const follower = nodes[1];
    if (follower === undefined) throw new Error('no node');
    // The leader never answers these two (lost messages).
    expect(follower.raft.readIndex(1).kind).toBe('forwarded');
    expect(follower.raft.readIndex(2).kind).toBe('forwarded');
    expect(follower.raft.readIndex(3).kind).toBe('read_queue_full');
    follower.raft.cancelRead(1);
    follower.raft.cancelRead(2);
    expect(follower.raft.readIndex(4).kind).toBe('forwarded');
  });
});

describe('an installed snapshot', () => {
  it('is not asked for again (the host would encode and write back the state it was just handed)', () => {
    const storage = MemoryStorage.bootstrap(confStateOf([1, 2, 3].map(id)));
    const node = new RaftNode({ id: id(2), rng: createRng(2), snapshotIntervalEntries: 5 }, storage);
    drain(node, storage);
    node.step({
      type: 'InstallSnapshot',
      from: id(1),
      to: id(2),
      term: term(2),
      meta: { index: index(10), term: term(2), confState: confStateOf([1, 2, 3].map(id)) },
      offset: 0,
      totalBytes: 1,
      snapshotChecksum: crc32(Uint8Array.of(7)),
      chunk: Uint8Array.of(7),
      chunkChecksum: crc32(Uint8Array.of(7)),
    });
    const ready = node.ready();
    expect(ready.snapshot?.meta.index).toBe(10);
    expect(ready.snapshotRequest).toBeUndefined();
  });
});
