// Entries committed per second through a three-node Raft cluster held in memory: no disk, no
// sockets, one core. Each round the leader proposes one batch, every node handles its Ready, and
// messages are delivered; the figure counts entries the leader has applied. Before timing, a
// warm-up run checks that every node applied exactly the proposed entries in order.

import { Bench } from 'tinybench';
import { asNodeId, type LogIndex, type NodeId } from '../src/base/ids.ts';
import { createRng } from '../src/base/rng.ts';
import { confStateOf } from '../src/raft/confchange.ts';
import { RaftNode } from '../src/raft/raft.ts';
import { MemoryStorage } from '../src/raft/storage.ts';
import type { Message } from '../src/raft/types.ts';

interface BenchNode {
  readonly raft: RaftNode;
  readonly storage: MemoryStorage;
  appliedEntries: number;
  appliedIndex: number;
  checksum: number;
}

class InMemoryCluster {
  readonly nodes = new Map<NodeId, BenchNode>();
  readonly leader: BenchNode;
  private queue: Message[] = [];

  constructor() {
    const ids = [1, 2, 3].map(asNodeId);
    const rng = createRng(7);
    for (const id of ids) {
      const storage = MemoryStorage.bootstrap(confStateOf(ids));
      const raft = new RaftNode(
        { id, rng: rng.fork(), inflightMessagesMax: 1024, uncommittedBytesMax: 1 << 30, committedBytesMax: 64 << 20 },
        storage,
      );
      this.nodes.set(id, { raft, storage, appliedEntries: 0, appliedIndex: 0, checksum: 0 });
    }
    const first = this.nodes.get(asNodeId(1));
    if (first === undefined) throw new Error('no node 1');
    this.leader = first;
    this.pump(2); // apply the bootstrap configuration entry
    first.raft.campaign();
    this.pump(100);
    if (first.raft.status().role !== 'leader') throw new Error('node 1 did not become leader');
  }

  /** One round: every node handles its Ready, then queued messages are delivered. */
  round(): void {
    for (const node of this.nodes.values()) {
      if (!node.raft.hasReady()) continue;
      const ready = node.raft.ready();
      for (const message of ready.messages) this.queue.push(message);
      node.storage.append(ready.entries);
      if (ready.hardState !== undefined) node.storage.hardState = ready.hardState;
      for (const message of ready.messagesAfterPersist) this.queue.push(message);
      for (const entry of ready.committedEntries) {
        if (entry.kind === 'normal' && entry.data.length > 0) {
          node.appliedEntries++;
          node.checksum = (node.checksum * 31 + (entry.data[0] ?? 0) + entry.index) >>> 0;
        }
        node.appliedIndex = entry.index;
      }
      node.raft.advance(ready);
    }
    const delivering = this.queue;
    this.queue = [];
    for (const message of delivering) this.nodes.get(message.to)?.raft.step(message);
  }

  pump(rounds: number): void {
    for (let k = 0; k < rounds; k++) this.round();
  }

  /** Keep memory flat: snapshot and compact every node behind its applied index. */
  compact(): void {
    for (const node of this.nodes.values()) {
      const index = node.appliedIndex as LogIndex;
      if (index > node.storage.snapshot().meta.index + 50_000)
        node.storage.createSnapshot(index, node.raft.currentConfState(), new Uint8Array(0));
    }
  }

  /** Propose `entries` in batches of `batch`, one batch per round, and run until all are applied everywhere. */
  commit(entries: number, batch: number, payload: Uint8Array): void {
    const target = this.leader.appliedEntries + entries;
    const payloads = Array.from({ length: batch }, () => payload);
    let proposed = 0;
    for (let guard = 0; this.minApplied() < target; guard++) {
      if (guard > 10 * entries + 1000) throw new Error('cluster stopped making progress');
      if (proposed < entries) {
        const result = this.leader.raft.proposeBatch(payloads.slice(0, Math.min(batch, entries - proposed)));
        if (result.kind !== 'accepted') throw new Error(`proposal refused: ${result.kind}`);
        proposed += Math.min(batch, entries - proposed);
      }
      this.round();
      if (guard % 256 === 0) this.compact();
    }
  }

  minApplied(): number {
    return Math.min(...[...this.nodes.values()].map((node) => node.appliedEntries));
  }
}

export interface RaftCoreFigures {
  readonly name: string;
  readonly batch: number;
  readonly entriesPerSecond: number;
  readonly samples: number;
  readonly rme: number;
}

/** Runs 10,000 entries through a fresh cluster and checks every node applied the same ones. */
export function verifyRaftCore(batch: number): void {
  const cluster = new InMemoryCluster();
  cluster.commit(10_000, batch, new Uint8Array([42]));
  const nodes = [...cluster.nodes.values()];
  const first = nodes[0];
  if (first === undefined || nodes.some((node) => node.appliedEntries !== 10_000 || node.checksum !== first.checksum)) {
    throw new Error(`raft-core bench: nodes disagree after 10,000 entries (batch ${batch})`);
  }
}

export async function runRaftCoreBench(timeMs = 3000): Promise<RaftCoreFigures[]> {
  const figures: RaftCoreFigures[] = [];
  const payload = new Uint8Array(64).fill(1);
  for (const batch of [64, 1]) {
    verifyRaftCore(batch);
    const cluster = new InMemoryCluster();
    const entriesPerTask = batch === 1 ? 2_000 : 64_000;
    const bench = new Bench({ time: timeMs, warmupTime: 500 });
    bench.add(`raft-core 3 nodes, batch ${batch}`, () => {
      cluster.commit(entriesPerTask, batch, payload);
    });
    await bench.run();
    const task = bench.tasks[0];
    const result = task?.result;
    if (result === undefined || !('latency' in result)) throw new Error('bench task produced no result');
    const meanMs = result.latency.mean;
    figures.push({
      name: `raft-core.batch${batch}`,
      batch,
      entriesPerSecond: Math.round((entriesPerTask / meanMs) * 1000),
      samples: result.latency.samplesCount,
      rme: Math.round(result.latency.rme * 10) / 10,
    });
  }
  return figures;
}
