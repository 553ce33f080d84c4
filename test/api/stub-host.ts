// A one-node stand-in for the multi-Raft host, for API tests that need a given outcome rather
// than a cluster: node 1 leads kv groups 1-4 alone (voters [1]); a proposal is applied at once to
// a real KvModel of its group, unless `script.propose` says otherwise; reads are ready unless
// `script.read` says otherwise; a membership change stays unknown (indeterminate), so a request
// to add a node waits until its deadline. Given a meta model, it also leads group 0 alone and
// applies meta commands to it (no controller runs: a scheduled action stays NEW until cancelled).
// Counts what reached the host, so a test can check that a refused request proposed nothing.

import { crc32 } from 'node:zlib';
import { ModelStack } from '../../src/models/model-stack.ts';
import { emptyConfState } from '../../src/raft/confchange.ts';
import type { ApiHost } from '../../src/api/ports.ts';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { KvModel } from '../../src/models/kv.ts';
import { metaGroupId, type MetaModel } from '../../src/models/meta.ts';
import type { HostedGroupStatus, LeaderChange, ProposalOutcome, ReadOutcome } from '../../src/multiraft/host.ts';
import type { LogIndex, Term } from '../../src/base/ids.ts';

export const stubNodeId: NodeId = asNodeId(1);
export const stubGroups: readonly GroupId[] = [1, 2, 3, 4].map(asGroupId);

export interface StubScript {
  propose?: () => ProposalOutcome;
  read?: () => ReadOutcome | Promise<ReadOutcome>;
  /** status() throws (a bug in the host, as the API sees it). */
  statusFails?: boolean;
  /** What status() reports as every group's last leader change (none by default). */
  lastLeaderChange?: LeaderChange;
  /** backupSnapshot() yields the envelope's head and stops (a capture cut short by a restore). */
  backupCutShort?: boolean;
}

export interface StubHost {
  readonly host: ApiHost;
  readonly script: StubScript;
  readonly calls: { proposals: number; reads: number; confChanges: number };
}

export function stubHost(meta?: MetaModel): StubHost {
  const script: StubScript = {};
  const calls = { proposals: 0, reads: 0, confChanges: 0 };
  const models = new Map<GroupId, KvModel | MetaModel>(stubGroups.map((group) => [group, new KvModel()]));
  if (meta !== undefined) models.set(metaGroupId, meta);
  let index = 1;
  const status = (group: GroupId): HostedGroupStatus => ({
    group,
    appliedIndex: index as LogIndex,
    appliedTerm: 1,
    confIndex: 1,
    lastLeaderChange: script.lastLeaderChange,
    failoversWon: 0,
    status: {
      id: stubNodeId,
      role: 'leader',
      term: 1 as Term,
      vote: stubNodeId,
      leader: stubNodeId,
      commit: index as LogIndex,
      applied: index as LogIndex,
      lastIndex: index as LogIndex,
      firstIndex: 1 as LogIndex,
      confState: { voters: [stubNodeId], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false },
      transferTarget: 0 as NodeId,
      leaseValid: true,
      quiesced: false,
      progress: [],
    },
  });
  const host: ApiHost = {
    propose: (group, data) => {
      calls.proposals++;
      if (script.propose !== undefined) return Promise.resolve(script.propose());
      const model = models.get(group);
      if (model === undefined) return Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } });
      index++;
      return Promise.resolve({
        kind: 'applied',
        index: index as LogIndex,
        result: model.applyEntry(index as LogIndex, data),
      });
    },
    read: () => {
      calls.reads++;
      return Promise.resolve(script.read?.() ?? { kind: 'ready' as const, index: index as LogIndex });
    },
    transferLeadership: (group, to) =>
      models.has(group) ? { kind: 'started', target: to } : { kind: 'unknown_group' },
    compactNow: (group) =>
      models.has(group) ? { kind: 'started', index: index as LogIndex } : { kind: 'unknown_group' },
    proposeConfChange: () => {
      calls.confChanges++;
      return Promise.resolve({ kind: 'indeterminate' });
    },
    status: () => {
      if (script.statusFails === true) throw new Error('host status failed');
      return stubGroups.map(status);
    },
    groupStatus: (group) => (models.has(group) ? status(group) : undefined),
    groupLeader: (group) => (models.has(group) ? stubNodeId : undefined),
    model: (group) => models.get(group),
    backupSnapshot: (group) => {
      const model = models.get(group);
      if (model === undefined) return undefined;
      const frame = { group, index: index as LogIndex, term: 1 as Term, confState: emptyConfState };
      const slices = new ModelStack(model, (bytes, previous) => crc32(bytes, previous)).capture([frame]);
      if (script.backupCutShort !== true) return slices;
      const head = slices.next();
      return [head.done === true ? new Uint8Array(0) : head.value][Symbol.iterator]();
    },
  };
  return { host, script, calls };
}
