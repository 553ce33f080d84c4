// The campaign's command line and its real runOne: `npm run jepsen -- --campaign 2h [--seed S]
// [--time S] [run flags]` and `npm run jepsen -- --ledger FILE` (the summary table of a ledger).
// Each run is a child process of the harness CLI (its own network namespace, memory and exit
// code) writing under jepsen-like/runs/<campaign id>/; its results.json gives the ledger line.
// Ctrl-C reaches the running child (same process group, and forwarded when sent to the campaign
// alone); the child heals, cleans up and writes its results, and the campaign stops after it.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseDuration,
  parseLedger,
  runCampaign,
  summarise,
  summaryTable,
  type CampaignOptions,
  type PlannedRun,
  type RunOutcome,
} from './campaign.ts';
import { parseRunOptions, UsageError } from './options.ts';
import { runDirName } from './run.ts';

export const CAMPAIGN_USAGE = `npm run jepsen -- --campaign DURATION [--seed S] [--time S] [run flags]
  back-to-back runs for DURATION (90s, 20m, 2h) rotating workload, nemesis mix and node count;
  --seed seeds the campaign (each run's seed derives from it), --time is each run's main phase
  (default 120, the last run is cut to fit); other run flags (--rate, --no-netns, ...) go to every run.
  Ledger: jepsen-like/campaigns/<id>.jsonl; runs: jepsen-like/runs/<id>/.
npm run jepsen -- --ledger FILE     print the summary table of a campaign ledger`;

const rotated = ['--workload', '--nemesis', '--nodes', '--runs-dir', '--db'];
const defaultRunTimeS = 120;

function commitOf(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim();
    return dirty === '' ? head : `${head}-dirty`;
  } catch {
    return 'unknown';
  }
}

/** Splits the campaign's own flags from the ones every run gets; validates both. */
export function parseCampaignArgs(argv: readonly string[]): Omit<CampaignOptions, 'commit'> & { runsDir: string } {
  const passThrough: string[] = [];
  let duration: string | undefined;
  let seed = Date.now() % 1_000_000_007;
  let runTimeS = defaultRunTimeS;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    const value = argv[i + 1];
    if (flag === '--campaign' || flag === '--seed' || flag === '--time') {
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      i++;
      if (flag === '--campaign') duration = value;
      else if (flag === '--seed') seed = Number(value);
      else runTimeS = Number(value);
      continue;
    }
    if (rotated.includes(flag)) throw new UsageError(`${flag} is chosen by the campaign; leave it out`);
    passThrough.push(flag);
  }
  if (duration === undefined) throw new UsageError('--campaign needs a duration');
  let budgetMs: number;
  try {
    budgetMs = parseDuration(duration);
  } catch (error) {
    throw new UsageError(`--campaign: ${(error as Error).message}`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError('--seed: expected a non-negative integer');
  if (!Number.isFinite(runTimeS) || runTimeS < 20) throw new UsageError('--time: a campaign run needs >= 20 s');
  // The pass-through flags must make a valid run on their own.
  parseRunOptions([...passThrough, '--seed', '1']);
  const id = runDirName(seed);
  return {
    id,
    ledgerPath: join('jepsen-like', 'campaigns', `${id}.jsonl`),
    budgetMs,
    seed,
    runTimeS,
    passThrough,
    runsDir: join('jepsen-like', 'runs', id),
  };
}

function outcomeOf(runsDir: string, seed: number, exitCode: number, durationS: number): RunOutcome {
  const folder = existsSync(runsDir) ? readdirSync(runsDir).find((name) => name.endsWith(`-${seed}`)) : undefined;
  const runDir = folder === undefined ? undefined : join(runsDir, folder);
  const resultsPath = runDir === undefined ? undefined : join(runDir, 'results.json');
  if (resultsPath === undefined || !existsSync(resultsPath))
    return {
      verdict: 'unknown',
      ops: 0,
      durationS,
      runDir,
      harnessError: `exit code ${exitCode}, no results.json`,
      peakRssBytes: undefined,
    };
  const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as {
    verdict: RunOutcome['verdict'];
    ops: { total: number };
    run: { durationS: number; harnessError?: string };
    harness?: { peakRssBytes: number };
  };
  return {
    verdict: results.verdict,
    ops: results.ops.total,
    durationS: results.run.durationS,
    runDir,
    harnessError: results.run.harnessError,
    peakRssBytes: results.harness?.peakRssBytes,
  };
}

/** One run as a child process of this CLI. */
function runChild(run: PlannedRun, runsDir: string, signal: AbortSignal): Promise<RunOutcome> {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot find the harness script to run');
  const started = Date.now();
  const child = spawn(process.execPath, [...process.execArgv, script, ...run.args, '--runs-dir', runsDir], {
    stdio: 'inherit',
  });
  const forward = (): void => {
    child.kill('SIGINT');
  };
  signal.addEventListener('abort', forward);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      signal.removeEventListener('abort', forward);
      resolve(outcomeOf(runsDir, run.seed, code ?? 2, (Date.now() - started) / 1000));
    });
  });
}

export async function campaignMain(argv: readonly string[], log: (line: string) => void): Promise<number> {
  const parsed = parseCampaignArgs(argv);
  const options: CampaignOptions = { ...parsed, commit: commitOf() };
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (controller.signal.aborted) return;
      log(`${signal}: stopping the campaign after the current run (its result is kept)`);
      controller.abort();
    });
  }
  log(
    `campaign ${options.id}: ${(options.budgetMs / 60_000).toFixed(1)} min, seed ${options.seed}, commit ${options.commit}`,
  );
  log(`ledger ${options.ledgerPath}`);
  const result = await runCampaign(options, {
    runOne: (run) => runChild(run, parsed.runsDir, controller.signal),
    now: () => Date.now(),
    log,
    signal: controller.signal,
  });
  log(`campaign ${options.id} over (${result.stopReason}): ${result.lines.length} runs`);
  process.stdout.write(`${summaryTable(summarise(result.lines))}\n`);
  log(`ledger ${options.ledgerPath}`);
  const invalid = result.lines.find((line) => line.verdict === 'invalid');
  if (invalid !== undefined) log(`replay the invalid run: ${invalid.command}`);
  if (result.stopReason === 'invalid') return 1;
  if (result.stopReason === 'interrupted') return 130;
  return result.stopReason === 'harness-failures' ? 2 : 0;
}

/** --ledger FILE: the summary table of a ledger. */
export function ledgerMain(path: string): number {
  const lines = parseLedger(readFileSync(path, 'utf8'));
  process.stdout.write(`${summaryTable(summarise(lines))}\n`);
  const commits = Array.from(new Set(lines.map((line) => line.commit)));
  process.stdout.write(`${lines.length} runs on commit ${commits.join(', ')}\n`);
  for (const line of lines.filter((entry) => entry.verdict !== 'valid'))
    process.stdout.write(
      `${line.verdict}: ${line.command}${line.harnessError === undefined ? '' : ` (${line.harnessError})`}\n`,
    );
  return 0;
}
