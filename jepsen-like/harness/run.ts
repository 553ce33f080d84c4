// One harness run, in Jepsen's phases:
//   setup     start the database (and the firewall chain and peer proxy when their nemeses run),
//             wait until every group has a leader;
//   main      `concurrency` client workers run the workload for --time seconds, each op recorded
//             as invoke then ok / fail / info, while the nemesis follows the seeded schedule;
//   heal      every fault undone, every node running again (the heal time anchors liveness);
//   recovery  the workload goes on for --recovery seconds: liveness is judged on these ops;
//   final     every key ever touched is read until a read succeeds (bounded tries); the actions
//             workload reads until its queue has drained (bounded);
//   teardown  always, in finally: heal, remove the iptables chain, close the proxy, stop nodes;
//   check     the workload's checker, liveness, and crashed nodes; results.json and report.html.
// A worker's process id changes after an info completion (the old process may still have its op
// in flight), as in Jepsen. Every loop is bounded by a deadline and a count.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseEventLine } from '../checker/history.ts';
import { Firewall, probeNetem } from './firewall.ts';
import { HistoryRecorder, NemesisLog, type NemesisEntry } from './history-recorder.ts';
import { checkByKey, forEachLine, overviewPass, type KeyCheck } from './history-check.ts';
import { Nemesis } from './nemesis.ts';
import { checkFinalPlacement } from './membership-nemesis.ts';
import { checkNemesisEffects, finalPlacementCheck } from './nemesis-checks.ts';
import type { RunOptions } from './options.ts';
import { PeerProxy } from './peer-proxy.ts';
import { createRng, type Rng } from './rng.ts';
import { describeFault, planSchedule, type Schedule } from './schedule.ts';
import { createWorkload, type Completion, type PlannedOp, type Workload } from './workloads.ts';
import { describeThrown, sleep, type Database, type KvClient } from './db.ts';
import { DramCluster, dramNodeAddress } from './dram-cluster.ts';
import { checkRun, serialisable, type RunSummary } from './results.ts';
import { writeReport } from './report.ts';

export interface RunContext {
  readonly options: RunOptions;
  readonly runDir: string;
  readonly argv: readonly string[];
  readonly log: (line: string) => void;
  readonly signal: AbortSignal;
}

/** Ops one worker may run in a phase at most, whatever the rate says (a bound, not a target). */
const opsPerWorkerMax = 1_000_000;
const readyTimeoutMs = 60_000;
const finalReadTriesMax = 30;
const finalReadTimeMs = 30_000;
/**
 * With the snapshot nemesis the nodes keep this short a log tail behind a snapshot (the default is
 * 5,000), so a follower cut off for a few dozen writes is already past what the others keep, and
 * snapshot every `snapshotIntervalEntries` entries, so the other faults strike snapshots too.
 */
const snapshotTailEntries = 64;
const snapshotIntervalEntries = 500;

export function runDirName(seed: number, date = new Date()): string {
  const stamp = date
    .toISOString()
    .replace(/[-:]/gu, '')
    .replace(/\.\d+Z$/u, 'Z');
  return `${stamp}-${seed}`;
}

interface Phases {
  mainStartNs: number;
  healNs: number;
  recoveryEndNs: number;
  finalEndNs: number;
}

async function createDatabase(
  options: RunOptions,
  runDir: string,
  schedule: Schedule,
  recorder: HistoryRecorder,
): Promise<{ db: Database; firewall: Firewall | undefined; proxy: PeerProxy | undefined }> {
  const nodes = Array.from({ length: options.nodes }, (_, k) => k + 1);
  const faultKinds = new Set(schedule.faults.map((fault) => fault.spec.kind));
  if (options.db === 'etcd') {
    const { EtcdDatabase } = await import('./etcd-db.ts');
    return { db: new EtcdDatabase({ runDir, now: () => recorder.now() }), firewall: undefined, proxy: undefined };
  }
  const raftPort = options.portBase + 1000;
  const proxy = faultKinds.has('proxy')
    ? new PeerProxy({
        nodes,
        address: dramNodeAddress,
        raftPort,
        proxyPort: (to) => options.portBase + 2000 + to,
        rng: createRng(options.seed).fork('proxy'),
      })
    : undefined;
  await proxy?.start();
  // The snapshot nemesis cuts a follower off with the same rules as a partition.
  const firewall =
    faultKinds.has('partition') || faultKinds.has('snapshot') ? new Firewall(dramNodeAddress) : undefined;
  await firewall?.setup();
  const db = new DramCluster({
    nodes: options.nodes,
    kvGroups: options.kvGroups,
    reads: options.reads,
    quiesceAfterTicks: options.quiesceAfterTicks,
    portBase: options.portBase,
    runDir,
    dataDir: join(runDir, 'data'),
    ...(proxy === undefined ? {} : { peerAddress: (from: number, to: number) => proxy.listenAddress(from, to) }),
    now: () => recorder.now(),
    // Every add is of a fresh node (dram never takes a removed id back): one per membership fault at most.
    spareNodes: schedule.faults.filter((fault) => fault.spec.kind === 'membership').length,
    extraFlags: faultKinds.has('snapshot')
      ? [
          '--snapshot-tail-entries',
          String(snapshotTailEntries),
          '--snapshot-interval-entries',
          String(snapshotIntervalEntries),
        ]
      : [],
  });
  return { db, firewall, proxy };
}

/** What the phases of one run share; teardown stops what it holds. */
interface Run {
  readonly context: RunContext;
  readonly recorder: HistoryRecorder;
  readonly nemesisLog: NemesisLog;
  readonly phases: Phases;
  /** Stops workers and the nemesis on an interrupt or a harness failure. */
  readonly stop: AbortController;
  db?: Database | undefined;
  firewall?: Firewall | undefined;
  proxy?: PeerProxy | undefined;
  nemesis?: Nemesis | undefined;
  /** The nemesis's final heal has begun (teardown does not heal a second time). */
  healed: boolean;
}

/** The seeded fault schedule, written to schedule.json and logged. */
function planRun(context: RunContext, rootRng: Rng, nodeIds: readonly number[]): Schedule {
  const { options, runDir, log } = context;
  // The groups whose leaders the nemesis targets: for the actions workload the meta group (0), whose
  // leader runs the executor, so "kill the leader" kills it mid-action.
  const groupIds =
    options.db === 'etcd'
      ? [1]
      : options.workload === 'actions'
        ? [0]
        : Array.from({ length: options.kvGroups }, (_, k) => k + 1);
  const schedule = planSchedule(options, nodeIds, groupIds, rootRng.fork('nemesis'));
  writeFileSync(join(runDir, 'schedule.json'), `${JSON.stringify({ options, schedule }, null, 2)}\n`);
  log(`run ${resolve(runDir)}`);
  log(`seed ${options.seed}: ${schedule.faults.length} faults planned`);
  for (const fault of schedule.faults) log(`  ${describeFault(fault)}`);
  for (const skipped of schedule.skipped) log(`  SKIP ${skipped.kind}: ${skipped.reason}`);
  return schedule;
}

/** Setup: the database (with its firewall chain and peer proxy) started, every group led, the nemesis made. */
async function setUp(run: Run, schedule: Schedule): Promise<{ db: Database; nemesis: Nemesis }> {
  const { options, runDir, log } = run.context;
  const { db, firewall, proxy } = await createDatabase(options, runDir, schedule, run.recorder);
  run.db = db;
  run.firewall = firewall;
  run.proxy = proxy;
  await db.start();
  if (!(await db.waitReady(readyTimeoutMs)))
    throw new Error(
      `${db.name} did not elect leaders for every group within ${readyTimeoutMs / 1000} s (see the node logs)`,
    );
  log(`${db.name}: ${options.nodes} nodes up, every group has a leader`);
  const nemesis = (run.nemesis = new Nemesis({
    db,
    firewall,
    proxy,
    log: run.nemesisLog,
    now: () => run.recorder.now(),
    signal: run.stop.signal,
    snapshotTailEntries,
  }));
  return { db, nemesis };
}

/** Main phase: the workers run the workload for --time seconds while the nemesis follows the schedule. */
async function mainPhase(run: Run, nemesis: Nemesis, workers: Workers, schedule: Schedule): Promise<void> {
  run.phases.mainStartNs = run.recorder.now();
  const mainStartMs = Date.now();
  const mainEndMs = mainStartMs + run.context.options.timeS * 1000;
  // A nemesis failure is a harness failure: stop the workers too, then report it.
  const [nemesisOutcome] = await Promise.allSettled([
    nemesis.run(schedule, mainStartMs).catch((error: unknown) => {
      run.stop.abort();
      throw error;
    }),
    workers.runUntil(mainEndMs),
  ]);
  if (nemesisOutcome.status === 'rejected') throw nemesisOutcome.reason;
  run.context.log(`main phase over: ${Math.floor(run.recorder.eventCount / 2)} ops so far; healing`);
}

/** Heal, then (unless interrupted) the recovery phase, the final reads and the final placement check. */
async function healAndRecover(
  run: Run,
  db: Database,
  nemesis: Nemesis,
  workers: Workers,
  workload: Workload,
): Promise<void> {
  const { options, log } = run.context;
  if (run.proxy !== undefined) {
    const stats = run.proxy.stats();
    log(`peer proxy: ${stats.framesPassed} frames passed, ${stats.framesDropped} dropped`);
  }
  run.healed = true;
  const problems = await nemesis.healAll();
  if (problems.length > 0) throw new Error(`final heal failed: ${problems.join('; ')}`);
  run.phases.healNs = run.recorder.now();
  if (run.stop.signal.aborted) return;
  await workers.runUntil(Date.now() + options.recoveryS * 1000);
  run.phases.recoveryEndNs = run.recorder.now();
  log('recovery phase over; final reads');
  const unread = await workers.finalReads(workload.keys());
  run.phases.finalEndNs = run.recorder.now();
  if (unread.length > 0)
    log(`final reads: ${unread.length} keys never read successfully (${unread.slice(0, 5).join(', ')})`);
  const admin = db.admin;
  const ranMembership = run.nemesisLog.entries.some(
    (entry) => entry.type === 'start' && entry.kind.startsWith('membership'),
  );
  if (admin !== undefined && ranMembership) {
    await checkFinalPlacement(db, admin, (verdict, detail) => {
      nemesis.recordCheck(finalPlacementCheck, verdict, detail);
      log(`final placement: ${verdict}: ${detail}`);
    });
  }
}

/** Teardown, always: heal (unless the run got that far), remove the chain, close the proxy, stop the nodes. */
async function tearDown(run: Run): Promise<string[]> {
  const problems: string[] = [];
  if (run.nemesis !== undefined && !run.healed) problems.push(...(await run.nemesis.healAll()));
  if (run.firewall !== undefined) problems.push(...(await run.firewall.teardown()));
  await run.proxy?.close();
  await run.db?.stop();
  if (run.db instanceof DramCluster && !run.context.options.keepData) run.db.removeData();
  await run.recorder.close();
  await run.nemesisLog.close();
  return problems;
}

export async function runTest(context: RunContext): Promise<number> {
  const { options, runDir, log } = context;
  mkdirSync(runDir, { recursive: true });
  const rootRng = createRng(options.seed);
  const nodeIds = Array.from({ length: options.nodes }, (_, k) => k + 1);
  const schedule = planRun(context, rootRng, nodeIds);
  const netem = await probeNetem();
  log(netem.detail);

  const run: Run = {
    context,
    recorder: new HistoryRecorder(join(runDir, 'history.jsonl'), process.hrtime.bigint()),
    nemesisLog: new NemesisLog(join(runDir, 'nemesis.jsonl')),
    phases: { mainStartNs: 0, healNs: 0, recoveryEndNs: 0, finalEndNs: 0 },
    stop: new AbortController(),
    healed: false,
  };
  const workload = createWorkload(options.workload, options);
  let harnessError: string | undefined;
  let cleanupProblems: string[];
  const started = Date.now();
  context.signal.addEventListener('abort', () => {
    run.stop.abort();
  });
  try {
    const { db, nemesis } = await setUp(run, schedule);
    const clients = nodeIds.map((node) => db.client(node));
    const workers = new Workers(workload, clients, run.recorder, options, rootRng, run.stop.signal);
    await mainPhase(run, nemesis, workers, schedule);
    await healAndRecover(run, db, nemesis, workers, workload);
    await Promise.all(clients.map((client) => client.close()));
    if (context.signal.aborted) harnessError = 'interrupted';
  } catch (error) {
    harnessError = describeThrown(error).text;
    log(`harness error: ${harnessError}`);
  } finally {
    cleanupProblems = await tearDown(run);
  }
  for (const problem of cleanupProblems) log(`cleanup: ${problem}`);

  const summary: RunSummary = {
    runDir: resolve(runDir),
    argv: context.argv,
    options,
    schedule,
    netem: netem.detail,
    startedAt: new Date(started).toISOString(),
    durationS: (Date.now() - started) / 1000,
    phases: run.phases,
    harnessError,
    crashes: run.db?.unexpectedExits() ?? [],
  };
  return finishRun(summary, workload, run.nemesisLog.entries, log);
}

/**
 * Checks a finished run from its history.jsonl (streamed: see history-check.ts), writes
 * results.json and report.html, answers the exit code.
 */
export function finishRun(
  summary: RunSummary,
  workload: Workload,
  nemesisEntries: readonly NemesisEntry[],
  log: (line: string) => void,
): number {
  const historyPath = join(summary.runDir, 'history.jsonl');
  const { phases, options } = summary;
  const judged = phases.healNs > 0 && phases.finalEndNs > 0;
  const pass = overviewPass(
    historyPath,
    judged
      ? {
          healTimeNs: phases.healNs,
          graceNs: options.livenessGraceS * 1e9,
          boundNs: options.livenessBoundMs * 1e6,
          historyEndNs: phases.finalEndNs,
        }
      : undefined,
  );
  let keyCheck: KeyCheck | { error: string };
  try {
    keyCheck = checkByKey(historyPath, workload, pass, options.linearizabilityStepsMax);
  } catch (error) {
    keyCheck = { error: error instanceof Error ? error.message : String(error) };
  }
  const results = checkRun(summary, workload.name, {
    ops: pass.overview.counts,
    workloadCheck: 'error' in keyCheck ? keyCheck : keyCheck.check,
    liveness: pass.liveness,
    nemesis: checkNemesisEffects(summary.schedule, nemesisEntries),
    harness: {
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      historyEvents: pass.events,
      historyPasses: 1 + ('error' in keyCheck ? 0 : keyCheck.passes),
    },
  });
  writeFileSync(join(summary.runDir, 'results.json'), `${JSON.stringify(serialisable(results), null, 2)}\n`);
  writeReport(join(summary.runDir, 'report.html'), {
    summary,
    results,
    overview: pass.overview,
    nemesis: nemesisEntries,
    invalidKeyOps: 'error' in keyCheck ? new Map() : keyCheck.invalidKeyOps,
    workload,
  });
  log(`ops: ${results.ops.total} (${results.ops.ok} ok, ${results.ops.fail} fail, ${results.ops.info} info)`);
  for (const [name, checker] of Object.entries(results.checkers))
    log(`  ${name}: ${checker.verdict} - ${checker.summary}`);
  log(
    `harness peak RSS ${(results.harness.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ${results.harness.historyPasses} history passes`,
  );
  log(
    `verdict: ${results.verdict}${summary.harnessError === undefined ? '' : ` (harness error: ${summary.harnessError})`}`,
  );
  log(`report: ${join(summary.runDir, 'report.html')}`);
  return results.verdict === 'valid' ? 0 : results.verdict === 'invalid' ? 1 : 2;
}

/**
 * --recheck DIR: runs the checkers and the report again on a run folder's history.jsonl,
 * nemesis.jsonl, schedule.json and results.json (for its phases), without starting anything.
 * Useful after a checker fix, or on a history edited by hand.
 */
export function recheck(runDir: string, log: (line: string) => void): number {
  const saved = JSON.parse(readFileSync(join(runDir, 'schedule.json'), 'utf8')) as {
    options: RunOptions;
    schedule: Schedule;
  };
  const previous = existsSync(join(runDir, 'results.json'))
    ? (JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8')) as { run?: Partial<RunSummary> }).run
    : undefined;
  const nemesisText = existsSync(join(runDir, 'nemesis.jsonl'))
    ? readFileSync(join(runDir, 'nemesis.jsonl'), 'utf8')
    : '';
  const nemesisEntries = nemesisText
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as NemesisEntry);
  let lastTime = 0;
  forEachLine(join(runDir, 'history.jsonl'), (line, lineNumber) => {
    lastTime = Math.max(lastTime, parseEventLine(line, lineNumber)?.time ?? 0);
  });
  const summary: RunSummary = {
    runDir: resolve(runDir),
    argv: previous?.argv ?? [],
    options: saved.options,
    schedule: saved.schedule,
    netem: previous?.netem ?? '',
    startedAt: previous?.startedAt ?? '',
    durationS: previous?.durationS ?? 0,
    phases: previous?.phases ?? { mainStartNs: 0, healNs: 0, recoveryEndNs: lastTime, finalEndNs: lastTime },
    harnessError: previous?.harnessError,
    crashes: previous?.crashes ?? [],
  };
  log(`rechecking ${summary.runDir}`);
  return finishRun(summary, createWorkload(saved.options.workload, saved.options), nemesisEntries, log);
}

/** The client workers. Worker w talks to node (w mod nodes) + 1 and owns process ids w, w+C, w+2C, ... */
class Workers {
  private readonly workload: Workload;
  private readonly clients: readonly KvClient[];
  private readonly recorder: HistoryRecorder;
  private readonly options: RunOptions;
  private readonly rngs: Rng[];
  private readonly processes: number[];
  private readonly signal: AbortSignal;
  private nextFinalProcess: number;

  constructor(
    workload: Workload,
    clients: readonly KvClient[],
    recorder: HistoryRecorder,
    options: RunOptions,
    rootRng: Rng,
    signal: AbortSignal,
  ) {
    this.workload = workload;
    this.clients = clients;
    this.recorder = recorder;
    this.options = options;
    this.signal = signal;
    this.rngs = Array.from({ length: options.concurrency }, (_, w) => rootRng.fork(`worker-${w}`));
    this.processes = Array.from({ length: options.concurrency }, (_, w) => w);
    this.nextFinalProcess = 0;
  }

  async runUntil(endMs: number): Promise<void> {
    await Promise.all(this.rngs.map((_, w) => this.work(w, endMs)));
  }

  private clientFor(w: number): KvClient {
    const client = this.clients[w % this.clients.length];
    if (client === undefined) throw new Error('internal: no client');
    return client;
  }

  private async work(w: number, endMs: number): Promise<void> {
    const rng = this.rngs[w];
    if (rng === undefined) throw new Error('internal: no worker rng');
    const client = this.clientFor(w);
    const rate = Math.min(this.options.rate, this.workload.rateMax ?? Infinity);
    const meanGapMs = (this.options.concurrency / rate) * 1000;
    for (let count = 0; count < opsPerWorkerMax && Date.now() < endMs && !this.signal.aborted; count++) {
      const process = this.processes[w] ?? w;
      const op = this.workload.nextOp(rng);
      const completion = (await this.invoke(process, op, client)).type;
      if (completion === 'info') this.processes[w] = process + this.options.concurrency;
      await sleep(Math.min(rng.exponential(meanGapMs), endMs - Date.now()));
    }
  }

  /** Invokes one op and records both events; answers the completion. */
  private async invoke(process: number, op: PlannedOp, client: KvClient): Promise<Completion> {
    const timeoutMs = Math.max(this.options.opTimeoutMs, this.workload.opTimeoutMs ?? 0);
    this.recorder.invoke(process, op.f, op.key, op.value, { node: client.node });
    let completion: Completion;
    try {
      // A hard stop in case a client ignores its own deadline; the op is then info.
      completion = await Promise.race([
        this.workload.invoke(op, client, timeoutMs),
        sleep(timeoutMs * 2 + 1000).then(() => ({
          type: 'info' as const,
          value: op.value,
          error: 'harness hard timeout',
        })),
      ]);
    } catch (error) {
      completion = { type: 'info', value: op.value, error: `client threw: ${describeThrown(error).text}` };
    }
    const value = op.f === 'read' ? (completion.type === 'ok' ? completion.value : null) : op.value;
    this.recorder.complete(process, completion.type, op.f, op.key, value, {
      node: client.node,
      ...(completion.error === undefined ? {} : { error: completion.error }),
    });
    return completion;
  }

  /**
   * Reads every key until a read succeeds (bounded), or, for a workload with its own final reads,
   * until a read is settled; answers the keys never read (or never settled).
   */
  async finalReads(keys: readonly string[]): Promise<string[]> {
    const queue = keys.map((key, index) => ({ key, index }));
    const unread: string[] = [];
    const final = this.workload.finalRead;
    const deadline = Date.now() + (final?.timeMs ?? finalReadTimeMs);
    const triesMax = final === undefined ? finalReadTriesMax : Math.ceil(final.timeMs / final.gapMs) + 1;
    const base = this.processes.reduce((max, process) => Math.max(max, process), 0) + this.options.concurrency;
    const reader = async (): Promise<void> => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        let done = false;
        for (let attempt = 0; attempt < triesMax && !done && Date.now() < deadline && !this.signal.aborted; attempt++) {
          const process = base + this.nextFinalProcess++;
          // Each retry asks the next node: a read that fails at one node may succeed at another.
          const completion = await this.invoke(
            process,
            { f: 'read', key: item.key, value: final?.value ?? null },
            this.clientFor(item.index + attempt),
          );
          done = completion.type === 'ok' && (final?.settled(completion.value) ?? true);
          if (!done) await sleep(final?.gapMs ?? 200);
        }
        if (!done) unread.push(item.key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, Math.max(1, keys.length)) }, reader));
    return unread;
  }
}
