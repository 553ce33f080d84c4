// The safety checks of the host simulator (./host-simulator.ts), run after every event on the node
// the event ran in (and at the end over the clients' history). Each is a Raft property or a
// client-visible promise:
//   - election safety: at most one leader per term, per group;
//   - log matching: an (index, term) pair written to any disk names one entry, per group;
//   - state machine safety: every replica applies the same entry at each index (normal entries
//     as the model sees them, configuration entries as the core's log holds them once applied),
//     and a model applies indexes in increasing order;
//   - configuration safety: every replica's configuration equals the one the committed log gives
//     at its applied index (every configuration entry up to it, folded from the bootstrap);
//   - cursors: within one life of a node's replica of a group, commit never goes back, and
//     applied <= commit (a replica stopped and started again in the same life starts afresh);
//   - linearizability of the clients' writes, linearizable reads and lease reads with the values
//     read, per key, by the project's checker (jepsen-like/checker/linearizability.ts).
// The checks are incremental, so hundreds of seeds stay fast.

import type { GroupId, LogIndex, NodeId } from '../../src/base/ids.ts';
import { checkLinearizable } from '../../jepsen-like/checker/linearizability.ts';
import type { Operation } from '../../jepsen-like/checker/history.ts';
import { registerModel } from '../../jepsen-like/checker/model.ts';
import { applyConfChange, emptyConfState, members } from '../../src/raft/confchange.ts';
import type { RaftNode } from '../../src/raft/raft.ts';
import type { ConfChange, ConfState, Entry } from '../../src/raft/types.ts';

export class SimulationFailure extends Error {
  override readonly name = 'SimulationFailure';
}

function fail(message: string): never {
  throw new SimulationFailure(message);
}

const latin1 = new TextDecoder('latin1');

export function entryIdentity(entry: Entry): string {
  return entry.kind === 'normal' ? `n:${latin1.decode(entry.data)}` : `c:${JSON.stringify(entry.change)}`;
}

function voterKey(confState: ConfState): string {
  return JSON.stringify([[...confState.voters].sort(), [...confState.votersOutgoing].sort()]);
}

function confKey(confState: ConfState): string {
  return JSON.stringify([
    confState.voters,
    confState.votersOutgoing,
    confState.learners,
    confState.learnersNext,
    confState.autoLeave,
  ]);
}

/** The committed configuration entries of one group, as replicas applied them, and what they fold to. */
class ConfHistory {
  private readonly entries = new Map<number, { identity: string; change: ConfChange }>();
  /** Indexes ascending and the configuration after each; rebuilt when an entry is learned. */
  private folded: { index: number; confState: ConfState }[] | undefined = [];
  /** Bumped when an entry is learned: earlier checks are then looked at again. */
  version = 0;

  record(group: GroupId, node: NodeId, index: number, term: number, change: ConfChange): void {
    const identity = `${term}:${JSON.stringify(change)}`;
    const known = this.entries.get(index);
    if (known === undefined) {
      this.entries.set(index, { identity, change });
      this.folded = undefined;
      this.version++;
    } else if (known.identity !== identity) {
      fail(
        `state machine safety: group ${group} node ${node} applied configuration ${identity} at ${index}, another replica ${known.identity}`,
      );
    }
  }

  /** What the committed changes did: learners added, promotions, removals, re-additions of removed nodes. */
  counts(): { learnersAdded: number; promotions: number; removals: number; readded: number } {
    const counts = { learnersAdded: 0, promotions: 0, removals: 0, readded: 0 };
    const removed = new Set<number>();
    for (const at of [...this.entries.keys()].sort((a, b) => a - b)) {
      if (at === 1) continue; // the bootstrap
      for (const item of (this.entries.get(at) as { change: ConfChange }).change.changes) {
        if (item.type === 'remove_node') {
          counts.removals++;
          removed.add(item.node);
          continue;
        }
        if (item.type === 'add_voter') counts.promotions++;
        else counts.learnersAdded++;
        if (removed.delete(item.node)) counts.readded++;
      }
    }
    return counts;
  }

  /** The last configuration entry some replica applied (its index) and the configuration it gives. */
  latest(): { index: number; confState: ConfState } | undefined {
    const index = Math.max(0, ...this.entries.keys());
    return index === 0 ? undefined : { index, confState: this.at(index) };
  }

  /** Whether a committed configuration left the node out after one that listed it (a removal committed). */
  removedOnce(node: NodeId): boolean {
    this.at(Infinity);
    let listed = false;
    for (const step of this.folded ?? []) {
      const member = members(step.confState).includes(node);
      if (listed && !member) return true;
      listed ||= member;
    }
    return false;
  }

  /** Whether the entry at (index, term) is a configuration entry some replica applied (so committed). */
  committed(index: number, term: number, change: ConfChange): boolean {
    return this.entries.get(index)?.identity === `${term}:${JSON.stringify(change)}`;
  }

  at(index: number): ConfState {
    if (this.folded === undefined) {
      const folded: { index: number; confState: ConfState }[] = [];
      let confState = emptyConfState;
      for (const at of [...this.entries.keys()].sort((a, b) => a - b)) {
        const outcome = applyConfChange(confState, (this.entries.get(at) as { change: ConfChange }).change);
        if (outcome.ok) confState = outcome.confState;
        folded.push({ index: at, confState });
      }
      this.folded = folded;
    }
    let result = emptyConfState;
    for (const step of this.folded) {
      if (step.index > index) break;
      result = step.confState;
    }
    return result;
  }
}

interface LifeCursor {
  commit: number;
  scanned: number;
  /** The configuration object last found right, at `confApplied` (unchanged objects need no new look). */
  confChecked: ConfState | undefined;
  confApplied: number;
  confVersion: number;
}

/** One operation of a simulated client, in the checker's shape (times in virtual ms). */
export interface ClientOperation {
  process: number;
  f: 'read' | 'write';
  key: string;
  input: string | null;
  output: string | null | undefined;
  call: number;
  ret: number;
  status: 'ok' | 'info' | 'fail';
  /** For reports: a read's mode, and the node the operation went to. */
  readonly mode: 'write' | 'linearizable' | 'lease';
  readonly node: NodeId;
}

export class HostChecker {
  private readonly leaderOfTerm = new Map<string, NodeId>();
  private readonly logRecords = new Map<string, string>();
  private readonly appliedAt = new Map<string, string>();
  private readonly conf = new Map<GroupId, ConfHistory>();
  private readonly cursors = new Map<string, LifeCursor>();
  readonly history: ClientOperation[] = [];
  leaderTerms = 0;
  snapshotsRestored = 0;

  /** Entries that reached a node's disk. */
  onEntriesWritten(node: NodeId, group: GroupId, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const key = `${group}/${entry.index}/${entry.term}`;
      const identity = entryIdentity(entry);
      const known = this.logRecords.get(key);
      if (known === undefined) this.logRecords.set(key, identity);
      else if (known !== identity)
        fail(`log matching: group ${group} node ${node} wrote ${key} = ${identity.slice(0, 60)}, elsewhere ${known}`);
    }
  }

  /** A model applied a normal entry (RecordingModel). */
  onApplied(node: NodeId, group: GroupId, index: LogIndex, data: Uint8Array): void {
    const key = `${group}/${index}`;
    const identity = latin1.decode(data);
    const known = this.appliedAt.get(key);
    if (known === undefined) this.appliedAt.set(key, identity);
    else if (known !== identity)
      fail(
        `state machine safety: group ${group} node ${node} applied ${identity} at ${index}, another replica ${known}`,
      );
  }

  /** After an event ran in this node's life (and its continuations ran): check its groups. */
  afterEvent(node: NodeId, incarnation: number, groups: ReadonlyMap<GroupId, { readonly raft: RaftNode }>): void {
    for (const [group, { raft }] of groups) this.checkGroup(node, incarnation, group, raft);
  }

  private checkGroup(node: NodeId, incarnation: number, group: GroupId, raft: RaftNode): void {
    const log = raft.log;
    const lifeKey = `${node}/${incarnation}/${group}`;
    let cursor = this.cursors.get(lifeKey);
    if (cursor === undefined)
      this.cursors.set(
        lifeKey,
        (cursor = { commit: log.committed, scanned: 0, confChecked: undefined, confApplied: -1, confVersion: -1 }),
      );
    if (log.committed < cursor.commit)
      fail(`group ${group} node ${node}: commit went back from ${cursor.commit} to ${log.committed}`);
    cursor.commit = log.committed;
    if (log.applied > log.committed)
      fail(`group ${group} node ${node}: applied ${log.applied} beyond commit ${log.committed}`);
    // status() builds a whole status: only for a leader (its term) or a node that knows none (a campaign?).
    const knownLeader = raft.knownLeader();
    if (knownLeader !== 0 && knownLeader !== node) {
      this.checkConf(node, group, raft, cursor);
      return;
    }
    const status = raft.status();
    if (status.role === 'pre_candidate' || status.role === 'candidate') this.checkCampaign(node, group, raft);
    if (status.role === 'leader') {
      const term = status.term;
      const termKey = `${group}/${term}`;
      const known = this.leaderOfTerm.get(termKey);
      if (known === undefined) {
        this.leaderOfTerm.set(termKey, node);
        this.leaderTerms++;
      } else if (known !== node)
        fail(`election safety: group ${group}: nodes ${known} and ${node} both lead term ${term}`);
    }
    this.checkConf(node, group, raft, cursor);
  }

  /**
   * A (pre-)candidate counts votes under its applied configuration, so that configuration may lag
   * the committed one by at most one change: single-step changes (and entering or leaving a joint
   * configuration) keep the majorities of consecutive configurations overlapping, two steps do
   * not. A node learns a configuration entry's successor only with a commit index at or past the
   * entry (the leader proposes the next change once the previous one is applied), so a node that
   * holds two committed configuration entries past its applied index has lost a commit index
   * it knew (the restarted node of issue 10's bug 1). Only entries that change the voters count:
   * a change of learners leaves the majorities as they were (a node campaigns past unapplied
   * ones, src/raft/raft.ts hasUnappliedVoterChanges).
   */
  private checkCampaign(node: NodeId, group: GroupId, raft: RaftNode): void {
    const history = this.conf.get(group);
    const log = raft.log;
    if (history === undefined || log.lastIndex() <= log.applied) return;
    const entries = log.slice((log.applied + 1) as LogIndex, (log.lastIndex() + 1) as LogIndex, Infinity) ?? [];
    let conf = raft.currentConfState();
    const committed = entries.filter((entry) => {
      if (entry.kind !== 'conf' || !history.committed(entry.index, entry.term, entry.change)) return false;
      const next = applyConfChange(conf, entry.change);
      if (!next.ok) return true;
      const votersChanged = voterKey(conf) !== voterKey(next.confState);
      conf = next.confState;
      return votersChanged;
    });
    if (committed.length >= 2)
      fail(
        `configuration safety: group ${group} node ${node} campaigns under its configuration at applied index ${log.applied}, but its log holds committed configuration entries at ${committed.map((entry) => entry.index).join(', ')}`,
      );
  }

  private checkConf(node: NodeId, group: GroupId, raft: RaftNode, cursor: LifeCursor): void {
    let history = this.conf.get(group);
    if (history === undefined) this.conf.set(group, (history = new ConfHistory()));
    const applied = raft.log.applied;
    // The log now starts past what was applied before: a snapshot from the leader was restored.
    if (cursor.scanned > 0 && raft.log.firstIndex() > cursor.scanned + 1 && applied > cursor.scanned)
      this.snapshotsRestored++;
    const from = Math.max(cursor.scanned + 1, raft.log.firstIndex());
    if (from <= applied) {
      const entries = raft.log.slice(from as LogIndex, (applied + 1) as LogIndex, Infinity) ?? [];
      for (const entry of entries)
        if (entry.kind === 'conf') history.record(group, node, entry.index, entry.term, entry.change);
    }
    cursor.scanned = Math.max(cursor.scanned, applied);
    const actual = raft.currentConfState();
    if (actual === cursor.confChecked && applied === cursor.confApplied && history.version === cursor.confVersion)
      return;
    const expected = history.at(applied);
    cursor.confChecked = actual;
    cursor.confApplied = applied;
    cursor.confVersion = history.version;
    if (expected !== actual && confKey(expected) !== confKey(actual))
      fail(
        `configuration safety: group ${group} node ${node} at applied index ${applied} has ${confKey(actual)}, the committed log gives ${confKey(expected)}`,
      );
  }

  /** The group's last committed configuration entry (as replicas applied it) and what the log gives there. */
  latestConf(group: GroupId): { index: number; confState: ConfState } | undefined {
    return this.conf.get(group)?.latest();
  }

  /** Whether the group's committed log ever removed the node (see ConfHistory.removedOnce). */
  removedOnce(group: GroupId, node: NodeId): boolean {
    return this.conf.get(group)?.removedOnce(node) ?? false;
  }

  /** The node stopped hosting the group (its data deleted): a later replica there starts afresh. */
  groupStopped(node: NodeId, incarnation: number, group: GroupId): void {
    this.cursors.delete(`${node}/${incarnation}/${group}`);
  }

  /** Committed membership changes over all groups, by kind. */
  membershipCounts(): { learnersAdded: number; promotions: number; removals: number; readded: number } {
    const total = { learnersAdded: 0, promotions: 0, removals: 0, readded: 0 };
    for (const history of this.conf.values()) {
      const counts = history.counts();
      total.learnersAdded += counts.learnersAdded;
      total.promotions += counts.promotions;
      total.removals += counts.removals;
      total.readded += counts.readded;
    }
    return total;
  }

  /** Checks the clients' history per key; returns a description of the first violation, if any. */
  checkHistory(stepsMax: number): { verdict: 'valid' | 'invalid' | 'unknown'; message?: string } {
    const operations: Operation[] = [];
    this.history.forEach((op, index) => {
      if (op.status === 'fail') return;
      operations.push({
        index,
        process: op.process,
        f: op.f,
        key: op.key,
        input: op.input,
        output: op.output,
        call: op.call,
        ret: op.status === 'ok' ? op.ret : Infinity,
        completionTime: op.status === 'ok' ? op.ret : Infinity,
        status: op.status,
      });
    });
    const result = checkLinearizable(operations, registerModel, { stepsMax });
    if (result.verdict !== 'invalid') return { verdict: result.verdict };
    const bad = result.partitions.find((partition) => partition.verdict === 'invalid');
    const failure = bad?.failure;
    const blocked = failure === undefined ? undefined : this.history[failure.blockedOp.index];
    const detail =
      failure === undefined || blocked === undefined
        ? ''
        : `: ${blocked.mode} ${registerModel.describeOperation(failure.blockedOp)} on node ${blocked.node}, [${blocked.call.toFixed(3)}, ${blocked.ret.toFixed(3)}] ms, cannot follow any linearization of the earlier operations (they leave ${failure.stateAtBlock})`;
    return { verdict: 'invalid', message: `linearizability: key ${bad?.key ?? '?'}${detail}` };
  }
}
