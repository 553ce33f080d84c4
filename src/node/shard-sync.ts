// Runs the shard sync planner (src/control/shard-sync.ts) on this node every `shardSyncPollMs`:
// for each database shard group hosted here, records the catalog's versions of the shard in the
// group (as its leader) and this node's load states (as any member; a follower's proposal is
// forwarded to the group's leader inside Raft, matched by its request id). Nothing runs before
// this node's meta model is current. One pass at a time; at most `proposalsPerPassMax`
// proposals per pass, the rest on the next; a proposal that fails is planned again next pass.
//
// Called by: src/node/node.ts.

import { randomUUID } from 'node:crypto';
import type { GroupId, NodeId } from '../base/ids.ts';
import { encodeShardCommand, type ShardCommand } from '../codec/shard.ts';
import type { ShardGroupReport } from '../control/shard-roles.ts';
import { planShardSync, type HostedShardGroup } from '../control/shard-sync.ts';
import { isDbGroup, type MetaModel } from '../models/meta.ts';
import { ShardModel } from '../models/shard.ts';
import type { ProposalOutcome } from '../multiraft/host.ts';
import type { Model } from '../models/model.ts';
import type { Status } from '../raft/types.ts';

export const shardSyncPollMs = 500;
export const proposalsPerPassMax = 64;

/** The part of the multi-Raft host the loop uses (MultiRaftHost satisfies it). */
export interface ShardSyncHost {
  status(): { group: GroupId; status: Status; appliedIndex: number; appliedTerm?: number }[];
  model(group: GroupId): Model | undefined;
  propose(group: GroupId, data: Uint8Array, key?: string): Promise<ProposalOutcome>;
}

export interface ShardSyncOptions {
  readonly self: NodeId;
  readonly host: ShardSyncHost;
  readonly meta: MetaModel;
  /** Whether the meta model here has applied what group 0 has committed. */
  readonly catalogCurrent: () => boolean;
  readonly log: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
}

/** The shard groups hosted here, with their models and whether this node leads each (current). */
export function hostedShardGroups(host: ShardSyncHost, meta: MetaModel): HostedShardGroup[] {
  const found: HostedShardGroup[] = [];
  for (const { group, status, appliedTerm } of host.status()) {
    if (!isDbGroup(group)) continue;
    const model = host.model(group);
    const shard = meta.group(group)?.shard;
    if (!(model instanceof ShardModel) || shard === undefined) continue;
    const leading = status.role === 'leader' && appliedTerm === status.term;
    const { voters, learners, votersOutgoing, learnersNext } = status.confState;
    const members = [...new Set([...voters, ...learners, ...votersOutgoing, ...learnersNext])];
    found.push({ group, database: shard.database, shard: shard.shard, leading, members, model });
  }
  return found;
}

/** This node's replicas of a database's shard groups, as GET /v1/databases/:name/progress reports them. */
export function shardGroupReports(host: ShardSyncHost, meta: MetaModel, name: string): ShardGroupReport[] {
  const groups = meta.shardGroups(name);
  const byId = new Map([...groups].map(([shard, record]) => [record.id, shard]));
  return host.status().flatMap(({ group, status, appliedIndex }) => {
    const shard = byId.get(group);
    if (shard === undefined) return [];
    const { role, leader, term, commit } = status;
    const model = host.model(group);
    const held = model instanceof ShardModel ? model : new ShardModel();
    const versions = held.versions().map((version) => version.version);
    const recorded = held.replicas().map(({ version, node, state }) => ({ version, node, state }));
    return [{ group, shard, role, leader, term, commit, applied: appliedIndex, versions, recorded }];
  });
}

export class ShardSync {
  private readonly options: ShardSyncOptions;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(options: ShardSyncOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.running !== undefined || this.stopped) return;
      this.running = this.pass()
        .catch((error: unknown) => {
          this.options.log('warn', 'shard sync pass failed', { err: error });
        })
        .finally(() => {
          this.running = undefined;
        });
    }, shardSyncPollMs);
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  private async pass(): Promise<void> {
    const { host, meta, self } = this.options;
    if (!this.options.catalogCurrent()) return;
    const steps = planShardSync({ self, catalog: meta.databases, groups: hostedShardGroups(host, meta) });
    for (const { group, command } of steps.slice(0, proposalsPerPassMax)) {
      if (this.stopped) return;
      const request = randomUUID();
      const full = { ...command, request } as ShardCommand;
      const outcome = await host.propose(group, encodeShardCommand(full), request);
      if (outcome.kind !== 'applied')
        this.options.log('info', 'shard group proposal not applied; next pass tries again', {
          group,
          type: command.type,
          outcome: outcome.kind,
        });
    }
  }
}
