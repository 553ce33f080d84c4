// One dram node as a real process (`bin/dram.js start`), the one driver under the three harnesses
// that run real clusters: the integration tests (test/integration/cluster-process.ts), the cluster
// benchmarks (bench/cluster-dram.ts) and the fault harness (jepsen-like/harness/dram-cluster.ts).
// Each of them chooses addresses, membership flags and where output goes; this file builds the
// command line, spawns the process (from this tree, or from another source tree such as a previous
// release's, test/support/previous-release.ts), keeps its output (in memory, or an fd the child writes to
// directly), and stops it: a signal, then SIGKILL after a bounded wait, resolved only once the
// process has exited.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const dramBin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));

/** The `dram` command of another source tree (a previous release's, test/support/previous-release.ts). */
export function dramBinOf(sourceRoot: string): string {
  return join(sourceRoot, 'bin', 'dram.js');
}

/** What `dram start` needs to know about one node; addresses are `host:port`. */
export interface DramNodeFlags {
  readonly nodeId: number;
  readonly dataDir: string;
  readonly http: string;
  readonly raft: string;
  /** The binary client protocol listener (--client), if any. */
  readonly client?: string;
  /** `--init`, `--peers ...`, `--peer-http ...`, `--kv-groups n`, or `--join url`, or nothing. */
  readonly membership: readonly string[];
  readonly secret: string;
  /** More flags (a token, TLS files, timing). */
  readonly extra?: readonly string[];
}

export function dramStartArgs(node: DramNodeFlags): string[] {
  return [
    'start',
    '--node-id',
    String(node.nodeId),
    '--data-dir',
    node.dataDir,
    '--http',
    node.http,
    '--raft',
    node.raft,
    ...(node.client === undefined ? [] : ['--client', node.client]),
    ...node.membership,
    '--secret',
    node.secret,
    ...(node.extra ?? []),
  ];
}

export interface DramProcessOptions {
  readonly flags: DramNodeFlags;
  /** Node's own flags, before the script (`--cpu-prof` ...). */
  readonly nodeOptions?: readonly string[];
  /** `memory`: kept for output(); a number: an fd the child writes stdout and stderr to. */
  readonly output: 'memory' | number;
  readonly env?: NodeJS.ProcessEnv;
  /** Its own process group, so a Ctrl-C at the terminal reaches the harness only. */
  readonly detached?: boolean;
  /** Run the `dram` of this source tree (with its own bin/, src/ and node_modules) instead of this one's. */
  readonly sourceRoot?: string;
}

export class DramProcess {
  readonly child: ChildProcess;
  readonly args: readonly string[];
  private readonly lines: string[] = [];
  private readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;

  constructor(options: DramProcessOptions) {
    const bin = options.sourceRoot === undefined ? dramBin : dramBinOf(options.sourceRoot);
    this.args = [...(options.nodeOptions ?? []), bin, ...dramStartArgs(options.flags)];
    const output = options.output;
    const stdio = output === 'memory' ? (['ignore', 'pipe', 'pipe'] as const) : (['ignore', output, output] as const);
    this.child = spawn(process.execPath, this.args, {
      stdio: [...stdio],
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.detached === true ? { detached: true } : {}),
      // tsx reads the tsconfig.json of its working directory: the tree's own.
      ...(options.sourceRoot === undefined ? {} : { cwd: options.sourceRoot }),
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.lines.push(chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => this.lines.push(chunk.toString()));
    this.exit = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Settles once the process has exited: its exit code (null when a signal ended it) and signal. */
  exited(): Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }> {
    return this.exit;
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `killAfterMs` if it has not exited by then. */
  async stop(signal: NodeJS.Signals, killAfterMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
    await this.exit;
    clearTimeout(timer);
  }

  /** A signal that does not end the process (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** What the process wrote, with `output: 'memory'`. */
  output(): string {
    return this.lines.join('');
  }
}
