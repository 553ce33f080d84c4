// Starts and stops a real S3 server (s3rver 3.7, a development dependency) as its own child process
// on loopback, for `dram dev` and the tests. The child is src/s3/s3rver-main.ts; it reports its port
// once it listens, so `port: 0` (the default) picks a free one and there is nothing to poll.
//
// Known limits of s3rver, which callers work with: it checks no signatures (any secret works, but
// the access key id must be its built-in `S3RVER`, exported here as s3rverCredentials), it answers
// suffix ranges (`bytes=-N`) wrongly (the adapter sends explicit ranges only), and it needs
// `--openssl-legacy-provider` on Node 20 for ListObjectsV2 paging (passed here).
//
// Invariants: start() resolves only once the server listens, and otherwise leaves no process
// behind; stop() asks for a graceful close (SIGTERM) and kills the process if it is not gone
// within `stopMs`; a child whose parent dies stops too (it watches its stdin).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The only access key id s3rver accepts (it checks no signature, so the secret is arbitrary). */
export const s3rverCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3rverOptions {
  /** Where the server keeps buckets and objects (created when missing). */
  readonly directory: string;
  /** A loopback address; default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port, reported in `endpoint`. */
  readonly port?: number;
  /** How long the server may take to listen. */
  readonly startMs?: number;
  /** How long a graceful stop may take before the process is killed. */
  readonly stopMs?: number;
  /** Where the server's stderr goes: inherited (default) or dropped. */
  readonly stderr?: 'inherit' | 'ignore';
}

export interface S3rverProcess {
  /** `http://host:port`, for the adapter's `endpoint` (with path-style addressing). */
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves once the process has exited. */
  stop(): Promise<void>;
}

const startMsDefault = 15_000;
const stopMsDefault = 5_000;
/** The ready line is one short JSON object; anything longer is not the child we started. */
const readyLineBytesMax = 1024;

/** The package's path, with a clear error when the development dependencies are not installed. */
function checkInstalled(): void {
  try {
    createRequire(import.meta.url).resolve('s3rver');
  } catch {
    throw new Error('s3rver is not installed: it is a development dependency (run npm ci without --omit=dev)');
  }
}

export async function startS3rver(options: S3rverOptions): Promise<S3rverProcess> {
  checkInstalled();
  const host = options.host ?? '127.0.0.1';
  mkdirSync(options.directory, { recursive: true });
  const main = fileURLToPath(new URL('./s3rver-main.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', main, options.directory, host, String(options.port ?? 0)],
    { stdio: ['pipe', 'pipe', options.stderr ?? 'inherit'] },
  );
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  let port: number;
  try {
    port = await readyPort(child, options.startMs ?? startMsDefault);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const pid = child.pid ?? 0;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${host}:${port}`,
    port,
    pid,
    stop: () => {
      stopped ??= stopChild(child, exited, options.stopMs ?? stopMsDefault);
      return stopped;
    },
  };
}

function readyPort(child: ChildProcess, startMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      finish(new Error(`s3rver did not listen within ${startMs} ms`));
    }, startMs);
    const finish = (outcome: number | Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (typeof outcome === 'number') resolve(outcome);
      else reject(outcome);
    };
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0) {
        if (buffered.length > readyLineBytesMax) finish(new Error('s3rver wrote something other than its ready line'));
        return;
      }
      const port = parsePort(buffered.slice(0, end));
      if (typeof port === 'number' && Number.isInteger(port) && port > 0) finish(port);
      else finish(new Error(`s3rver reported no port: ${buffered.slice(0, end)}`));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(new Error(`s3rver exited before listening (code ${String(code)}, signal ${String(signal)})`));
    };
    const onError = (error: Error): void => {
      finish(error);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function parsePort(line: string): unknown {
  try {
    return (JSON.parse(line) as { port?: unknown } | null)?.port;
  } catch {
    return undefined;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>, stopMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => {
      resolve('late');
    }, stopMs);
  });
  const outcome = await Promise.race([exited.then(() => 'gone' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}
