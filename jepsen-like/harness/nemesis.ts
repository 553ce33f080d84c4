// Carries out a Schedule against a running database: resolves each fault's targets, applies it,
// waits, heals it, and records every step in the nemesis log on the history's clock. healAll() is
// the final heal (and the one finally blocks call): flush the partition rules, clear the proxy's
// faults, SIGCONT every paused node, restart every node that is down. A failure to apply or heal a
// fault (iptables refusing a rule, say) is a harness failure: it propagates and ends the run with
// exit code 2; an API refusal of a leadership transfer is an ordinary outcome and is only logged.
// The snapshot and membership nemeses live in their own files (snapshot-nemesis.ts,
// membership-nemesis.ts); they record a `check` entry per fault saying whether it had its effect
// (nemesis-checks.ts turns those into the `nemesis` checker).

import type { Database } from './db.ts';
import { bridgeGrudge, completeGrudge, majoritiesRingGrudge, type Drop, type Firewall } from './firewall.ts';
import type { NemesisLog } from './history-recorder.ts';
import { Membership } from './membership-nemesis.ts';
import type { PeerProxy } from './peer-proxy.ts';
import { describeFault, type FaultSpec, type PlannedFault, type Schedule, type TransferMove } from './schedule.ts';
import { applySnapshotFault, faultWaitsDefault, type FaultContext, type FaultWaits } from './snapshot-nemesis.ts';

/** dram's default log tail behind a snapshot (--snapshot-tail-entries). */
const snapshotTailEntriesDefault = 5000;

export interface NemesisContext {
  readonly db: Database;
  readonly firewall: Pick<Firewall, 'apply' | 'heal'> | undefined;
  readonly proxy: PeerProxy | undefined;
  readonly log: NemesisLog;
  /** The history clock, ns. */
  readonly now: () => number;
  readonly signal: AbortSignal;
  /** The log tail the nodes keep behind a snapshot (the snapshot catch-up fault writes past it). */
  readonly snapshotTailEntries?: number;
  /** Bounds of the snapshot faults' waits (default faultWaitsDefault; tests shorten them). */
  readonly faultWaits?: FaultWaits;
}

/** Sleeps until the wall-clock time `atMs`, or until aborted. */
function sleepUntil(atMs: number, signal: AbortSignal): Promise<void> {
  const waitMs = atMs - Date.now();
  if (waitMs <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, waitMs);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Undoes one fault. */
type Heal = () => Promise<void>;

/** The fault's name in the nemesis log: its kind and its shape, mode or target. */
function faultKind(spec: FaultSpec): string {
  return spec.kind === 'proxy'
    ? `proxy-${spec.mode}`
    : spec.kind === 'partition'
      ? `partition-${spec.shape}`
      : spec.kind === 'transfer'
        ? 'transfer'
        : spec.kind === 'snapshot' || spec.kind === 'membership'
          ? `${spec.kind}-${spec.mode}`
          : `${spec.kind}-${spec.target}`;
}

export class Nemesis {
  private readonly context: NemesisContext;
  /** The membership nemesis's view of who is in the cluster (dram only). */
  private readonly membership: Membership | undefined;

  constructor(context: NemesisContext) {
    this.context = context;
    this.membership = context.db.admin === undefined ? undefined : new Membership(context.db);
  }

  private record(
    type: 'start' | 'stop' | 'heal' | 'skip' | 'error' | 'event' | 'check',
    kind: string,
    detail: string,
    fault?: number,
    verdict?: 'valid' | 'invalid' | 'unknown',
  ): void {
    this.context.log.record({
      time: this.context.now(),
      type,
      ...(fault === undefined ? {} : { fault }),
      kind,
      detail,
      ...(verdict === undefined ? {} : { verdict }),
    });
  }

  /** Records a check with no fault (the membership run's final one). */
  recordCheck(kind: string, verdict: 'valid' | 'invalid' | 'unknown', detail: string): void {
    this.record('check', kind, detail, undefined, verdict);
  }

  /** What a snapshot or membership fault may do and record. */
  private faultContext(kind: string, index: number): FaultContext {
    const { db, firewall, signal } = this.context;
    const admin = db.admin;
    if (admin === undefined)
      throw new Error(`internal: a ${kind} fault against ${db.name}, which has no admin surface`);
    return {
      db,
      admin,
      firewall,
      signal,
      snapshotTailEntries: this.context.snapshotTailEntries ?? snapshotTailEntriesDefault,
      waits: this.context.faultWaits ?? faultWaitsDefault,
      start: (detail) => {
        this.record('start', kind, detail, index);
      },
      event: (detail) => {
        this.record('event', kind, detail, index);
      },
      check: (verdict, detail) => {
        this.record('check', kind, detail, index, verdict);
      },
    };
  }

  /** Runs the schedule; phaseStartMs is the wall-clock start of the main phase. */
  async run(schedule: Schedule, phaseStartMs: number): Promise<void> {
    for (const skipped of schedule.skipped) this.record('skip', skipped.kind, skipped.reason);
    for (const fault of schedule.faults) {
      await sleepUntil(phaseStartMs + fault.startMs, this.context.signal);
      if (this.context.signal.aborted) return;
      const heal = await this.apply(fault, phaseStartMs);
      await sleepUntil(phaseStartMs + fault.endMs, this.context.signal);
      await heal();
    }
  }

  private async leaderOr(group: number, fallback: number): Promise<number> {
    return (await this.context.db.leaderOf(group)) ?? fallback;
  }

  /** Applies one fault and answers the function that heals it. */
  private async apply(fault: PlannedFault, phaseStartMs: number): Promise<Heal> {
    const spec = fault.spec;
    const kind = faultKind(spec);
    const stop = (detail: string): void => {
      this.record('stop', kind, detail, fault.index);
    };
    switch (spec.kind) {
      case 'partition':
        return this.applyPartition(fault, spec, kind, stop);
      case 'kill':
      case 'pause':
        return this.applyProcessFault(fault, spec, kind, stop);
      case 'proxy':
        return this.applyProxyFault(fault, spec, kind, stop);
      case 'transfer': {
        this.record('start', kind, describeFault(fault), fault.index);
        const storm = this.transferStorm(
          spec.moves,
          phaseStartMs + fault.startMs,
          phaseStartMs + fault.endMs,
          fault.index,
        );
        return async () => {
          await storm;
          stop('storm over');
        };
      }
      case 'snapshot':
      case 'membership': {
        const context = this.faultContext(kind, fault.index);
        const heal =
          spec.kind === 'snapshot'
            ? await applySnapshotFault(spec, context)
            : await this.requireMembership().apply(spec, context);
        return async () => {
          stop(await heal());
        };
      }
    }
  }

  /** Firewall rules dropping the partition's links; the heal flushes them. */
  private async applyPartition(
    fault: PlannedFault,
    spec: Extract<FaultSpec, { kind: 'partition' }>,
    kind: string,
    stop: (detail: string) => void,
  ): Promise<Heal> {
    const firewall = this.requireFirewall();
    const drops = await this.partitionDrops(spec);
    await firewall.apply(drops);
    this.record('start', kind, `${describeFault(fault)}: drop ${describeDrops(drops)}`, fault.index);
    return async () => {
      await firewall.heal();
      stop('rules flushed');
    };
  }

  /** kill -9 or SIGSTOP of the target nodes; the heal restarts or resumes them. */
  private async applyProcessFault(
    fault: PlannedFault,
    spec: Extract<FaultSpec, { kind: 'kill' | 'pause' }>,
    kind: string,
    stop: (detail: string) => void,
  ): Promise<Heal> {
    const targets = await this.processTargets(spec);
    for (const node of targets) {
      if (spec.kind === 'kill') await this.context.db.kill(node);
      else this.context.db.pause(node);
    }
    this.record(
      'start',
      kind,
      `${describeFault(fault)}: ${spec.kind === 'kill' ? 'kill -9' : 'SIGSTOP'} node(s) ${targets.join(',')}`,
      fault.index,
    );
    return async () => {
      for (const node of targets) {
        if (spec.kind === 'kill') await this.context.db.restart(node);
        else this.context.db.resume(node);
      }
      stop(`${spec.kind === 'kill' ? 'restarted' : 'SIGCONT'} node(s) ${targets.join(',')}`);
    };
  }

  /** The peer proxy's faults on the mode's links; the heal clears them. */
  private applyProxyFault(
    fault: PlannedFault,
    spec: Extract<FaultSpec, { kind: 'proxy' }>,
    kind: string,
    stop: (detail: string) => void,
  ): Heal {
    const proxy = this.context.proxy;
    if (proxy === undefined) throw new Error('internal: a proxy fault without the peer proxy');
    const [first, second] = spec.order;
    const select =
      spec.mode === 'one-way-blackhole'
        ? (from: number, to: number) => from === first && to === second
        : spec.mode === 'flaky-node'
          ? (from: number, to: number) => from === first || to === first
          : () => true;
    proxy.setFaults(select, spec.faults);
    const links =
      spec.mode === 'one-way-blackhole'
        ? `link ${first ?? '?'}->${second ?? '?'}`
        : spec.mode === 'flaky-node'
          ? `links of node ${first ?? '?'}`
          : 'all links';
    this.record('start', kind, `${describeFault(fault)} on ${links}`, fault.index);
    return async () => {
      proxy.heal();
      stop('proxy faults cleared');
      await Promise.resolve();
    };
  }

  private requireMembership(): Membership {
    if (this.membership === undefined) throw new Error('internal: a membership fault without the admin surface');
    return this.membership;
  }

  private async transferStorm(
    moves: readonly TransferMove[],
    startMs: number,
    endMs: number,
    index: number,
  ): Promise<void> {
    for (const move of moves) {
      await sleepUntil(startMs + move.atMs, this.context.signal);
      if (this.context.signal.aborted || Date.now() >= endMs) return;
      const outcome = await this.context.db.transferLeadership(move.group, move.to);
      this.record('event', 'transfer', outcome, index);
    }
  }

  private requireFirewall(): Pick<Firewall, 'apply' | 'heal'> {
    if (this.context.firewall === undefined) throw new Error('internal: a partition fault without the firewall');
    return this.context.firewall;
  }

  private async partitionDrops(spec: Extract<FaultSpec, { kind: 'partition' }>): Promise<Drop[]> {
    const order = spec.order;
    const first = order[0] ?? 1;
    switch (spec.shape) {
      case 'isolate-leader': {
        const leader = await this.leaderOr(spec.group, first);
        return completeGrudge([[leader], order.filter((node) => node !== leader)]);
      }
      case 'isolate-follower': {
        const leader = await this.leaderOr(spec.group, first);
        const follower = order.find((node) => node !== leader) ?? first;
        return completeGrudge([[follower], order.filter((node) => node !== follower)]);
      }
      case 'halves': {
        const half = Math.floor(order.length / 2);
        return completeGrudge([order.slice(0, half), order.slice(half)]);
      }
      case 'majorities-ring':
        return majoritiesRingGrudge(order);
      case 'bridge':
        return bridgeGrudge(order);
      case 'one-way': {
        const [from, to] = order;
        return from === undefined || to === undefined ? [] : [{ from, to }];
      }
    }
  }

  private async processTargets(spec: Extract<FaultSpec, { kind: 'kill' | 'pause' }>): Promise<number[]> {
    const first = spec.order[0] ?? 1;
    switch (spec.target) {
      case 'leader':
        return [await this.leaderOr(spec.group, first)];
      case 'random':
        return [first];
      case 'majority':
        return spec.order.slice(0, Math.floor(spec.order.length / 2) + 1);
    }
  }

  /** The final heal: every fault undone, every node running. Collects problems instead of throwing. */
  async healAll(): Promise<string[]> {
    const problems: string[] = [];
    const { db, firewall, proxy } = this.context;
    try {
      await firewall?.heal();
    } catch (error) {
      problems.push(`firewall heal: ${String(error)}`);
    }
    proxy?.heal();
    const restarted: number[] = [];
    for (const node of [...db.nodeIds, ...(db.admin?.spareIds ?? [])]) {
      try {
        if (db.isPaused(node)) db.resume(node);
        if (!db.isRunning(node)) {
          await db.restart(node);
          // A node the membership nemesis retired stays down.
          if (db.isRunning(node)) restarted.push(node);
        }
      } catch (error) {
        problems.push(`node ${node}: ${String(error)}`);
      }
    }
    this.record(
      'heal',
      'heal',
      `rules flushed, proxy cleared, all nodes resumed${restarted.length > 0 ? `, restarted ${restarted.join(',')}` : ''}${problems.length > 0 ? `; problems: ${problems.join('; ')}` : ''}`,
    );
    return problems;
  }
}

function describeDrops(drops: readonly Drop[]): string {
  if (drops.length === 0) return 'nothing';
  return drops.map((drop) => `${drop.from}->${drop.to}`).join(' ');
}
