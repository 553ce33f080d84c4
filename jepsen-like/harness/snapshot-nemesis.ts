// The snapshot nemeses (issue 13): faults that make dram send, install and write snapshots, each
// checked for having really happened (nemesis-checks.ts), since both are easy to run as no-ops.
//
//  - catch-up: a follower F of group g is cut off from every node (iptables, both ways); its log
//    ends at L. The harness writes to g (keys no workload uses) and compacts every other replica
//    of g (POST /v1/admin/groups/:group/compact) until each of their logs starts past L + 1, so
//    no replica holds the entry F needs next. Healed, F can catch up only by InstallSnapshot: the
//    check is valid once F applies past L, invalid if it does not within `catchUpMs`, unknown if
//    the compaction past L could not be brought about (then F was never really behind it).
//    The nodes run with a short log tail (--snapshot-tail-entries) so a few dozen writes suffice.
//  - crash-mid-snapshot: a replica of g is asked to snapshot every group it hosts at once (after
//    writes to g, so g has something new; each compaction is an action, so they run one after
//    another) and is killed -9 `killDelayMs` after the first one started, while the others are
//    captured and written. Restarted at the fault's end, it must come back and apply g at least up to the
//    snapshot it was writing: valid then, invalid if not within `catchUpMs` (a node that cannot
//    restart from a half-written snapshot also shows in the crashes checker), unknown when no
//    snapshot was under way when it died (every answer was `up_to_date`).
//
// Called by: nemesis.ts.

import { completeGrudge, type Firewall } from './firewall.ts';
import { sleep, type AdminControl, type Database } from './db.ts';
import type { FaultSpec } from './schedule.ts';

/** What a fault may do and record; nemesis.ts builds it per fault. */
export interface FaultContext {
  readonly db: Database;
  readonly admin: AdminControl;
  readonly firewall: Pick<Firewall, 'apply' | 'heal'> | undefined;
  /** The log tail the nodes keep behind a snapshot (their --snapshot-tail-entries). */
  readonly snapshotTailEntries: number;
  /** Bounds of the fault's waits (`catchUpMs`, `compactPastMs` below; tests shorten them). */
  readonly waits: FaultWaits;
  readonly signal: AbortSignal;
  start(detail: string): void;
  event(detail: string): void;
  check(verdict: 'valid' | 'invalid' | 'unknown', detail: string): void;
}

export interface FaultWaits {
  readonly catchUpMs: number;
  readonly compactPastMs: number;
}

/** A compaction that was started (or already under way) by the node's answer. */
function isUnderWay(answer: Awaited<ReturnType<AdminControl['compact']>>): boolean {
  return typeof answer !== 'string' && (answer.state === 'started' || answer.state === 'in_progress');
}

/** Heals the fault; answers the stop entry's detail. */
export type Heal = () => Promise<string>;

/** How long a healed follower or restarted node has to catch up before its check is invalid. */
export const catchUpMs = 30_000;
/** How long the catch-up fault may spend writing and compacting before it gives up (unknown). */
export const compactPastMs = 20_000;
export const faultWaitsDefault: FaultWaits = { catchUpMs, compactPastMs };
/** Write-and-compact rounds of one catch-up fault at most. */
const compactRoundsMax = 20;
/** Writes to the group before a crash-mid-snapshot (so the snapshot has something new to hold). */
const crashFillWrites = 100;
const pollMs = 250;

type SnapshotSpec = Extract<FaultSpec, { kind: 'snapshot' }>;

export async function applySnapshotFault(spec: SnapshotSpec, context: FaultContext): Promise<Heal> {
  return spec.mode === 'catch-up' ? cutOffUntilCompacted(spec, context) : crashMidSnapshot(spec, context);
}

/** Polls `probe` every pollMs until it answers something, at most `waitMs`. */
async function poll<T>(
  waitMs: number,
  signal: AbortSignal,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined || Date.now() >= deadline || signal.aborted) return found;
    await sleep(pollMs);
  }
}

async function cutOffUntilCompacted(spec: SnapshotSpec, context: FaultContext): Promise<Heal> {
  const { db, admin, signal } = context;
  const group = spec.group;
  const leader = await db.leaderOf(group);
  const voters = leader === undefined ? [] : ((await admin.replica(leader, group))?.voters ?? []);
  const follower = spec.order.find((node) => node !== leader && voters.includes(node));
  if (leader === undefined || follower === undefined) {
    context.check('unknown', `group ${group}: no leader or no follower to cut off (leader ${leader ?? 'none'})`);
    return () => Promise.resolve('nothing to heal');
  }
  const firewall = context.firewall;
  if (firewall === undefined) throw new Error('internal: a snapshot catch-up fault without the firewall');
  const everyone = [...db.nodeIds, ...admin.spareIds];
  await firewall.apply(completeGrudge([[follower], everyone.filter((node) => node !== follower)]));
  // Frames already in the follower's socket buffers may still arrive: let them, then read its log.
  await sleep(300);
  const cut = await admin.replica(follower, group);
  const others = voters.filter((node) => node !== follower);
  context.start(
    `group ${group}: follower ${follower} cut off from every node (log ends at ${cut?.lastIndex ?? '?'}); compacting ${others.join(',')} past it`,
  );
  const heal: Heal = async () => {
    await firewall.heal();
    return 'rules flushed';
  };
  if (cut === undefined) {
    context.check('unknown', `group ${group}: follower ${follower} did not report its log`);
    return heal;
  }
  const past = await compactPast(context, group, others, cut.lastIndex);
  if (past === undefined) {
    context.check(
      'unknown',
      `group ${group}: could not compact every other replica past ${cut.lastIndex} within ${context.waits.compactPastMs / 1000} s; follower ${follower} may catch up from the log`,
    );
    return heal;
  }
  context.event(`group ${group}: every other replica's log starts past ${cut.lastIndex + 1} (${past})`);
  return async () => {
    await firewall.heal();
    const caught = await poll(context.waits.catchUpMs, signal, async () => {
      const now = await admin.replica(follower, group);
      return now !== undefined && now.applied > cut.lastIndex ? now : undefined;
    });
    context.check(
      caught === undefined ? 'invalid' : 'valid',
      caught === undefined
        ? `group ${group}: follower ${follower} (log ending at ${cut.lastIndex}) did not apply past it within ${context.waits.catchUpMs / 1000} s of the heal`
        : `group ${group}: follower ${follower}'s log ended at ${cut.lastIndex}, no replica kept entry ${cut.lastIndex + 1} (${past}); after the heal it applied ${caught.applied} and its log starts at ${caught.firstIndex}: caught up by snapshot`,
    );
    return `rules flushed; follower ${follower} ${caught === undefined ? 'did not catch up' : 'caught up'}`;
  };
}

/**
 * Writes to the group and compacts `replicas` until each one's log starts past `lastIndex + 1`.
 * Answers the replicas' first indexes then, or undefined when time or rounds ran out.
 */
async function compactPast(
  context: FaultContext,
  group: number,
  replicas: readonly number[],
  lastIndex: number,
): Promise<string | undefined> {
  const { admin } = context;
  const deadline = Date.now() + context.waits.compactPastMs;
  for (let round = 0; round < compactRoundsMax && Date.now() < deadline && !context.signal.aborted; round++) {
    const written = await admin.fill(group, context.snapshotTailEntries + 32, deadline);
    const answers = await Promise.all(replicas.map((node) => admin.compact(node, group)));
    await sleep(300);
    const states = await Promise.all(replicas.map((node) => admin.replica(node, group)));
    const firsts = states.map((state, k) => `node ${replicas[k] ?? '?'} from ${state?.firstIndex ?? '?'}`);
    context.event(
      `round ${round}: ${written} writes acknowledged; compact ${answers.map((answer) => (typeof answer === 'string' ? answer : `${answer.state}@${answer.index}`)).join(', ')}; logs ${firsts.join(', ')}`,
    );
    if (states.every((state) => state !== undefined && state.firstIndex > lastIndex + 1)) return firsts.join(', ');
  }
  return undefined;
}

async function crashMidSnapshot(spec: SnapshotSpec, context: FaultContext): Promise<Heal> {
  const { db, admin, signal } = context;
  const group = spec.group;
  const leader = await db.leaderOf(group);
  const voters = leader === undefined ? [] : ((await admin.replica(leader, group))?.voters ?? []);
  const target = spec.order.find((node) => voters.includes(node) && db.isRunning(node)) ?? leader;
  if (target === undefined) {
    context.check('unknown', `group ${group}: no replica to crash (no leader known)`);
    return () => Promise.resolve('nothing to heal');
  }
  await admin.fill(group, crashFillWrites, Date.now() + 10_000);
  // Every hosted group (the filled one first) is asked at once; their compactions run one after
  // another (each is an action). The kill comes killDelayMs after the first one started, while
  // the others are captured and written.
  const groups = (await admin.hostedGroups(target)) ?? [group];
  const ordered = [group, ...groups.filter((g) => g !== group)];
  const answers: { group: number; answer: Awaited<ReturnType<AdminControl['compact']>> }[] = [];
  const asked = ordered.map(async (g) => {
    const answer = await admin.compact(target, g);
    answers.push({ group: g, answer });
  });
  const everyAnswer = Promise.allSettled(asked);
  await poll(context.waits.compactPastMs, signal, () =>
    Promise.resolve(
      answers.length === ordered.length || answers.some(({ answer }) => isUnderWay(answer)) ? true : undefined,
    ),
  );
  await sleep(spec.killDelayMs);
  const beforeKill = [...answers];
  await db.kill(target);
  await everyAnswer;
  const underWay = beforeKill.filter(({ answer }) => isUnderWay(answer));
  const describe = (list: typeof answers): string =>
    list
      .map(({ group: g, answer }) => `${g}: ${typeof answer === 'string' ? answer : `${answer.state}@${answer.index}`}`)
      .join('; ');
  const described = `before the kill ${describe(beforeKill) || 'none'}; asked but not answered before it: ${ordered.filter((g) => !beforeKill.some((entry) => entry.group === g)).join(',') || 'none'}`;
  context.start(
    `node ${target} asked to snapshot groups ${ordered.join(',')} and killed -9 ${spec.killDelayMs} ms after the first started (${described})`,
  );
  const mine = beforeKill.find((entry) => entry.group === group)?.answer;
  const wanted = typeof mine === 'string' || mine === undefined ? 0 : mine.index;
  return async () => {
    await db.restart(target);
    if (underWay.length === 0) {
      context.check('unknown', `node ${target}: no snapshot was under way when it was killed (${described})`);
      return `restarted node ${target}`;
    }
    const back = await poll(context.waits.catchUpMs, signal, async () => {
      const state = await admin.replica(target, group);
      return state !== undefined && state.applied >= wanted ? state : undefined;
    });
    context.check(
      back === undefined ? 'invalid' : 'valid',
      back === undefined
        ? `node ${target} killed while compacting ${underWay.length} group(s) did not serve group ${group} at index ${wanted} or later within ${context.waits.catchUpMs / 1000} s of its restart`
        : `node ${target} killed -9 ${spec.killDelayMs} ms after compacting groups ${underWay.map((entry) => entry.group).join(',')} started, the rest queued or under way; restarted, it applied group ${group} to ${back.applied} (>= ${wanted}), log from ${back.firstIndex}`,
    );
    return `restarted node ${target}`;
  };
}
