// Campaign mode: `npm run jepsen -- --campaign 2h` runs back-to-back harness runs until the time
// budget is spent, rotating the workload, the nemesis mix and the node count (three rotations of
// coprime lengths, so every combination comes round), each run with its own seed drawn from the
// campaign's seed. Each run is checked as it ends and appended as one line to the ledger
// (jepsen-like/campaigns/<id>.jsonl) before the next starts, so an interrupt (Ctrl-C) or a crash
// keeps every finished run. The campaign stops on the first invalid run and prints the command
// that replays it, and after harnessFailuresMax runs in a row that could not judge (a broken
// environment would otherwise spin for hours). Every run's main phase is cut to fit what is left
// of the budget, so the campaign ends within about one run's overhead of it.
//
// This file holds the plan, the loop, the ledger and the summary; cli.ts supplies runOne (a child
// process per run: its own namespace, memory and exit code). Tests stub runOne and the clock.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CAMPAIGN_WORKLOADS, type WorkloadName } from './options.ts';
import { createRng } from './rng.ts';

/** Nemesis mixes in rotation: each fault alone with a partner, and all of them together. */
export const NEMESIS_MIXES: readonly string[] = [
  'partition,kill',
  'pause,transfer',
  'proxy,kill',
  'partition,kill,pause,proxy,transfer',
  'partition,proxy,transfer',
];
export const NODE_COUNTS: readonly number[] = [3, 5];
/** A run's main phase is never shorter than this; with less budget left the campaign ends. */
export const runTimeMinS = 20;
/** Setup, recovery, final reads and the check, on top of the main phase (a cautious guess). */
export const runOverheadS = 40;
/** Runs in a row whose verdict is unknown because of a harness error before the campaign gives up. */
export const harnessFailuresMax = 3;
/** Runs one campaign starts at most, whatever its budget. */
export const campaignRunsMax = 10_000;

export interface CampaignOptions {
  readonly id: string;
  readonly ledgerPath: string;
  readonly budgetMs: number;
  readonly seed: number;
  /** Main phase of each run, seconds (cut at the end of the budget). */
  readonly runTimeS: number;
  /** Flags given to every run as they are (--rate, --no-netns, ...). */
  readonly passThrough: readonly string[];
  /** The commit the runs run against, recorded in the ledger. */
  readonly commit: string;
}

export interface PlannedRun {
  readonly index: number;
  readonly workload: WorkloadName;
  readonly nemesis: string;
  readonly nodes: number;
  readonly timeS: number;
  readonly seed: number;
  /** The run's flags: the exact command line that replays it after `npm run jepsen --`. */
  readonly args: readonly string[];
}

export type Verdict = 'valid' | 'invalid' | 'unknown';

export interface RunOutcome {
  readonly verdict: Verdict;
  readonly ops: number;
  readonly durationS: number;
  readonly runDir: string | undefined;
  readonly harnessError: string | undefined;
  readonly peakRssBytes: number | undefined;
}

export interface LedgerLine extends RunOutcome {
  readonly campaign: string;
  readonly index: number;
  readonly startedAt: string;
  readonly seed: number;
  readonly workload: WorkloadName;
  readonly nemesis: string;
  readonly nodes: number;
  readonly timeS: number;
  readonly commit: string;
  readonly command: string;
  readonly interrupted: boolean;
}

export interface CampaignResult {
  readonly lines: readonly LedgerLine[];
  readonly stopReason: 'budget' | 'invalid' | 'harness-failures' | 'interrupted' | 'runs-max';
}

/** '90s', '20m', '2h', '1h30m' or plain seconds, as milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$/u.exec(text.trim());
  if (match === null || text.trim() === '') throw new Error(`not a duration: "${text}" (examples: 90s, 20m, 2h)`);
  const [, hours, minutes, seconds] = match;
  const ms = (Number(hours ?? 0) * 3600 + Number(minutes ?? 0) * 60 + Number(seconds ?? 0)) * 1000;
  if (ms <= 0) throw new Error(`a campaign needs a positive duration, got "${text}"`);
  return ms;
}

/** Run index's combination and seed; timeS is the main phase it gets. */
export function planRun(options: CampaignOptions, index: number, timeS: number): PlannedRun {
  const workload = CAMPAIGN_WORKLOADS[index % CAMPAIGN_WORKLOADS.length] ?? 'register';
  const nemesis = NEMESIS_MIXES[index % NEMESIS_MIXES.length] ?? 'partition,kill';
  const nodes = NODE_COUNTS[index % NODE_COUNTS.length] ?? 3;
  const seed = createRng(options.seed).fork(`run-${index}`).int(1_000_000_000);
  const args = [
    '--workload',
    workload,
    '--nemesis',
    nemesis,
    '--nodes',
    String(nodes),
    '--time',
    String(timeS),
    '--seed',
    String(seed),
    ...options.passThrough,
  ];
  return { index, workload, nemesis, nodes, timeS, seed, args };
}

export function replayCommand(run: PlannedRun): string {
  return `npm run jepsen -- ${run.args.join(' ')}`;
}

export interface CampaignDeps {
  runOne(run: PlannedRun): Promise<RunOutcome>;
  /** ms, any epoch. */
  now(): number;
  log(line: string): void;
  readonly signal: AbortSignal;
}

/** Runs the campaign; every finished run is in the ledger before the next starts. */
export async function runCampaign(options: CampaignOptions, deps: CampaignDeps): Promise<CampaignResult> {
  mkdirSync(dirname(options.ledgerPath), { recursive: true });
  const startMs = deps.now();
  const lines: LedgerLine[] = [];
  let harnessFailures = 0;
  for (let index = 0; index < campaignRunsMax; index++) {
    if (deps.signal.aborted) return { lines, stopReason: 'interrupted' };
    const leftS = (startMs + options.budgetMs - deps.now()) / 1000;
    const timeS = Math.floor(Math.min(options.runTimeS, leftS - runOverheadS));
    if (timeS < runTimeMinS) return { lines, stopReason: 'budget' };
    const run = planRun(options, index, timeS);
    deps.log(`campaign run ${index}: ${replayCommand(run)}`);
    const startedAt = new Date().toISOString();
    const outcome = await deps.runOne(run);
    const line: LedgerLine = {
      campaign: options.id,
      index,
      startedAt,
      seed: run.seed,
      workload: run.workload,
      nemesis: run.nemesis,
      nodes: run.nodes,
      timeS: run.timeS,
      commit: options.commit,
      command: replayCommand(run),
      interrupted: deps.signal.aborted,
      ...outcome,
    };
    appendFileSync(options.ledgerPath, `${JSON.stringify(line)}\n`);
    lines.push(line);
    deps.log(
      `campaign run ${index}: ${outcome.verdict}, ${outcome.ops} ops, ${outcome.durationS.toFixed(0)} s${outcome.harnessError === undefined ? '' : ` (harness error: ${outcome.harnessError})`}`,
    );
    if (line.interrupted) return { lines, stopReason: 'interrupted' };
    if (outcome.verdict === 'invalid') {
      deps.log(`campaign: run ${index} is INVALID (${outcome.runDir ?? 'no run folder'}); replay it with:`);
      deps.log(`  ${replayCommand(run)}`);
      return { lines, stopReason: 'invalid' };
    }
    harnessFailures = outcome.verdict === 'unknown' && outcome.harnessError !== undefined ? harnessFailures + 1 : 0;
    if (harnessFailures >= harnessFailuresMax) return { lines, stopReason: 'harness-failures' };
  }
  return { lines, stopReason: 'runs-max' };
}

export interface SummaryRow {
  readonly workload: string;
  readonly nemesis: string;
  runs: number;
  valid: number;
  invalid: number;
  unknown: number;
  ops: number;
  /** Main-phase (fault-injection) seconds. */
  faultS: number;
  /** Wall-clock seconds of the runs. */
  wallS: number;
}

function emptyRow(workload: string, nemesis: string): SummaryRow {
  return { workload, nemesis, runs: 0, valid: 0, invalid: 0, unknown: 0, ops: 0, faultS: 0, wallS: 0 };
}

/** Per workload and nemesis mix, in the order first seen, plus a total row. */
export function summarise(lines: readonly LedgerLine[]): SummaryRow[] {
  const rows = new Map<string, SummaryRow>();
  const total = emptyRow('all', 'all');
  for (const line of lines) {
    const id = `${line.workload} ${line.nemesis}`;
    const row = rows.get(id) ?? emptyRow(line.workload, line.nemesis);
    rows.set(id, row);
    for (const target of [row, total]) {
      target.runs++;
      target[line.verdict]++;
      target.ops += line.ops;
      // An interrupted run's main phase may have been cut short: its fault time is not counted.
      target.faultS += line.interrupted ? 0 : line.timeS;
      target.wallS += line.durationS;
    }
  }
  return Array.from(rows.values()).concat([total]);
}

/** The summary as a Markdown table (what docs/testing.md records). */
export function summaryTable(rows: readonly SummaryRow[]): string {
  const header = '| workload | nemesis | runs | valid | invalid | unknown | ops checked | fault h | wall h |';
  const rule = '| --- | --- | --: | --: | --: | --: | --: | --: | --: |';
  const body = rows.map(
    (row) =>
      `| ${row.workload} | ${row.nemesis} | ${row.runs} | ${row.valid} | ${row.invalid} | ${row.unknown} | ${row.ops.toLocaleString('en-US')} | ${(row.faultS / 3600).toFixed(2)} | ${(row.wallS / 3600).toFixed(2)} |`,
  );
  return [header, rule, ...body].join('\n');
}

/** Parses a ledger's text (one LedgerLine per line). */
export function parseLedger(text: string): LedgerLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LedgerLine);
}
