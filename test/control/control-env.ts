// The environment the control planners' golden transcripts run in: one meta model, a wall clock
// moved by hand, and fake effects, driven by datadriven commands (test/raft/datadriven.ts):
//
//   schedule n=<k> kind=<kind> at=<ms> [timeout=<ms>] [node=<id>]   (input: args as JSON, optional)
//   step now=<ms> [count=<k>]   plan one step, carry it out (test kinds, fake effects), apply it
//   plan now=<ms>               print the planned step only
//   update n=<k> phase=<phase> at=<ms>   another leader's state change (at the record's version)
//   cancel n=<k> at=<ms>
//   leader group=<g> node=<id>  the group's leader as the meta leader sees it (0: none)
//   effect <name>=ok|retry|final [to=<id>]   how the next fake effect answers
//   queue                       the queue and the finished records
//   membership self=<id> voters=(..) learners=(..) commit=<i> match=(id:i,..) kv=(..)|unknown
//   voters nodes=(..)           the nodes that are voters of every kv group, as the meta leader sees it
//   node url=<url> id=<id> status=<s> cluster=<c>   what the node at url says of itself (no entry: no answer)
//   register id=<id> status=<s> [member=<url>]      a registry record, applied to the model
//   bootstrap [init] [join=<url>] [groups] [joinrecord] [held=create|<url>]   the start planner's step
//   bootstrap-action kind=init|join [via=<url>] [busy]                       a waiting node's answer
//   groups [record=complete|<via>] [join=<url>] [holds]   which groups a starting node hosts
//   join-check self=<id> cluster=<c> raft=<addr> view-cluster=<c> members=(id:raft,..)   may it join
//   conf self=<id> group=<g> members=(..)   a member applies a group's configuration: the removal
//                                            planner's events, and whether this node is out of every group
//
// The env's cluster id is "c1"; its own URL is http://m1; new action ids are uuids from 100 on.
// Action ids are uuids built from n (n=1 -> 00000000-0000-4000-8000-000000000001).

import type { GroupId, NodeId } from '../../src/base/ids.ts';
import type { ActionRecord, ActionState, JsonValue, NodeRecord } from '../../src/codec/meta.ts';
import {
  runActionStep,
  type EffectResult,
  type NodeDescription,
  type StepContext,
} from '../../src/control/action-steps.ts';
import { joinProblem, planBootstrap, planBootstrapAction, planGroups } from '../../src/control/bootstrap.ts';
import { planNextStep, type ExecutorStep } from '../../src/control/executor.ts';
import { planRemovals, removedEverywhere } from '../../src/control/removal-planner.ts';
import { planMetaMembership } from '../../src/control/meta-membership.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { argOf, idsOf, numOf, type CmdArg, type TestBlock } from '../raft/datadriven.ts';

export const uuidOf = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const nOf = (id: string): number => parseInt(id.slice(-12), 16);

const arg = argOf;
const num = numOf;
const ids = (args: readonly CmdArg[], key: string): NodeId[] => idsOf<NodeId>(args, key);

export class ControlEnv {
  readonly model = new MetaModel();
  private nowMs = 0;
  private readonly leaders = new Map<number, number>();
  private readonly effectAnswers = new Map<string, EffectResult>();
  private readonly calls: string[] = [];
  private votersEverywhere = new Set<number>();
  private readonly described = new Map<string, NodeDescription>();
  private nextId = 100;
  private readonly applied = new Map<GroupId, ReadonlySet<NodeId>>();

  constructor() {
    this.model.apply({ type: 'cluster.set', clusterId: 'c1' });
  }

  async handle(block: TestBlock): Promise<string> {
    const a = block.args;
    switch (block.cmd) {
      case 'schedule': {
        const args = block.input.trim() === '' ? null : (JSON.parse(block.input) as JsonValue);
        const n = num(a, 'n');
        const outcome = this.model.apply({
          type: 'action.schedule',
          action: {
            id: uuidOf(n),
            kind: arg(a, 'kind') ?? '',
            args,
            metadata: {},
            createdMs: num(a, 'at'),
            node: num(a, 'node', 1) as NodeId,
            timeoutMs: num(a, 'timeout', 60_000),
          },
          atMs: num(a, 'at'),
        });
        return JSON.stringify(outcome);
      }
      case 'plan':
        this.nowMs = num(a, 'now');
        return describeStep(planNextStep({ queue: this.model.queue(), nowMs: this.nowMs }));
      case 'step': {
        this.nowMs = num(a, 'now');
        const lines: string[] = [];
        for (let k = 0; k < num(a, 'count', 1); k++) lines.push(await this.step());
        return lines.join('\n');
      }
      case 'update': {
        const record = this.record(num(a, 'n'));
        const phase = arg(a, 'phase') as ActionRecord['state']['phase'];
        const state = { phase, payload: record.state.payload, error: null };
        const atMs = num(a, 'at');
        return JSON.stringify(
          this.model.apply({ type: 'action.update', id: record.id, version: record.version, state, atMs }),
        );
      }
      case 'cancel':
        return JSON.stringify(
          this.model.apply({ type: 'action.cancel', id: uuidOf(num(a, 'n')), reason: 'operator', atMs: num(a, 'at') }),
        );
      case 'leader':
        this.leaders.set(num(a, 'group'), num(a, 'node'));
        return 'ok';
      case 'effect': {
        for (const { key, vals } of a) {
          if (key === 'to' || key === 'index' || key === 'node') continue;
          const answer = vals[0] ?? 'ok';
          // A compaction answers the node's state and index; the others the target chosen, if any.
          const detail =
            key === 'compact'
              ? {
                  node: arg(a, 'node') === undefined ? null : num(a, 'node'),
                  state: 'started',
                  index: arg(a, 'index') === undefined ? null : num(a, 'index'),
                }
              : arg(a, 'to') === undefined
                ? null
                : num(a, 'to');
          this.effectAnswers.set(
            key,
            answer === 'ok'
              ? { ok: true, detail }
              : { ok: false, final: answer === 'final', message: `${key} said ${answer}` },
          );
        }
        return 'ok';
      }
      case 'queue':
        return this.describeQueue();
      case 'bootstrap': {
        const has = (key: string): boolean => a.some((x) => x.key === key);
        const held = arg(a, 'held');
        return JSON.stringify(
          planBootstrap({
            init: has('init'),
            join: arg(a, 'join'),
            holdsGroups: has('groups'),
            joinRecorded: has('joinrecord'),
            held: held === undefined ? undefined : held === 'create' ? { kind: 'create' } : { kind: 'join', via: held },
          }),
        );
      }
      case 'bootstrap-action':
        return JSON.stringify(
          planBootstrapAction(
            arg(a, 'kind') === 'init' ? 'init' : 'join',
            arg(a, 'via'),
            a.some((x) => x.key === 'busy'),
          ),
        );
      case 'groups': {
        const record = arg(a, 'record');
        return JSON.stringify(
          planGroups({
            record:
              record === undefined
                ? undefined
                : record === 'complete'
                  ? { via: 'http://m1', complete: true }
                  : { via: record, complete: false },
            join: arg(a, 'join'),
            holdsGroups: a.some((x) => x.key === 'holds'),
          }),
        );
      }
      case 'join-check':
        return JSON.stringify(
          joinProblem(
            { nodeId: num(a, 'self'), clusterId: arg(a, 'cluster') ?? '', raft: arg(a, 'raft') ?? '' },
            {
              clusterId: arg(a, 'view-cluster') ?? '',
              members: (a.find((x) => x.key === 'members')?.vals ?? []).map((v) => {
                const [id = '0', ...raft] = v.split(':');
                return { nodeId: Number(id), raft: raft.join(':') };
              }),
            },
            'http://m1',
          ) ?? 'ok',
        );
      case 'conf': {
        const self = num(a, 'self') as NodeId;
        const group = num(a, 'group') as GroupId;
        const before = this.applied.get(group) ?? new Set<NodeId>();
        this.applied.set(group, new Set(ids(a, 'members')));
        const events = planRemovals(self, this.applied, group, before);
        return `${JSON.stringify(events)} removed=${removedEverywhere(self, this.applied)}`;
      }
      case 'voters':
        this.votersEverywhere = new Set(ids(a, 'nodes'));
        return 'ok';
      case 'node':
        this.described.set(arg(a, 'url') ?? '', {
          nodeId: num(a, 'id') as NodeId,
          status: arg(a, 'status') ?? 'NOT_IN_CLUSTER',
          clusterId: arg(a, 'cluster') ?? 'c1',
        });
        return 'ok';
      case 'register': {
        const member = arg(a, 'member') ?? null;
        return JSON.stringify(
          this.model.apply({
            type: 'node.upsert',
            node: {
              id: num(a, 'id') as NodeId,
              address: { member, client: member, raft: null },
              agentVersion: '0.1.0',
              storeVersion: '0.1.0',
              attributes: {},
              status: (arg(a, 'status') ?? 'ACTIVE') as NodeRecord['status'],
            },
          }),
        );
      }
      case 'membership':
        return JSON.stringify(
          planMetaMembership({
            self: num(a, 'self') as NodeId,
            voters: ids(a, 'voters'),
            learners: ids(a, 'learners'),
            commit: num(a, 'commit', 0),
            match: new Map(
              (a.find((x) => x.key === 'match')?.vals ?? []).map((v) => {
                const [id, index] = v.split(':').map(Number);
                return [(id ?? 0) as NodeId, index ?? 0];
              }),
            ),
            changePending: arg(a, 'pending') === 'true',
            kvMembers: arg(a, 'kv') === 'unknown' ? undefined : new Set(ids(a, 'kv')),
            registered: ids(a, 'registered'),
          }),
        );
      default:
        throw new Error(`${block.pos}: unknown command ${block.cmd}`);
    }
  }

  private record(n: number): ActionRecord {
    const record = this.model.action(uuidOf(n));
    if (record === undefined) throw new Error(`no action ${n}`);
    return record;
  }

  /** Plans a step, carries it out (the fake effects answer at once) and applies its state change. */
  private async step(): Promise<string> {
    const step = planNextStep({ queue: this.model.queue(), nowMs: this.nowMs });
    const head = describeStep(step);
    if (step.kind === 'idle') return head;
    let state: ActionState | undefined =
      step.kind === 'start' ? { phase: 'RUNNING', payload: null, error: null } : undefined;
    if (step.kind === 'fail') state = step.state;
    if (step.kind === 'run') {
      const result = await runActionStep(step.action, this.context());
      if (result === undefined) return `${head} -> no change${this.takeCalls()}`;
      state = result;
    }
    if (state === undefined) return head;
    const outcome = this.model.apply({
      type: 'action.update',
      id: step.action.id,
      version: step.action.version,
      state,
      atMs: this.nowMs,
    });
    return `${head} -> ${state.phase} payload=${JSON.stringify(state.payload)} error=${JSON.stringify(state.error)} ${JSON.stringify(outcome)}${this.takeCalls()}`;
  }

  private takeCalls(): string {
    const calls = this.calls.splice(0);
    return calls.length === 0 ? '' : ` calls=[${calls.join(', ')}]`;
  }

  private answer(name: string): EffectResult {
    return this.effectAnswers.get(name) ?? { ok: true, detail: null };
  }

  private context(): StepContext {
    return {
      nowMs: () => this.nowMs,
      groupLeader: (group: GroupId) => {
        const leader = this.leaders.get(group);
        return leader === undefined ? undefined : (leader as NodeId);
      },
      transferLeadership: (group, to) => {
        this.calls.push(`transfer(${group}, ${to ?? '-'})`);
        return Promise.resolve(this.answer('transfer'));
      },
      compactGroup: (group, node) => {
        this.calls.push(`compact(${group}, ${node})`);
        return Promise.resolve(this.answer('compact'));
      },
      removeFromKvGroups: (node) => {
        this.calls.push(`kv-remove(${node})`);
        return Promise.resolve(this.answer('kv-remove'));
      },
      removeFromMetaGroup: (node) => {
        this.calls.push(`meta-remove(${node})`);
        return Promise.resolve(this.answer('meta-remove'));
      },
      forgetNode: (node) => {
        this.calls.push(`forget(${node})`);
        const answer = this.answer('forget');
        if (answer.ok) this.model.apply({ type: 'node.remove', node });
        return Promise.resolve(answer);
      },
      clusterId: () => this.model.clusterId,
      selfUrl: 'http://m1',
      hasJoined: (node) => this.votersEverywhere.has(node),
      registered: (node) => this.model.node(node),
      actionRecords: () => [...this.model.queue(), ...this.model.finishedActions()],
      registeredCount: () => this.model.nodes().length,
      recordNode: (node) => {
        this.calls.push(`record(${node.id} ${node.status})`);
        const answer = this.answer('record');
        if (answer.ok) this.model.apply({ type: 'node.upsert', node });
        return Promise.resolve(answer);
      },
      setReplication: (kind, factor) => {
        this.calls.push(`replication(${kind} ${factor})`);
        const answer = this.answer('replication');
        if (answer.ok) this.model.apply({ type: 'replication.set', kind, factor });
        return Promise.resolve(answer);
      },
      describeNode: (url) => {
        this.calls.push(`describe(${url})`);
        return Promise.resolve(this.described.get(url) ?? `no answer from ${url}`);
      },
      askToJoin: (url, id, via) => {
        this.calls.push(`ask-join(${url} ${nOf(id)} via ${via})`);
        return Promise.resolve(this.answer('ask-join'));
      },
      newActionId: () => uuidOf(this.nextId++),
    };
  }

  private describeQueue(): string {
    const line = (record: ActionRecord): string =>
      `${nOf(record.id)} ${record.kind} ${record.state.phase} v${record.version} scheduled=${record.scheduledMs} started=${record.startedMs ?? '-'} finished=${record.finishedMs ?? '-'} payload=${JSON.stringify(record.state.payload)} error=${JSON.stringify(record.state.error)}`;
    return [
      'queue:',
      ...this.model.queue().map((r) => `  ${line(r)}`),
      'finished:',
      ...this.model.finishedActions().map((r) => `  ${line(r)}`),
    ].join('\n');
  }
}

function describeStep(step: ExecutorStep): string {
  switch (step.kind) {
    case 'idle':
      return 'idle';
    case 'start':
    case 'run':
      return `${step.kind} ${nOf(step.action.id)} v${step.action.version}`;
    case 'fail':
      return `fail ${nOf(step.action.id)} v${step.action.version}: ${JSON.stringify(step.state.error)}`;
  }
}
