// An in-process three-node cluster with its HTTP APIs, for the API tests: three MultiRaftHosts over
// test/support/memory-host.ts (in-memory storage and network), four KV groups, and one fastify app
// per node built with buildApp() and never listening. Forwarding is the Forward port implemented by
// inject()-ing into the target node's app; it honours the network's cuts, so a partitioned node
// cannot reach the leader over "HTTP" either. Every wait here is bounded and fails with a message.

import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/api/app.ts';
import type { Forward, ForwardRequest, ForwardResponse } from '../../src/api/ports.ts';
import { memoryDirectory, type MemberAddresses, type MemberDirectory } from '../../src/control/member-directory.ts';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { createRng, type Rng } from '../../src/base/rng.ts';
import { createKvPlacement } from '../../src/models/kv-placement.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MultiRaftHost } from '../../src/multiraft/host.ts';
import { createNodeMetrics, type NodeMetrics } from '../../src/metrics/registry.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { MemoryHostStorage, MemoryNetwork } from '../support/memory-host.ts';
import { eventually } from '../support/poll.ts';

export const nodeIds = [1, 2, 3].map(asNodeId);
export const kvGroups = [1, 2, 3, 4].map(asGroupId);
export const placement = createKvPlacement(kvGroups);

export interface ApiNode {
  readonly id: NodeId;
  readonly host: MultiRaftHost;
  readonly app: FastifyInstance;
  readonly metrics: NodeMetrics;
  /** The node's address book (in memory), seeded with `memberAddresses` of nodes 1-3. */
  readonly directory: MemberDirectory;
}

/** Made-up addresses of node `id` for the address books (the network here is in memory). */
export function memberAddresses(id: NodeId): MemberAddresses {
  return { nodeId: id, raft: { host: `10.0.0.${id}`, port: 9000 }, http: { host: `10.0.0.${id}`, port: 8000 } };
}

export interface ApiCluster {
  readonly network: MemoryNetwork;
  readonly nodes: ReadonlyMap<NodeId, ApiNode>;
  /** Forward calls made so far, per calling node. */
  readonly forwards: Map<NodeId, number>;
  node(id: NodeId): ApiNode;
  /** Starts another node hosting every kv group with EMPTY storage (no bootstrap entry), as a joining node does. */
  addEmptyNode(id: NodeId): ApiNode;
  stop(): Promise<void>;
}

const silent = pino({ level: 'silent' });

/** A node's host over the in-memory storage and network, as the in-process test clusters run it. */
export function memoryHost(
  id: NodeId,
  storage: MemoryHostStorage,
  network: MemoryNetwork,
  rng: Rng,
  requestTimeoutMs = 3000,
): MultiRaftHost {
  return new MultiRaftHost({
    nodeId: id,
    storage,
    transport: network.transport(id),
    rng: rng.fork(),
    // Election timeouts of 200-400 ms: slow enough that a busy test machine does not cause
    // spurious elections mid-test, fast enough to start in well under a second.
    raft: { electionTimeoutTicks: 20, heartbeatTicks: 2, leaseReads: true, leaseTicks: 15 },
    tickMs: 10,
    proposalQueueMax: 1000,
    commitFlushMs: 100,
    pingMs: 20,
    peerSilenceMs: 200,
    requestTimeoutMs,
  });
}

/** A forwarded request carried by inject()-ing it into the target's `app`: the in-process clusters' Forward. */
export async function injectForwarded(app: FastifyInstance, request: ForwardRequest): Promise<ForwardResponse> {
  const response = await app.inject({
    method: request.method,
    url: request.url,
    headers: request.headers,
    ...(request.body === undefined ? {} : { payload: request.body }),
  });
  return { status: response.statusCode, headers: stringHeaders(response), body: response.rawPayload };
}

export function startCluster(
  options: {
    readonly forwarding: boolean;
    readonly requestTimeoutMs?: number;
    readonly forwardFailure?: 'refused' | 'lost';
  } = { forwarding: true },
): ApiCluster {
  const network = new MemoryNetwork();
  const rng = createRng(23);
  const nodes = new Map<NodeId, ApiNode>();
  const forwards = new Map<NodeId, number>();
  const node = (id: NodeId): ApiNode => {
    const found = nodes.get(id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  };
  const forwardFrom =
    (from: NodeId): Forward =>
    async (leader, request) => {
      forwards.set(from, (forwards.get(from) ?? 0) + 1);
      if (network.cut.has(from) || network.cut.has(leader)) throw new Error(`node ${leader} unreachable from ${from}`);
      // A dead leader refuses the connection (nothing was sent); a lost answer leaves it unknown.
      if (options.forwardFailure === 'refused')
        throw Object.assign(new Error(`connect ECONNREFUSED (node ${leader})`), { code: 'ECONNREFUSED' });
      if (options.forwardFailure === 'lost')
        throw Object.assign(new Error(`socket hang up (node ${leader})`), { code: 'ECONNRESET' });
      return injectForwarded(node(leader).app, request);
    };
  const startNode = (id: NodeId, storage: MemoryHostStorage): ApiNode => {
    const host = memoryHost(id, storage, network, rng, options.requestTimeoutMs);
    for (const group of kvGroups) host.addGroup(group, new KvModel());
    network.hosts.set(id, host);
    const metrics = createNodeMetrics({ host, peerTraffic: () => new Map() });
    const directory = memoryDirectory([...nodeIds, id].map(memberAddresses), id);
    const app = buildApp({
      nodeId: id,
      clusterId: 'test-cluster',
      host,
      groups: kvGroups,
      metrics,
      logger: silent,
      members: directory,
      requestTimeoutMs: options.requestTimeoutMs ?? 3000,
      ...(options.forwarding ? { forward: forwardFrom(id) } : {}),
    });
    const started = { id, host, app, metrics, directory };
    nodes.set(id, started);
    host.start();
    return started;
  };
  for (const id of nodeIds) {
    const storage = new MemoryHostStorage();
    for (const group of kvGroups) storage.bootstrap(group, confStateOf(nodeIds));
    startNode(id, storage);
  }
  return {
    network,
    nodes,
    forwards,
    node,
    addEmptyNode: (id) => startNode(id, new MemoryHostStorage()),
    async stop() {
      for (const { app, host } of nodes.values()) {
        await app.close();
        await host.stop();
      }
    },
  };
}

export function stringHeaders(response: LightMyRequestResponse): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

/** Polls `probe` every 10 ms until it returns a value, for at most `limitMs`. */
export function waitFor<T>(what: string, probe: () => T | undefined, limitMs = 10_000): Promise<T> {
  return eventually(what, probe, { tries: Math.ceil(limitMs / 10) + 1, everyMs: 10, timeoutMs: limitMs });
}

/** The node every replica agrees leads `group` (all three report the same leader, and it says leader). */
export function agreedLeader(cluster: ApiCluster, group: GroupId): Promise<ApiNode> {
  return waitFor(`an agreed leader of group ${group}`, () => {
    const views = [...cluster.nodes.values()].map((n) => n.host.status().find((s) => s.group === group)?.status);
    const leader = views[0]?.leader ?? 0;
    if (leader === 0 || !views.every((v) => v?.leader === leader)) return undefined;
    const candidate = cluster.nodes.get(leader);
    return candidate?.host.status().find((s) => s.group === group)?.status.role === 'leader' ? candidate : undefined;
  });
}

/** A key that lands in the given group (placement is by hash). */
export function keyIn(group: GroupId, prefix: string): string {
  for (let k = 0; k < 10_000; k++) if (placement.groupOf(`${prefix}-${k}`) === group) return `${prefix}-${k}`;
  throw new Error(`no key for group ${group}`);
}

export function kvModel(node: ApiNode, group: GroupId): KvModel {
  const model = node.host.model(group);
  if (!(model instanceof KvModel)) throw new Error(`group ${group} is not a KV group`);
  return model;
}

export function errorCode(response: LightMyRequestResponse): unknown {
  return response.json<{ code?: unknown }>().code;
}
