// Real dram processes for a run: node n listens on its own loopback address 127.0.0.(10+n) (HTTP on
// portBase, Raft on portBase+1000) and binds that address for its outgoing peer connections, so an
// iptables rule on source and destination address cuts exactly the link between two nodes. The
// harness's own clients come from 127.0.0.1, which is no node's address, so partitions never cut
// the clients off. With the proxy nemesis each node is told its peers' Raft addresses are the
// proxies in front of them (peerAddress), which is how the peer links pass through jepsen-like's
// userspace proxy.
//
// Owns the node processes: start (--init on the first start only), kill -9, restart from the data
// dir, SIGSTOP/SIGCONT, and stop. Each node's stdout and stderr go straight to <run>/n<id>.log (an
// fd handed to the child, so the log survives a harness crash), with a harness marker line at every
// start and kill. Exits the harness did not ask for are recorded as crashes.

import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeThrown,
  errorCodeOf,
  sleep,
  type ActionOutcome,
  type AdminControl,
  type Database,
  type HttpAnswer,
  type KvClient,
  type NodeExit,
  type PlacementView,
  type ReadResult,
  type ReplicaState,
  type WriteResult,
} from './db.ts';
import { DramProcess, type DramNodeFlags } from '../../test/support/dram-process.ts';
import { fnv1a32 } from '../../src/models/kv-placement.ts';

export interface DramClusterOptions {
  readonly nodes: number;
  readonly kvGroups: number;
  /** Lease reads: the nodes start with lease reads on and clients read with ?consistency=lease. */
  readonly reads?: 'linearizable' | 'lease';
  readonly quiesceAfterTicks?: number | undefined;
  readonly portBase: number;
  readonly runDir: string;
  readonly dataDir: string;
  /** Where node `from` should dial node `to`'s Raft port (the proxy's address when there is one). */
  readonly peerAddress?: (from: number, to: number) => string;
  /** The history clock, for crash times. */
  readonly now: () => number;
  /** Fresh nodes the membership nemesis may start (ids after `nodes`, each started empty), at most. */
  readonly spareNodes?: number;
  /** More `dram start` flags for every node (the snapshot nemesis shortens the log tail). */
  readonly extraFlags?: readonly string[];
}

/** Writes the snapshot nemesis's fill has in flight at once. */
const fillConcurrency = 8;
/** One admin call waits at most this long. */
const adminCallMs = 3000;

interface NodeProcess {
  child: ChildProcess;
  paused: boolean;
  /** Set when the harness kills or stops the node: its exit is then expected. */
  expectingExit: boolean;
  exited: Promise<void>;
}

interface GroupStatusLine {
  group: number;
  role: string;
  term: number;
  leader: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  voters: number[];
}

/** Node processes of every cluster in this harness process, killed if the harness exits without stopping them. */
const everyCluster = new Set<ReadonlyMap<number, NodeProcess>>();
let exitHookInstalled = false;

function ensureExitHook(processes: ReadonlyMap<number, NodeProcess>): void {
  everyCluster.add(processes);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cluster of everyCluster) {
      for (const entry of cluster.values()) {
        entry.child.kill('SIGCONT');
        entry.child.kill('SIGKILL');
      }
    }
  });
}

export function dramNodeAddress(node: number): string {
  return `127.0.0.${10 + node}`;
}

export class DramCluster implements Database, AdminControl {
  readonly name = 'dram';
  readonly nodeIds: readonly number[];
  readonly groupIds: readonly number[];
  readonly supportsNetworkFaults = true;
  readonly admin: AdminControl = this;
  private readonly options: DramClusterOptions;
  private readonly processes = new Map<number, NodeProcess>();
  private readonly started = new Set<number>();
  /** Spares started so far (they start with no membership flags), and nodes retired for good. */
  private readonly spares: number[] = [];
  private readonly retired = new Set<number>();
  /** Clients pinned to a retired node talk to its successor. */
  private readonly successors = new Map<number, number>();
  private fillKeys = 0;
  private readonly crashes: NodeExit[] = [];
  private readonly logFds = new Map<number, number>();

  constructor(options: DramClusterOptions) {
    this.options = options;
    this.nodeIds = Array.from({ length: options.nodes }, (_, k) => k + 1);
    this.groupIds = Array.from({ length: options.kvGroups }, (_, k) => k + 1);
  }

  get spareIds(): readonly number[] {
    return this.spares.filter((node) => !this.retired.has(node));
  }

  startSpare(): number | undefined {
    if (this.spares.length >= (this.options.spareNodes ?? 0)) return undefined;
    const node = this.options.nodes + this.spares.length + 1;
    this.spares.push(node);
    this.spawnNode(node);
    return node;
  }

  async retire(node: number, successor?: number): Promise<void> {
    this.retired.add(node);
    if (successor !== undefined) this.successors.set(node, successor);
    const entry = this.processes.get(node);
    if (entry === undefined) return;
    entry.expectingExit = true;
    if (entry.paused) entry.child.kill('SIGCONT');
    this.mark(
      node,
      `retired: removed from the cluster${successor === undefined ? '' : `, its clients go to node ${successor}`}`,
    );
    entry.child.kill('SIGTERM');
    // A removed node may take its time to stop (it cannot reach anyone): bounded, as in stop().
    if (!(await Promise.race([entry.exited.then(() => true), sleep(3000).then(() => false)]))) {
      this.mark(node, 'did not stop within 3 s: kill -9');
      entry.child.kill('SIGKILL');
      await entry.exited;
    }
  }

  /** The node a client pinned to `node` talks to (its successor's, once it is retired). */
  private target(node: number): number {
    let current = node;
    for (let hops = 0; hops < 64; hops++) {
      const next = this.successors.get(current);
      if (next === undefined) return current;
      current = next;
    }
    return current;
  }

  httpPort(): number {
    return this.options.portBase;
  }

  raftPort(): number {
    return this.options.portBase + 1000;
  }

  nodeAddress(node: number): string {
    return dramNodeAddress(node);
  }

  url(node: number): string {
    return `http://${dramNodeAddress(node)}:${this.httpPort()}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.options.dataDir, { recursive: true });
    for (const node of this.nodeIds) this.spawnNode(node);
    await Promise.resolve();
  }

  private flags(node: number): DramNodeFlags {
    const peerAddress =
      this.options.peerAddress ?? ((_from: number, to: number) => `${dramNodeAddress(to)}:${this.raftPort()}`);
    const peers = this.nodeIds
      .map((id) => `${id}=${id === node ? `${dramNodeAddress(id)}:${this.raftPort()}` : peerAddress(node, id)}`)
      .join(',');
    const peerHttp = this.nodeIds.map((id) => `${id}=${dramNodeAddress(id)}:${this.httpPort()}`).join(',');
    return {
      nodeId: node,
      dataDir: join(this.options.dataDir, `n${node}`),
      http: `${dramNodeAddress(node)}:${this.httpPort()}`,
      raft: `${dramNodeAddress(node)}:${this.raftPort()}`,
      // A spare starts empty (NOT_IN_CLUSTER) and learns everything when it is added.
      membership: this.spares.includes(node)
        ? []
        : [
            ...(this.started.has(node) ? [] : ['--init']),
            '--peers',
            peers,
            '--peer-http',
            peerHttp,
            '--kv-groups',
            String(this.options.kvGroups),
          ],
      secret: 'dram-jepsen-like-secret',
      extra: [
        ...(this.options.quiesceAfterTicks === undefined
          ? []
          : ['--quiesce-after-ticks', String(this.options.quiesceAfterTicks)]),
        ...(this.options.extraFlags ?? []),
      ],
    };
  }

  private logFd(node: number): number {
    let fd = this.logFds.get(node);
    if (fd === undefined) {
      fd = openSync(join(this.options.runDir, `n${node}.log`), 'a');
      this.logFds.set(node, fd);
    }
    return fd;
  }

  private mark(node: number, text: string): void {
    writeSync(
      this.logFd(node),
      `# jepsen-like ${new Date().toISOString()} t=${(this.options.now() / 1e9).toFixed(3)}s: ${text}\n`,
    );
  }

  private spawnNode(node: number): void {
    if (this.processes.has(node)) throw new Error(`node ${node} is already running`);
    const fd = this.logFd(node);
    // Its own process group: a Ctrl-C at the terminal reaches the harness, which stops the nodes
    // itself, instead of killing them behind its back (that would look like a crash).
    const env = this.options.reads === 'lease' ? { ...process.env, DRAM_LEASE_READS: 'true' } : process.env;
    const dram = new DramProcess({ flags: this.flags(node), output: fd, detached: true, env });
    const child = dram.child;
    ensureExitHook(this.processes);
    this.started.add(node);
    const entry: NodeProcess = { child, paused: false, expectingExit: false, exited: Promise.resolve() };
    entry.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.processes.delete(node);
        if (!entry.expectingExit) {
          this.crashes.push({ node, code, signal, time: this.options.now() });
          this.mark(node, `exited unexpectedly (code ${code ?? 'none'}, signal ${signal ?? 'none'})`);
        }
        resolve();
      });
    });
    this.processes.set(node, entry);
    this.mark(node, `started pid ${child.pid ?? '?'}: node ${dram.args.slice(1).join(' ')}`);
  }

  async kill(node: number): Promise<void> {
    const entry = this.processes.get(node);
    if (entry === undefined) return;
    entry.expectingExit = true;
    this.mark(node, 'kill -9');
    entry.child.kill('SIGKILL');
    await entry.exited;
  }

  async restart(node: number): Promise<void> {
    if (this.processes.has(node) || this.retired.has(node)) return;
    this.spawnNode(node);
    await Promise.resolve();
  }

  pause(node: number): void {
    const entry = this.processes.get(node);
    if (entry === undefined || entry.paused) return;
    this.mark(node, 'SIGSTOP');
    entry.child.kill('SIGSTOP');
    entry.paused = true;
  }

  resume(node: number): void {
    const entry = this.processes.get(node);
    if (entry === undefined || !entry.paused) return;
    entry.child.kill('SIGCONT');
    entry.paused = false;
    this.mark(node, 'SIGCONT');
  }

  isRunning(node: number): boolean {
    return this.processes.has(node);
  }

  isPaused(node: number): boolean {
    return this.processes.get(node)?.paused ?? false;
  }

  unexpectedExits(): readonly NodeExit[] {
    return this.crashes;
  }

  private async groupStatus(node: number, timeoutMs: number): Promise<GroupStatusLine[] | undefined> {
    try {
      const response = await fetch(`${this.url(node)}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (response.status !== 200) return undefined;
      return ((await response.json()) as { groups: GroupStatusLine[] }).groups;
    } catch {
      return undefined;
    }
  }

  private reachableNodes(): number[] {
    return [...this.nodeIds, ...this.spareIds].filter((node) => this.isRunning(node) && !this.isPaused(node));
  }

  async waitReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // The cluster's own nodes: a spare is not in it yet.
      const nodes = this.reachableNodes().filter((node) => this.nodeIds.includes(node));
      const statuses = await Promise.all(nodes.map((node) => this.groupStatus(node, 1000)));
      // Every node answers, every kv group the workload uses is hosted somewhere (on more than
      // three nodes each group lives on a subset of them: docs/placement.md), and every group a
      // node lists (the meta group, 0, included) has a leader.
      const ready =
        statuses.every((groups) => groups !== undefined && groups.every((g) => g.leader !== 0)) &&
        this.groupIds.every((id) => statuses.some((groups) => groups?.some((g) => g.group === id) === true));
      if (ready) return true;
      await sleep(200);
    }
    return false;
  }

  async leaderOf(group: number): Promise<number | undefined> {
    const statuses = await Promise.all(this.reachableNodes().map((node) => this.groupStatus(node, 1000)));
    let best: GroupStatusLine | undefined;
    for (const groups of statuses) {
      const line = groups?.find((g) => g.group === group);
      if (line === undefined || line.leader === 0) continue;
      if (best === undefined || line.term > best.term) best = line;
    }
    return best?.leader;
  }

  async transferLeadership(group: number, to: number): Promise<string> {
    const via = (await this.leaderOf(group)) ?? to;
    try {
      const response = await fetch(`${this.url(via)}/v1/admin/groups/${group}/transfer-leadership`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to }),
        signal: AbortSignal.timeout(2000),
      });
      const text = await response.text();
      return `group ${group} -> node ${to} via node ${via}: ${response.status} ${errorCodeOf(text) ?? text.slice(0, 80)}`;
    } catch (error) {
      return `group ${group} -> node ${to} via node ${via}: ${describeThrown(error).text}`;
    }
  }

  async replica(node: number, group: number): Promise<ReplicaState | undefined> {
    const line = (await this.groupStatus(node, adminCallMs))?.find((g) => g.group === group);
    return line === undefined
      ? undefined
      : {
          role: line.role,
          term: line.term,
          leader: line.leader,
          applied: line.applied,
          firstIndex: line.firstIndex,
          lastIndex: line.lastIndex,
          voters: line.voters,
        };
  }

  async hostedGroups(node: number): Promise<readonly number[] | undefined> {
    return (await this.groupStatus(node, adminCallMs))?.map((g) => g.group);
  }

  async compact(node: number, group: number): Promise<{ state: string; index: number } | string> {
    const answer = await this.call(node, 'POST', `/v1/admin/groups/${group}/compact`, {});
    if (typeof answer === 'string') return answer;
    const { state, index } = answer.body as { state?: unknown; index?: unknown };
    if (answer.status >= 300 || typeof state !== 'string' || typeof index !== 'number')
      return `${answer.status} ${answer.text.slice(0, 120)}`;
    return { state, index };
  }

  /** A key of the group no workload uses (workload keys are r*, s*, a*). */
  private fillKey(group: number): string {
    for (;;) {
      const key = `jepsen-fill-${this.fillKeys++}`;
      if (fnv1a32(key) % this.options.kvGroups === group - 1) return key;
    }
  }

  async fill(group: number, count: number, deadlineMs: number): Promise<number> {
    const via = (await this.leaderOf(group)) ?? this.nodeIds[0] ?? 1;
    const client = this.client(via);
    let next = 0;
    let acknowledged = 0;
    const value = new TextEncoder().encode('x'.repeat(64));
    await Promise.all(
      Array.from({ length: fillConcurrency }, async () => {
        while (next < count && Date.now() < deadlineMs) {
          next++;
          const result = await client.write(this.fillKey(group), value, undefined, adminCallMs);
          if (result.kind === 'ok') acknowledged++;
        }
      }),
    );
    return acknowledged;
  }

  async runAction(via: number, kind: string, args: unknown, deadlineMs: number): Promise<ActionOutcome> {
    const id = randomUUID();
    const scheduled = await this.call(via, 'POST', '/v1/actions', { id, kind, args });
    if (typeof scheduled === 'string' || scheduled.status >= 300)
      return {
        phase: 'unknown',
        detail: `schedule through node ${via}: ${typeof scheduled === 'string' ? scheduled : `${scheduled.status} ${scheduled.text.slice(0, 160)}`}`,
      };
    let last = 'never read';
    while (Date.now() < deadlineMs) {
      await sleep(300);
      for (const node of [via, ...this.reachableNodes()]) {
        const answer = await this.call(node, 'GET', `/v1/actions/${id}`, undefined);
        if (typeof answer === 'string' || answer.status !== 200) continue;
        const state = (answer.body as { state?: { phase?: unknown; payload?: unknown; error?: unknown } }).state;
        last = `${String(state?.phase)} ${JSON.stringify(state?.payload ?? null).slice(0, 300)}`;
        if (state?.phase === 'DONE' || state?.phase === 'FAILED')
          return {
            phase: state.phase,
            detail: `${kind} ${id}: ${JSON.stringify(state.phase === 'DONE' ? state.payload : state.error).slice(0, 400)}`,
          };
        break;
      }
    }
    return { phase: 'unknown', detail: `${kind} ${id} not finished in time (last seen: ${last})` };
  }

  async placement(via: number): Promise<PlacementView | string> {
    const answer = await this.call(via, 'GET', '/v1/placement', undefined);
    if (typeof answer === 'string') return answer;
    if (answer.status !== 200) return `${answer.status} ${answer.text.slice(0, 160)}`;
    const body = answer.body as {
      live?: number[] | null;
      moves?: unknown[];
      groups?: {
        group: number;
        desired: number | null;
        voters: number[] | null;
        learners: number[] | null;
        state: string | null;
      }[];
    };
    return {
      live: body.live ?? [],
      moves: body.moves?.length ?? 0,
      groups: (body.groups ?? []).map((g) => ({
        group: g.group,
        desired: g.desired ?? 0,
        voters: g.voters ?? [],
        learners: g.learners ?? [],
        state: g.state ?? 'unknown',
      })),
    };
  }

  async setNodeGoneGrace(via: number, ms: number): Promise<string | undefined> {
    const answer = await this.call(via, 'PUT', '/v1/placement/settings', { nodeGoneGraceMs: ms });
    if (typeof answer === 'string') return answer;
    return answer.status === 200 ? undefined : `${answer.status} ${answer.text.slice(0, 160)}`;
  }

  /** One JSON call to a node's API, bounded; the answer, or why there was none. */
  private async call(
    node: number,
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body: unknown,
  ): Promise<{ status: number; text: string; body: unknown } | string> {
    try {
      const response = await fetch(`${this.url(node)}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        signal: AbortSignal.timeout(adminCallMs),
      });
      const text = await response.text();
      let parsed: unknown = undefined;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: response.status, text, body: parsed ?? {} };
    } catch (error) {
      return `node ${node} ${method} ${path}: ${describeThrown(error).text}`;
    }
  }

  client(node: number): KvClient {
    return new DramClient(node, () => this.url(this.target(node)), this.options.reads ?? 'linearizable');
  }

  async stop(): Promise<void> {
    const entries = [...this.processes.entries()];
    for (const [node, entry] of entries) {
      entry.expectingExit = true;
      if (entry.paused) entry.child.kill('SIGCONT');
      this.mark(node, 'stop (SIGTERM)');
      entry.child.kill('SIGTERM');
    }
    await Promise.all(
      entries.map(async ([node, entry]) => {
        const exited = await Promise.race([entry.exited.then(() => true), sleep(3000).then(() => false)]);
        if (!exited) {
          this.mark(node, 'did not stop within 3 s: kill -9');
          entry.child.kill('SIGKILL');
          await entry.exited;
        }
      }),
    );
    for (const fd of this.logFds.values()) closeSync(fd);
    this.logFds.clear();
  }

  removeData(): void {
    rmSync(this.options.dataDir, { recursive: true, force: true });
  }
}

const octetStream = { 'content-type': 'application/octet-stream' };

/** Error codes that say a write definitely did not apply (docs/errors.md: other 503s are definite). */
const definiteWriteFailures = new Set([
  'DRAM_ERR_NOT_LEADER',
  'DRAM_ERR_NO_LEADER',
  'DRAM_ERR_OVERLOADED',
  'DRAM_ERR_STALE_REQUEST',
  'DRAM_ERR_BAD_REQUEST',
  'DRAM_ERR_VALUE_TOO_LARGE',
  'DRAM_ERR_KEY_TOO_LARGE',
  'DRAM_ERR_UNKNOWN_GROUP',
]);

/** A client pinned to one node: every request goes to that node's HTTP API (followers forward). */
class DramClient implements KvClient {
  readonly node: number;
  /** The node's URL, or its successor's once the membership nemesis retired it. */
  private readonly baseOf: () => string;
  private readonly readQuery: string;

  constructor(node: number, baseOf: () => string, reads: 'linearizable' | 'lease') {
    this.node = node;
    this.baseOf = baseOf;
    this.readQuery = reads === 'lease' ? '?consistency=lease' : '';
  }

  async read(key: string, timeoutMs: number): Promise<ReadResult> {
    try {
      const response = await fetch(`${this.baseOf()}/v1/kv/${encodeURIComponent(key)}${this.readQuery}`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = new Uint8Array(await response.arrayBuffer());
      if (response.status === 200)
        return { kind: 'ok', value: body, version: Number(response.headers.get('x-dram-index') ?? 'NaN') };
      const code = errorCodeOf(Buffer.from(body).toString('utf8'));
      if (response.status === 404 && code === 'DRAM_ERR_KEY_NOT_FOUND') return { kind: 'ok', value: null, version: 0 };
      // A read changes nothing, so any refusal is a definite failure.
      return { kind: 'fail', error: `${response.status} ${code ?? 'no code'}` };
    } catch (error) {
      const { text, timeout } = describeThrown(error);
      // The issue's rule: a request that timed out is info. For a read it makes no difference to the
      // checkers (info reads constrain nothing), and it keeps the liveness verdict honest.
      return { kind: timeout ? 'info' : 'fail', error: text };
    }
  }

  async write(key: string, value: Uint8Array, casVersion: number | undefined, timeoutMs: number): Promise<WriteResult> {
    const query = casVersion === undefined ? '' : `?cas=${casVersion}`;
    try {
      const response = await fetch(`${this.baseOf()}/v1/kv/${encodeURIComponent(key)}${query}`, {
        method: 'PUT',
        body: value,
        headers: octetStream,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      if (response.status === 200)
        return { kind: 'ok', version: Number(response.headers.get('x-dram-index') ?? 'NaN') };
      const code = errorCodeOf(text);
      const error = `${response.status} ${code ?? 'no code'}`;
      if (response.status === 412 && code === 'DRAM_ERR_CAS_MISMATCH') return { kind: 'mismatch', error };
      if (code !== undefined && definiteWriteFailures.has(code)) return { kind: 'fail', error };
      // DRAM_ERR_INDETERMINATE, DRAM_ERR_INTERNAL, and anything we do not know: the write may have applied.
      return { kind: 'info', error };
    } catch (error) {
      const { text, code } = describeThrown(error);
      // Refused before a byte was sent: the node is down and nothing can have been applied.
      if (code === 'ECONNREFUSED') return { kind: 'fail', error: text };
      return { kind: 'info', error: text };
    }
  }

  async request(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<HttpAnswer> {
    try {
      const response = await fetch(`${this.baseOf()}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { kind: 'answer', status: response.status, text: await response.text() };
    } catch (error) {
      const { text, code, timeout } = describeThrown(error);
      return { kind: 'error', error: text, refused: code === 'ECONNREFUSED', timeout };
    }
  }

  async close(): Promise<void> {
    await Promise.resolve();
  }
}
