// An in-process three-node cluster with the meta group: each node hosts group 0 (the meta model)
// and two kv groups over test/support/memory-host.ts, serves buildApp() with the agent and action
// routes (never listening), and runs a MetaController whose effects call its own app. Forwarding
// between nodes inject()s into the target's app. Every wait is bounded and fails with a message.

import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/api/app.ts';
import type { Forward } from '../../src/api/ports.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { MetaController } from '../../src/control/controller.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MetaModel, metaGroupId } from '../../src/models/meta.ts';
import type { MultiRaftHost } from '../../src/multiraft/host.ts';
import { systemClock } from '../../src/multiraft/system-clock.ts';
import { apiEffects } from '../../src/node/meta-effects.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { injectForwarded, memberAddresses, memoryHost, waitFor } from '../api/cluster.ts';
import { MemoryHostStorage, MemoryNetwork } from '../support/memory-host.ts';

export { waitFor };

export const nodeIds = [1, 2, 3].map(asNodeId);
export const kvGroups = [1, 2].map(asGroupId);

export interface MetaNode {
  readonly id: NodeId;
  readonly host: MultiRaftHost;
  readonly app: FastifyInstance;
  readonly model: MetaModel;
  readonly controller: MetaController;
}

export interface MetaCluster {
  readonly network: MemoryNetwork;
  readonly nodes: ReadonlyMap<NodeId, MetaNode>;
  node(id: NodeId): MetaNode;
  stop(): Promise<void>;
}

const silent = pino({ level: 'silent' });

export function startMetaCluster(options: { readonly actionsQueuedMax?: number } = {}): MetaCluster {
  const network = new MemoryNetwork();
  const rng = createRng(41);
  const nodes = new Map<NodeId, MetaNode>();
  const node = (id: NodeId): MetaNode => {
    const found = nodes.get(id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  };
  const forwardFrom =
    (from: NodeId): Forward =>
    async (to, request) => {
      if (network.cut.has(from) || network.cut.has(to)) throw new Error(`node ${to} unreachable from ${from}`);
      return injectForwarded(node(to).app, request);
    };
  for (const id of nodeIds) {
    const storage = new MemoryHostStorage();
    for (const group of [metaGroupId, ...kvGroups]) storage.bootstrap(group, confStateOf(nodeIds));
    const host = memoryHost(id, storage, network, rng);
    const model = new MetaModel({
      actionsQueuedMax: options.actionsQueuedMax ?? 1000,
      actionsFinishedMax: 1000,
      finishedRetainMs: 14 * 24 * 3600 * 1000,
    });
    host.addGroup(metaGroupId, model);
    for (const group of kvGroups) host.addGroup(group, new KvModel());
    network.hosts.set(id, host);
    const app = buildApp({
      nodeId: id,
      clusterId: 'test-cluster',
      host,
      groups: kvGroups,
      metrics: createNodeMetrics({ host, peerTraffic: () => new Map() }),
      logger: silent,
      members: memoryDirectory(nodeIds.map(memberAddresses), id),
      requestTimeoutMs: 3000,
      forward: forwardFrom(id),
      meta: {
        model,
        info: { httpUrl: `http://10.0.0.${id}:8000`, version: '0.1.0', clusterId: 'test-cluster' },
        wallNowMs: () => Date.now(),
      },
    });
    const controller = new MetaController({
      nodeId: id,
      host,
      model,
      clock: systemClock,
      wallNowMs: () => Date.now(),
      effects: apiEffects(app),
      pollMs: 20,
      clusterId: 'test-cluster',
      selfUrl: `http://10.0.0.${id}:8000`,
    });
    nodes.set(id, { id, host, app, model, controller });
    host.start();
    controller.start();
  }
  return {
    network,
    nodes,
    node,
    async stop() {
      for (const { app, host, controller } of nodes.values()) {
        controller.stop();
        await app.close();
        await host.stop();
      }
    },
  };
}

/** The node leading `group` that every node agrees on. */
export function agreedLeader(cluster: MetaCluster, group: GroupId): Promise<MetaNode> {
  return waitFor(`an agreed leader of group ${group}`, () => {
    const views = [...cluster.nodes.values()].map((n) => n.host.groupStatus(group)?.status);
    const leader = views[0]?.leader ?? 0;
    if (leader === 0 || !views.every((v) => v?.leader === leader)) return undefined;
    const candidate = cluster.nodes.get(leader);
    return candidate?.host.groupStatus(group)?.status.role === 'leader' ? candidate : undefined;
  });
}
