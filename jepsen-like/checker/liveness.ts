// Liveness after healing: once the nemesis has healed the cluster and a grace period has passed,
// every operation invoked must complete ok within a bound. A fail, an info (the client gave up) or
// a slow ok is a violation. An op with no completion at all is a violation only if the history
// ran on for at least the bound after its call; otherwise the run simply ended too soon to judge.
// With nothing invoked in the window the verdict is 'unknown': liveness was not exercised.

import type { RecordedOperation } from './history.ts';
import type { Verdict } from './linearizability.ts';

export interface LivenessOptions {
  /** When the last fault was healed. */
  healTimeNs: number;
  /** How long the cluster may take to recover after healing; ops invoked earlier are not judged. */
  graceNs: number;
  /** The longest acceptable latency of an op invoked after heal + grace. */
  boundNs: number;
  /** When the history ended; defaults to the last call or completion time among ops. */
  historyEndNs?: number;
}

export type LivenessReason = 'failed' | 'indeterminate' | 'slow' | 'no-completion';

export interface LivenessViolation {
  op: RecordedOperation;
  reason: LivenessReason;
  /** Call to completion; Infinity when the op never completed. */
  latencyNs: number;
  message: string;
}

export interface LivenessResult {
  verdict: Verdict;
  /** Ops invoked at or after heal + grace that were judged. */
  checkedCount: number;
  /** Ops in the window left unjudged because the history ended within the bound of their call. */
  unjudgedCount: number;
  windowStartNs: number;
  violations: LivenessViolation[];
}

/** Checks ops (fails included) for completion after healing. */
export function checkLiveness(ops: readonly RecordedOperation[], options: LivenessOptions): LivenessResult {
  const { healTimeNs, graceNs, boundNs } = options;
  for (const [name, value] of Object.entries({ healTimeNs, graceNs, boundNs })) {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`liveness: ${name} must be a finite number >= 0, got ${value}`);
  }
  const windowStartNs = healTimeNs + graceNs;
  const historyEndNs = options.historyEndNs ?? lastTime(ops);
  const violations: LivenessViolation[] = [];
  let checkedCount = 0;
  let unjudgedCount = 0;
  for (const op of ops) {
    if (op.call < windowStartNs) continue;
    if (op.completionTime === Infinity && historyEndNs - op.call < boundNs) {
      unjudgedCount++;
      continue;
    }
    checkedCount++;
    const violation = judge(op, boundNs);
    if (violation !== null) violations.push(violation);
  }
  const verdict: Verdict = violations.length > 0 ? 'invalid' : checkedCount === 0 ? 'unknown' : 'valid';
  return { verdict, checkedCount, unjudgedCount, windowStartNs, violations };
}

function judge(op: RecordedOperation, boundNs: number): LivenessViolation | null {
  const latencyNs = op.completionTime - op.call;
  const what = `process ${op.process}'s ${op.f} (op ${op.index}) invoked at ${op.call} ns`;
  if (op.completionTime === Infinity) {
    return { op, reason: 'no-completion', latencyNs, message: `${what} never completed` };
  }
  if (op.status === 'fail') return { op, reason: 'failed', latencyNs, message: `${what} failed after ${latencyNs} ns` };
  if (op.status === 'info') {
    return {
      op,
      reason: 'indeterminate',
      latencyNs,
      message: `${what} ended with an unknown outcome after ${latencyNs} ns`,
    };
  }
  if (latencyNs > boundNs) {
    return {
      op,
      reason: 'slow',
      latencyNs,
      message: `${what} took ${latencyNs} ns, more than the bound of ${boundNs} ns`,
    };
  }
  return null;
}

function lastTime(ops: readonly RecordedOperation[]): number {
  let last = 0;
  for (const op of ops) {
    last = Math.max(last, op.call);
    if (op.completionTime !== Infinity) last = Math.max(last, op.completionTime);
  }
  return last;
}
