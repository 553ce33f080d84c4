// The streamed check of a run: history.jsonl is read line by line across chunk boundaries; checking
// keys in batches gives the verdicts of one check over the whole history, with the whole history's
// op indexes; and the report folds a history of 2 million events (which spread-based code could
// not: one argument per op overflows the call stack) into a page of bounded size.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OperationPairer, type HistoryEvent } from '../checker/history.ts';
import { checkByKey, forEachLine, keyBatches, overviewPass } from './history-check.ts';
import { parseRunOptions, type RunOptions } from './options.ts';
import { latencySamplesMax, RunOverview, timelineOpsMax } from './overview.ts';
import { renderReport } from './report.ts';
import { checkRun, type RunSummary } from './results.ts';
import { createWorkload } from './workloads.ts';

const dir = mkdtempSync(join(tmpdir(), 'dram-history-check-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function options(args: string[]): RunOptions {
  const parsed = parseRunOptions(args);
  if (parsed === 'help') throw new Error('unexpected help');
  return parsed;
}

function summaryOf(run: RunOptions, finalEndNs: number): RunSummary {
  return {
    runDir: dir,
    argv: [],
    options: run,
    schedule: { seed: run.seed, nemeses: [], faults: [], skipped: [] },
    netem: '',
    startedAt: '',
    durationS: 0,
    phases: { mainStartNs: 0, healNs: 0, recoveryEndNs: 0, finalEndNs },
    harnessError: undefined,
    crashes: [],
  };
}

/** A register history: per key, process k writes 1 then reads it back; key r3 reads 2 (not linearizable). */
function registerHistory(keys: number): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  let time = 0;
  for (let k = 0; k < keys; k++) {
    const key = `r${k}`;
    events.push({ process: k, type: 'invoke', f: 'write', key, value: 1, time: time++ });
    events.push({ process: k, type: 'ok', f: 'write', key, value: 1, time: time++ });
  }
  for (let k = 0; k < keys; k++) {
    const key = `r${k}`;
    events.push({ process: k, type: 'invoke', f: 'read', key, value: null, time: time++ });
    events.push({ process: k, type: 'ok', f: 'read', key, value: k === 3 ? 2 : 1, time: time++ });
  }
  return events;
}

describe('forEachLine', () => {
  it('gives every line once, whole, across 1 MiB chunk boundaries and multi-byte characters', () => {
    const path = join(dir, 'lines.txt');
    const lines = Array.from({ length: 30_000 }, (_, i) => `${i} ${'é€'.repeat(i % 50)}`);
    writeFileSync(path, `${lines.join('\n')}\n\n`);
    const seen: string[] = [];
    forEachLine(path, (line, lineNumber) => {
      expect(lineNumber).toBe(seen.length + 1);
      seen.push(line);
    });
    expect(seen).toEqual(lines);
  });
});

describe('checking keys in batches', () => {
  const path = join(dir, 'history.jsonl');
  writeFileSync(
    path,
    registerHistory(10)
      .map((event) => `${JSON.stringify(event)}\n`)
      .join(''),
  );
  const workload = createWorkload('register', options([]));

  it('cuts sorted keys into batches under the event budget, a big key alone', () => {
    const sizes = new Map([
      ['b', 4],
      ['a', 4],
      ['c', 9],
      ['d', 2],
    ]);
    expect(keyBatches(sizes, 8)).toEqual([['a', 'b'], ['c'], ['d']]);
  });

  it('finds the same verdicts, key order and op indexes in one batch or many, parsing every line or not', () => {
    const pass = overviewPass(path, undefined);
    expect(pass.events).toBe(40);
    expect(pass.prefixTrusted).toBe(true);
    const whole = checkByKey(path, workload, pass, 1_000_000);
    const batched = checkByKey(path, workload, pass, 1_000_000, 4);
    const parsed = checkByKey(path, workload, { ...pass, prefixTrusted: false }, 1_000_000, 4);
    expect(whole.passes).toBe(1);
    expect(batched.passes).toBe(10);
    expect(batched.check.verdict).toBe('invalid');
    expect(batched.check).toEqual(whole.check);
    expect(parsed.check).toEqual(whole.check);
    // The invalid key's ops keep the whole history's indexes: its write is op 3, its read op 13.
    expect(batched.invalidKeyOps.get('r3')?.map((op) => op.index)).toEqual([3, 13]);
    expect(parsed.invalidKeyOps.get('r3')).toEqual(batched.invalidKeyOps.get('r3'));
  });

  it('does not trust the recorder prefix of a history edited so that a field comes twice', () => {
    const edited = join(dir, 'edited.jsonl');
    const lines = registerHistory(2).map((event) => JSON.stringify(event));
    // JSON.parse keeps the last "key": this op belongs to r1, though its prefix says r0.
    lines[0] = lines[0]?.replace(/\}$/u, ',"key":"r1"}') ?? '';
    lines[1] = lines[1]?.replace(/\}$/u, ',"key":"r1"}') ?? '';
    writeFileSync(edited, `${lines.join('\n')}\n`);
    expect(overviewPass(edited, undefined).prefixTrusted).toBe(false);
  });
});

describe('the report on a long history', () => {
  it('folds 2 million events into a page with a bounded timeline and latency sample', () => {
    const run = options(['--time', '3600', '--concurrency', '10']);
    const overview = new RunOverview();
    const pairer = new OperationPairer();
    const opsTotal = 1_000_000;
    const event: HistoryEvent = { process: 0, type: 'invoke', f: 'write', key: 'r0', value: 1, time: 0 };
    for (let i = 0; i < opsTotal; i++) {
      // 10 processes, ops 3.6 ms apart, latency growing to 10 s over the run.
      event.process = i % 10;
      event.key = `r${Math.floor(i / 150)}`;
      event.type = 'invoke';
      event.time = i * 3_600_000;
      pairer.push(event);
      event.type = i % 7 === 0 ? 'fail' : 'ok';
      event.time += 1_000_000 + i * 10_000;
      overview.add(pairer.push(event), event.type === 'fail' ? 'timeout' : undefined);
    }
    expect(overview.counts).toMatchObject({ total: opsTotal, fail: Math.ceil(opsTotal / 7) });
    expect(overview.latencySamples.length).toBeLessThanOrEqual(latencySamplesMax);
    expect(overview.latencySamples.length).toBeGreaterThan(latencySamplesMax / 2);
    expect(overview.latencyMsMax).toBeCloseTo(1 + (opsTotal - 1) / 100, 3);
    const summary = summaryOf(run, overview.lastNs);
    const results = checkRun(summary, 'register', {
      ops: overview.counts,
      workloadCheck: { error: 'not checked in this test' },
      liveness: undefined,
      harness: { peakRssBytes: 0, historyEvents: 2 * opsTotal, historyPasses: 0 },
    });
    const html = renderReport({
      summary,
      results,
      overview,
      nemesis: [],
      invalidKeyOps: new Map(),
      workload: createWorkload('register', run),
    });
    expect(html).toContain(`Timeline shows the first ${timelineOpsMax} of ${opsTotal} ops.`);
    expect(html.match(/<circle /gu)?.length).toBe(overview.latencySamples.length);
    expect(html.length).toBeLessThan(20 * 2 ** 20);
  });
});
