// What the report and results.json need from a run's whole history, folded op by op so a run of
// any length costs the same memory: op counts, completions per second, the largest latency, a
// bounded sample of latencies, the first timelineOpsMax ops for the timeline, and the history's end.
// Nothing here grows with the number of ops: per-second buckets grow with the run's seconds
// (bounded by secondsMax), the samples and the timeline have fixed caps. Fed by history-check.ts
// as it streams history.jsonl; read by report.ts and results.ts.

import type { RecordedOperation } from '../checker/history.ts';

export interface OpCounts {
  total: number;
  ok: number;
  fail: number;
  info: number;
  byFunction: Record<string, { ok: number; fail: number; info: number }>;
}

export interface LatencySample {
  readonly callNs: number;
  readonly latencyMs: number;
  readonly status: RecordedOperation['status'];
}

export interface TimelineOp {
  readonly op: RecordedOperation;
  readonly error: string | undefined;
}

/** Latency points drawn at most (the plot thins the ops evenly to stay under it). */
export const latencySamplesMax = 20_000;
/** Ops the timeline draws at most: the first ones of the run. */
export const timelineOpsMax = 30_000;
/** Seconds of completions counted per second; later completions land in the last bucket. */
export const secondsMax = 7 * 24 * 3600;

type Status = RecordedOperation['status'];

export class RunOverview {
  readonly counts: OpCounts = { total: 0, ok: 0, fail: 0, info: 0, byFunction: {} };
  /** Completions per second of the run, per outcome. */
  readonly perSecond: Record<Status, number[]> = { ok: [], fail: [], info: [] };
  readonly timeline: TimelineOp[] = [];
  /** Every stride-th completed op, the stride doubling whenever the sample would pass its cap. */
  latencySamples: LatencySample[] = [];
  latencyMsMax = 0;
  /** The latest call or completion time seen, ns. */
  lastNs = 0;
  private stride = 1;
  private completed = 0;

  /** Adds one finished (or never finished) op, with the error its completion carried. */
  add(op: RecordedOperation, error: string | undefined): void {
    this.counts.total++;
    this.counts[op.status]++;
    const entry = (this.counts.byFunction[op.f] ??= { ok: 0, fail: 0, info: 0 });
    entry[op.status]++;
    this.lastNs = Math.max(this.lastNs, op.call);
    if (this.timeline.length < timelineOpsMax) this.timeline.push({ op, error });
    if (op.completionTime === Infinity) return;
    this.lastNs = Math.max(this.lastNs, op.completionTime);
    const second = Math.min(secondsMax - 1, Math.floor(op.completionTime / 1e9));
    const series = this.perSecond[op.status];
    while (series.length <= second) series.push(0);
    series[second] = (series[second] ?? 0) + 1;
    const latencyMs = Math.max(0.1, (op.completionTime - op.call) / 1e6);
    this.latencyMsMax = Math.max(this.latencyMsMax, latencyMs);
    if (this.completed++ % this.stride !== 0) return;
    this.latencySamples.push({ callNs: op.call, latencyMs, status: op.status });
    if (this.latencySamples.length >= latencySamplesMax) {
      this.stride *= 2;
      this.latencySamples = this.latencySamples.filter((_, i) => i % 2 === 0);
    }
  }

  /** The largest count in any second, any outcome (1 when nothing completed). */
  perSecondMax(): number {
    let max = 1;
    for (const series of Object.values(this.perSecond)) for (const count of series) max = Math.max(max, count);
    return max;
  }
}
