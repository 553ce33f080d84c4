// The membership nemesis (issue 12): the cluster's membership changes under the workload, through
// the agent actions an operator uses (`cluster.add {node: url}`, `cluster.remove {node}`, through
// POST /v1/actions and waited for), and placement re-creates replicas. On 5 nodes or more (with
// placement on: kv groups at 3 replicas), one spare node (id nodes+1) starts empty beside them.
// Each fault is one of (schedule.ts's MembershipMode):
//  - grow-shrink: the spare is added; at the fault's end it is removed (drained first) and wiped,
//    so it is a spare again;
//  - remove-readd: a member (not the meta leader) is removed, wiped (it starts empty) and, at the
//    fault's end, added again under the same id;
//  - kill-past-grace: a member (not the meta leader) is killed -9 until placement has re-created
//    every replica it held elsewhere (nodeGoneGraceMs is set to `graceMs` at the first such fault),
//    then restarted: it comes back holding replicas placement no longer wants, and is drained.
// Every step is checked (nemesis-checks.ts): valid when the action is DONE or the re-creation was
// seen, unknown when it did not finish in time. After the final reads the run checks that every
// group is back at its replication factor, with no learner and no move left (`finalPlacementCheck`,
// invalid otherwise). A member count never drops below `membershipNodesMin - 1`: a removal is
// skipped (unknown) when it would.
//
// Called by: nemesis.ts (faults), run.ts (the final check).

import { sleep, type AdminControl, type Database, type PlacementView } from './db.ts';
import type { FaultContext, Heal } from './snapshot-nemesis.ts';
import { membershipNodesMin, type FaultSpec } from './schedule.ts';

const addKind = 'agent.replicante.io/cluster.add';
const removeKind = 'agent.replicante.io/cluster.remove';
/** nodeGoneGraceMs while the membership nemesis runs: a killed node is replaced this long after it went. */
export const graceMs = 3000;
/** An add or a removal (with its drain) has this long to finish. */
export const actionWaitMs = 90_000;
/** How long kill-past-grace waits for placement to re-create the killed node's replicas. */
export const rereplicateMs = 60_000;
/** How long the final check waits for every group to be at its replication factor. */
export const settleMs = 90_000;
const pollMs = 500;

type MembershipSpec = Extract<FaultSpec, { kind: 'membership' }>;

/** Which nodes are in the cluster, as the nemesis made it (the original nodes, then its changes). */
export class Membership {
  readonly members: Set<number>;
  private graceSet = false;

  constructor(db: Database) {
    this.members = new Set(db.nodeIds);
  }

  async apply(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const spare = context.admin.spareIds.find((node) => !this.members.has(node));
    if (spec.mode === 'grow-shrink' && spare !== undefined) return this.growShrink(spare, spec, context);
    if (spec.mode === 'kill-past-grace') return this.killPastGrace(spec, context);
    return this.removeReadd(spec, context);
  }

  /** A running member other than `not`, for scheduling through. */
  private via(context: FaultContext, spec: MembershipSpec, not: readonly number[]): number {
    return (
      spec.order.find((node) => this.members.has(node) && !not.includes(node) && context.db.isRunning(node)) ??
      [...this.members].find((node) => !not.includes(node)) ??
      1
    );
  }

  /** A member to take out: not the meta leader (it runs the actions), from the seeded order. */
  private async victim(context: FaultContext, spec: MembershipSpec): Promise<number | undefined> {
    const metaLeader = await context.db.leaderOf(0);
    return spec.order.find((node) => this.members.has(node) && node !== metaLeader && context.db.isRunning(node));
  }

  private async growShrink(spare: number, spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const { admin } = context;
    const via = this.via(context, spec, []);
    context.start(`add spare node ${spare} (${admin.url(spare)}) through node ${via}`);
    const added = await admin.runAction(via, addKind, { node: admin.url(spare) }, Date.now() + actionWaitMs);
    context.check(added.phase === 'DONE' ? 'valid' : 'unknown', `add node ${spare}: ${added.phase} ${added.detail}`);
    if (added.phase !== 'DONE') {
      // Whatever it did, take it out again so the next fault starts from the original members.
      return async () => `add not confirmed; ${await this.remove(spare, context, this.via(context, spec, [spare]))}`;
    }
    this.members.add(spare);
    return async () => this.remove(spare, context, this.via(context, spec, [spare]));
  }

  private async removeReadd(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const { admin } = context;
    const victim = await this.victim(context, spec);
    if (victim === undefined || this.members.size <= membershipNodesMin - 1) {
      context.check('unknown', `remove-readd: no member to remove (members ${[...this.members].join(',')})`);
      return () => Promise.resolve('nothing to heal');
    }
    const via = this.via(context, spec, [victim]);
    context.start(`remove node ${victim} through node ${via}, then wipe it`);
    const removed = await this.remove(victim, context, via);
    if (this.members.has(victim)) return () => Promise.resolve(removed);
    return async () => {
      const back = this.via(context, spec, [victim]);
      const added = await admin.runAction(back, addKind, { node: admin.url(victim) }, Date.now() + actionWaitMs);
      context.check(
        added.phase === 'DONE' ? 'valid' : 'unknown',
        `add removed node ${victim} again: ${added.phase} ${added.detail}`,
      );
      if (added.phase === 'DONE') this.members.add(victim);
      return `${removed}; added again: ${added.phase}`;
    };
  }

  /** cluster.remove, then (DONE) wipe: the node starts empty. Checked either way. */
  private async remove(node: number, context: FaultContext, via: number): Promise<string> {
    const { admin } = context;
    const removed = await admin.runAction(via, removeKind, { node }, Date.now() + actionWaitMs);
    context.check(
      removed.phase === 'DONE' ? 'valid' : 'unknown',
      `remove node ${node}: ${removed.phase} ${removed.detail}`,
    );
    if (removed.phase !== 'DONE') return `remove node ${node}: ${removed.phase}`;
    this.members.delete(node);
    await admin.wipe(node);
    return `removed node ${node} and wiped it`;
  }

  private async killPastGrace(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const { admin, db } = context;
    const victim = await this.victim(context, spec);
    if (victim === undefined) {
      context.check('unknown', 'kill-past-grace: no member to kill');
      return () => Promise.resolve('nothing to heal');
    }
    const via = this.via(context, spec, [victim]);
    if (!this.graceSet) {
      const refused = await admin.setNodeGoneGrace(via, graceMs);
      if (refused !== undefined) context.event(`setting nodeGoneGraceMs ${graceMs} refused: ${refused}`);
      else this.graceSet = true;
    }
    const before = await admin.placement(via);
    const held =
      typeof before === 'string' ? [] : before.groups.filter((g) => g.voters.includes(victim)).map((g) => g.group);
    await db.kill(victim);
    context.start(`kill -9 node ${victim} (voter of groups ${held.join(',') || 'none'}) past the ${graceMs} ms grace`);
    const deadline = Date.now() + rereplicateMs;
    let seen: PlacementView | string = 'not read';
    while (Date.now() < deadline && !context.signal.aborted) {
      seen = await admin.placement(this.via(context, spec, [victim]));
      if (typeof seen !== 'string' && atFactor(seen, [victim])) break;
      await sleep(pollMs);
    }
    const replaced = typeof seen !== 'string' && atFactor(seen, [victim]);
    context.check(
      replaced ? 'valid' : 'unknown',
      replaced
        ? `node ${victim} gone past the grace: every group back at its factor without it (it held ${held.join(',') || 'none'})`
        : `node ${victim} gone: its replicas were not re-created within ${rereplicateMs / 1000} s (${describePlacement(seen)})`,
    );
    return async () => {
      await db.restart(victim);
      return `restarted node ${victim}`;
    };
  }
}

/** Every group at its desired voter count (none of them on `without`), no learner, no move. */
export function atFactor(view: PlacementView, without: readonly number[] = []): boolean {
  return (
    view.moves === 0 &&
    view.groups.length > 0 &&
    view.groups.every(
      (g) =>
        g.desired > 0 &&
        g.voters.length === g.desired &&
        g.learners.length === 0 &&
        !g.voters.some((node) => without.includes(node)),
    )
  );
}

function describePlacement(view: PlacementView | string): string {
  if (typeof view === 'string') return view;
  return `${view.moves} moves; ${view.groups.map((g) => `g${g.group} ${g.state} [${g.voters.join(',')}]${g.learners.length > 0 ? ` learners [${g.learners.join(',')}]` : ''}/${g.desired}`).join(' ')}`;
}

/**
 * The final check of a membership run: every group at its replication factor, no learner, no
 * move, within `settleMs` (asked of every running node in turn, since any may answer).
 */
export async function checkFinalPlacement(
  db: Database,
  admin: AdminControl,
  record: (verdict: 'valid' | 'invalid', detail: string) => void,
): Promise<void> {
  const deadline = Date.now() + settleMs;
  let seen: PlacementView | string = 'not read';
  const started = Date.now();
  while (Date.now() < deadline) {
    for (const node of [...db.nodeIds, ...admin.spareIds].filter((id) => db.isRunning(id))) {
      seen = await admin.placement(node);
      if (typeof seen !== 'string') break;
    }
    if (typeof seen !== 'string' && atFactor(seen)) {
      record(
        'valid',
        `every group at its replication factor after ${((Date.now() - started) / 1000).toFixed(1)} s: ${describePlacement(seen)}`,
      );
      return;
    }
    await sleep(pollMs);
  }
  record(
    'invalid',
    `not every group at its replication factor within ${settleMs / 1000} s: ${describePlacement(seen)}`,
  );
}
