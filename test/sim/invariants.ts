// Safety checks the simulator runs after every Ready and every tick. Each is one of Raft's
// properties (Raft paper, figure 3) or a client-visible promise:
//   - election safety: at most one leader per term;
//   - log matching: an (index, term) pair names one entry, with one predecessor term;
//   - leader completeness: a new leader holds every committed and every acknowledged entry;
//   - state machine safety: every node applies the same entry at each index, in order, no gaps;
//   - monotonic cursors: commit and applied never go backwards within a node's life;
//   - no node applies beyond its commit index.
// The checks are incremental (fed by each Ready) so thousands of seeds stay fast.

import type { LogIndex, NodeId } from '../../src/base/ids.ts';
import type { ConfState, Entry, Ready } from '../../src/raft/types.ts';
import type { MemoryNode } from '../support/memory-node.ts';

export class SimulationFailure extends Error {
  override readonly name = 'SimulationFailure';
}

function fail(message: string): never {
  throw new SimulationFailure(message);
}

export function entryIdentity(entry: Entry): string {
  return entry.kind === 'normal' ? `n:${new TextDecoder().decode(entry.data)}` : `c:${JSON.stringify(entry.change)}`;
}

interface LogRecord {
  readonly identity: string;
  readonly prevTerm: number;
}

export class ClusterChecker {
  private readonly nodes: ReadonlyMap<NodeId, MemoryNode>;
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** "index/term" -> the one entry that pair may name. */
  private readonly logRecords = new Map<string, LogRecord>();
  /** index -> identity of the entry applied there (by anyone). */
  private readonly appliedAt = new Map<number, string>();
  /** index -> term of the committed entry there. */
  private readonly committedTerm = new Map<number, number>();
  private committedMax = 0;
  private readonly acknowledged = new Map<number, { term: number; payload: string }>();
  private readonly lastCommit = new Map<NodeId, number>();
  private readonly lastApplied = new Map<NodeId, number>();
  private readonly down = new Set<NodeId>();
  private readonly commitChecked = new Map<NodeId, number>();

  constructor(nodes: ReadonlyMap<NodeId, MemoryNode>) {
    this.nodes = nodes;
  }

  private node(id: NodeId): MemoryNode {
    const node = this.nodes.get(id);
    if (node === undefined) fail(`unknown node ${id}`);
    return node;
  }

  onReady(id: NodeId, ready: Ready): void {
    const node = this.node(id);
    const status = node.raft.status();
    if (ready.softState?.role === 'leader') this.onLeader(id, node, status.term);
    for (const entry of ready.entries) {
      const prevTerm = node.raft.log.term((entry.index - 1) as LogIndex);
      if (prevTerm === undefined) fail(`node ${id} persists entry ${entry.index} without a known predecessor`);
      const key = `${entry.index}/${entry.term}`;
      const record = { identity: entryIdentity(entry), prevTerm };
      const known = this.logRecords.get(key);
      if (known === undefined) this.logRecords.set(key, record);
      else if (known.identity !== record.identity || known.prevTerm !== record.prevTerm) {
        fail(
          `log matching: node ${id} has ${key} = ${record.identity} after term ${record.prevTerm}, elsewhere ${known.identity} after term ${known.prevTerm}`,
        );
      }
    }
  }

  private onLeader(id: NodeId, node: MemoryNode, term: number): void {
    const known = this.leaderOfTerm.get(term);
    if (known !== undefined && known !== id) fail(`election safety: nodes ${known} and ${id} both lead term ${term}`);
    this.leaderOfTerm.set(term, id);
    const first = node.raft.log.firstIndex();
    for (let index = first; index <= this.committedMax; index++) {
      const committed = this.committedTerm.get(index);
      if (committed !== undefined && node.raft.log.term(index) !== committed) {
        fail(`leader completeness: leader ${id} of term ${term} lacks committed entry ${index}/${committed}`);
      }
    }
    for (const [index, acked] of this.acknowledged) {
      if (index >= first && node.raft.log.term(index as LogIndex) !== acked.term) {
        fail(`acknowledged write ${acked.payload} at ${index}/${acked.term} missing from leader ${id} of term ${term}`);
      }
    }
  }

  /** After a node applied a Ready's snapshot and committed entries, or entries taken early (no snapshot). */
  afterApply(id: NodeId, ready: Pick<Ready, 'snapshot' | 'committedEntries'>): void {
    const node = this.node(id);
    if (ready.snapshot !== undefined) {
      for (const entry of node.applied) this.checkApplied(id, entry);
    }
    let previous = ready.snapshot?.meta.index ?? this.lastApplied.get(id) ?? 0;
    for (const entry of ready.committedEntries) {
      if (entry.index <= previous && ready.snapshot !== undefined) continue;
      if (entry.index !== previous + 1 && this.lastApplied.has(id))
        fail(`node ${id} applies ${entry.index} after ${previous}`);
      this.checkApplied(id, entry);
      previous = entry.index;
    }
    this.recordCommits(id, node);
    this.checkCursors(id, node);
  }

  private checkApplied(id: NodeId, entry: Entry): void {
    const identity = entryIdentity(entry);
    const known = this.appliedAt.get(entry.index);
    if (known === undefined) this.appliedAt.set(entry.index, identity);
    else if (known !== identity)
      fail(`state machine safety: node ${id} applies ${identity} at ${entry.index}, another node applied ${known}`);
  }

  private recordCommits(id: NodeId, node: MemoryNode): void {
    const commit = node.raft.log.committed;
    const from = Math.max(node.raft.log.firstIndex(), (this.lastCommit.get(id) ?? 0) + 1);
    for (let index = from; index <= commit; index++) {
      const term = node.raft.log.term(index as LogIndex);
      if (term === undefined) continue;
      const known = this.committedTerm.get(index);
      if (known === undefined) this.committedTerm.set(index, term);
      else if (known !== term) fail(`node ${id} commits ${index}/${term}, but ${index}/${known} was committed`);
    }
    if (commit > this.committedMax) this.committedMax = commit;
  }

  private checkCursors(id: NodeId, node: MemoryNode): void {
    const commit = node.raft.log.committed;
    const applied = node.appliedIndex;
    if (applied > commit) fail(`node ${id} applied ${applied} beyond commit ${commit}`);
    if (commit < (this.lastCommit.get(id) ?? 0))
      fail(`node ${id} commit went back from ${this.lastCommit.get(id)} to ${commit}`);
    if (applied < (this.lastApplied.get(id) ?? 0))
      fail(`node ${id} applied went back from ${this.lastApplied.get(id)} to ${applied}`);
    this.lastCommit.set(id, commit);
    this.lastApplied.set(id, applied);
  }

  afterStep(): void {
    for (const [id, node] of this.nodes) {
      if (this.down.has(id)) continue;
      const commit = node.raft.log.committed;
      if (commit < (this.lastCommit.get(id) ?? 0)) fail(`node ${id} commit went back to ${commit}`);
      if (node.appliedIndex > commit) fail(`node ${id} applied ${node.appliedIndex} beyond commit ${commit}`);
    }
  }

  /**
   * Called after every input to a node: when a leader's commit index moved, the newly committed
   * entry must be on the disk of a quorum (of each half, in a joint configuration) of the
   * configuration it was counted in, which is the leader's configuration at this moment. This
   * catches a leader that counts writes still in flight, before any election exposes the loss.
   */
  afterInput(id: NodeId, confBefore: ConfState): void {
    const leader = this.node(id);
    const commit = leader.raft.log.committed;
    const checked = this.commitChecked.get(id) ?? 0;
    this.commitChecked.set(id, commit);
    if (commit <= checked || leader.raft.status().role !== 'leader') return;
    const term = leader.raft.log.term(commit);
    if (term === undefined) return;
    const durable = (voter: NodeId): boolean => {
      const storage = this.nodes.get(voter)?.storage;
      if (storage === undefined) return false;
      return storage.firstIndex() > commit || storage.term(commit) === term;
    };
    // One input may both count a commit and then apply a configuration change (advance does
    // both, in that order), so the commit may have been counted in the configuration from before.
    const quorumDurable = (confState: ConfState): boolean =>
      [confState.voters, confState.votersOutgoing].every(
        (half) => half.length === 0 || half.filter(durable).length > half.length / 2,
      );
    const now = leader.raft.currentConfState();
    if (!quorumDurable(now) && !quorumDurable(confBefore)) {
      fail(
        `leader ${id} committed ${commit}/${term}, durable on no quorum of [${now.voters.join(',')}] (out [${now.votersOutgoing.join(',')}])`,
      );
    }
  }

  onAcknowledged(index: number, term: number, payload: string): void {
    const committed = this.committedTerm.get(index);
    if (committed !== undefined && committed !== term)
      fail(`acknowledged ${payload} at ${index}/${term} but ${index}/${committed} is committed`);
    this.acknowledged.set(index, { term, payload });
  }

  onCrash(id: NodeId): void {
    this.down.add(id);
  }

  /** A restarted node rebuilds commit and applied from disk: its cursors start over. */
  onRestart(id: NodeId): void {
    this.down.delete(id);
    const node = this.node(id);
    this.commitChecked.set(id, node.raft.log.committed);
    for (const entry of node.applied) this.checkApplied(id, entry);
    this.lastCommit.set(id, node.raft.log.committed);
    this.lastApplied.set(id, node.appliedIndex);
  }
}
