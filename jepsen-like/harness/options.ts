// The harness's command line, validated once into RunOptions. Every knob has a default that makes
// `npm run jepsen -- --workload register` a sensible 60 s run; bad values are a clear error naming
// the flag (exit code 2 from the CLI). Called by jepsen-like/cli.ts.

import { parseArgs } from 'node:util';

export type WorkloadName = 'register' | 'set' | 'append' | 'actions';
export type NemesisKind = 'partition' | 'kill' | 'pause' | 'proxy' | 'transfer' | 'snapshot' | 'membership';
export type DbName = 'dram' | 'etcd';

export const WORKLOADS: readonly WorkloadName[] = ['register', 'set', 'append', 'actions'];
/**
 * The workloads a campaign rotates through: the KV ones. Not actions: it runs a few ops a second
 * whatever the budget, and a fourth workload would break the rotation's coprime lengths (3, 5, 2).
 */
export const CAMPAIGN_WORKLOADS: readonly WorkloadName[] = ['register', 'set', 'append'];
export const NEMESES: readonly NemesisKind[] = [
  'partition',
  'kill',
  'pause',
  'proxy',
  'transfer',
  'snapshot',
  'membership',
];

export interface RunOptions {
  readonly workload: WorkloadName;
  readonly nemeses: readonly NemesisKind[];
  readonly db: DbName;
  readonly nodes: number;
  /** Length of the main phase (workload plus faults), seconds. */
  readonly timeS: number;
  /** Target operations per second over all workers. */
  readonly rate: number;
  readonly seed: number;
  readonly concurrency: number;
  readonly kvGroups: number;
  /** dram: how reads are served (lease reads also start the nodes with lease reads on). */
  readonly reads: 'linearizable' | 'lease';
  /** dram: idle ticks before a group goes quiet (undefined: the node's default). */
  readonly quiesceAfterTicks: number | undefined;
  /** Client-side bound on one operation; past it the op is info (writes) or fail (reads). */
  readonly opTimeoutMs: number;
  /** Workload keeps running this long after the final heal; liveness is judged in it. */
  readonly recoveryS: number;
  /** Liveness: ops invoked this long after the heal must complete ok within livenessBoundMs. */
  readonly livenessGraceS: number;
  readonly livenessBoundMs: number;
  readonly faultMinS: number;
  readonly faultMaxS: number;
  readonly quietMinS: number;
  readonly quietMaxS: number;
  /** Register: ops per key before the key is retired (keeps each key's history checkable). */
  readonly opsPerKey: number;
  /** Set / append: adds or appends per key before it is retired. */
  readonly addsPerKey: number;
  /** Keys in use at once. */
  readonly keyCount: number;
  /** Run in a private network namespace (unshare -n); iptables rules then never touch the host. */
  readonly netns: boolean;
  readonly portBase: number;
  readonly keepData: boolean;
  readonly runsDir: string;
  readonly linearizabilityStepsMax: number;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `usage: npm run jepsen -- [options]
  --workload register|set|append|actions   (default register; actions: agent actions, dram only,
                                     at most 4 ops/s whatever --rate says)
  --nemesis  partition,kill,pause,proxy,transfer,snapshot,membership  comma list, or none
             (default partition,kill); snapshot and membership are dram's only, membership needs
             --nodes 5 (else skipped with a message); both check that each fault had its effect
  --db dram|etcd                     (etcd: register and set, kill/pause/transfer nemeses)
  --nodes N                          3 or 5 (default 3)
  --time S                           main phase in seconds (default 60)
  --rate R                           target ops/s over all workers (default 200)
  --seed S                           integer; the same seed gives the same fault schedule (default: time)
  --concurrency C                    client workers (default 2 x nodes)
  --kv-groups K                      dram KV groups (default 4)
  --reads linearizable|lease         dram: read consistency; lease also turns lease reads on in the nodes
  --quiesce-after-ticks N            dram: idle ticks (10 ms) before a group goes quiet (default: the node's, 100)
  --op-timeout-ms MS                 client timeout per op (default 3000)
  --recovery S                       workload time after the final heal (default 10)
  --liveness-grace S --liveness-bound-ms MS   (defaults 5 and 2000)
  --fault-min S --fault-max S --quiet-min S --quiet-max S   fault and gap lengths (defaults 3 8 2 5)
  --ops-per-key N --adds-per-key N --keys N    key rotation (defaults 150 300 6)
  --no-netns                         run in the host network namespace (iptables chain DRAM_JEPSEN there)
  --port-base P                      HTTP port P, Raft port P+1000, proxies P+2000.. (default 18080)
  --keep-data                        keep the nodes' data dirs under the run folder
  --runs-dir DIR                     default jepsen-like/runs
  --steps-max N                      linearizability search budget (default 10000000)
npm run jepsen -- --recheck RUN_DIR  check a finished run's history again and rewrite its report`;

function integer(
  raw: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new UsageError(`${flag}: expected an integer in [${min}, ${max}], got "${raw}"`);
  return value;
}

function decimal(raw: string | undefined, flag: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min)
    throw new UsageError(`${flag}: expected a number >= ${min}, got "${raw}"`);
  return value;
}

function oneOf<T extends string>(raw: string | undefined, flag: string, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  const found = allowed.find((candidate) => candidate === raw);
  if (found === undefined) throw new UsageError(`${flag}: expected one of ${allowed.join(', ')}, got "${raw}"`);
  return found;
}

function nemesisList(raw: string | undefined): NemesisKind[] {
  if (raw === undefined) return ['partition', 'kill'];
  if (raw === 'none' || raw === '') return [];
  const kinds = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  const result: NemesisKind[] = [];
  for (const kind of kinds) {
    const known = NEMESES.find((candidate) => candidate === kind);
    if (known === undefined)
      throw new UsageError(`--nemesis: unknown nemesis "${kind}" (known: ${NEMESES.join(', ')})`);
    if (!result.includes(known)) result.push(known);
  }
  return result;
}

/** The flags of `jepsen run`, as parseArgs takes them. */
const runFlags = {
  help: { type: 'boolean', short: 'h' },
  workload: { type: 'string' },
  nemesis: { type: 'string' },
  db: { type: 'string' },
  nodes: { type: 'string' },
  time: { type: 'string' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  concurrency: { type: 'string' },
  'kv-groups': { type: 'string' },
  reads: { type: 'string' },
  'quiesce-after-ticks': { type: 'string' },
  'op-timeout-ms': { type: 'string' },
  recovery: { type: 'string' },
  'liveness-grace': { type: 'string' },
  'liveness-bound-ms': { type: 'string' },
  'fault-min': { type: 'string' },
  'fault-max': { type: 'string' },
  'quiet-min': { type: 'string' },
  'quiet-max': { type: 'string' },
  'ops-per-key': { type: 'string' },
  'adds-per-key': { type: 'string' },
  keys: { type: 'string' },
  'no-netns': { type: 'boolean' },
  'port-base': { type: 'string' },
  'keep-data': { type: 'boolean' },
  'runs-dir': { type: 'string' },
  'steps-max': { type: 'string' },
} as const;

export function parseRunOptions(argv: readonly string[]): RunOptions | 'help' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: runFlags,
  });
  if (values.help === true) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals.join(' ')}"`);
  const nodes = integer(values.nodes, '--nodes', 3, 1, 9);
  const faultMinS = decimal(values['fault-min'], '--fault-min', 3, 0.1);
  const quietMinS = decimal(values['quiet-min'], '--quiet-min', 2, 0);
  const options: RunOptions = {
    workload: oneOf(values.workload, '--workload', WORKLOADS, 'register'),
    nemeses: nemesisList(values.nemesis),
    db: oneOf<DbName>(values.db, '--db', ['dram', 'etcd'], 'dram'),
    nodes,
    timeS: decimal(values.time, '--time', 60, 1),
    rate: decimal(values.rate, '--rate', 200, 0.1),
    seed: integer(values.seed, '--seed', Date.now() % 1_000_000_007, 0),
    concurrency: integer(values.concurrency, '--concurrency', 2 * nodes, 1, 1000),
    kvGroups: integer(values['kv-groups'], '--kv-groups', 4, 1, 256),
    reads: oneOf(values.reads, '--reads', ['linearizable', 'lease'] as const, 'linearizable'),
    quiesceAfterTicks:
      values['quiesce-after-ticks'] === undefined
        ? undefined
        : integer(values['quiesce-after-ticks'], '--quiesce-after-ticks', 100, 0, 1_000_000),
    opTimeoutMs: integer(values['op-timeout-ms'], '--op-timeout-ms', 3000, 10),
    recoveryS: decimal(values.recovery, '--recovery', 10, 0),
    livenessGraceS: decimal(values['liveness-grace'], '--liveness-grace', 5, 0),
    livenessBoundMs: integer(values['liveness-bound-ms'], '--liveness-bound-ms', 2000, 1),
    faultMinS,
    faultMaxS: decimal(values['fault-max'], '--fault-max', Math.max(8, faultMinS), faultMinS),
    quietMinS,
    quietMaxS: decimal(values['quiet-max'], '--quiet-max', Math.max(5, quietMinS), quietMinS),
    opsPerKey: integer(values['ops-per-key'], '--ops-per-key', 150, 1),
    addsPerKey: integer(values['adds-per-key'], '--adds-per-key', 300, 1),
    keyCount: integer(values.keys, '--keys', 6, 1, 10_000),
    netns: values['no-netns'] !== true,
    portBase: integer(values['port-base'], '--port-base', 18080, 1024, 60_000),
    keepData: values['keep-data'] === true,
    runsDir: values['runs-dir'] ?? 'jepsen-like/runs',
    linearizabilityStepsMax: integer(values['steps-max'], '--steps-max', 10_000_000, 1),
  };
  checkCombination(options);
  return options;
}

/** Refuses options that are valid one by one but not together. */
function checkCombination(options: RunOptions): void {
  if (options.db === 'etcd') {
    if (options.workload === 'append' || options.workload === 'actions')
      throw new UsageError('--db etcd runs the register and set workloads only');
    if (options.nodes !== 3) throw new UsageError('--db etcd: shared/tools/etcd-cluster.sh starts exactly 3 members');
  }
  if (options.livenessGraceS >= options.recoveryS && options.recoveryS > 0) {
    throw new UsageError(
      `--liveness-grace (${options.livenessGraceS}) must be shorter than --recovery (${options.recoveryS}), or nothing is judged`,
    );
  }
}
