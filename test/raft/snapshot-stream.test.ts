// Checksummed, resumable InstallSnapshot (src/raft/snapshot-stream.ts, driven through RaftNode):
// a chunk whose checksum does not match is refused and asked for again, never kept; a partial
// copy survives a change of leader when the new leader offers the same bytes (index, term, size
// and checksum), so the transfer resumes from the last acknowledged chunk; a different snapshot
// starts over; a leader whose first chunk finds the follower further along goes on from there.

import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/base/crc32.ts';
import { asGroupId, asNodeId, type LogIndex, type Term } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { Progress } from '../../src/raft/progress.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { acknowledge, beginTransfer, nextChunks } from '../../src/raft/snapshot-stream.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { InstallSnapshot, InstallSnapshotResponse, Message, Snapshot } from '../../src/raft/types.ts';

const id = asNodeId;
const confState = confStateOf([1, 2, 3].map(id));
const bytes = Uint8Array.from({ length: 100 }, (_, k) => (k * 7 + 3) & 0xff);
const meta = { index: 10 as LogIndex, term: 2 as Term, confState };

/** The chunk of `data` at [offset, offset + length) as `leader` sends it in `term`. */
function chunk(leader: number, term: number, offset: number, length: number, data = bytes): InstallSnapshot {
  const piece = data.subarray(offset, offset + length);
  return {
    type: 'InstallSnapshot',
    from: id(leader),
    to: id(3),
    term: term as Term,
    meta,
    offset,
    totalBytes: data.length,
    snapshotChecksum: crc32(data),
    chunk: piece,
    chunkChecksum: crc32(piece),
  };
}

function follower(): { node: RaftNode; storage: MemoryStorage } {
  const storage = MemoryStorage.bootstrap(confState);
  const node = new RaftNode({ id: id(3), rng: createRng(3) }, storage);
  drain(node, storage);
  return { node, storage };
}

/** Hands every Ready to storage; returns the messages and the snapshot installed, if any. */
function drain(node: RaftNode, storage: MemoryStorage): { messages: Message[]; snapshot: Snapshot | undefined } {
  const messages: Message[] = [];
  let snapshot: Snapshot | undefined;
  while (node.hasReady()) {
    const ready = node.ready();
    if (ready.snapshot !== undefined) {
      storage.applySnapshot(ready.snapshot);
      snapshot = ready.snapshot;
    }
    storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.hardState = ready.hardState;
    messages.push(...ready.messages, ...ready.messagesAfterPersist);
    node.advance(ready);
  }
  return { messages, snapshot };
}

/** The offsets the follower asked for next, in order. */
function asked(messages: readonly Message[]): number[] {
  return messages
    .filter((message): message is InstallSnapshotResponse => message.type === 'InstallSnapshotResponse')
    .map((message) => message.nextOffset);
}

describe('InstallSnapshot chunks', () => {
  it('refuses a chunk whose checksum does not match, asks for it again, and never keeps it', () => {
    const { node, storage } = follower();
    node.step(chunk(1, 2, 0, 40));
    const bad = chunk(1, 2, 40, 40);
    const flipped = new Uint8Array(bad.chunk);
    flipped[5] = (flipped[5] ?? 0) ^ 0x10;
    node.step({ ...bad, chunk: flipped });
    const first = drain(node, storage);
    expect(asked(first.messages)).toEqual([40, 40]);
    node.step(chunk(1, 2, 40, 40));
    node.step(chunk(1, 2, 80, 20));
    const second = drain(node, storage);
    expect(second.snapshot?.data).toEqual(bytes);
  });

  it('reports the refused chunk, naming its offset and the snapshot index', () => {
    const storage = MemoryStorage.bootstrap(confState);
    const node = new RaftNode({ id: id(3), group: asGroupId(4), rng: createRng(3) }, storage);
    drain(node, storage);
    const bad = chunk(1, 2, 0, 40);
    node.step({ ...bad, chunkChecksum: ((bad.chunkChecksum ?? 0) + 1) >>> 0 });
    const ready = node.ready();
    expect(ready.events).toEqual([
      {
        kind: 'snapshot_refused',
        index: 10,
        term: 2,
        reason:
          'group 4: the chunk at offset 0 of the snapshot at index 10 received from the leader is refused: its checksum does not match',
      },
    ]);
    node.advance(ready);
  });

  it('refuses a chunk that ends past the snapshot', () => {
    const { node, storage } = follower();
    node.step({ ...chunk(1, 2, 0, 40), totalBytes: 30 });
    expect(asked(drain(node, storage).messages)).toEqual([0]);
  });
});

describe('a transfer interrupted by a change of leader', () => {
  it('resumes from the last acknowledged chunk when the new leader offers the same bytes', () => {
    const { node, storage } = follower();
    node.step(chunk(1, 2, 0, 40));
    node.step(chunk(1, 2, 40, 40));
    expect(asked(drain(node, storage).messages)).toEqual([40, 80]);
    // Leader 2 takes over in term 3 with the same snapshot and starts its transfer at offset 0.
    node.step(chunk(2, 3, 0, 40));
    expect(asked(drain(node, storage).messages)).toEqual([80]);
    node.step(chunk(2, 3, 80, 20));
    const done = drain(node, storage);
    expect(done.snapshot?.data).toEqual(bytes);
    expect(done.snapshot?.meta.index).toBe(10);
  });

  it('starts over for a different snapshot at the same index (other bytes)', () => {
    const { node, storage } = follower();
    node.step(chunk(1, 2, 0, 40));
    node.step(chunk(1, 2, 40, 40));
    drain(node, storage);
    const other = bytes.map((byte) => byte ^ 0xff);
    node.step(chunk(2, 3, 80, 20, other));
    expect(asked(drain(node, storage).messages)).toEqual([0]);
    node.step(chunk(2, 3, 0, 50, other));
    node.step(chunk(2, 3, 50, 50, other));
    expect(drain(node, storage).snapshot?.data).toEqual(other);
  });
});

describe('the leader of a transfer', () => {
  const snapshot: Snapshot = { meta, data: bytes };

  it('sends one chunk until the follower answers, then goes on from the offset it reports', () => {
    const progress = new Progress(id(3), 11 as LogIndex, false, 4, 0);
    beginTransfer(progress, snapshot, crc32(bytes));
    const transfer = progress.snapshot;
    if (transfer === undefined) throw new Error('no transfer');
    expect(nextChunks(transfer, 20, 3)).toEqual([0]);
    expect(nextChunks(transfer, 20, 3)).toEqual([]);
    // The follower held 60 bytes of these already (sent by an earlier leader).
    const answer: InstallSnapshotResponse = {
      type: 'InstallSnapshotResponse',
      from: id(3),
      to: id(1),
      term: 3 as Term,
      snapshotIndex: meta.index,
      snapshotTerm: meta.term,
      nextOffset: 60,
      needSnapshot: false,
    };
    expect(acknowledge(progress, answer)).toBe(true);
    expect(nextChunks(transfer, 20, 3)).toEqual([60, 80]);
  });
});

describe('a follower without its state machine (awaitSnapshot)', () => {
  /** Node 3 with a log 1..12 (term 2 from index 2) committed to 12, a snapshot at 10 it cannot load. */
  function stateless(): { node: RaftNode; storage: MemoryStorage } {
    const storage = MemoryStorage.bootstrap(confState);
    storage.append(
      Array.from({ length: 11 }, (_, k) => ({
        kind: 'normal' as const,
        index: (k + 2) as LogIndex,
        term: 2 as Term,
        data: new Uint8Array(0),
      })),
    );
    storage.hardState = { term: 2 as Term, vote: id(1), commit: 12 as LogIndex };
    storage.createSnapshot(10 as LogIndex, confState, Uint8Array.of(1));
    const node = new RaftNode({ id: id(3), rng: createRng(3) }, storage);
    node.awaitSnapshot();
    return { node, storage };
  }
  const heartbeat: Message = {
    type: 'Heartbeat',
    from: id(1),
    to: id(3),
    term: 2 as Term,
    commit: 12 as LogIndex,
    readRound: 0,
    sentTick: 0,
    quiesce: false,
  };

  it('applies nothing and asks its leader for a snapshot at or after its last index', () => {
    const { node, storage } = stateless();
    node.step(heartbeat);
    const ready = node.ready();
    expect(ready.committedEntries).toEqual([]);
    expect(ready.messagesAfterPersist.concat(ready.messages)).toContainEqual(
      expect.objectContaining({ type: 'InstallSnapshotResponse', needSnapshot: true, snapshotIndex: 12 }),
    );
    storage.hardState = ready.hardState ?? storage.hardState;
    node.advance(ready);
    // A snapshot older than that is not taken.
    node.step({ ...chunk(1, 2, 0, 100), meta: { ...meta, index: 11 as LogIndex } });
    expect(drain(node, storage).snapshot).toBeUndefined();
  });

  it('elected, hands leadership to a voter whose log caught up', () => {
    const { node, storage } = stateless();
    const vote = (preVote: boolean): Message => ({
      type: 'RequestVoteResponse',
      from: id(2),
      to: id(3),
      term: 3 as Term,
      preVote,
      granted: true,
    });
    node.campaign();
    drain(node, storage);
    node.step(vote(true));
    drain(node, storage);
    node.step(vote(false));
    drain(node, storage);
    expect(node.status().role).toBe('leader');
    node.step({
      type: 'AppendEntriesResponse',
      from: id(2),
      to: id(3),
      term: 3 as Term,
      success: true,
      index: node.status().lastIndex,
      hintIndex: 0 as LogIndex,
      hintTerm: 0 as Term,
    });
    drain(node, storage);
    node.tick();
    const sent = drain(node, storage).messages;
    expect(sent).toContainEqual(expect.objectContaining({ type: 'TimeoutNow', to: 2 }));
    expect(drain(node, storage).messages).toEqual([]);
  });

  it('installs a snapshot whole even where its log holds the position, then applies again', () => {
    const { node, storage } = stateless();
    node.step({ ...chunk(1, 2, 0, 100), meta: { ...meta, index: 12 as LogIndex } });
    const installed = drain(node, storage);
    expect(installed.snapshot?.meta.index).toBe(12);
    expect(node.status().applied).toBe(12);
  });
});

describe('a leader asked for a snapshot by a follower without its state machine', () => {
  it('asks its host for a newer snapshot, then sends it', () => {
    // One voter, so it leads at once; node 3 is a learner (snapshots go to learners too).
    const members = confStateOf([id(1)], [id(3)]);
    const storage = MemoryStorage.bootstrap(members);
    const leader = new RaftNode({ id: id(1), rng: createRng(1) }, storage);
    drain(leader, storage);
    leader.campaign();
    drain(leader, storage);
    expect(leader.status().role).toBe('leader');
    const need: InstallSnapshotResponse = {
      type: 'InstallSnapshotResponse',
      from: id(3),
      to: id(1),
      term: 2 as Term,
      snapshotIndex: 2 as LogIndex,
      snapshotTerm: 0 as Term,
      nextOffset: 0,
      needSnapshot: true,
    };
    leader.step({ ...need, term: leader.status().term });
    const asked = leader.ready();
    expect(asked.snapshotRequest).toBe(2);
    leader.advance(asked);
    storage.createSnapshot(2 as LogIndex, members, Uint8Array.of(4, 5));
    leader.tick();
    const sent = drain(leader, storage).messages.filter((message) => message.type === 'InstallSnapshot');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ to: 3, meta: { index: 2 }, totalBytes: 2 });
  });
});

describe('chunks from a peer of an older release (no checksums)', () => {
  const older = (leader: number, term: number, offset: number, length: number): InstallSnapshot => ({
    ...chunk(leader, term, offset, length),
    snapshotChecksum: undefined,
    chunkChecksum: undefined,
  });

  it('takes them as delivered and assembles the snapshot', () => {
    const { node, storage } = follower();
    node.step(older(1, 2, 0, 40));
    node.step(older(1, 2, 40, 40));
    expect(asked(drain(node, storage).messages)).toEqual([40, 80]);
    node.step(older(1, 2, 80, 20));
    expect(drain(node, storage).snapshot?.data).toEqual(bytes);
  });

  it('resumes a partial copy only from the leader term that sent it: another leader starts over', () => {
    const { node, storage } = follower();
    node.step(older(1, 2, 0, 40));
    node.step(older(1, 2, 40, 40));
    drain(node, storage);
    node.step(older(2, 3, 0, 40));
    expect(asked(drain(node, storage).messages)).toEqual([40]);
    node.step(older(2, 3, 40, 60));
    expect(drain(node, storage).snapshot?.data).toEqual(bytes);
  });
});
