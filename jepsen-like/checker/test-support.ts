// Helpers for the checker's tests: compact builders for hand-made histories, and the simulation
// of correct concurrent executions used by the property tests. A simulated execution is correct by
// construction: every op that takes effect gets a linearization point inside its interval, and
// outputs come from running the ops in linearization-point order against a sequential object.
// Written values are unique across the whole run, which is what makes the tests' mutations
// provably illegal.

import type { HistoryEvent, OpFunction, Operation, RecordedOperation } from './history.ts';

export interface OpSpec {
  process?: number;
  f: OpFunction;
  key?: string;
  input?: unknown;
  output?: unknown;
  call: number;
  /** Omitted for info ops: they return at Infinity. */
  ret?: number;
  status?: 'ok' | 'info' | 'fail';
}

/** Recorded ops (fails allowed) from specs; indices follow the given order, processes default to the position. */
export function recordedOps(...specs: OpSpec[]): RecordedOperation[] {
  return specs.map((spec, index) => {
    const status = spec.status ?? 'ok';
    const ret = status === 'info' ? Infinity : (spec.ret ?? spec.call);
    return {
      index,
      process: spec.process ?? index,
      f: spec.f,
      key: spec.key,
      input: spec.input ?? null,
      output: status === 'info' ? undefined : (spec.output ?? spec.input ?? null),
      call: spec.call,
      ret,
      completionTime: spec.ret ?? Infinity,
      status,
    };
  });
}

/** Ops for the linearizability checker: specs with status fail are not allowed. */
export function ops(...specs: OpSpec[]): Operation[] {
  return recordedOps(...specs).map((op) => {
    if (op.status === 'fail') throw new Error('ops(): a failed op never reaches the linearizability checker');
    return { ...op, status: op.status };
  });
}

// ---- Simulated register executions -------------------------------------------------------------

/** One op of a simulated process, as random choices; executeRegisterPlan gives them meaning. */
export interface PlannedOp {
  /** 0..2: read, write, cas. */
  kind: number;
  keyChoice: number;
  gapNs: number;
  durationNs: number;
  /** Where in [call, ret] the op takes effect, as a fraction. */
  pointFraction: number;
  /** 0..9: 0 info, 1 no completion (only honoured for a process's last op), otherwise ok. */
  outcome: number;
  /** For info writes and cas: whether the op took effect. */
  tookEffect: boolean;
  /** For cas: even means expect the current value, odd means expect a value picked by expectedChoice. */
  casChoice: number;
}

export interface RegisterPlan {
  keyCount: number;
  processes: PlannedOp[][];
}

interface SimulatedOp {
  process: number;
  f: 'read' | 'write' | 'cas';
  key: string;
  input: unknown;
  output: unknown;
  call: number;
  ret: number;
  point: number;
  completion: 'ok' | 'fail' | 'info' | 'none';
  tookEffect: boolean;
  casChoice: number;
}

/** Turns a plan into a correct history of events, in time order. */
export function executeRegisterPlan(plan: RegisterPlan): HistoryEvent[] {
  const simulated = layOutOps(plan);
  const byPoint = [...simulated].sort((a, b) => a.point - b.point || a.process - b.process);
  const current = new Map<string, unknown>();
  const written: unknown[] = [];
  let nextValue = 1;
  for (const op of byPoint) {
    const value = current.get(op.key) ?? null;
    if (op.f === 'read') {
      op.output = value;
    } else if (op.f === 'write') {
      op.input = nextValue++;
      if (op.tookEffect) current.set(op.key, op.input);
    } else {
      const expected = op.casChoice % 2 === 0 ? value : (written[op.casChoice % Math.max(1, written.length)] ?? null);
      op.input = [expected, nextValue++];
      const applies = expected === value && op.tookEffect;
      if (applies) current.set(op.key, nextValue - 1);
      if (!applies && op.completion === 'ok') op.completion = 'fail';
    }
    if (op.f !== 'read') written.push(nextValue - 1);
  }
  return toEvents(simulated);
}

function layOutOps(plan: RegisterPlan): SimulatedOp[] {
  const simulated: SimulatedOp[] = [];
  for (const [process, planned] of plan.processes.entries()) {
    let timeNs = 0;
    for (const [i, step] of planned.entries()) {
      const call = timeNs + step.gapNs;
      const ret = call + step.durationNs;
      timeNs = ret;
      const last = i === planned.length - 1;
      const completion = step.outcome === 0 ? 'info' : step.outcome === 1 && last ? 'none' : 'ok';
      simulated.push({
        process,
        f: step.kind === 0 ? 'read' : step.kind === 1 ? 'write' : 'cas',
        key: `k${step.keyChoice % plan.keyCount}`,
        input: null,
        output: null,
        call,
        ret,
        point: call + step.pointFraction * step.durationNs,
        completion,
        tookEffect: completion === 'ok' || step.tookEffect,
        casChoice: step.casChoice,
      });
    }
  }
  return simulated;
}

/** Events per process in program order, then stably sorted by time, as a recorder would write them. */
function toEvents(simulated: readonly SimulatedOp[]): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const op of simulated) {
    events.push({
      process: op.process,
      type: 'invoke',
      f: op.f,
      key: op.key,
      value: op.f === 'read' ? null : op.input,
      time: op.call,
    });
    if (op.completion === 'none') continue;
    const value = op.completion === 'ok' ? (op.f === 'read' ? op.output : op.input) : op.f === 'read' ? null : op.input;
    events.push({ process: op.process, type: op.completion, f: op.f, key: op.key, value, time: op.ret });
  }
  return events.sort((a, b) => a.time - b.time);
}

export function toJsonl(events: readonly HistoryEvent[]): string {
  return events.map((event) => JSON.stringify(event)).join('\n') + '\n';
}
