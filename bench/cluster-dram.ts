// A three-node dram cluster of real processes for the cluster benchmark (each node a DramProcess,
// test/support/dram-process.ts, the driver the integration tests and jepsen-like use too): fresh temp data dirs,
// fsync on (the default), logs in files next to the data, start / SIGKILL / restart, and a
// keep-alive HTTP client (node:http with a keep-alive Agent; undici is not installed as a
// package of its own here) that routes each write to its group's leader the way a smart client
// would: the group from the placement hash, the leader from X-Dram-Leader.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asGroupId, type GroupId } from '../src/base/ids.ts';
import { DramClient as BinaryDramClient, DramError } from '../src/client/client.ts';
import { createKvPlacement, type KvPlacement } from '../src/models/kv-placement.ts';
import { DramProcess } from '../test/support/dram-process.ts';
import { until, type WriteOutcome, type WriteTarget } from './cluster-load.ts';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

class RequestTimeout extends Error {
  readonly code = 'TIMEOUT';
}

/** One HTTP request over `agent`; rejects on a connection error or after `timeoutMs`. */
export function call(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  body: Uint8Array | undefined,
  timeoutMs: number,
  contentType = 'application/octet-stream',
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': contentType, 'content-length': body.byteLength };
    const request = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
      });
      response.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(
      () => request.destroy(new RequestTimeout(`${method} ${path}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(body);
  });
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string')
    return error.code;
  return error instanceof Error ? error.name : 'error';
}

function apiErrorCode(answer: HttpAnswer): string {
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { code?: unknown };
    return typeof parsed.code === 'string' ? parsed.code : `HTTP ${answer.status}`;
  } catch {
    return `HTTP ${answer.status}`;
  }
}

export interface DramGroupStatus {
  readonly group: number;
  readonly quiesced: boolean;
  readonly role: string;
  readonly leader: number;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly lag: number;
}

export class DramCluster {
  readonly ids: readonly number[];
  readonly groups: readonly GroupId[];
  readonly placement: KvPlacement;
  readonly agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });
  readonly dir = mkdtempSync(join(tmpdir(), 'dram-bench-'));
  private readonly base = 23_000 + Math.floor(Math.random() * 4_000);
  private readonly children = new Map<number, DramProcess>();
  private readonly cpuProfDir: string | undefined;
  private readonly extraArgs: readonly string[];

  /**
   * `cpuProfDir`: start every node under `node --cpu-prof`, node N's profile in `cpuProfDir/nN`
   * (written when it stops gracefully). `extraArgs`: more `dram start` flags for every node.
   * `nodeCount`: the cluster's size (the re-replication benchmark runs five).
   */
  constructor(kvGroups: number, cpuProfDir?: string, extraArgs: readonly string[] = [], nodeCount = 3) {
    this.ids = Array.from({ length: nodeCount }, (_, k) => k + 1);
    this.groups = Array.from({ length: kvGroups }, (_, k) => asGroupId(k + 1));
    this.placement = createKvPlacement(this.groups);
    this.cpuProfDir = cpuProfDir;
    this.extraArgs = extraArgs;
  }

  httpPort(id: number): number {
    return this.base + id;
  }

  /** The binary client protocol's port (--client). */
  clientPort(id: number): number {
    return this.base + 200 + id;
  }

  start(id: number, init: boolean): void {
    const peers = this.ids.map((n) => `${n}=127.0.0.1:${this.base + 100 + n}`).join(',');
    const peerHttp = this.ids.map((n) => `${n}=127.0.0.1:${this.httpPort(n)}`).join(',');
    const profile =
      this.cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', join(this.cpuProfDir, `n${id}`)] : [];
    const log = openSync(join(this.dir, `n${id}.log`), 'a');
    try {
      const child = new DramProcess({
        flags: {
          nodeId: id,
          dataDir: join(this.dir, `n${id}`),
          http: `127.0.0.1:${this.httpPort(id)}`,
          raft: `127.0.0.1:${this.base + 100 + id}`,
          client: `127.0.0.1:${this.clientPort(id)}`,
          membership: [
            ...(init ? ['--init'] : []),
            '--peers',
            peers,
            '--peer-http',
            peerHttp,
            '--kv-groups',
            String(this.groups.length),
          ],
          secret: 'dram-bench-cluster-secret',
          extra: this.extraArgs,
        },
        nodeOptions: profile,
        output: log,
      });
      this.children.set(id, child);
    } finally {
      closeSync(log);
    }
  }

  startAll(): void {
    for (const id of this.ids) this.start(id, true);
  }

  /** Sends `signal` and waits (at most 10 s, then SIGKILL) for the process to exit. */
  async kill(id: number, signal: NodeJS.Signals): Promise<void> {
    const child = this.children.get(id);
    this.children.delete(id);
    await child?.stop(signal, 10_000);
  }

  isRunning(id: number): boolean {
    return this.children.has(id);
  }

  pids(): Map<string, number> {
    const pids = new Map<string, number>();
    for (const [id, child] of this.children) if (child.pid !== undefined) pids.set(`n${id}`, child.pid);
    return pids;
  }

  /** Stops every node (SIGTERM, SIGKILL after 10 s) and removes the data dirs. */
  async stopAll(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id, 'SIGTERM')));
    this.agent.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(id: number, bytes = 2000): string {
    try {
      const text = readFileSync(join(this.dir, `n${id}.log`), 'utf8');
      return text.slice(-bytes);
    } catch {
      return '';
    }
  }

  async status(id: number): Promise<DramGroupStatus[]> {
    const answer = await call(this.agent, this.httpPort(id), 'GET', '/v1/status', undefined, 1000);
    if (answer.status !== 200) throw new Error(`node ${id}: /v1/status answered ${answer.status}`);
    return (JSON.parse(answer.body.toString('utf8')) as { groups: DramGroupStatus[] }).groups;
  }

  /**
   * Every node answers, every group has one leader that every node agrees on, and every node has
   * applied what the leader has committed (a restarted node has caught up).
   */
  async waitHealthy(timeoutMs: number): Promise<void> {
    await until(
      'every dram node up, every group led, every replica caught up',
      async () => {
        const views = await Promise.all(this.ids.map((id) => this.status(id)));
        for (const group of this.groups) {
          const rows = views.map((view) => view.find((row) => row.group === group));
          const leader = rows[0]?.leader ?? 0;
          if (leader === 0 || rows.some((row) => row?.leader !== leader)) return undefined;
          const commit = rows[leader - 1]?.commit ?? 0;
          if (rows.some((row) => row === undefined || row.applied < commit)) return undefined;
        }
        return true;
      },
      timeoutMs,
      100,
    );
  }

  /** A few counters from /metrics: host turns, storage batches (synced or not), peer bytes, applied proposals. */
  async counters(id: number): Promise<Record<string, number>> {
    const answer = await call(this.agent, this.httpPort(id), 'GET', '/metrics', undefined, 2000);
    const text = answer.body.toString('utf8');
    const sum = (pattern: RegExp): number => {
      let total = 0;
      for (const match of text.matchAll(pattern)) total += Number(match[1]);
      return total;
    };
    return {
      turns: sum(/^dram_turn_duration_seconds_count (\S+)$/gmu),
      turnSeconds: sum(/^dram_turn_duration_seconds_sum (\S+)$/gmu),
      syncWrites: sum(/^dram_storage_write_duration_seconds_count\{sync="true"\} (\S+)$/gmu),
      syncWriteSeconds: sum(/^dram_storage_write_duration_seconds_sum\{sync="true"\} (\S+)$/gmu),
      plainWrites: sum(/^dram_storage_write_duration_seconds_count\{sync="false"\} (\S+)$/gmu),
      plainWriteSeconds: sum(/^dram_storage_write_duration_seconds_sum\{sync="false"\} (\S+)$/gmu),
      peerSentBytes: sum(/^dram_peer_sent_bytes_total\{[^}]*\} (\S+)$/gmu),
      proposalsApplied: sum(/^dram_proposals_total\{outcome="applied"\} (\S+)$/gmu),
    };
  }

  async leaderOf(group: GroupId): Promise<number> {
    for (const id of this.ids) {
      if (!this.isRunning(id)) continue;
      try {
        const row = (await this.status(id)).find((r) => r.group === group);
        if (row !== undefined && row.leader !== 0) return row.leader;
      } catch {
        // try the next node
      }
    }
    throw new Error(`no dram node knows a leader for group ${group}`);
  }

  /** POST transfer-leadership to the group's current leader; the answer (202/200) comes before the move. */
  async transfer(group: GroupId, from: number, to: number): Promise<HttpAnswer> {
    return call(
      this.agent,
      this.httpPort(from),
      'POST',
      `/v1/admin/groups/${group}/transfer-leadership`,
      Buffer.from(JSON.stringify({ to })),
      2000,
      'application/json',
    );
  }

  /** Moves each group's leadership to `want(group)` (what a balancing controller would do), bounded. */
  async placeLeaders(want: (group: GroupId) => number, timeoutMs: number): Promise<void> {
    await until(
      'dram leaders placed',
      async () => {
        let placed = true;
        for (const group of this.groups) {
          const leader = await this.leaderOf(group);
          if (leader === want(group)) continue;
          placed = false;
          await this.transfer(group, leader, want(group));
        }
        return placed ? true : undefined;
      },
      timeoutMs,
      300,
    );
  }
}

/** One KV request to `node`'s HTTP API. */
function kvCall(
  cluster: DramCluster,
  node: number,
  method: 'PUT' | 'GET',
  key: string,
  body: Uint8Array | undefined,
  timeoutMs: number,
): Promise<HttpAnswer> {
  return call(cluster.agent, cluster.httpPort(node), method, `/v1/kv/${encodeURIComponent(key)}`, body, timeoutMs);
}

/**
 * A plain HTTP client as a new user would write one: each request to the next node in turn, no
 * placement, no leader hints, no retry (a failed write is counted as failed). Reads are
 * linearizable (the default) on whichever node's turn it is; a read-back tries the next node.
 */
export class DramRoundRobinClient implements WriteTarget {
  readonly name = 'dram';
  private readonly cluster: DramCluster;
  private turn = 0;
  /** The nodes requests go to, in turn (default: every node of the cluster). */
  private readonly nodes: () => readonly number[];

  constructor(cluster: DramCluster, nodes?: () => readonly number[]) {
    this.cluster = cluster;
    this.nodes = nodes ?? (() => cluster.ids);
  }

  private nextNode(): number {
    const nodes = this.nodes();
    this.turn = (this.turn + 1) % nodes.length;
    return nodes[this.turn] ?? 1;
  }

  async write(key: string, value: Uint8Array, timeoutMs: number): Promise<WriteOutcome> {
    const node = this.nextNode();
    try {
      const answer = await kvCall(this.cluster, node, 'PUT', key, value, timeoutMs);
      return answer.status === 200 ? { ok: true } : { ok: false, error: apiErrorCode(answer) };
    } catch (error) {
      return { ok: false, error: errorCode(error) };
    }
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    let lastError = '';
    for (let attempt = 0; attempt < 6; attempt++) {
      const node = this.nextNode();
      try {
        const answer = await kvCall(this.cluster, node, 'GET', key, undefined, 5000);
        if (answer.status === 200) return answer.body;
        if (answer.status === 404) return undefined;
        lastError = apiErrorCode(answer);
      } catch (error) {
        lastError = errorCode(error);
      }
    }
    throw new Error(`dram: read of ${key} failed: ${lastError}`);
  }
}

/** The dram side as a WriteTarget: routes by placement to the cached leader, learns from X-Dram-Leader. */
export class DramClient implements WriteTarget {
  readonly name = 'dram';
  private readonly leaders = new Map<GroupId, number>();
  private readonly cluster: DramCluster;

  constructor(cluster: DramCluster) {
    this.cluster = cluster;
  }

  private next(node: number): number {
    return (node % this.cluster.ids.length) + 1;
  }

  private learn(group: GroupId, node: number, answer: HttpAnswer): void {
    const shard = Number(answer.headers['x-dram-shard']);
    if (answer.headers['x-dram-shard'] !== undefined && shard !== group) {
      throw new Error(
        `placement mismatch: the bench put a key in group ${group}, node ${node} says X-Dram-Shard ${shard}`,
      );
    }
    const hint = Number(answer.headers['x-dram-leader'] ?? 0);
    if (answer.status === 200 || (hint > 0 && hint !== node)) this.leaders.set(group, hint > 0 ? hint : node);
    else if (hint === 0) this.leaders.set(group, this.next(node));
  }

  async write(key: string, value: Uint8Array, timeoutMs: number): Promise<WriteOutcome> {
    const group = this.cluster.placement.groupOf(key);
    const node = this.leaders.get(group) ?? 1;
    let answer: HttpAnswer;
    try {
      answer = await kvCall(this.cluster, node, 'PUT', key, value, timeoutMs);
    } catch (error) {
      this.leaders.set(group, this.next(node));
      return { ok: false, error: errorCode(error) };
    }
    this.learn(group, node, answer);
    return answer.status === 200 ? { ok: true } : { ok: false, error: apiErrorCode(answer) };
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    const group = this.cluster.placement.groupOf(key);
    let lastError = '';
    for (let attempt = 0; attempt < 6; attempt++) {
      const node = this.leaders.get(group) ?? 1;
      try {
        const answer = await kvCall(this.cluster, node, 'GET', key, undefined, 5000);
        this.learn(group, node, answer);
        if (answer.status === 200) return answer.body;
        if (answer.status === 404) return undefined;
        lastError = apiErrorCode(answer);
      } catch (error) {
        this.leaders.set(group, this.next(node));
        lastError = errorCode(error);
      }
    }
    throw new Error(`dram: read of ${key} failed: ${lastError}`);
  }

  /** Keys that the placement puts in `group`, `count` of them, named `prefix<n>`. */
  keysIn(group: GroupId, prefix: string, count: number): string[] {
    const keys: string[] = [];
    for (let n = 0; keys.length < count && n < count * this.cluster.groups.length * 100; n++) {
      const key = `${prefix}${n}`;
      if (this.cluster.placement.groupOf(key) === group) keys.push(key);
    }
    if (keys.length < count) throw new Error(`found only ${keys.length} keys in group ${group}`);
    return keys;
  }
}

/**
 * The dram side over the binary client protocol (src/client/client.ts): one DramClient, so one
 * pipelined connection per node shared by every logical client of a phase; the DramClient routes
 * by placement and leader hints. Its request timeout is the phases' load timeout.
 */
export class DramBinaryTarget implements WriteTarget {
  readonly name = 'dram';
  readonly client: BinaryDramClient;

  constructor(cluster: DramCluster, requestTimeoutMs: number) {
    this.client = BinaryDramClient.connect({
      nodes: cluster.ids.map((id) => ({ id, host: '127.0.0.1', port: cluster.clientPort(id) })),
      groups: cluster.groups.length,
      requestTimeoutMs,
    });
  }

  async write(key: string, value: Uint8Array): Promise<WriteOutcome> {
    try {
      await this.client.put(key, value);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: error instanceof DramError ? error.code : errorCode(error) };
    }
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    return (await this.client.get(key))?.value;
  }

  close(): void {
    this.client.close();
  }
}
