// Starts and stops this node's kv and database shard groups as the meta model places them (the
// decisions are src/control/group-hosting.ts, pure). Runs every `hostingPollMs`, and at once when a peer sends a
// message for a group not hosted here (the group's leader adding this node as a learner).
//  - a start hosts the group with empty storage (a fresh KvModel, or ShardModel for a shard group);
//    its leader catches it up by log or snapshot. A brand-new shard group is first bootstrapped
//    (its first entry, the record's replicas as voters, written and synced) so it elects a leader;
//  - a stop is checked again after a linearizable read of the meta group (this node's meta replica
//    has then applied everything committed before the read: a record seen while replaying an old
//    log cannot stop a group the node is back in), and once more when the host drops the group
//    (after its running turn, which may have applied a move placing the group here again); then
//    the host deletes its storage.
// One pass at a time; a failed pass is logged and tried again on the next poll. The hosted set
// is what the storage holds, so a restart hosts the same groups.
//
// Called by: src/node/node.ts; test/sim/host-simulator.ts (on its simulated clock, with recording models).

import type { GroupId, NodeId } from '../base/ids.ts';
import { planHosting, type HostingPlan } from '../control/group-hosting.ts';
import type { MetaModel } from '../models/meta.ts';
import { metaGroupId } from '../models/meta.ts';
import type { MultiRaftHost } from '../multiraft/host.ts';
import type { HostClock, ReplicatedModel, TimerHandle } from '../multiraft/ports.ts';
import { systemClock } from '../multiraft/system-clock.ts';
import { KvModel } from '../models/kv.ts';
import { isDbGroup } from '../models/meta.ts';
import { ShardModel } from '../models/shard.ts';

export const hostingPollMs = 500;

export interface GroupHostingOptions {
  readonly self: NodeId;
  readonly host: MultiRaftHost;
  readonly model: MetaModel;
  readonly log: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
  /** Writes a brand-new group's first entry (its voters) to storage before it is hosted. */
  readonly bootstrap: (group: GroupId, voters: readonly NodeId[]) => Promise<void>;
  /** Told after a group started or stopped here. */
  readonly onChange?: (group: GroupId, hosted: boolean) => void;
  /** The timers of the poll (default: the system's; the simulator passes its virtual clock). */
  readonly clock?: HostClock;
  readonly pollMs?: number;
  /** The model of a group started here (default: modelFor). */
  readonly createModel?: (group: GroupId) => ReplicatedModel;
}

/** A fresh model for a group this node starts hosting: a shard's for a database shard group, else kv. */
export function modelFor(group: GroupId): KvModel | ShardModel {
  return isDbGroup(group) ? new ShardModel() : new KvModel();
}

export class GroupHosting {
  private readonly options: GroupHostingOptions;
  private readonly clock: HostClock;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(options: GroupHostingOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
  }

  start(): void {
    this.timer = this.clock.setRepeating(() => {
      this.poke();
    }, this.options.pollMs ?? hostingPollMs);
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** Whether stop() was called (read again after an await). */
  private halted(): boolean {
    return this.stopped;
  }

  /** Runs a pass now (or right after the running one). */
  poke(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((error: unknown) => {
        this.options.log('warn', 'group hosting pass failed', { err: error });
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  private plan(): HostingPlan {
    const { host, model, self } = this.options;
    const kv = host.status().filter(({ group }) => group !== metaGroupId);
    return planHosting({
      self,
      hosted: kv.map(({ group }) => group),
      configured: kv.filter(({ status }) => status.confState.voters.length > 0).map(({ group }) => group),
      confIndex: new Map(kv.map(({ group, confIndex }) => [group, confIndex])),
      recorded: model
        .groups()
        .flatMap((group) =>
          group.kind === 'meta'
            ? []
            : [{ id: group.id, kind: group.kind, replicas: group.replicas, confIndex: model.groupConfIndex(group.id) }],
        ),
      hostedShards: kv.map(({ group }) => group).filter(isDbGroup),
      moves: model.moves(),
      placed: model.replicationFactor('kv') !== undefined,
      removedHere: kv
        .filter(({ status }) => {
          const conf = status.confState;
          const members = [...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext];
          return conf.voters.length > 0 && !members.includes(self);
        })
        .map(({ group }) => group),
    });
  }

  private async pass(): Promise<void> {
    const { host, log } = this.options;
    const first = this.plan();
    for (const group of first.start) {
      if (this.stopped) return;
      if (host.hosts(group)) continue;
      const voters = first.bootstrap.get(group);
      if (voters !== undefined) await this.options.bootstrap(group, voters);
      if (this.halted() || host.hosts(group)) return;
      host.addGroup(group, (this.options.createModel ?? modelFor)(group));
      if (voters === undefined) log('info', 'hosting a new replica: its leader catches it up', { group });
      else log('info', 'hosting a new shard group, bootstrapped with its replicas as voters', { group, voters });
      this.options.onChange?.(group, true);
    }
    if (first.stop.length === 0) return;
    const read = await host.read(metaGroupId, 'linearizable');
    if (read.kind !== 'ready' || this.stopped) return;
    const confirmed = this.plan().stop.filter((group) => first.stop.includes(group));
    for (const group of confirmed) {
      // Checked again when the host drops it: meanwhile (the host's running turn, the deletions
      // before this one) the meta model may have applied a move placing the group here again.
      await host.removeGroup(group, () => this.plan().stop.includes(group));
      if (host.hosts(group)) continue;
      log('info', 'removed from the group: replica stopped and its data deleted', { group });
      this.options.onChange?.(group, false);
    }
  }
}
