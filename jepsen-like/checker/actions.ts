// The actions workload's checker: clients schedule agent actions (test.loop, test.success,
// test.fail) through every node and read the cluster's action records (`GET /v1/actions`, one
// node's applied meta model: a state the cluster's log went through). It proves, from the history:
//
//  - at most one RUNNING: no read shows two actions RUNNING;
//  - schedule order: an action whose schedule call returned (ok) before another's was invoked is
//    in the log first, so it finishes first: in every read where the later one is RUNNING or
//    finished, the earlier one is finished, and earlier in the finish order. A RUNNING action is
//    also the oldest unfinished one of its read (an older NEW action would have been skipped);
//  - each action's effect once: no id appears twice in a read; a finished record never changes;
//    test.loop finishes DONE with `count` equal to its target (FAILED only by its timeout),
//    test.success DONE, test.fail FAILED with the SDK's message; a RUNNING test.loop's count
//    never exceeds its target; a record's kind and args are those its schedule call sent;
//  - the records' times agree: finished times follow the finish order, and none precedes its
//    scheduled time (the nodes write them from their wall clocks: sound here, where every node
//    runs on one machine; nodes with skewed clocks would need a tolerance);
//  - every acknowledged action appears: a schedule that returned ok before the final read began
//    is in it (else lost); no id appears that was never scheduled, or whose schedule definitely
//    failed (unexpected). Info schedules may or may not appear.
// The final read is the last ok read whose input is `{final: true}`; the harness takes it once
// the queue has drained. Without one the verdict is unknown (nothing can be called lost), as it is
// when an acknowledged action is still unfinished in it.
//
// History shape: f 'schedule', input `{id, kind, args}`; f 'read', output `{queue, finished}`, two
// lists of `ActionSeen` (the harness's compact form of the API's records).

import type { RecordedOperation } from './history.ts';
import type { Verdict } from './linearizability.ts';
import { canonicalJson } from './values.ts';

export const testLoopKind = 'agent.replicante.io/test.loop';
export const testSuccessKind = 'agent.replicante.io/test.success';
export const testFailKind = 'agent.replicante.io/test.fail';
/** test.loop's target when its args give none (docs/agent-api.md). */
export const testLoopTargetDefault = 10;
export const testFailMessage = 'Test action failed as expected';
/** Anomalies listed in full at most (each kind is counted in full). */
const anomaliesListedMax = 100;

export type ActionPhase = 'NEW' | 'RUNNING' | 'DONE' | 'FAILED';

/** One action record as a read saw it. */
export interface ActionSeen {
  readonly id: string;
  readonly kind: string;
  readonly args: unknown;
  readonly phase: ActionPhase;
  readonly payload: unknown;
  /** The state's error_msg, or null. */
  readonly error: string | null;
  readonly scheduledMs: number;
  readonly finishedMs: number | null;
}

export interface ActionsSnapshot {
  /** Unfinished actions, oldest scheduled (log order) first. */
  readonly queue: readonly ActionSeen[];
  /** Finished actions in the order they finished. */
  readonly finished: readonly ActionSeen[];
}

export interface ScheduleInput {
  readonly id: string;
  readonly kind: string;
  readonly args: unknown;
}

export type ActionsAnomalyKind =
  | 'malformed'
  | 'duplicate'
  | 'concurrent'
  | 'out-of-order'
  | 'wrong-effect'
  | 'changed'
  | 'mismatched'
  | 'times'
  | 'unexpected'
  | 'lost';

export interface ActionsAnomaly {
  readonly kind: ActionsAnomalyKind;
  readonly message: string;
}

export interface ActionsResult {
  verdict: Verdict;
  attempted: number;
  acknowledged: number;
  indeterminate: number;
  failed: number;
  reads: number;
  /** The final read's finished and unfinished counts; undefined without a final read. */
  finalRead: { readonly finished: number; readonly queued: number } | undefined;
  /** Finished records of the final read by outcome. */
  done: number;
  failedRecords: number;
  timedOut: number;
  /** Acknowledged actions still unfinished in the final read (the verdict is then unknown). */
  unfinished: string[];
  /** Every anomaly kind found, with its count. */
  anomalyCounts: Partial<Record<ActionsAnomalyKind, number>>;
  /** The first anomalies found, at most anomaliesListedMax. */
  anomalies: ActionsAnomaly[];
}

const phases: readonly ActionPhase[] = ['NEW', 'RUNNING', 'DONE', 'FAILED'];

class Anomalies {
  readonly counts: Partial<Record<ActionsAnomalyKind, number>> = {};
  readonly listed: ActionsAnomaly[] = [];
  add(kind: ActionsAnomalyKind, message: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    if (this.listed.length < anomaliesListedMax) this.listed.push({ kind, message });
  }
  get size(): number {
    return Object.values(this.counts).reduce((sum, count) => sum + count, 0);
  }
}

export function checkActions(ops: readonly RecordedOperation[]): ActionsResult {
  const anomalies = new Anomalies();
  const schedules = indexSchedules(ops);
  const reads = ops.filter((op) => op.f === 'read' && op.status === 'ok');
  const order = new ScheduleOrder([...schedules.values()]);
  const finishedSeen = new Map<string, string>();
  const snapshots = new Map<RecordedOperation, ActionsSnapshot>();
  for (const read of reads) {
    const snapshot = snapshotOf(read, anomalies);
    if (snapshot === undefined) continue;
    snapshots.set(read, snapshot);
    checkSnapshot(read, snapshot, anomalies);
    order.check(read, snapshot, anomalies);
    for (const record of [...snapshot.queue, ...snapshot.finished]) {
      checkAgainstSchedule(read, record, schedules, anomalies);
      checkEffect(read, record, anomalies);
    }
    for (const record of snapshot.finished) {
      const text = canonicalJson(record);
      const earlier = finishedSeen.get(record.id);
      if (earlier === undefined) finishedSeen.set(record.id, text);
      else if (earlier !== text)
        anomalies.add('changed', `read op ${read.index}: finished action ${record.id} is ${text}, earlier ${earlier}`);
    }
  }
  const finalRead = reads
    .filter((read) => snapshots.has(read) && isFinal(read.input))
    .reduce<
      RecordedOperation | undefined
    >((last, read) => (last === undefined || read.call >= last.call ? read : last), undefined);
  const finalSnapshot = finalRead === undefined ? undefined : snapshots.get(finalRead);
  const result: ActionsResult = {
    verdict: 'valid',
    attempted: schedules.size,
    acknowledged: 0,
    indeterminate: 0,
    failed: 0,
    reads: reads.length,
    finalRead:
      finalSnapshot === undefined
        ? undefined
        : { finished: finalSnapshot.finished.length, queued: finalSnapshot.queue.length },
    done: finalSnapshot?.finished.filter((record) => record.phase === 'DONE').length ?? 0,
    failedRecords: finalSnapshot?.finished.filter((record) => record.phase === 'FAILED').length ?? 0,
    timedOut: finalSnapshot?.finished.filter((record) => timedOut(record)).length ?? 0,
    unfinished: [],
    anomalyCounts: anomalies.counts,
    anomalies: anomalies.listed,
  };
  tallySchedules(schedules, finalRead, finalSnapshot, result, anomalies);
  result.verdict =
    anomalies.size > 0
      ? 'invalid'
      : (finalRead === undefined && schedules.size > 0) || result.unfinished.length > 0
        ? 'unknown'
        : 'valid';
  return result;
}

/**
 * Counts the schedule outcomes, and checks each acknowledged one that finished before the final
 * read against that read: present (else `lost`), and finished (else listed as unfinished).
 */
function tallySchedules(
  schedules: ReadonlyMap<string, RecordedOperation>,
  finalRead: RecordedOperation | undefined,
  finalSnapshot: ActionsSnapshot | undefined,
  result: ActionsResult,
  anomalies: Anomalies,
): void {
  const present = new Map(
    (finalSnapshot === undefined ? [] : [...finalSnapshot.queue, ...finalSnapshot.finished]).map((r) => [r.id, r]),
  );
  for (const op of schedules.values()) {
    if (op.status === 'fail') result.failed++;
    else if (op.status === 'info') result.indeterminate++;
    else {
      result.acknowledged++;
      if (finalRead === undefined || !(op.ret < finalRead.call)) continue;
      const record = present.get(scheduleInput(op).id);
      if (record === undefined)
        anomalies.add(
          'lost',
          `schedule op ${op.index} of ${scheduleInput(op).id} was acknowledged, but the final read (op ${finalRead.index}) has no such action`,
        );
      else if (record.phase === 'NEW' || record.phase === 'RUNNING') result.unfinished.push(record.id);
    }
  }
}

function isFinal(input: unknown): boolean {
  return typeof input === 'object' && input !== null && (input as { final?: unknown }).final === true;
}

function timedOut(record: ActionSeen): boolean {
  return record.phase === 'FAILED' && record.error?.startsWith('timed out') === true;
}

function scheduleInput(op: RecordedOperation): ScheduleInput {
  return op.input as ScheduleInput;
}

/** Schedule ops by action id; the workload gives every op a fresh id, so a repeat is a harness bug. */
function indexSchedules(ops: readonly RecordedOperation[]): Map<string, RecordedOperation> {
  const schedules = new Map<string, RecordedOperation>();
  for (const op of ops) {
    if (op.f === 'read') continue;
    if (op.f !== 'schedule') throw new Error(`actions checker: op ${op.index} has f ${op.f}`);
    const input = op.input as Partial<ScheduleInput> | null;
    if (typeof input?.id !== 'string' || typeof input.kind !== 'string')
      throw new Error(`actions checker: schedule op ${op.index} has no id and kind: ${canonicalJson(op.input)}`);
    const earlier = schedules.get(input.id);
    if (earlier !== undefined)
      throw new Error(`actions checker: ops ${earlier.index} and ${op.index} both schedule ${input.id}`);
    schedules.set(input.id, op);
  }
  return schedules;
}

function snapshotOf(read: RecordedOperation, anomalies: Anomalies): ActionsSnapshot | undefined {
  const output = read.output as { queue?: unknown; finished?: unknown } | null;
  const queue: unknown = output?.queue;
  const finished: unknown = output?.finished;
  const valid =
    Array.isArray(queue) &&
    Array.isArray(finished) &&
    (queue as unknown[]).every((item) => isActionSeen(item)) &&
    (finished as unknown[]).every((item) => isActionSeen(item));
  if (!valid) {
    anomalies.add('malformed', `read op ${read.index} returned ${canonicalJson(read.output).slice(0, 200)}`);
    return undefined;
  }
  return output as ActionsSnapshot;
}

function isActionSeen(value: unknown): value is ActionSeen {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['id'] === 'string' &&
    typeof record['kind'] === 'string' &&
    phases.includes(record['phase'] as ActionPhase) &&
    (record['error'] === null || typeof record['error'] === 'string') &&
    typeof record['scheduledMs'] === 'number' &&
    (record['finishedMs'] === null || typeof record['finishedMs'] === 'number')
  );
}

/** One read on its own: phases in the right list, one RUNNING at most and it the oldest, no repeats, times in order. */
function checkSnapshot(read: RecordedOperation, snapshot: ActionsSnapshot, anomalies: Anomalies): void {
  const at = `read op ${read.index}`;
  const ids = new Set<string>();
  for (const record of [...snapshot.queue, ...snapshot.finished]) {
    if (ids.has(record.id)) anomalies.add('duplicate', `${at}: action ${record.id} appears twice`);
    ids.add(record.id);
  }
  for (const record of snapshot.queue)
    if (record.phase !== 'NEW' && record.phase !== 'RUNNING')
      anomalies.add('malformed', `${at}: ${record.id} is ${record.phase} but in the queue`);
  for (const record of snapshot.finished)
    if (record.phase !== 'DONE' && record.phase !== 'FAILED')
      anomalies.add('malformed', `${at}: ${record.id} is ${record.phase} but among the finished`);
  const running = snapshot.queue.filter((record) => record.phase === 'RUNNING');
  if (running.length > 1)
    anomalies.add(
      'concurrent',
      `${at}: ${running.length} actions RUNNING at once: ${running.map((r) => r.id).join(', ')}`,
    );
  // Queue order is log order: a RUNNING action behind a NEW one started out of turn.
  const firstNew = snapshot.queue.findIndex((record) => record.phase === 'NEW');
  snapshot.queue.forEach((record, index) => {
    if (record.phase === 'RUNNING' && firstNew >= 0 && index > firstNew)
      anomalies.add(
        'out-of-order',
        `${at}: ${record.id} is RUNNING while the older ${snapshot.queue[firstNew]?.id ?? '?'} is NEW`,
      );
  });
  let previous: ActionSeen | undefined;
  for (const record of snapshot.finished) {
    if (record.finishedMs === null || record.finishedMs < record.scheduledMs)
      anomalies.add(
        'times',
        `${at}: ${record.id} finished at ${record.finishedMs ?? 'null'}, scheduled at ${record.scheduledMs}`,
      );
    if (previous !== undefined && (record.finishedMs ?? Infinity) < (previous.finishedMs ?? -Infinity))
      anomalies.add(
        'times',
        `${at}: ${record.id} finished at ${record.finishedMs ?? 'null'}, before ${previous.id} that finished ahead of it at ${previous.finishedMs ?? 'null'}`,
      );
    previous = record;
  }
}

/**
 * The real-time order: schedules acknowledged, sorted by their return, with the running maximum of
 * their positions in one read (finished index; RUNNING right after the finished; NEW or absent
 * never). An action at position p whose schedule was invoked at time t needs every acknowledged
 * schedule that returned before t at a position below p.
 */
class ScheduleOrder {
  private readonly acknowledged: RecordedOperation[];
  private readonly calls = new Map<string, RecordedOperation>();

  constructor(schedules: readonly RecordedOperation[]) {
    this.acknowledged = schedules.filter((op) => op.status === 'ok').sort((a, b) => a.ret - b.ret);
    for (const op of schedules) this.calls.set(scheduleInput(op).id, op);
  }

  check(read: RecordedOperation, snapshot: ActionsSnapshot, anomalies: Anomalies): void {
    const position = new Map<string, number>();
    snapshot.finished.forEach((record, index) => position.set(record.id, index));
    for (const record of snapshot.queue)
      if (record.phase === 'RUNNING') position.set(record.id, snapshot.finished.length);
    const positionOf = (op: RecordedOperation): number => position.get(scheduleInput(op).id) ?? Infinity;
    const prefixMax: number[] = [];
    for (const op of this.acknowledged) prefixMax.push(Math.max(prefixMax.at(-1) ?? -Infinity, positionOf(op)));
    for (const [id, at] of position) {
      const op = this.calls.get(id);
      if (op === undefined) continue;
      const before = countBelow(this.acknowledged, op.call);
      if (before === 0 || (prefixMax[before - 1] ?? -Infinity) < at) continue;
      const earlier = this.acknowledged.slice(0, before).find((candidate) => positionOf(candidate) >= at);
      const earlierId = earlier === undefined ? '?' : scheduleInput(earlier).id;
      anomalies.add(
        'out-of-order',
        `read op ${read.index}: ${id} (schedule op ${op.index}) is ${at === snapshot.finished.length ? 'RUNNING' : `finished #${at}`}, but ${earlierId} (schedule op ${earlier?.index ?? '?'}), acknowledged before ${id} was scheduled, is ${describePosition(earlier === undefined ? Infinity : positionOf(earlier), snapshot)}`,
      );
    }
  }
}

function describePosition(at: number, snapshot: ActionsSnapshot): string {
  if (at === Infinity) return 'not started';
  if (at === snapshot.finished.length) return 'RUNNING';
  return `finished #${at}`;
}

/** How many ops (sorted by ret) returned strictly before time. */
function countBelow(sorted: readonly RecordedOperation[], time: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((sorted[middle]?.ret ?? Infinity) < time) low = middle + 1;
    else high = middle;
  }
  return low;
}

function checkAgainstSchedule(
  read: RecordedOperation,
  record: ActionSeen,
  schedules: ReadonlyMap<string, RecordedOperation>,
  anomalies: Anomalies,
): void {
  const op = schedules.get(record.id);
  const at = `read op ${read.index}`;
  if (op === undefined) {
    anomalies.add('unexpected', `${at}: action ${record.id} was never scheduled`);
    return;
  }
  if (op.status === 'fail')
    anomalies.add(
      'unexpected',
      `${at}: action ${record.id} is there, but its schedule (op ${op.index}) definitely failed`,
    );
  const input = scheduleInput(op);
  if (input.kind !== record.kind || canonicalJson(input.args ?? null) !== canonicalJson(record.args ?? null))
    anomalies.add(
      'mismatched',
      `${at}: action ${record.id} is ${record.kind} ${canonicalJson(record.args)}, scheduled as ${input.kind} ${canonicalJson(input.args)}`,
    );
}

function loopTarget(record: ActionSeen): number {
  const target = (record.args as { target?: unknown } | null)?.target;
  return typeof target === 'number' ? target : testLoopTargetDefault;
}

/** What each test kind's record may hold in each phase. */
function checkEffect(read: RecordedOperation, record: ActionSeen, anomalies: Anomalies): void {
  const wrong = (why: string): void => {
    anomalies.add(
      'wrong-effect',
      `read op ${read.index}: ${record.kind} ${record.id} ${record.phase} ${canonicalJson(record.payload)} error ${record.error ?? 'null'}: ${why}`,
    );
  };
  if (record.phase === 'NEW') {
    if (record.payload !== null) wrong('a NEW action has run nothing yet');
    return;
  }
  switch (record.kind) {
    case testSuccessKind:
      if (record.phase === 'FAILED' && !timedOut(record)) wrong('test.success never fails');
      return;
    case testFailKind:
      if (record.phase === 'DONE') wrong('test.fail never succeeds');
      if (record.phase === 'FAILED' && record.error !== testFailMessage && !timedOut(record))
        wrong(`test.fail fails with "${testFailMessage}"`);
      return;
    case testLoopKind: {
      const target = loopTarget(record);
      const payload = record.payload as { count?: unknown; target?: unknown } | null;
      if (payload === null) {
        if (record.phase === 'DONE' && target > 0) wrong(`a DONE test.loop counted to ${target}`);
        if (record.phase === 'FAILED' && !timedOut(record)) wrong('test.loop fails only by its timeout');
        return;
      }
      const count = payload.count;
      if (typeof count !== 'number' || payload.target !== target) {
        wrong(`the payload must be {count, target: ${target}}`);
        return;
      }
      if (count > target || count < 1) wrong(`count must be 1..${target}: one step at a time, each once`);
      else if (record.phase === 'DONE' && count !== target) wrong(`DONE with count ${count}, target ${target}`);
      else if (record.phase === 'RUNNING' && count >= target) wrong(`RUNNING with count ${count} >= target ${target}`);
      else if (record.phase === 'FAILED' && !timedOut(record)) wrong('test.loop fails only by its timeout');
      return;
    }
    default:
      wrong('the workload schedules test actions only');
  }
}
