// Turns a finished run into results.json: op counts, one entry per checker (the workload's own,
// liveness after the final heal, crashed nodes, and for the snapshot and membership nemeses whether
// their faults had their effect: nemesis-checks.ts) with a verdict, a one-line summary and the details
// a reader needs to find the problem, and the overall verdict. The overall verdict is invalid if
// any checker proved a violation (even in a run cut short: a proof stays a proof), else unknown if
// the harness failed or any checker could not decide, else valid.

import type { RecordedOperation } from '../checker/history.ts';
import { overallVerdict, type LinearizabilityResult, type Verdict } from '../checker/linearizability.ts';
import type { LivenessResult } from '../checker/liveness.ts';
import { registerModel } from '../checker/model.ts';
import type { NodeExit } from './db.ts';
import type { NemesisVerdict } from './nemesis-checks.ts';
import type { RunOptions } from './options.ts';
import type { Schedule } from './schedule.ts';
import type { OpCounts } from './overview.ts';
import type { WorkloadCheck } from './workloads.ts';

export interface RunSummary {
  readonly runDir: string;
  readonly argv: readonly string[];
  readonly options: RunOptions;
  readonly schedule: Schedule;
  readonly netem: string;
  readonly startedAt: string;
  readonly durationS: number;
  readonly phases: { mainStartNs: number; healNs: number; recoveryEndNs: number; finalEndNs: number };
  readonly harnessError: string | undefined;
  readonly crashes: readonly NodeExit[];
}

export interface CheckerSummary {
  readonly verdict: Verdict;
  readonly summary: string;
  readonly details?: unknown;
}

export interface RunResults {
  readonly verdict: Verdict;
  /** Jepsen's spelling of the verdict. */
  readonly 'valid?': boolean | 'unknown';
  readonly run: Omit<RunSummary, 'schedule'> & {
    readonly faults: number;
    readonly skippedNemeses: Schedule['skipped'];
  };
  readonly ops: OpCounts;
  readonly checkers: Record<string, CheckerSummary>;
  readonly harness: HarnessCost;
  /** The workload check itself, for the report (not serialised: results.json has the summary). */
  readonly workloadCheck: WorkloadCheck | undefined;
}

function describeOp(op: RecordedOperation): string {
  if (op.status === 'fail') return `op ${op.index} p${op.process} ${op.f} failed`;
  return `op ${op.index} p${op.process} ${registerModel.describeOperation(op as Parameters<typeof registerModel.describeOperation>[0])} [${(op.call / 1e9).toFixed(3)}s, ${op.ret === Infinity ? '∞' : `${(op.ret / 1e9).toFixed(3)}s`}]`;
}

function registerSummary(result: LinearizabilityResult): CheckerSummary {
  const counts = { valid: 0, invalid: 0, unknown: 0 };
  for (const partition of result.partitions) counts[partition.verdict]++;
  const invalid = result.partitions.filter((partition) => partition.verdict !== 'valid');
  return {
    verdict: result.verdict,
    summary: `${result.partitions.length} keys: ${counts.valid} linearizable, ${counts.invalid} not, ${counts.unknown} undecided; ${result.steps} search steps`,
    details: {
      steps: result.steps,
      keys: result.partitions.map((partition) => ({
        key: partition.key,
        verdict: partition.verdict,
        ops: partition.opCount,
        steps: partition.steps,
      })),
      failures: invalid.map((partition) => ({
        key: partition.key,
        verdict: partition.verdict,
        message: partition.failure?.message,
        blockedOp: partition.failure === undefined ? undefined : describeOp(partition.failure.blockedOp),
        stateAtBlock: partition.failure?.stateAtBlock,
        linearizedPrefix: partition.failure?.prefix.map((step) => `${describeOp(step.op)} -> ${step.stateAfter}`),
        pendingOps: partition.failure?.pendingOps.map(describeOp),
      })),
    },
  };
}

function workloadSummary(check: WorkloadCheck): CheckerSummary {
  switch (check.workload) {
    case 'register':
      return registerSummary(check.result);
    case 'set': {
      const keys = check.result.keys;
      const lost = keys.reduce((sum, key) => sum + key.lost.length, 0);
      const unexpected = keys.reduce(
        (sum, key) => sum + key.unexpected.length + key.failedPresent.length + key.duplicated.length,
        0,
      );
      const acknowledged = keys.reduce((sum, key) => sum + key.acknowledgedCount, 0);
      const attempted = keys.reduce((sum, key) => sum + key.attemptedCount, 0);
      return {
        verdict: check.verdict,
        summary: `${keys.length} sets: ${attempted} adds attempted, ${acknowledged} acknowledged, ${lost} lost, ${unexpected} unexpected/failed/duplicated elements read`,
        details: keys,
      };
    }
    case 'append': {
      const keys = check.result.keys;
      const anomalies = keys.flatMap((key) =>
        key.anomalies.map((anomaly) => ({ key: key.key, kind: anomaly.kind, message: anomaly.message })),
      );
      return {
        verdict: check.verdict,
        summary: `${keys.length} lists: ${keys.reduce((sum, key) => sum + key.appendCount, 0)} appends, ${keys.reduce((sum, key) => sum + key.readCount, 0)} reads, ${anomalies.length} anomalies`,
        details: {
          keys: keys.map((key) => ({
            key: key.key,
            verdict: key.verdict,
            appends: key.appendCount,
            acknowledged: key.acknowledgedCount,
            reads: key.readCount,
            finalLength: key.finalLength,
          })),
          anomalies,
        },
      };
    }
    case 'actions': {
      const result = check.result;
      const anomalies = Object.entries(result.anomalyCounts)
        .map(([kind, count]) => `${count} ${kind}`)
        .join(', ');
      return {
        verdict: check.verdict,
        summary:
          `${result.attempted} actions scheduled (${result.acknowledged} acknowledged, ${result.indeterminate} unknown, ${result.failed} failed), ${result.reads} reads; ` +
          (result.finalRead === undefined
            ? 'no final read'
            : `final read: ${result.finalRead.finished} finished (${result.done} DONE, ${result.failedRecords} FAILED, ${result.timedOut} of them timed out), ${result.finalRead.queued} queued`) +
          `; anomalies: ${anomalies === '' ? 'none' : anomalies}` +
          (result.unfinished.length > 0 ? `; ${result.unfinished.length} acknowledged never finished` : ''),
        details: result,
      };
    }
  }
}

/** What the streamed check of a history found (history-check.ts). */
export interface CheckedHistory {
  readonly ops: OpCounts;
  /** The workload's check, or why its checker failed. */
  readonly workloadCheck: WorkloadCheck | { readonly error: string };
  /** Undefined when the run never finished its recovery phase. */
  readonly liveness: LivenessResult | undefined;
  /** What the check cost the harness (results.json's `harness`). */
  readonly harness: HarnessCost;
  /** The snapshot and membership faults' checks (nemesis-checks.ts), when the run had any. */
  readonly nemesis?: NemesisVerdict | undefined;
}

export interface HarnessCost {
  /** The harness process's peak resident set size over the run and its check, bytes. */
  readonly peakRssBytes: number;
  readonly historyEvents: number;
  /** Reads of history.jsonl the check made (one overview pass, one per batch of keys). */
  readonly historyPasses: number;
}

export function checkRun(summary: RunSummary, workloadName: string, checked: CheckedHistory): RunResults {
  const checkers: Record<string, CheckerSummary> = {};
  const workloadCheck = 'error' in checked.workloadCheck ? undefined : checked.workloadCheck;
  checkers[workloadName] =
    workloadCheck === undefined
      ? {
          verdict: 'unknown',
          summary: `checker failed: ${'error' in checked.workloadCheck ? checked.workloadCheck.error : ''}`,
        }
      : workloadSummary(workloadCheck);
  const options = summary.options;
  const liveness = checked.liveness;
  if (liveness !== undefined) {
    checkers['liveness'] = {
      verdict: liveness.verdict,
      summary: `${liveness.checkedCount} ops invoked >= ${options.livenessGraceS} s after the heal judged (bound ${options.livenessBoundMs} ms), ${liveness.violationCount} violations`,
      details: {
        windowStartNs: liveness.windowStartNs,
        unjudged: liveness.unjudgedCount,
        violations: liveness.violations.slice(0, 50).map((violation) => violation.message),
      },
    };
  } else {
    checkers['liveness'] = { verdict: 'unknown', summary: 'not judged: the run never finished its recovery phase' };
  }
  const crashes = summary.crashes;
  checkers['crashes'] = {
    verdict: crashes.length > 0 ? 'invalid' : 'valid',
    summary:
      crashes.length > 0
        ? `${crashes.length} node exits the harness did not cause: ${crashes.map((crash) => `node ${crash.node} at ${(crash.time / 1e9).toFixed(1)} s (code ${crash.code ?? '-'}, signal ${crash.signal ?? '-'})`).join('; ')}`
        : 'no node exited unexpectedly',
  };
  if (checked.nemesis !== undefined) checkers['nemesis'] = checked.nemesis;
  let verdict = overallVerdict(Object.values(checkers));
  if (verdict === 'valid' && summary.harnessError !== undefined) verdict = 'unknown';
  const { schedule, ...run } = summary;
  return {
    verdict,
    'valid?': verdict === 'unknown' ? 'unknown' : verdict === 'valid',
    run: { ...run, faults: schedule.faults.length, skippedNemeses: schedule.skipped },
    ops: checked.ops,
    checkers,
    harness: checked.harness,
    workloadCheck,
  };
}

/** results.json without the bulky workload check (its summary is in `checkers`). */
export function serialisable(results: RunResults): RunResults {
  return { ...results, workloadCheck: undefined };
}
