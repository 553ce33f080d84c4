// --db etcd: the register and set workloads against a three-member etcd started by
// shared/tools/etcd-cluster.sh, with heartbeat and election timeouts matched to dram's (50/250 ms),
// so the same history and checkers judge the anchor. Versions are etcd's mod_revision; a cas is a
// txn `if mod_revision(key) == v then put`. The etcd3 client runs with retries and the circuit
// breaker off: a retried cas could apply twice and make an applied op look failed.
// Nemeses: kill (a killed member is restarted with the script's flags, its new pid written to the
// script's pids file so `stop` still finds it), pause, and transfer (MoveLeader). Every member
// listens on 127.0.0.1, so partitions and the peer proxy cannot target a link and are skipped
// (schedule.ts says so in the log). Members are not children of the harness (the script starts
// them), so crashes are found by polling their pids.

import { execFile, spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Etcd3, type IOptions } from 'etcd3';
import { describeThrown, sleep, type Database, type KvClient, type NodeExit, type ReadResult, type WriteResult } from './db.ts';

const run = promisify(execFile);
const heartbeatMs = 50;
const electionMs = 250;
const etcdEndpoints = ['http://127.0.0.1:12379', 'http://127.0.0.1:22379', 'http://127.0.0.1:32379'] as const;
const initialCluster = 'n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380';

type Policy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** A policy that runs the call once: no retry, no circuit breaker (etcd3 reads only `execute`). */
const once = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) => fn({ signal: new AbortController().signal }),
} as unknown as Policy;

function etcdClient(hosts: readonly string[]): Etcd3 {
  return new Etcd3({ hosts: [...hosts], dialTimeout: 1000, faultHandling: { host: () => once, global: once } });
}

/** The script-started cluster: start, stop, pids, restart of one member, members and leader. */
class EtcdCluster {
  readonly dir = join(mkdtempSync(join(tmpdir(), 'etcd-jepsen-')), 'cluster');
  private readonly script = process.env['DRAM_JEPSEN_ETCD_SCRIPT'] ?? fileURLToPath(new URL('../../../shared/tools/etcd-cluster.sh', import.meta.url));
  private readonly env = { ...process.env, ETCD_HEARTBEAT_MS: String(heartbeatMs), ETCD_ELECTION_MS: String(electionMs) };
  private readonly statusClient = etcdClient([...etcdEndpoints]);
  private readonly memberClients = etcdEndpoints.map((url) => etcdClient([url]));
  private started = false;

  async start(): Promise<void> {
    this.started = true;
    await run('bash', [this.script, 'start', this.dir], { env: this.env, timeout: 300_000 });
  }

  async stop(): Promise<void> {
    this.statusClient.close();
    for (const client of this.memberClients) client.close();
    if (!this.started) return;
    this.started = false;
    await run('bash', [this.script, 'stop', this.dir], { env: this.env, timeout: 60_000 });
    rmSync(dirname(this.dir), { recursive: true, force: true });
  }

  pids(): Map<string, number> {
    const pids = new Map<string, number>();
    for (const line of readFileSync(join(this.dir, 'pids'), 'utf8').split('\n')) {
      const [name, pid] = line.trim().split(' ');
      if (name !== undefined && pid !== undefined && name.length > 0) pids.set(name, Number(pid));
    }
    return pids;
  }

  /** Starts member `name` again from its data dir with the script's flags. */
  restart(name: string): void {
    const i = name.slice(1);
    const log = openSync(join(this.dir, `${name}.log`), 'a');
    let pid: number | undefined;
    try {
      const child = spawn(
        'etcd',
        ['--name', name, '--data-dir', join(this.dir, name), '--listen-client-urls', `http://127.0.0.1:${i}2379`, '--advertise-client-urls', `http://127.0.0.1:${i}2379`, '--listen-peer-urls', `http://127.0.0.1:${i}2380`, '--initial-advertise-peer-urls', `http://127.0.0.1:${i}2380`, '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'anchor', '--heartbeat-interval', String(heartbeatMs), '--election-timeout', String(electionMs)],
        { stdio: ['ignore', log, log], detached: true },
      );
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(log);
    }
    if (pid === undefined) throw new Error(`could not start etcd member ${name}`);
    const pidsFile = join(this.dir, 'pids');
    const lines = readFileSync(pidsFile, 'utf8').split('\n').filter((line) => line.trim().length > 0);
    writeFileSync(pidsFile, `${lines.map((line) => (line.split(' ')[0] === name ? `${name} ${pid}` : line)).join('\n')}\n`);
  }

  /** True once every member answers and all agree on a leader. */
  async healthy(): Promise<boolean> {
    try {
      const views = await Promise.all(this.memberClients.map((client) => client.maintenance.status({ deadline: Date.now() + 1000 })));
      const leader = views[0]?.leader;
      return leader !== undefined && leader !== '0' && views.every((view) => view.leader === leader);
    } catch {
      return false;
    }
  }

  /** Member names (n1..n3) and ids, and which one leads. */
  async members(): Promise<{ readonly ids: ReadonlyMap<string, string>; readonly leaderName: string }> {
    const { members } = await this.statusClient.cluster.memberList({}, { deadline: Date.now() + 2000 });
    const ids = new Map(members.map((member) => [member.name, member.ID] as const));
    const status = await this.statusClient.maintenance.status({ deadline: Date.now() + 2000 });
    const leaderName = members.find((member) => member.ID === status.leader)?.name;
    if (leaderName === undefined) throw new Error('etcd: no leader');
    return { ids, leaderName };
  }

  /** MoveLeader, sent to the leader's endpoint (it answers once the transfer is done). */
  async moveLeader(leaderName: string, toId: string): Promise<void> {
    const client = this.memberClients[Number(leaderName.slice(1)) - 1];
    if (client === undefined) throw new Error(`no etcd client for ${leaderName}`);
    await client.maintenance.moveLeader({ targetID: toId }, { deadline: Date.now() + 5000 });
  }
}


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class EtcdDatabase implements Database {
  readonly name = 'etcd';
  readonly nodeIds: readonly number[] = [1, 2, 3];
  readonly groupIds: readonly number[] = [1];
  readonly supportsNetworkFaults = false;
  private readonly cluster = new EtcdCluster();
  private readonly runDir: string;
  private readonly now: () => number;
  private readonly down = new Set<number>();
  private readonly paused = new Set<number>();
  private readonly crashes: NodeExit[] = [];
  private watchdog: NodeJS.Timeout | undefined;

  constructor(options: { runDir: string; now: () => number }) {
    this.runDir = options.runDir;
    this.now = options.now;
  }

  private pid(node: number): number {
    const pid = this.cluster.pids().get(`n${node}`);
    if (pid === undefined) throw new Error(`etcd member n${node} has no pid`);
    return pid;
  }

  async start(): Promise<void> {
    await this.cluster.start();
    this.watchdog = setInterval(() => {
      for (const node of this.nodeIds) {
        if (this.down.has(node) || alive(this.pid(node))) continue;
        this.down.add(node);
        this.crashes.push({ node, code: null, signal: null, time: this.now() });
      }
    }, 500);
  }

  async waitReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.cluster.healthy()) return true;
      await sleep(200);
    }
    return false;
  }

  client(node: number): KvClient {
    const endpoint = etcdEndpoints[node - 1];
    if (endpoint === undefined) throw new Error(`no etcd endpoint for node ${node}`);
    return new EtcdClient(node, etcdClient([endpoint]));
  }

  nodeAddress(): string {
    return '127.0.0.1';
  }

  async kill(node: number): Promise<void> {
    const pid = this.pid(node);
    this.down.add(node);
    this.paused.delete(node);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
  }

  async restart(node: number): Promise<void> {
    if (!this.down.has(node)) return;
    this.cluster.restart(`n${node}`);
    this.down.delete(node);
    await Promise.resolve();
  }

  pause(node: number): void {
    if (this.down.has(node) || this.paused.has(node)) return;
    process.kill(this.pid(node), 'SIGSTOP');
    this.paused.add(node);
  }

  resume(node: number): void {
    if (!this.paused.has(node)) return;
    process.kill(this.pid(node), 'SIGCONT');
    this.paused.delete(node);
  }

  isRunning(node: number): boolean {
    return !this.down.has(node);
  }

  isPaused(node: number): boolean {
    return this.paused.has(node);
  }

  async leaderOf(): Promise<number | undefined> {
    try {
      const { leaderName } = await this.cluster.members();
      return Number(leaderName.slice(1));
    } catch {
      return undefined;
    }
  }

  async transferLeadership(_group: number, to: number): Promise<string> {
    try {
      const { ids, leaderName } = await this.cluster.members();
      if (leaderName === `n${to}`) return `n${to} already leads`;
      const target = ids.get(`n${to}`);
      if (target === undefined) return `no member n${to}`;
      await this.cluster.moveLeader(leaderName, target);
      return `moved leadership ${leaderName} -> n${to}`;
    } catch (error) {
      return `move-leader to n${to}: ${describeThrown(error).text}`;
    }
  }

  unexpectedExits(): readonly NodeExit[] {
    return this.crashes;
  }

  async stop(): Promise<void> {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    for (const node of [...this.paused]) this.resume(node);
    for (const node of this.nodeIds) {
      const log = join(this.cluster.dir, `n${node}.log`);
      if (existsSync(log)) copyFileSync(log, join(this.runDir, `n${node}.log`));
    }
    await this.cluster.stop();
  }
}

class EtcdClient implements KvClient {
  readonly node: number;
  private readonly client: Etcd3;

  constructor(node: number, client: Etcd3) {
    this.node = node;
    this.client = client;
  }

  async read(key: string, timeoutMs: number): Promise<ReadResult> {
    try {
      const response = await this.client.get(key).options({ deadline: Date.now() + timeoutMs }).exec();
      const kv = response.kvs[0];
      if (kv === undefined) return { kind: 'ok', value: null, version: 0 };
      return { kind: 'ok', value: new Uint8Array(kv.value), version: Number(kv.mod_revision) };
    } catch (error) {
      const name = error instanceof Error ? error.constructor.name : 'error';
      return { kind: name === 'GRPCDeadlineExceededError' ? 'info' : 'fail', error: `${name}: ${describeThrown(error).text}` };
    }
  }

  async write(key: string, value: Uint8Array, casVersion: number | undefined, timeoutMs: number): Promise<WriteResult> {
    const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const deadline = Date.now() + timeoutMs;
    try {
      if (casVersion === undefined) {
        const response = await this.client.put(key).value(buffer).options({ deadline });
        return { kind: 'ok', version: Number(response.header.revision) };
      }
      const response = await this.client.if(key, 'Mod', '==', casVersion).then(this.client.put(key).value(buffer)).options({ deadline }).commit();
      if (!response.succeeded) return { kind: 'mismatch', error: 'mod_revision moved on' };
      return { kind: 'ok', version: Number(response.header.revision) };
    } catch (error) {
      const name = error instanceof Error ? error.constructor.name : 'error';
      // Only a refused connection is certain to have sent nothing; anything else may have applied.
      const text = describeThrown(error).text;
      const refused = name === 'GRPCConnectFailedError' || /ECONNREFUSED/u.test(text);
      return { kind: refused ? 'fail' : 'info', error: `${name}: ${text}` };
    }
  }

  async close(): Promise<void> {
    this.client.close();
    await Promise.resolve();
  }
}
