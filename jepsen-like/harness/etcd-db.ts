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

import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { EtcdCluster, etcdClient, etcdEndpoints } from '../../test/support/etcd-anchor.ts';
import {
  describeThrown,
  sleep,
  type Database,
  type KvClient,
  type NodeExit,
  type ReadResult,
  type WriteResult,
} from './db.ts';
import { processAlive as alive } from '../../test/support/process-alive.ts';

const heartbeatMs = 50;
const electionMs = 250;

export class EtcdDatabase implements Database {
  readonly name = 'etcd';
  readonly nodeIds: readonly number[] = [1, 2, 3];
  readonly groupIds: readonly number[] = [1];
  readonly supportsNetworkFaults = false;
  private readonly cluster = new EtcdCluster(heartbeatMs, electionMs);
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
      const response = await this.client
        .get(key)
        .options({ deadline: Date.now() + timeoutMs })
        .exec();
      const kv = response.kvs[0];
      if (kv === undefined) return { kind: 'ok', value: null, version: 0 };
      return { kind: 'ok', value: new Uint8Array(kv.value), version: Number(kv.mod_revision) };
    } catch (error) {
      const name = error instanceof Error ? error.constructor.name : 'error';
      return {
        kind: name === 'GRPCDeadlineExceededError' ? 'info' : 'fail',
        error: `${name}: ${describeThrown(error).text}`,
      };
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
      const response = await this.client
        .if(key, 'Mod', '==', casVersion)
        .then(this.client.put(key).value(buffer))
        .options({ deadline })
        .commit();
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
