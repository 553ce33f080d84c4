// The membership nemesis (issue 12): the cluster's membership changes under the workload, through
// the agent actions an operator uses (`cluster.add {node: url}`, `cluster.remove {node}`, through
// POST /v1/actions and waited for), and placement moves replicas. On 5 nodes or more (placement
// on: kv groups at 3 replicas). dram never takes a removed node id back (its members refuse the
// handshake of a removed id for good), so every add is of a fresh node (ids after the first
// nodes, started empty: AdminControl.startSpare) and a removed node is retired. Each fault is one
// of (schedule.ts's MembershipMode):
//  - grow-shrink: a fresh node is added; at the fault's end it is removed (drained first) and retired;
//  - replace: a fresh node is added, then a member (not the meta leader) is removed and retired;
//    the clients pinned to it talk to the new node from then on;
//  - kill-past-grace: a member (not the meta leader) is killed -9 until placement has re-created
//    every replica it held elsewhere (nodeGoneGraceMs is set to `graceMs` at the first such fault),
//    then restarted: it comes back holding replicas placement no longer wants, and is drained.
// Every step is checked (nemesis-checks.ts): valid when the action is DONE or the re-creation was
// seen, unknown when it did not finish in time. After the final reads the run checks that every
// group is at its replication factor, with no learner and no move left (invalid otherwise).
//
// Called by: nemesis.ts (faults), run.ts (the final check).

import { sleep, type AdminControl, type Database, type PlacementView } from './db.ts';
import type { FaultContext, Heal } from './snapshot-nemesis.ts';
import type { FaultSpec } from './schedule.ts';

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
    switch (spec.mode) {
      case 'grow-shrink':
        return this.growShrink(spec, context);
      case 'replace':
        return this.replace(spec, context);
      case 'kill-past-grace':
        return this.killPastGrace(spec, context);
    }
  }

  /**
   * A member other than `not` to schedule through: the meta leader when it may be (it answers: a
   * node just restarted may not listen yet), else the first running member in the seeded order.
   */
  private async via(context: FaultContext, spec: MembershipSpec, not: readonly number[]): Promise<number> {
    const metaLeader = await context.db.leaderOf(0);
    if (metaLeader !== undefined && this.members.has(metaLeader) && !not.includes(metaLeader)) return metaLeader;
    return (
      spec.order.find((node) => this.members.has(node) && !not.includes(node) && context.db.isRunning(node)) ??
      [...this.members].find((node) => !not.includes(node) && context.db.isRunning(node)) ??
      1
    );
  }

  /** A member to take out: not the meta leader (it runs the actions), from the seeded order. */
  private async victim(context: FaultContext, spec: MembershipSpec): Promise<number | undefined> {
    const metaLeader = await context.db.leaderOf(0);
    return spec.order.find((node) => this.members.has(node) && node !== metaLeader && context.db.isRunning(node));
  }

  /** Starts a fresh node and adds it; answers its id once the add is DONE (checked either way). */
  private async add(context: FaultContext, spec: MembershipSpec): Promise<number | undefined> {
    const { admin } = context;
    const spare = admin.startSpare();
    if (spare === undefined) {
      context.check('unknown', 'no fresh node left to add (the run used its spares)');
      return undefined;
    }
    const via = await this.via(context, spec, []);
    context.start(`add fresh node ${spare} (${admin.url(spare)}) through node ${via}`);
    const added = await admin.runAction(via, addKind, { node: admin.url(spare) }, Date.now() + actionWaitMs);
    context.check(added.phase === 'DONE' ? 'valid' : 'unknown', `add node ${spare}: ${added.phase} ${added.detail}`);
    this.members.add(spare);
    if (added.phase === 'DONE') return spare;
    // Whatever it did, take it out again so the cluster is back to its members.
    context.event(await this.remove(spare, context, await this.via(context, spec, [spare])));
    return undefined;
  }

  private async growShrink(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const spare = await this.add(context, spec);
    if (spare === undefined) return () => Promise.resolve('add not confirmed');
    return async () => this.remove(spare, context, await this.via(context, spec, [spare]));
  }

  private async replace(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const victim = await this.victim(context, spec);
    if (victim === undefined) {
      context.check('unknown', `replace: no member to replace (members ${[...this.members].join(',')})`);
      return () => Promise.resolve('nothing to heal');
    }
    const spare = await this.add(context, spec);
    if (spare === undefined) return () => Promise.resolve('add not confirmed: nothing replaced');
    const removed = await this.remove(victim, context, await this.via(context, spec, [victim]), spare);
    context.event(`replace node ${victim} by node ${spare}: ${removed}`);
    return () => Promise.resolve(removed);
  }

  /** cluster.remove, then (DONE) retire the node for good (its clients go to `successor`). Checked either way. */
  private async remove(node: number, context: FaultContext, via: number, successor?: number): Promise<string> {
    const { admin } = context;
    const removed = await admin.runAction(via, removeKind, { node }, Date.now() + actionWaitMs);
    context.check(
      removed.phase === 'DONE' ? 'valid' : 'unknown',
      `remove node ${node}: ${removed.phase} ${removed.detail}`,
    );
    if (removed.phase !== 'DONE') return `remove node ${node}: ${removed.phase}`;
    this.members.delete(node);
    await admin.retire(node, successor);
    return `removed node ${node} and retired it`;
  }

  private async killPastGrace(spec: MembershipSpec, context: FaultContext): Promise<Heal> {
    const { admin, db } = context;
    const victim = await this.victim(context, spec);
    if (victim === undefined) {
      context.check('unknown', 'kill-past-grace: no member to kill');
      return () => Promise.resolve('nothing to heal');
    }
    const via = await this.via(context, spec, [victim]);
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
      seen = await admin.placement(await this.via(context, spec, [victim]));
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

/** Every group at its desired voter count (none of them on `without`), no learner, no move, and the planner says ok. */
export function atFactor(view: PlacementView, without: readonly number[] = []): boolean {
  return (
    view.moves === 0 &&
    view.groups.length > 0 &&
    view.groups.every(
      (g) =>
        g.desired > 0 &&
        g.state === 'ok' &&
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
