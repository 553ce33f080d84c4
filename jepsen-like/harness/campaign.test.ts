// The campaign loop with the runs stubbed and a fake clock: rotation and seeds, runs cut to fit the
// budget, the ledger written line by line as runs finish, the stop on the first invalid run with
// its replay command, the stop on an interrupt (finished runs kept) and after repeated harness
// failures, and the summary table.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  harnessFailuresMax,
  NEMESIS_MIXES,
  parseDuration,
  parseLedger,
  planRun,
  runCampaign,
  runOverheadS,
  summarise,
  summaryTable,
  type CampaignOptions,
  type PlannedRun,
  type RunOutcome,
} from './campaign.ts';
import { parseCampaignArgs } from './campaign-cli.ts';
import { CAMPAIGN_WORKLOADS, parseRunOptions } from './options.ts';

const dir = mkdtempSync(join(tmpdir(), 'dram-campaign-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let ledgers = 0;
function campaign(budgetMs: number, runTimeS = 120): CampaignOptions {
  return {
    id: 'test',
    ledgerPath: join(dir, `ledger-${ledgers++}.jsonl`),
    budgetMs,
    seed: 7,
    runTimeS,
    passThrough: ['--rate', '50'],
    commit: 'abc1234',
  };
}

/** A fake run: takes its main phase plus 30 s on the fake clock; verdicts from a script by index. */
function stub(verdicts: Record<number, RunOutcome['verdict']> = {}, onRun?: (run: PlannedRun) => void) {
  let clockMs = 1_000_000;
  const runs: PlannedRun[] = [];
  const log: string[] = [];
  const controller = new AbortController();
  const deps = {
    now: () => clockMs,
    log: (line: string) => log.push(line),
    signal: controller.signal,
    runOne: (run: PlannedRun): Promise<RunOutcome> => {
      runs.push(run);
      onRun?.(run);
      clockMs += (run.timeS + 30) * 1000;
      const verdict = verdicts[run.index] ?? 'valid';
      return Promise.resolve({
        verdict,
        ops: 100 * run.timeS,
        durationS: run.timeS + 30,
        runDir: `runs/${run.seed}`,
        harnessError: verdict === 'unknown' ? 'boom' : undefined,
        peakRssBytes: 1,
      });
    },
  };
  return { deps, runs, log, controller };
}

describe('campaign plan', () => {
  it('rotates workload, nemesis mix and node count, and derives a seed per run from the campaign seed', () => {
    const options = campaign(3_600_000);
    const plans = Array.from({ length: 30 }, (_, i) => planRun(options, i, 60));
    const combos = new Set(plans.map((run) => `${run.workload} ${run.nemesis} ${run.nodes}`));
    expect(combos.size).toBe(CAMPAIGN_WORKLOADS.length * NEMESIS_MIXES.length * 2);
    expect(new Set(plans.map((run) => run.seed)).size).toBe(30);
    expect(planRun(options, 4, 60)).toEqual(planRun({ ...options }, 4, 60));
    expect(planRun({ ...options, seed: 8 }, 4, 60).seed).not.toBe(planRun(options, 4, 60).seed);
    // The replay args are a valid run command line.
    expect(parseRunOptions([...(plans[3]?.args ?? [])])).toMatchObject({ seed: plans[3]?.seed, rate: 50 });
  });

  it('reads durations and refuses bad ones', () => {
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(() => parseDuration('soon')).toThrow('not a duration');
    expect(() => parseDuration('0s')).toThrow('positive');
  });

  it('separates its own flags from the runs and refuses the ones it rotates', () => {
    const parsed = parseCampaignArgs(['--campaign', '20m', '--seed', '5', '--time', '60', '--rate', '80']);
    expect(parsed).toMatchObject({ budgetMs: 1_200_000, seed: 5, runTimeS: 60, passThrough: ['--rate', '80'] });
    expect(parsed.ledgerPath).toMatch(/^jepsen-like\/campaigns\/.*-5\.jsonl$/u);
    expect(() => parseCampaignArgs(['--campaign', '20m', '--workload', 'set'])).toThrow('chosen by the campaign');
    expect(() => parseCampaignArgs(['--campaign', '20m', '--rate', 'fast'])).toThrow('--rate');
  });
});

describe('campaign loop', () => {
  it('runs until the budget is spent, cutting the last run, and writes one ledger line per run', async () => {
    const options = campaign(600_000);
    const { deps, runs } = stub({}, () => {
      // Every earlier run is in the ledger before the next starts.
      const text = readFileSync(options.ledgerPath, { encoding: 'utf8', flag: 'a+' });
      expect(parseLedger(text).map((line) => line.index)).toEqual(runs.slice(0, -1).map((r) => r.index));
    });
    const result = await runCampaign(options, deps);
    expect(result.stopReason).toBe('budget');
    // 150 s per full run; the fourth gets 600 - 450 - overhead.
    expect(runs.map((run) => run.timeS)).toEqual([120, 120, 120, 600 - 450 - runOverheadS]);
    const ledger = parseLedger(readFileSync(options.ledgerPath, 'utf8'));
    expect(ledger).toHaveLength(4);
    expect(ledger[1]).toMatchObject({ index: 1, verdict: 'valid', ops: 12_000, commit: 'abc1234', interrupted: false });
    expect(ledger[1]?.command).toBe(`npm run jepsen -- ${runs[1]?.args.join(' ')}`);
  });

  it('stops on the first invalid run and prints the command that replays it', async () => {
    const options = campaign(3_600_000);
    const { deps, runs, log } = stub({ 2: 'invalid' });
    const result = await runCampaign(options, deps);
    expect(result.stopReason).toBe('invalid');
    expect(runs).toHaveLength(3);
    expect(log).toContain(`  npm run jepsen -- ${runs[2]?.args.join(' ')}`);
    expect(parseLedger(readFileSync(options.ledgerPath, 'utf8')).map((line) => line.verdict)).toEqual([
      'valid',
      'valid',
      'invalid',
    ]);
  });

  it('keeps finished runs on an interrupt and marks the interrupted one', async () => {
    const options = campaign(3_600_000);
    const { deps, runs, controller } = stub({}, (run) => {
      if (run.index === 1) controller.abort();
    });
    const result = await runCampaign(options, deps);
    expect(result.stopReason).toBe('interrupted');
    expect(runs).toHaveLength(2);
    const ledger = parseLedger(readFileSync(options.ledgerPath, 'utf8'));
    expect(ledger.map((line) => line.interrupted)).toEqual([false, true]);
    // An interrupted run's fault time does not count.
    expect(summarise(ledger).at(-1)).toMatchObject({ runs: 2, faultS: 120 });
  });

  it('gives up after repeated harness failures but not after one', async () => {
    const { deps, runs } = stub({ 0: 'unknown', 2: 'unknown', 3: 'unknown', 4: 'unknown' });
    const result = await runCampaign(campaign(3_600_000), deps);
    expect(result.stopReason).toBe('harness-failures');
    expect(runs).toHaveLength(2 + harnessFailuresMax);
  });

  it('sums ops and hours per workload and nemesis mix in the summary table', () => {
    const base = { campaign: 'c', startedAt: '', commit: 'x', command: '', interrupted: false, nodes: 3, seed: 1 };
    const outcome = { runDir: undefined, harnessError: undefined, peakRssBytes: undefined };
    const lines = [
      {
        ...base,
        ...outcome,
        index: 0,
        workload: 'set',
        nemesis: 'a',
        timeS: 1800,
        verdict: 'valid',
        ops: 10,
        durationS: 1900,
      },
      {
        ...base,
        ...outcome,
        index: 1,
        workload: 'register',
        nemesis: 'a',
        timeS: 3600,
        verdict: 'unknown',
        ops: 5,
        durationS: 3700,
      },
      {
        ...base,
        ...outcome,
        index: 2,
        workload: 'set',
        nemesis: 'a',
        timeS: 1800,
        verdict: 'valid',
        ops: 1000,
        durationS: 1900,
      },
    ] as const;
    const table = summaryTable(summarise(lines));
    expect(table.split('\n').slice(2)).toEqual([
      '| set | a | 2 | 2 | 0 | 0 | 1,010 | 1.00 | 1.06 |',
      '| register | a | 1 | 0 | 0 | 1 | 5 | 1.00 | 1.03 |',
      '| all | all | 3 | 2 | 0 | 1 | 1,015 | 2.00 | 2.08 |',
    ]);
  });
});
