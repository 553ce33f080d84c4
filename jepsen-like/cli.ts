// The harness's entry point: `npm run jepsen -- --workload register --nemesis partition,kill ...`
// (or `npx tsx jepsen-like/cli.ts ...`). Exit code 0 when every checker passed, 1 when one proved
// a violation, 2 when the verdict is unknown or the harness itself failed (bad flags included).
//
// By default the run happens in a private network namespace: the CLI first does what needs the
// outside world (installing iptables when a partition nemesis will run, installing etcd for
// --db etcd), then re-executes itself under `unshare -n` with loopback up. Inside, node addresses
// 127.0.0.11.. and the DRAM_JEPSEN iptables chain belong to this run alone, and they vanish with
// it, so even a harness killed with SIGKILL leaves no rule behind on the host. --no-netns runs in
// the host namespace instead (the chain is still the only thing touched, and removed in finally).

import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CAMPAIGN_USAGE, campaignMain, ledgerMain } from './harness/campaign-cli.ts';
import { ensureIptables } from './harness/firewall.ts';
import { parseRunOptions, USAGE, UsageError, type RunOptions } from './harness/options.ts';
import { recheck, runDirName, runTest } from './harness/run.ts';

const run = promisify(execFile);
const insideEnv = 'DRAM_JEPSEN_NETNS';

function log(line: string): void {
  process.stdout.write(`[jepsen] ${line}\n`);
}

async function ensureEtcd(): Promise<void> {
  try {
    await run('sh', ['-c', 'command -v etcd && command -v etcdctl']);
  } catch {
    log('etcd is missing: installing etcd-server and etcd-client with apt-get');
    await run(
      'sh',
      ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client'],
      { maxBuffer: 16 << 20 },
    );
  }
}

/** What needs the network, done before entering the namespace. */
async function prepare(options: RunOptions): Promise<void> {
  if (options.db === 'dram' && options.nemeses.includes('partition')) await ensureIptables(log);
  if (options.db === 'etcd') await ensureEtcd();
}

/** Re-runs this very command inside `unshare -n` and answers its exit code. */
function reexecInNamespace(runDir: string): Promise<number> {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot find the harness script to re-execute');
  const node = [process.execPath, ...process.execArgv, script, ...process.argv.slice(2)];
  const quoted = node.map((part) => `'${part.replace(/'/gu, "'\\''")}'`).join(' ');
  const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec ${quoted}`], {
    stdio: 'inherit',
    env: { ...process.env, [insideEnv]: runDir },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      log(`cannot start unshare (${error.message}); rerun with --no-netns`);
      resolve(2);
    });
    child.on('exit', (code, signal) => {
      resolve(code ?? (signal === null ? 2 : 2));
    });
  });
}

function isUsageError(error: unknown): error is Error {
  return (
    error instanceof UsageError ||
    (error instanceof Error &&
      'code' in error &&
      String((error as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))
  );
}

async function main(): Promise<number> {
  const ledgerAt = process.argv.indexOf('--ledger');
  if (ledgerAt >= 0) {
    const path = process.argv[ledgerAt + 1];
    if (path === undefined) {
      process.stderr.write('jepsen: --ledger needs a ledger file\n');
      return 2;
    }
    return ledgerMain(path);
  }
  if (process.argv.includes('--campaign') && process.env[insideEnv] === undefined) {
    try {
      return await campaignMain(process.argv.slice(2), log);
    } catch (error) {
      if (!isUsageError(error)) throw error;
      process.stderr.write(`jepsen: ${error.message}\n${CAMPAIGN_USAGE}\n`);
      return 2;
    }
  }
  const recheckAt = process.argv.indexOf('--recheck');
  if (recheckAt >= 0) {
    const dir = process.argv[recheckAt + 1];
    if (dir === undefined) {
      process.stderr.write('jepsen: --recheck needs a run folder\n');
      return 2;
    }
    return recheck(dir, log);
  }
  let options: RunOptions;
  try {
    const parsed = parseRunOptions(process.argv.slice(2));
    if (parsed === 'help') {
      process.stdout.write(`${USAGE}\n${CAMPAIGN_USAGE}\n`);
      return 0;
    }
    options = parsed;
  } catch (error) {
    if (isUsageError(error)) {
      process.stderr.write(`jepsen: ${error.message}\n${USAGE}\n${CAMPAIGN_USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const inside = process.env[insideEnv];
  if (options.netns && inside === undefined) {
    await prepare(options);
    return reexecInNamespace(join(options.runsDir, runDirName(options.seed)));
  }
  if (!options.netns) await prepare(options);
  const runDir = inside ?? join(options.runsDir, runDirName(options.seed));
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping the run, healing and cleaning up`);
      controller.abort();
    });
  }
  return runTest({
    options,
    runDir,
    argv: ['npm run jepsen --', ...process.argv.slice(2)],
    log,
    signal: controller.signal,
  });
}

main().then(
  (code) => {
    // Exit at once: keep-alive sockets and client channels would otherwise hold the process open.
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(
      `jepsen: harness failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
