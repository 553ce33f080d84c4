// The setup the binary client port's tests share: a node of an in-process cluster
// (test/api/cluster.ts) once its kv groups all have an agreed leader, and a binary server on a node
// listening on 127.0.0.1 at a port of the system's choosing. Called by test/client/*.test.ts.

import { BinaryServer, type BinaryServerOptions } from '../../src/api/binary-server.ts';
import { agreedLeader, kvGroups, placement, type ApiCluster, type ApiNode } from '../api/cluster.ts';

/** `cluster`'s first node, once every kv group has an agreed leader. */
export async function firstLedNode(cluster: ApiCluster): Promise<ApiNode> {
  for (const group of kvGroups) await agreedLeader(cluster, group);
  const node = cluster.nodes.values().next().value;
  if (node === undefined) throw new Error('no node');
  return node;
}

/** A started binary server for `node`; `options` add to (or replace) the node, host and listen address. */
export async function startBinaryServer(
  node: ApiNode,
  options: Partial<BinaryServerOptions> = {},
): Promise<{ server: BinaryServer; port: number }> {
  const server = new BinaryServer({
    nodeId: node.id,
    host: node.host,
    placement,
    listenHost: '127.0.0.1',
    listenPort: 0,
    ...options,
  });
  const { port } = await server.start();
  return { server, port };
}
