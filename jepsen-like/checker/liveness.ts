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
  /** Every violation found; `violations` keeps the first livenessViolationsMax of them. */
  violationCount: number;
  violations: LivenessViolation[];
}

/** Violations kept in full; the rest are counted (a dead cluster makes every op one). */
export const livenessViolationsMax = 1000;

/**
 * The liveness check as a fold, for histories streamed op by op: add every op (fails included),
 * then ask for the result. Memory: the ops never completed (at most one per process) and the first
 * livenessViolationsMax violations.
 */
export class LivenessFold {
  private readonly options: LivenessOptions;
  private readonly windowStartNs: number;
  private readonly uncompleted: RecordedOperation[] = [];
  private readonly violations: LivenessViolation[] = [];
  private violationCount = 0;
  private checkedCount = 0;
  private lastNs = 0;

  constructor(options: LivenessOptions) {
    const { healTimeNs, graceNs, boundNs } = options;
    for (const [name, value] of Object.entries({ healTimeNs, graceNs, boundNs })) {
      if (!Number.isFinite(value) || value < 0)
        throw new RangeError(`liveness: ${name} must be a finite number >= 0, got ${value}`);
    }
    this.options = options;
    this.windowStartNs = healTimeNs + graceNs;
  }

  add(op: RecordedOperation): void {
    this.lastNs = Math.max(this.lastNs, op.call, op.completionTime === Infinity ? 0 : op.completionTime);
    if (op.call < this.windowStartNs) return;
    // Whether an op never completed can be judged depends on when the history ends: judge it last.
    if (op.completionTime === Infinity) this.uncompleted.push(op);
    else this.judgeOne(op);
  }

  private judgeOne(op: RecordedOperation): void {
    this.checkedCount++;
    const violation = judge(op, this.options.boundNs);
    if (violation === null) return;
    this.violationCount++;
    if (this.violations.length < livenessViolationsMax) this.violations.push(violation);
  }

  result(): LivenessResult {
    const historyEndNs = this.options.historyEndNs ?? this.lastNs;
    let unjudgedCount = 0;
    for (const op of this.uncompleted) {
      if (historyEndNs - op.call < this.options.boundNs) unjudgedCount++;
      else this.judgeOne(op);
    }
    this.uncompleted.length = 0;
    const verdict: Verdict = this.violationCount > 0 ? 'invalid' : this.checkedCount === 0 ? 'unknown' : 'valid';
    return {
      verdict,
      checkedCount: this.checkedCount,
      unjudgedCount,
      windowStartNs: this.windowStartNs,
      violationCount: this.violationCount,
      violations: this.violations,
    };
  }
}

/** Checks ops (fails included) for completion after healing. */
export function checkLiveness(ops: readonly RecordedOperation[], options: LivenessOptions): LivenessResult {
  const fold = new LivenessFold(options);
  for (const op of ops) fold.add(op);
  return fold.result();
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
