// Helpers to run real dram processes on 127.0.0.1 for integration tests (each one a DramProcess,
// test/support/dram-process.ts): start, kill -9, restart, and poll the HTTP API with bounded retries.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DramProcess } from '../support/dram-process.ts';
import { eventually as poll } from '../support/poll.ts';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));

/** The example query endpoints (`--endpoints`), which the database tests query. */
export const endpointsDir = fileURLToPath(new URL('../../examples/endpoints', import.meta.url));

export interface ProcessCluster {
  readonly ids: readonly number[];
  /** The --peers list every initial member is started with (`1=127.0.0.1:port,...`). */
  readonly peers: string;
  url(id: number): string;
  /** The peer transport address of node `id` (--raft). */
  raftAddress(id: number): { readonly host: string; readonly port: number };
  /** The binary client protocol address of node `id` (--client). */
  clientAddress(id: number): { readonly host: string; readonly port: number };
  /**
   * `init: false` restarts from the data dir alone, as an operator would after a crash. A node
   * outside the initial members gets no --peers: `join` names the member URL it joins through,
   * and without it the node restarts from its data dir (or, on an empty one, waits as
   * NOT_IN_CLUSTER). `args` are added to the command line. `sourceRoot` runs another source
   * tree's `dram` (a previous release's, test/support/previous-release.ts).
   */
  start(
    id: number,
    options?: {
      readonly init: boolean;
      readonly join?: string;
      readonly args?: readonly string[];
      readonly sourceRoot?: string;
    },
  ): void;
  kill(id: number, signal?: NodeJS.Signals): Promise<void>;
  /** Sends node `id` a signal that does not end it (SIGSTOP, SIGCONT); nothing when it is not running. */
  signal(id: number, signal: NodeJS.Signals): void;
  /** Node `id`'s data directory. */
  dataDir(id: number): string;
  /** Settles with the exit code (null when killed by a signal) once node `id`'s process has exited. */
  exited(id: number): Promise<number | null>;
  stopAll(): Promise<void>;
  logs(id: number): string;
}

/** `args` are added to every node's `dram start` (a token, TLS files); `started: false` starts none yet. */
export function processCluster(
  size = 3,
  options: { readonly args?: readonly string[]; readonly started?: boolean } = {},
): ProcessCluster {
  const dir = mkdtempSync(join(tmpdir(), 'dram-it-'));
  const base = 20_000 + Math.floor(Math.random() * 20_000);
  const ids = Array.from({ length: size }, (_, k) => k + 1);
  const peers = ids.map((id) => `${id}=127.0.0.1:${base + 100 + id}`).join(',');
  const peerHttp = ids.map((id) => `${id}=127.0.0.1:${base + id}`).join(',');
  const children = new Map<number, DramProcess>();
  /** Every process each node ran, oldest first, for its logs. */
  const runs = new Map<number, DramProcess[]>();
  const cluster: ProcessCluster = {
    ids,
    peers,
    url: (id) => `http://127.0.0.1:${base + id}`,
    raftAddress: (id) => ({ host: '127.0.0.1', port: base + 100 + id }),
    clientAddress: (id) => ({ host: '127.0.0.1', port: base + 200 + id }),
    start(id, how = { init: true }) {
      // A joining node learns the groups (and the members) from the cluster: it gets no --kv-groups.
      const membership = ids.includes(id)
        ? [...(how.init ? ['--init'] : []), '--peers', peers, '--peer-http', peerHttp, '--kv-groups', '4']
        : how.join === undefined
          ? []
          : ['--join', how.join];
      const child = new DramProcess({
        flags: {
          nodeId: id,
          dataDir: join(dir, `n${id}`),
          http: `127.0.0.1:${base + id}`,
          raft: `127.0.0.1:${base + 100 + id}`,
          client: `127.0.0.1:${base + 200 + id}`,
          membership,
          secret: 'dram-integration-test-secret',
          extra: [...(options.args ?? []), ...(how.args ?? [])],
        },
        output: 'memory',
        ...(how.sourceRoot === undefined ? {} : { sourceRoot: how.sourceRoot }),
      });
      runs.set(id, [...(runs.get(id) ?? []), child]);
      children.set(id, child);
    },
    async kill(id, signal = 'SIGKILL') {
      const child = children.get(id);
      if (child === undefined || !child.running) return;
      await child.stop(signal);
      children.delete(id);
    },
    signal(id, signal) {
      const child = children.get(id);
      if (child?.running === true) child.signal(signal);
    },
    async stopAll() {
      await Promise.all([...children.keys()].map((id) => cluster.kill(id, 'SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    },
    logs: (id) => (runs.get(id) ?? []).map((run) => run.output()).join(''),
    dataDir: (id) => join(dir, `n${id}`),
    async exited(id) {
      const child = children.get(id);
      if (child === undefined) throw new Error(`node ${id} was not started`);
      return (await child.exited()).code;
    },
  };
  if (options.started !== false) for (const id of ids) cluster.start(id);
  return cluster;
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export async function request(
  url: string,
  method = 'GET',
  body?: string,
  contentType = 'application/octet-stream',
): Promise<Answer> {
  const response = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Retries `attempt` until it returns a value (not undefined), at most `tries` times; a throw is retried. */
export function eventually<T>(attempt: () => Promise<T | undefined>, tries = 100, delayMs = 100): Promise<T> {
  return poll('the cluster', attempt, { tries, everyMs: delayMs, retryErrors: true });
}

export interface GroupStatus {
  readonly group: number;
  readonly role: string;
  readonly leader: number;
  readonly commit: number;
  readonly applied: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

export async function groupStatus(url: string): Promise<GroupStatus[]> {
  const answer = await request(`${url}/v1/status`);
  // The kv groups: group 0, the meta group, has its own membership rules (5 voters at most).
  return (JSON.parse(answer.text) as { groups: GroupStatus[] }).groups.filter((g) => g.group !== 0);
}

/** Waits until every node of `cluster` reports `groupCount` groups, each with a leader. */
export async function formed(cluster: ProcessCluster, groupCount: number): Promise<void> {
  await eventually(async () => {
    for (const id of cluster.ids) {
      const groups = await groupStatus(cluster.url(id));
      if (groups.length !== groupCount || groups.some((g) => g.leader === 0)) return undefined;
    }
    return true;
  }, 150);
}

/** Runs one `dram` CLI command to its end (bounded): its exit code and output. `dram`: another tree's bin/dram.js. */
export function dramCli(
  args: readonly string[],
  timeoutMs = 120_000,
  dram = bin,
): Promise<{ code: number; out: string; err: string }> {
  return promisify(execFile)(process.execPath, [dram, ...args], { timeout: timeoutMs }).then(
    ({ stdout, stderr }) => ({ code: 0, out: stdout, err: stderr }),
    (error: unknown) => {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? 1, out: failed.stdout ?? '', err: failed.stderr ?? '' };
    },
  );
}

/** The meta group's leader as node `id` sees it (undefined: none known). */
export async function metaLeaderSeenBy(cluster: ProcessCluster, id: number): Promise<number | undefined> {
  const status = JSON.parse((await request(`${cluster.url(id)}/v1/status`)).text) as {
    groups: { group: number; leader: number }[];
  };
  const leader = status.groups.find((g) => g.group === 0)?.leader ?? 0;
  return leader === 0 ? undefined : leader;
}

/**
 * Every kv group's voters as its leader among `ids` reports them, once it has no learner;
 * undefined until all `groupCount` groups have such a leader.
 */
export async function votersByGroup(
  cluster: ProcessCluster,
  ids: readonly number[],
  groupCount: number,
): Promise<Map<number, number[]> | undefined> {
  const voters = new Map<number, number[]>();
  for (const id of ids) {
    for (const group of await groupStatus(cluster.url(id)))
      if (group.role === 'leader' && group.learners.length === 0) voters.set(group.group, [...group.voters].sort());
  }
  return voters.size === groupCount ? voters : undefined;
}

/**
 * POSTs a database (`spec`: the body of POST /v1/databases) to node `node`, retried until it is
 * accepted (202): just after a cluster forms, a node answers 400 while too few nodes are registered
 * ACTIVE for the replicas asked, and 503 while the meta group is between leaders.
 */
export async function addDatabase(cluster: ProcessCluster, spec: Record<string, unknown>, node = 1): Promise<void> {
  await eventually(async () => {
    const added = await request(`${cluster.url(node)}/v1/databases`, 'POST', JSON.stringify(spec), 'application/json');
    return added.status === 202 ? true : undefined;
  }, 100);
}

/** Waits until node `node` reports database `name` as loaded (GET /v1/databases/:name). */
export async function databaseLoaded(cluster: ProcessCluster, name: string, node = 1): Promise<void> {
  await eventually(async () => {
    const answer = await request(`${cluster.url(node)}/v1/databases/${name}`);
    return (JSON.parse(answer.text) as { state?: string }).state === 'loaded' ? true : undefined;
  }, 300);
}
