// The control plane's safety checks in the host simulator (./host-control.ts runs the meta model
// and the action executor there). Checked after every meta entry a replica applies, and after a
// snapshot restore, on that replica's model, so every state a replica passes through is seen:
//   - at most one action RUNNING;
//   - actions run in schedule order: a RUNNING action is the oldest unfinished one, the finished
//     are in the order their schedule entries hold in the log, and all of them precede (in the
//     log) every unfinished one;
//   - each action's effect applied once: an id's schedule is accepted at one log index only; every
//     accepted test.loop step moves its count by exactly one (a step applied twice, or planned
//     from a stale record, would repeat or skip a count); a DONE test.loop counted to its target,
//     test.success is DONE and test.fail FAILED with its message (or either timed out).
// At the end, over the clients' schedule calls: an action whose schedule returned before another's
// was invoked has the earlier schedule entry (real-time order), and every acknowledged action is in
// the model of the replica that applied the most.
//
// Called by: test/sim/host-control.ts.

import type { ActionRecord, MetaCommand } from '../../src/codec/meta.ts';
import {
  testFailKind,
  testFailMessage,
  testLoopKind,
  testLoopTargetDefault,
  testSuccessKind,
} from '../../src/control/action-kinds.ts';
import type { MetaModel, MetaOutcome } from '../../src/models/meta.ts';
import type { NodeId } from '../../src/base/ids.ts';
import { SimulationFailure } from './host-invariants.ts';

/** One schedule call of the simulated clients (retries with the same id inside it). */
export interface ScheduleCall {
  readonly id: string;
  readonly call: number;
  ret: number;
  status: 'ok' | 'fail' | 'info';
}

function fail(message: string): never {
  throw new SimulationFailure(message);
}

function loopCount(record: ActionRecord | undefined): number {
  const count = (record?.state.payload as { count?: unknown } | null | undefined)?.count;
  return typeof count === 'number' ? count : 0;
}

function loopTarget(record: ActionRecord): number {
  const target = (record.args as { target?: unknown } | null)?.target;
  return typeof target === 'number' ? target : testLoopTargetDefault;
}

function errorMessage(record: ActionRecord): string | undefined {
  const message = (record.state.error as { error_msg?: unknown } | null)?.error_msg;
  return typeof message === 'string' ? message : undefined;
}

function timedOut(record: ActionRecord): boolean {
  return record.state.phase === 'FAILED' && errorMessage(record)?.startsWith('timed out') === true;
}

export class ControlChecker {
  /** The log index of each action's accepted schedule entry: the same on every replica. */
  private readonly scheduledAt = new Map<string, number>();
  readonly calls: ScheduleCall[] = [];
  /** Accepted test.loop counting steps, over every replica. */
  loopStepsApplied = 0;

  /** A replica applied a meta entry; `before` is the action's record before it (update commands). */
  onApplied(
    node: NodeId,
    index: number,
    command: MetaCommand,
    before: ActionRecord | undefined,
    outcome: MetaOutcome | undefined,
    model: MetaModel,
  ): void {
    const where = `node ${node} at meta index ${index}`;
    if (outcome?.ok === true && command.type === 'action.schedule') {
      const id = command.action.id;
      const earlier = this.scheduledAt.get(id);
      if (earlier !== undefined && earlier !== index)
        fail(`actions: ${where}: action ${id} scheduled again (first at index ${earlier})`);
      this.scheduledAt.set(id, index);
    }
    if (outcome?.ok === true && command.type === 'action.update' && before?.kind === testLoopKind) {
      const after = model.action(command.id);
      // A counting step (a timeout's FAILED keeps the payload as it was).
      if (command.state.phase !== 'FAILED' && command.state.payload !== null) {
        this.loopStepsApplied++;
        if (loopCount(after) !== loopCount(before) + 1)
          fail(
            `actions: each action's effect once: ${where}: test.loop ${command.id} went from count ${loopCount(before)} to ${loopCount(after)}`,
          );
      }
    }
    this.checkState(model, where);
  }

  /** The rules every state of a replica's model keeps. */
  checkState(model: MetaModel, where: string): void {
    const queue = model.queue();
    const running = queue.filter((record) => record.state.phase === 'RUNNING');
    if (running.length > 1)
      fail(`actions: at most one RUNNING: ${where}: ${running.map((record) => record.id).join(', ')} are RUNNING`);
    const first = queue[0];
    const runningOne = running[0];
    if (runningOne !== undefined && first !== runningOne)
      fail(
        `actions: schedule order: ${where}: ${runningOne.id} is RUNNING while the older ${first?.id ?? '?'} is ${first?.state.phase ?? '?'}`,
      );
    let previous = -Infinity;
    for (const record of model.finishedActions()) {
      this.checkFinished(record, where);
      const at = this.scheduledAt.get(record.id) ?? previous;
      if (at < previous)
        fail(
          `actions: finish in schedule order: ${where}: ${record.id} (scheduled at ${at}) finished after one scheduled at ${previous}`,
        );
      previous = at;
    }
    for (const record of queue) {
      const at = this.scheduledAt.get(record.id);
      if (at !== undefined && at < previous)
        fail(
          `actions: finish in schedule order: ${where}: ${record.id} (scheduled at ${at}) is unfinished, one scheduled at ${previous} finished`,
        );
    }
  }

  private checkFinished(record: ActionRecord, where: string): void {
    const wrong = (why: string): never =>
      fail(
        `actions: each action's effect once: ${where}: ${record.kind} ${record.id} ${JSON.stringify(record.state)}: ${why}`,
      );
    if (timedOut(record)) return;
    switch (record.kind) {
      case testSuccessKind:
        if (record.state.phase !== 'DONE') wrong('test.success is DONE');
        return;
      case testFailKind:
        if (record.state.phase !== 'FAILED' || errorMessage(record) !== testFailMessage)
          wrong(`test.fail fails with "${testFailMessage}"`);
        return;
      case testLoopKind:
        if (record.state.phase !== 'DONE' || loopCount(record) !== loopTarget(record))
          wrong('test.loop counts to its target');
        return;
      default:
        wrong('the simulator schedules test actions only');
    }
  }

  /** At the end: real-time order of the acknowledged schedules, and none of them lost. */
  checkEnd(mostApplied: MetaModel | undefined): void {
    const acknowledged = this.calls.filter((call) => call.status === 'ok').sort((a, b) => a.ret - b.ret);
    for (const call of acknowledged) {
      if (!this.scheduledAt.has(call.id))
        fail(`actions: ${call.id} was acknowledged but no replica applied its schedule`);
      if (mostApplied !== undefined && mostApplied.action(call.id) === undefined)
        fail(`actions: acknowledged ${call.id} is missing from the replica that applied the most`);
    }
    // For each call, the acknowledged ones that returned before it was invoked have earlier entries.
    let latestBefore = -Infinity;
    let next = 0;
    for (const call of [...this.calls].sort((a, b) => a.call - b.call)) {
      for (; next < acknowledged.length && (acknowledged[next]?.ret ?? Infinity) < call.call; next++)
        latestBefore = Math.max(latestBefore, this.scheduledAt.get(acknowledged[next]?.id ?? '') ?? -Infinity);
      const at = this.scheduledAt.get(call.id);
      if (at !== undefined && at <= latestBefore)
        fail(
          `actions: schedule order: ${call.id} (invoked at ${call.call} ms) is at index ${at}, not after index ${latestBefore} of an action acknowledged before it`,
        );
    }
  }

  get scheduled(): number {
    return this.scheduledAt.size;
  }
}
