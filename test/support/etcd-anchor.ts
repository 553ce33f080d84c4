// The etcd anchor, shared by the benchmarks and the fault-injection harness: a three-member
// etcd 3.4 started with shared/tools/etcd-cluster.sh (timeouts matched to dram's), its client
// URLs, an etcd3 client with retries and the circuit breaker off (a retried cas could apply
// twice; a parked member would skew a benchmark), and control of single members: pids, restart
// with the script's flags, health, members, leader, MoveLeader.

import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Etcd3, type IOptions } from 'etcd3';

const run = promisify(execFile);

export const etcdEndpoints = ['http://127.0.0.1:12379', 'http://127.0.0.1:22379', 'http://127.0.0.1:32379'] as const;
const initialCluster = 'n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380';

type Policy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** A policy that runs the call once: no retry, no circuit breaker (etcd3 reads only `execute`). */
const once = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) =>
    fn({ signal: new AbortController().signal }),
} as unknown as Policy;

export function etcdClient(hosts: readonly string[]): Etcd3 {
  return new Etcd3({ hosts: [...hosts], dialTimeout: 1000, faultHandling: { host: () => once, global: once } });
}

export interface EtcdLeader {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
}

export class EtcdCluster {
  /** A fresh temp dir of ours; the script keeps its members under `cluster/` in it. */
  private readonly home = mkdtempSync(join(tmpdir(), 'etcd-anchor-'));
  readonly dir = join(this.home, 'cluster');
  readonly script =
    process.env['DRAM_ETCD_SCRIPT'] ?? fileURLToPath(new URL('../../../shared/tools/etcd-cluster.sh', import.meta.url));
  readonly heartbeatMs: number;
  readonly electionMs: number;
  private readonly statusClients = etcdEndpoints.map((url) => etcdClient([url]));
  private started = false;

  constructor(heartbeatMs: number, electionMs: number) {
    this.heartbeatMs = heartbeatMs;
    this.electionMs = electionMs;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, ETCD_HEARTBEAT_MS: String(this.heartbeatMs), ETCD_ELECTION_MS: String(this.electionMs) };
  }

  async start(): Promise<void> {
    this.started = true;
    await run('bash', [this.script, 'start', this.dir], { env: this.env(), timeout: 300_000 });
  }

  /** Stops every member (the script's `stop`: SIGTERM, SIGKILL after 5 s) and removes the temp dir. */
  async stop(): Promise<void> {
    for (const client of this.statusClients) client.close();
    try {
      if (this.started) await run('bash', [this.script, 'stop', this.dir], { env: this.env(), timeout: 60_000 });
    } finally {
      this.started = false;
      rmSync(this.home, { recursive: true, force: true });
    }
  }

  etcdVersion(): Promise<string> {
    return run('etcd', ['--version']).then(({ stdout }) => /etcd Version: (\S+)/u.exec(stdout)?.[1] ?? 'unknown');
  }

  /** `etcd-cluster.sh leader`: the leader's name, pid and client URL. */
  async leader(): Promise<EtcdLeader> {
    const { stdout } = await run('bash', [this.script, 'leader', this.dir], { env: this.env(), timeout: 10_000 });
    const [name, pid, url] = stdout.trim().split(/\s+/u);
    if (
      name === undefined ||
      pid === undefined ||
      url === undefined ||
      !/^n[123]$/u.test(name) ||
      !Number.isInteger(Number(pid))
    )
      throw new Error(`etcd-cluster.sh leader printed "${stdout.trim()}"`);
    return { name, pid: Number(pid), url };
  }

  pids(): Map<string, number> {
    const pids = new Map<string, number>();
    for (const line of readFileSync(join(this.dir, 'pids'), 'utf8').split('\n')) {
      const [name, pid] = line.trim().split(' ');
      if (name !== undefined && pid !== undefined && name.length > 0) pids.set(name, Number(pid));
    }
    return pids;
  }

  /** Starts member `name` again from its data dir, with the flags the script uses. */
  restart(name: string): void {
    const i = name.slice(1);
    const log = openSync(join(this.dir, `${name}.log`), 'a');
    let pid: number | undefined;
    try {
      const child = spawn(
        'etcd',
        [
          '--name',
          name,
          '--data-dir',
          join(this.dir, name),
          '--listen-client-urls',
          `http://127.0.0.1:${i}2379`,
          '--advertise-client-urls',
          `http://127.0.0.1:${i}2379`,
          '--listen-peer-urls',
          `http://127.0.0.1:${i}2380`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${i}2380`,
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          'anchor',
          '--heartbeat-interval',
          String(this.heartbeatMs),
          '--election-timeout',
          String(this.electionMs),
        ],
        { stdio: ['ignore', log, log], detached: true },
      );
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(log);
    }
    if (pid === undefined) throw new Error(`could not start etcd member ${name}`);
    const pidsFile = join(this.dir, 'pids');
    const lines = readFileSync(pidsFile, 'utf8')
      .split('\n')
      .filter((line) => line.trim().length > 0);
    writeFileSync(
      pidsFile,
      `${lines.map((line) => (line.split(' ')[0] === name ? `${name} ${pid}` : line)).join('\n')}\n`,
    );
  }

  /** True once every member answers, all agree on the leader, and committed indexes are within `indexLagMax`. */
  async healthy(indexLagMax = Infinity): Promise<boolean> {
    try {
      const views = await Promise.all(
        this.statusClients.map((client) => client.maintenance.status({ deadline: Date.now() + 1000 })),
      );
      const leader = views[0]?.leader;
      if (leader === undefined || leader === '0' || views.some((view) => view.leader !== leader)) return false;
      const indexes = views.map((view) => Number(view.raftIndex));
      return Math.max(...indexes) - Math.min(...indexes) <= indexLagMax;
    } catch {
      return false;
    }
  }

  /** Waits (bounded) until every member is up with one leader and caught up to within 2 entries. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.healthy(2)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`etcd: not every member up with one leader and caught up within ${timeoutMs} ms`);
  }

  /** Member names (n1..n3) and ids, and which one leads. */
  async members(): Promise<{ readonly ids: ReadonlyMap<string, string>; readonly leaderName: string }> {
    let lastError: unknown;
    for (const client of this.statusClients) {
      try {
        const { members } = await client.cluster.memberList({}, { deadline: Date.now() + 2000 });
        const ids = new Map(members.map((member) => [member.name, member.ID] as const));
        const status = await client.maintenance.status({ deadline: Date.now() + 2000 });
        const leaderName = members.find((member) => member.ID === status.leader)?.name;
        if (leaderName !== undefined) return { ids, leaderName };
        lastError = new Error('no leader');
      } catch (error) {
        lastError = error; // that member is down: ask the next one
      }
    }
    throw new Error(
      `etcd: no member names a leader (${lastError instanceof Error ? lastError.message : String(lastError)})`,
    );
  }

  /** MoveLeader sent to the leader's endpoint (it answers once the transfer is done). */
  async moveLeader(leaderName: string, toId: string): Promise<void> {
    const client = this.statusClients[Number(leaderName.slice(1)) - 1];
    if (client === undefined) throw new Error(`no etcd client for ${leaderName}`);
    await client.maintenance.moveLeader({ targetID: toId }, { deadline: Date.now() + 5000 });
  }
}
