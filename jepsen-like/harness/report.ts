// report.html: one self-contained page per run, inline SVG only. It shows the verdicts, the op
// counts, throughput and latency over time with the fault periods shaded (Jepsen's perf plots), the
// operation timeline (one lane per worker, a bar from invocation to completion coloured by outcome),
// the nemesis log, and for an invalid register key a Porcupine-style view of that key's ops: the
// longest linearizable prefix the search found in green, the op that could not be placed in red,
// the ops pending at that point in orange, and a line at the instant past which no linearization
// exists. Everything is escaped; the page loads nothing from anywhere.

import { writeFileSync } from 'node:fs';
import type { RecordedOperation } from '../checker/history.ts';
import type { LinearizationFailure } from '../checker/linearizability.ts';
import { registerModel } from '../checker/model.ts';
import type { NemesisEntry } from './history-recorder.ts';
import type { RunOverview } from './overview.ts';
import type { RunResults, RunSummary } from './results.ts';
import { serialisable } from './results.ts';
import type { Workload } from './workloads.ts';

const width = 1100;
const marginLeft = 60;
const marginRight = 20;
const plotWidth = width - marginLeft - marginRight;
const colours = { ok: '#2e7d32', fail: '#c62828', info: '#ef6c00' } as const;

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/gu,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

interface Interval {
  startS: number;
  endS: number;
  label: string;
  kind: string;
}

/** Fault periods from the nemesis log: start..stop per fault index, anything still open ends at the heal. */
function faultIntervals(entries: readonly NemesisEntry[], endS: number): Interval[] {
  const open = new Map<number, NemesisEntry>();
  const intervals: Interval[] = [];
  for (const entry of entries) {
    if (entry.type === 'start' && entry.fault !== undefined) open.set(entry.fault, entry);
    if ((entry.type === 'stop' && entry.fault !== undefined) || entry.type === 'heal') {
      const starts =
        entry.type === 'heal'
          ? [...open.values()]
          : [open.get(entry.fault ?? -1)].filter((x): x is NemesisEntry => x !== undefined);
      for (const start of starts) {
        intervals.push({
          startS: start.time / 1e9,
          endS: entry.time / 1e9,
          label: start.kind,
          kind: start.kind.split('-')[0] ?? start.kind,
        });
        if (start.fault !== undefined) open.delete(start.fault);
      }
    }
  }
  for (const start of open.values())
    intervals.push({ startS: start.time / 1e9, endS, label: start.kind, kind: start.kind.split('-')[0] ?? start.kind });
  return intervals;
}

const faultColours: Record<string, string> = {
  partition: '#90caf9',
  kill: '#ef9a9a',
  pause: '#ce93d8',
  proxy: '#a5d6a7',
  transfer: '#fff59d',
};

function shading(
  intervals: readonly Interval[],
  x: (s: number) => number,
  top: number,
  height: number,
  labels: boolean,
): string {
  return intervals
    .map((interval) => {
      const x0 = x(interval.startS);
      const w = Math.max(1, x(interval.endS) - x0);
      const fill = faultColours[interval.kind] ?? '#e0e0e0';
      const label = labels
        ? `<text x="${(x0 + 2).toFixed(1)}" y="${top + 10}" font-size="9" fill="#555">${escapeHtml(interval.label)}</text>`
        : '';
      return `<rect x="${x0.toFixed(1)}" y="${top}" width="${w.toFixed(1)}" height="${height}" fill="${fill}" opacity="0.35"><title>${escapeHtml(`${interval.label} ${interval.startS.toFixed(1)}-${interval.endS.toFixed(1)} s`)}</title></rect>${label}`;
    })
    .join('');
}

function timeAxis(x: (s: number) => number, endS: number, y: number): string {
  const step = endS > 120 ? 20 : endS > 60 ? 10 : endS > 20 ? 5 : 1;
  let ticks = '';
  for (let s = 0; s <= endS; s += step)
    ticks += `<line x1="${x(s).toFixed(1)}" y1="${y}" x2="${x(s).toFixed(1)}" y2="${y + 4}" stroke="#333"/><text x="${x(s).toFixed(1)}" y="${y + 15}" font-size="10" text-anchor="middle">${s}s</text>`;
  return `<line x1="${marginLeft}" y1="${y}" x2="${width - marginRight}" y2="${y}" stroke="#333"/>${ticks}`;
}

/** Dashed lines at the final heal and at the start of the final reads. */
function phaseMarkers(phases: RunSummary['phases'], x: (s: number) => number, top: number, height: number): string {
  const marks: [number, string][] = [
    [phases.healNs, 'heal'],
    [phases.recoveryEndNs, 'final reads'],
  ];
  return marks
    .filter(([ns]) => ns > 0)
    .map(
      ([ns, label]) =>
        `<line x1="${x(ns / 1e9).toFixed(1)}" x2="${x(ns / 1e9).toFixed(1)}" y1="${top}" y2="${top + height}" stroke="#333" stroke-dasharray="3 3"/><text x="${(x(ns / 1e9) + 3).toFixed(1)}" y="${top + height - 4}" font-size="9">${label}</text>`,
    )
    .join('');
}

function throughputPlot(
  overview: RunOverview,
  intervals: readonly Interval[],
  endS: number,
  phases: RunSummary['phases'],
): string {
  const height = 220;
  const top = 10;
  const plotHeight = height - 40;
  const buckets = Math.max(1, Math.ceil(endS));
  const max = overview.perSecondMax();
  const x = (s: number): number => marginLeft + (s / endS) * plotWidth;
  const y = (value: number): number => top + plotHeight - (value / max) * plotHeight;
  const lines = (['ok', 'fail', 'info'] as const)
    .map((type) => {
      const series = overview.perSecond[type];
      let points = '';
      for (let i = 0; i < buckets; i++) {
        // Completions recorded after endS (none in a finished run) join the last second drawn.
        let value = series[i] ?? 0;
        if (i === buckets - 1) for (let j = buckets; j < series.length; j++) value += series[j] ?? 0;
        points += `${i === 0 ? '' : ' '}${x(i + 0.5).toFixed(1)},${y(value).toFixed(1)}`;
      }
      return `<polyline fill="none" stroke="${colours[type]}" stroke-width="1.5" points="${points}"><title>${type} ops/s</title></polyline>`;
    })
    .join('');
  const yTicks = [0, max / 2, max]
    .map(
      (value) =>
        `<text x="${marginLeft - 4}" y="${y(value) + 3}" font-size="10" text-anchor="end">${Math.round(value)}</text>`,
    )
    .join('');
  return `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${shading(intervals, x, top, plotHeight, true)}${phaseMarkers(phases, x, top, plotHeight)}${lines}${yTicks}${timeAxis(x, endS, top + plotHeight)}<text x="12" y="${top + plotHeight / 2}" font-size="10" transform="rotate(-90 12 ${top + plotHeight / 2})">ops/s completed</text></svg>`;
}

function latencyPlot(overview: RunOverview, intervals: readonly Interval[], endS: number): string {
  const height = 260;
  const top = 10;
  const plotHeight = height - 40;
  const maxMs = Math.max(10, overview.latencyMsMax);
  const logMin = Math.log10(0.1);
  const logMax = Math.log10(maxMs);
  const x = (s: number): number => marginLeft + (s / endS) * plotWidth;
  const y = (ms: number): number => top + plotHeight - ((Math.log10(ms) - logMin) / (logMax - logMin)) * plotHeight;
  let points = '';
  for (const sample of overview.latencySamples)
    points += `<circle cx="${x(sample.callNs / 1e9).toFixed(1)}" cy="${y(sample.latencyMs).toFixed(1)}" r="1.4" fill="${colours[sample.status]}"/>`;
  let yTicks = '';
  for (let decade = 0.1; decade <= maxMs * 1.01; decade *= 10)
    yTicks += `<text x="${marginLeft - 4}" y="${y(decade) + 3}" font-size="10" text-anchor="end">${decade >= 1 ? decade.toFixed(0) : decade}</text><line x1="${marginLeft}" x2="${width - marginRight}" y1="${y(decade)}" y2="${y(decade)}" stroke="#eee"/>`;
  return `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${yTicks}${shading(intervals, x, top, plotHeight, false)}${points}${timeAxis(x, endS, top + plotHeight)}<text x="12" y="${top + plotHeight / 2}" font-size="10" transform="rotate(-90 12 ${top + plotHeight / 2})">latency ms (log)</text></svg>`;
}

function opTitle(op: RecordedOperation, error: string | undefined): string {
  const ret = op.completionTime === Infinity ? 'never' : `${(op.completionTime / 1e9).toFixed(3)}s`;
  const io = `${JSON.stringify(op.input)}${op.status === 'ok' && op.f === 'read' ? ` -> ${JSON.stringify(op.output)}` : ''}`;
  return `op ${op.index} p${op.process} ${op.f} ${op.key ?? ''} ${io.slice(0, 120)} ${op.status} [${(op.call / 1e9).toFixed(3)}s .. ${ret}]${error === undefined ? '' : ` ${error}`}`;
}

function timelinePlot(
  overview: RunOverview,
  intervals: readonly Interval[],
  endS: number,
  lanes: number,
  finalStartNs: number,
): string {
  const laneHeight = lanes > 40 ? 4 : 12;
  const top = 10;
  const laneCount = lanes + 1; // the last lane holds the final reads
  const plotHeight = laneCount * laneHeight;
  const height = plotHeight + 40;
  const x = (s: number): number => marginLeft + (s / endS) * plotWidth;
  let bars = '';
  for (const { op, error } of overview.timeline) {
    const lane = finalStartNs > 0 && op.call >= finalStartNs ? lanes : op.process % lanes;
    const x0 = x(op.call / 1e9);
    const end = op.completionTime === Infinity ? endS : op.completionTime / 1e9;
    bars += `<rect x="${x0.toFixed(1)}" y="${top + lane * laneHeight + 1}" width="${Math.max(0.8, x(end) - x0).toFixed(1)}" height="${laneHeight - 2}" fill="${colours[op.status]}"><title>${escapeHtml(opTitle(op, error))}</title></rect>`;
  }
  const total = overview.counts.total;
  const note =
    total > overview.timeline.length
      ? `<p>Timeline shows the first ${overview.timeline.length} of ${total} ops.</p>`
      : '';
  const labels =
    laneHeight < 10
      ? ''
      : Array.from(
          { length: laneCount },
          (_, lane) =>
            `<text x="${marginLeft - 4}" y="${top + lane * laneHeight + laneHeight - 3}" font-size="9" text-anchor="end">${lane === lanes ? 'final' : `w${lane}`}</text>`,
        ).join('');
  return `${note}<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${shading(intervals, x, top, plotHeight, false)}${bars}${labels}${timeAxis(x, endS, top + plotHeight)}</svg>`;
}

/** Porcupine-style view of one invalid key. */
function failurePlot(key: string, keyOps: readonly RecordedOperation[], failure: LinearizationFailure): string {
  const prefix = new Map(failure.prefix.map((step, i) => [step.op.index, { order: i + 1, state: step.stateAfter }]));
  const pending = new Set(failure.pendingOps.map((op) => op.index));
  const blocked = failure.blockedOp;
  // Zoom on the block: the last few linearized ops, the pending ones and the blocked one.
  const focus = failure.prefix
    .slice(-8)
    .map((step) => step.op)
    .concat(failure.pendingOps, [blocked]);
  const windowStartNs = focus.reduce((min, op) => Math.min(min, op.call), Infinity);
  const windowEndNs = focus.reduce(
    (max, op) => Math.max(max, op.completionTime === Infinity ? op.call : op.completionTime),
    blocked.ret,
  );
  const marginNs = Math.max(1e6, (windowEndNs - windowStartNs) * 0.15);
  const startS = (windowStartNs - marginNs) / 1e9;
  const endS = (windowEndNs + marginNs) / 1e9;
  const shown = keyOps.filter(
    (op) => op.status !== 'fail' && op.call <= endS * 1e9 && op.completionTime >= startS * 1e9,
  );
  const processes = [...new Set(shown.map((op) => op.process))].sort((a, b) => a - b);
  const laneHeight = 22;
  const top = 20;
  const height = top + processes.length * laneHeight + 30;
  const x = (s: number): number => marginLeft + ((s - startS) / (endS - startS)) * plotWidth;
  let bars = '';
  for (const op of shown) {
    const lane = processes.indexOf(op.process);
    const x0 = x(Math.max(startS, op.call / 1e9));
    const end = op.completionTime === Infinity ? endS : Math.min(endS, op.completionTime / 1e9);
    const inPrefix = prefix.get(op.index);
    const fill =
      op.index === blocked.index
        ? '#c62828'
        : inPrefix !== undefined
          ? '#66bb6a'
          : pending.has(op.index)
            ? '#ffa726'
            : '#bdbdbd';
    const label = registerModel.describeOperation(op as Parameters<typeof registerModel.describeOperation>[0]);
    const title = `${opTitle(op, undefined)}${inPrefix === undefined ? '' : ` | linearized #${inPrefix.order}, state after: ${inPrefix.state}`}`;
    bars += `<rect x="${x0.toFixed(1)}" y="${top + lane * laneHeight + 2}" width="${Math.max(2, x(end) - x0).toFixed(1)}" height="${laneHeight - 4}" fill="${fill}" stroke="#555" stroke-width="0.3"><title>${escapeHtml(title)}</title></rect><text x="${(x0 + 2).toFixed(1)}" y="${top + lane * laneHeight + 15}" font-size="9">${escapeHtml(`${inPrefix === undefined ? '' : `#${inPrefix.order} `}${label}`)}</text>`;
  }
  const blockX = x(blocked.ret / 1e9);
  const line = `<line x1="${blockX.toFixed(1)}" x2="${blockX.toFixed(1)}" y1="${top - 10}" y2="${height - 25}" stroke="#c62828" stroke-dasharray="4 2"/><text x="${(blockX > width - 260 ? blockX - 3 : blockX + 3).toFixed(1)}" y="${top - 3}" font-size="10" fill="#c62828" text-anchor="${blockX > width - 260 ? 'end' : 'start'}">no linearization exists past this point</text>`;
  const lanes = processes
    .map(
      (process, i) =>
        `<text x="${marginLeft - 4}" y="${top + i * laneHeight + 15}" font-size="10" text-anchor="end">p${process}</text>`,
    )
    .join('');
  const prefixList = failure.prefix
    .map(
      (step, i) =>
        `<li>#${i + 1} ${escapeHtml(opTitle(step.op, undefined))} → state ${escapeHtml(step.stateAfter)}</li>`,
    )
    .join('');
  return `<h3>Key ${escapeHtml(key)}: not linearizable</h3><p>${escapeHtml(failure.message)}</p>
<p>The ops of this key around the block (hover a bar for details; the numbers are the linearization order found). <span style="color:#66bb6a">■</span> linearized prefix <span style="color:#c62828">■</span> op that cannot be placed <span style="color:#ffa726">■</span> pending at that point <span style="color:#bdbdbd">■</span> other ops</p>
<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">${line}${bars}${lanes}${timeAxisRange(x, startS, endS, height - 25)}</svg>
<details><summary>Linearized prefix (${failure.prefix.length} ops), state at the block: ${escapeHtml(failure.stateAtBlock)}</summary><ol style="font-size:12px">${prefixList}</ol></details>`;
}

function timeAxisRange(x: (s: number) => number, startS: number, endS: number, y: number): string {
  let ticks = '';
  for (let i = 0; i <= 5; i++) {
    const s = startS + ((endS - startS) * i) / 5;
    ticks += `<text x="${x(s).toFixed(1)}" y="${y + 14}" font-size="10" text-anchor="middle">${s.toFixed(3)}s</text>`;
  }
  return `<line x1="${marginLeft}" y1="${y}" x2="${width - marginRight}" y2="${y}" stroke="#333"/>${ticks}`;
}

/** The report's inputs: the folded history, and the ops of each key shown as not linearizable. */
export interface ReportInput {
  readonly summary: RunSummary;
  readonly results: RunResults;
  readonly overview: RunOverview;
  readonly nemesis: readonly NemesisEntry[];
  readonly invalidKeyOps: ReadonlyMap<string, readonly RecordedOperation[]>;
  readonly workload: Workload;
}

export function renderReport(input: ReportInput): string {
  const { summary, results, overview, nemesis, invalidKeyOps, workload } = input;
  const endS = Math.max(1, (summary.phases.finalEndNs > 0 ? summary.phases.finalEndNs : overview.lastNs) / 1e9);
  const intervals = faultIntervals(nemesis, endS);
  const verdictColour = results.verdict === 'valid' ? '#2e7d32' : results.verdict === 'invalid' ? '#c62828' : '#ef6c00';
  const checkerRows = Object.entries(results.checkers)
    .map(
      ([name, checker]) =>
        `<tr><td>${escapeHtml(name)}</td><td style="color:${checker.verdict === 'valid' ? '#2e7d32' : checker.verdict === 'invalid' ? '#c62828' : '#ef6c00'}"><b>${checker.verdict}</b></td><td>${escapeHtml(checker.summary)}</td></tr>`,
    )
    .join('');
  const opRows = Object.entries(results.ops.byFunction)
    .map(([f, counts]) => `<tr><td>${f}</td><td>${counts.ok}</td><td>${counts.fail}</td><td>${counts.info}</td></tr>`)
    .join('');
  const nemesisRows = nemesis
    .map(
      (entry) =>
        `<tr><td>${(entry.time / 1e9).toFixed(3)}</td><td>${entry.type}</td><td>${escapeHtml(entry.kind)}</td><td>${escapeHtml(entry.detail)}</td></tr>`,
    )
    .join('');
  let failures = '';
  const check = results.workloadCheck;
  if (check?.workload === 'register') {
    for (const partition of check.result.partitions) {
      if (partition.failure === undefined) continue;
      const keyOps = invalidKeyOps.get(partition.key);
      if (keyOps !== undefined) failures += failurePlot(partition.key, keyOps, partition.failure);
    }
  } else if (check !== undefined && check.verdict === 'invalid') {
    failures = `<pre>${escapeHtml(JSON.stringify(results.checkers[workload.name]?.details, null, 2).slice(0, 200_000))}</pre>`;
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>dram jepsen-like ${escapeHtml(summary.options.workload)} seed ${summary.options.seed}: ${results.verdict}</title>
<style>body{font-family:system-ui,sans-serif;margin:20px;max-width:${width + 40}px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}h2{margin-top:28px}</style></head><body>
<h1>${escapeHtml(summary.options.workload)} on ${escapeHtml(summary.options.db)}: <span style="color:${verdictColour}">${results.verdict}</span></h1>
<p><code>${escapeHtml(summary.argv.join(' '))}</code><br>seed ${summary.options.seed}, ${summary.options.nodes} nodes, nemesis ${escapeHtml(summary.options.nemeses.join(',') || 'none')}, ${summary.options.timeS} s at ${summary.options.rate} ops/s, ${summary.options.concurrency} workers; started ${escapeHtml(summary.startedAt)}, took ${summary.durationS.toFixed(1)} s.<br>${escapeHtml(summary.netem)}${summary.harnessError === undefined ? '' : `<br><b style="color:#c62828">harness error: ${escapeHtml(summary.harnessError)}</b>`}</p>
<h2>Checkers</h2><table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>${checkerRows}</table>
<h2>Operations</h2><table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th></tr>${opRows}<tr><td><b>all</b></td><td>${results.ops.ok}</td><td>${results.ops.fail}</td><td>${results.ops.info}</td></tr></table>
${failures === '' ? '' : `<h2>Where it went wrong</h2>${failures}`}
<h2>Throughput</h2><p>Completions per second; shaded: fault periods (hover for the fault). <span style="color:${colours.ok}">ok</span> <span style="color:${colours.fail}">fail</span> <span style="color:${colours.info}">info</span></p>${throughputPlot(overview, intervals, endS, summary.phases)}
<h2>Latency</h2>${latencyPlot(overview, intervals, endS)}
<h2>Operation timeline</h2><p>One lane per worker (the bottom lane: final reads); hover a bar for the op.</p>${timelinePlot(overview, intervals, endS, summary.options.concurrency, summary.phases.recoveryEndNs)}
<h2>Nemesis</h2><table><tr><th>t (s)</th><th>type</th><th>fault</th><th>detail</th></tr>${nemesisRows}</table>
<h2>results.json</h2><details><summary>show</summary><pre>${escapeHtml(JSON.stringify(serialisable(results), null, 2).slice(0, 300_000))}</pre></details>
</body></html>`;
}

export function writeReport(path: string, input: ReportInput): void {
  writeFileSync(path, renderReport(input));
}
