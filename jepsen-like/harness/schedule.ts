// The nemesis schedule: which fault starts when, for how long, and every random choice it needs,
// drawn up front from the seed alone. The same seed and options give the same schedule, byte for
// byte (schedule.json); only targets that depend on the cluster's state at the time ("the leader of
// group g") are resolved when the fault starts, and the nemesis log records what they resolved to.
//
// Faults run one at a time with quiet gaps between them, kinds picked at random from the enabled
// ones, so a run with --nemesis partition,kill interleaves partitions and crashes. The schedule
// leaves the last second of the main phase fault-free; the final heal follows it anyway.

import type { LinkFaults } from './peer-proxy.ts';
import type { DbName, NemesisKind, RunOptions } from './options.ts';
import type { Rng } from './rng.ts';

export type PartitionShape =
  | 'isolate-leader'
  | 'isolate-follower'
  | 'halves'
  | 'majorities-ring'
  | 'bridge'
  | 'one-way';
export type ProcessTarget = 'leader' | 'random' | 'majority';
export type ProxyMode = 'delay' | 'loss' | 'duplicate' | 'reorder' | 'flaky-node' | 'one-way-blackhole';
/**
 * catch-up: a follower of the group is cut off until every other replica compacted past its log,
 * then healed, so it can only catch up by InstallSnapshot. crash-mid-snapshot: a node is asked to
 * snapshot its groups and killed -9 `killDelayMs` later, while it captures and writes them.
 */
export type SnapshotMode = 'catch-up' | 'crash-mid-snapshot';
/**
 * grow-shrink: a fresh node is added (cluster.add), then removed (cluster.remove, drained) and
 * retired; replace: a fresh node is added, then a member is removed and retired (its clients move
 * to the new node); kill-past-grace: a member is killed until placement re-created its replicas
 * elsewhere (past nodeGoneGraceMs), then restarted. (dram never takes a removed node id back, so
 * every add is of a fresh id.)
 */
export type MembershipMode = 'grow-shrink' | 'replace' | 'kill-past-grace';

export const PARTITION_SHAPES: readonly PartitionShape[] = [
  'isolate-leader',
  'isolate-follower',
  'halves',
  'majorities-ring',
  'bridge',
  'one-way',
];
export const PROCESS_TARGETS: readonly ProcessTarget[] = ['leader', 'random', 'majority'];
export const PROXY_MODES: readonly ProxyMode[] = [
  'delay',
  'loss',
  'duplicate',
  'reorder',
  'flaky-node',
  'one-way-blackhole',
];

export const SNAPSHOT_MODES: readonly SnapshotMode[] = ['catch-up', 'crash-mid-snapshot'];
export const MEMBERSHIP_MODES: readonly MembershipMode[] = ['grow-shrink', 'replace', 'kill-past-grace'];
/** The membership nemesis needs placement, which spreads groups only over more than three nodes. */
export const membershipNodesMin = 5;
/** crash-mid-snapshot kills the node this long (at most) after asking it to snapshot. */
export const snapshotKillDelayMsMax = 40;

export interface TransferMove {
  /** ms after the fault's start. */
  readonly atMs: number;
  readonly group: number;
  readonly to: number;
}

export type FaultSpec =
  | {
      readonly kind: 'partition';
      readonly shape: PartitionShape;
      readonly group: number;
      readonly order: readonly number[];
    }
  | {
      readonly kind: 'kill' | 'pause';
      readonly target: ProcessTarget;
      readonly group: number;
      readonly order: readonly number[];
    }
  | { readonly kind: 'proxy'; readonly mode: ProxyMode; readonly faults: LinkFaults; readonly order: readonly number[] }
  | { readonly kind: 'transfer'; readonly moves: readonly TransferMove[] }
  | {
      readonly kind: 'snapshot';
      readonly mode: SnapshotMode;
      readonly group: number;
      readonly order: readonly number[];
      readonly killDelayMs: number;
    }
  | { readonly kind: 'membership'; readonly mode: MembershipMode; readonly order: readonly number[] };

export interface PlannedFault {
  readonly index: number;
  /** ms after the main phase starts. */
  readonly startMs: number;
  readonly endMs: number;
  readonly spec: FaultSpec;
}

export interface Schedule {
  readonly seed: number;
  readonly nemeses: readonly NemesisKind[];
  /** Nemeses asked for but not run, and why. */
  readonly skipped: readonly { readonly kind: NemesisKind; readonly reason: string }[];
  readonly faults: readonly PlannedFault[];
}

const warmupMs = 2000;
const tailMs = 1000;

/** Why a nemesis cannot run against this database, or undefined when it can. */
export function unsupportedReason(kind: NemesisKind, db: DbName, nodes: number): string | undefined {
  switch (kind) {
    case 'snapshot':
      return db === 'etcd'
        ? "snapshot nemesis skipped for etcd: it needs dram admin routes (compaction now, the replicas' log bounds)"
        : undefined;
    case 'membership':
      if (db === 'etcd') return 'membership nemesis skipped for etcd: it drives dram agent actions and placement';
      return nodes < membershipNodesMin
        ? `membership nemesis skipped: it needs --nodes ${membershipNodesMin} or more (placement spreads groups only over more than three nodes, and a removal must leave room)`
        : undefined;
    case 'partition':
    case 'proxy':
      return db === 'etcd'
        ? `${kind} nemesis skipped for etcd: shared/tools/etcd-cluster.sh puts every member on 127.0.0.1, so links cannot be told apart by address`
        : undefined;
    case 'kill':
    case 'pause':
    case 'transfer':
      return undefined;
  }
}

export function planSchedule(
  options: RunOptions,
  nodes: readonly number[],
  groups: readonly number[],
  rng: Rng,
): Schedule {
  const skipped: { kind: NemesisKind; reason: string }[] = [];
  const active: NemesisKind[] = [];
  for (const kind of options.nemeses) {
    const reason = unsupportedReason(kind, options.db, nodes.length);
    if (reason === undefined) active.push(kind);
    else skipped.push({ kind, reason });
  }
  const faults: PlannedFault[] = [];
  const endMs = options.timeS * 1000 - tailMs;
  let t = Math.min(warmupMs, options.timeS * 250);
  const faultMinMs = options.faultMinS * 1000;
  while (active.length > 0 && t + Math.min(faultMinMs, 1000) <= endMs && faults.length < 10_000) {
    const kind = rng.pick(active);
    const durationMs = Math.round(Math.min(rng.between(faultMinMs, options.faultMaxS * 1000), endMs - t));
    faults.push({
      index: faults.length,
      startMs: Math.round(t),
      endMs: Math.round(t + durationMs),
      spec: drawSpec(kind, durationMs, nodes, groups, rng),
    });
    t += durationMs + rng.between(options.quietMinS * 1000, options.quietMaxS * 1000);
  }
  return { seed: options.seed, nemeses: options.nemeses, skipped, faults };
}

function drawSpec(
  kind: NemesisKind,
  durationMs: number,
  nodes: readonly number[],
  groups: readonly number[],
  rng: Rng,
): FaultSpec {
  const order = rng.shuffle(nodes);
  const group = rng.pick(groups);
  switch (kind) {
    case 'partition':
      return { kind, shape: rng.pick(PARTITION_SHAPES), group, order };
    case 'kill':
    case 'pause':
      return { kind, target: rng.pick(PROCESS_TARGETS), group, order };
    case 'proxy':
      return drawProxySpec(rng.pick(PROXY_MODES), order, rng);
    case 'transfer': {
      const moves: TransferMove[] = [];
      for (let at = rng.between(0, 200); at < durationMs && moves.length < 1000; at += rng.between(100, 600)) {
        moves.push({ atMs: Math.round(at), group: rng.pick(groups), to: rng.pick(nodes) });
      }
      return { kind, moves };
    }
    case 'snapshot':
      return {
        kind,
        mode: rng.pick(SNAPSHOT_MODES),
        group,
        order,
        killDelayMs: Math.round(rng.between(0, snapshotKillDelayMsMax)),
      };
    case 'membership':
      return { kind, mode: rng.pick(MEMBERSHIP_MODES), order };
  }
}

function drawProxySpec(mode: ProxyMode, order: readonly number[], rng: Rng): FaultSpec {
  const none = { delayMs: 0, jitterMs: 0, loss: 0, duplicate: 0, reorder: 0, blackhole: false };
  const round = (value: number): number => Math.round(value * 100) / 100;
  switch (mode) {
    case 'delay': {
      const delayMs = Math.round(rng.between(20, 150));
      return {
        kind: 'proxy',
        mode,
        order,
        faults: { ...none, delayMs, jitterMs: Math.round(delayMs * rng.between(0.1, 0.6)) },
      };
    }
    case 'loss':
      return { kind: 'proxy', mode, order, faults: { ...none, loss: round(rng.between(0.05, 0.4)) } };
    case 'duplicate':
      return { kind: 'proxy', mode, order, faults: { ...none, duplicate: round(rng.between(0.05, 0.5)) } };
    case 'reorder':
      return {
        kind: 'proxy',
        mode,
        order,
        faults: { ...none, delayMs: Math.round(rng.between(2, 20)), reorder: round(rng.between(0.1, 0.5)) },
      };
    case 'flaky-node':
      return {
        kind: 'proxy',
        mode,
        order,
        faults: {
          delayMs: Math.round(rng.between(10, 80)),
          jitterMs: Math.round(rng.between(5, 40)),
          loss: round(rng.between(0.05, 0.3)),
          duplicate: round(rng.between(0, 0.2)),
          reorder: round(rng.between(0, 0.3)),
          blackhole: false,
        },
      };
    case 'one-way-blackhole':
      return { kind: 'proxy', mode, order, faults: { ...none, blackhole: true } };
  }
}

/** One line describing a planned fault, for logs and the report. */
export function describeFault(fault: PlannedFault): string {
  const spec = fault.spec;
  const when = `${(fault.startMs / 1000).toFixed(1)}-${(fault.endMs / 1000).toFixed(1)} s`;
  switch (spec.kind) {
    case 'partition':
      return `${when} partition ${spec.shape} (group ${spec.group}, order ${spec.order.join(',')})`;
    case 'kill':
    case 'pause':
      return `${when} ${spec.kind} ${spec.target} (group ${spec.group}, order ${spec.order.join(',')})`;
    case 'proxy':
      return `${when} proxy ${spec.mode} ${JSON.stringify(spec.faults)}`;
    case 'transfer':
      return `${when} transfer storm (${spec.moves.length} moves)`;
    case 'snapshot':
      return `${when} snapshot ${spec.mode} (group ${spec.group}, order ${spec.order.join(',')}${spec.mode === 'crash-mid-snapshot' ? `, kill after ${spec.killDelayMs} ms` : ''})`;
    case 'membership':
      return `${when} membership ${spec.mode} (order ${spec.order.join(',')})`;
  }
}
