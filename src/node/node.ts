// Wires one dram process (the only place concrete adapters meet): LevelDB storage, the peer
// transport, the multi-Raft host with a KV model per kv group, metrics, and the HTTP API. On
// first start with --init it bootstraps every kv group with the --peers as voters; a data dir
// that already holds groups restarts from them. SIGTERM/SIGINT stop it gracefully: the API stops
// accepting, the host finishes its turn and answers what waits, the transport flushes, the store
// closes. A storage failure is fatal: the node logs it and exits non-zero.

import { randomInt } from 'node:crypto';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildApp } from '../api/app.ts';
import { BinaryServer } from '../api/binary-server.ts';
import type { Forward } from '../api/ports.ts';
import type { GroupId, LogIndex, NodeId, Term } from '../base/ids.ts';
import { createRng } from '../base/rng.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../codec/kv.ts';
import { createNodeMetrics } from '../metrics/registry.ts';
import { timedHostStorage } from '../metrics/timed-storage.ts';
import { createKvPlacement } from '../models/kv-placement.ts';
import { KvModel } from '../models/kv.ts';
import { MultiRaftHost } from '../multiraft/host.ts';
import { confStateOf } from '../raft/confchange.ts';
import { bootstrapEntry } from '../raft/storage.ts';
import { DiskStore } from '../storage/disk-store.ts';
import { PeerTransport, peerTransportLimitsDefault, type TransportLogger } from '../transport/peer-transport.ts';
import type { NodeConfig } from './config.ts';

// A KV entry is the value plus its key and a few bytes of framing: leave room above the value limit.
const entryBytesMax = kvValueBytesMax + kvKeyBytesMax + 1024;
const snapshotChunkBytesMax = 1 << 20;
const snapshotDataBytesMax = 1 << 30;
// One frame carries a whole turn's messages to a peer: with 8 groups each pipelining 1 MiB appends
// it can reach tens of MiB, and a frame over the limit is dropped whole.
const frameBytesMax = 128 << 20;
const wireLimits = { messagesPerFrameMax: 1 << 16, entriesPerMessageMax: 1 << 16, entryBytesMax, snapshotChunkBytesMax };

export interface RunningNode {
  readonly httpUrl: string;
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig, logger: Logger = pino({ base: { node: config.nodeId } })): Promise<RunningNode> {
  mkdirSync(config.dataDir, { recursive: true });
  const store = await DiskStore.open(join(config.dataDir, 'raft'), { entryDataBytesMax: entryBytesMax, snapshotDataBytesMax });
  await initializeGroups(store, config, logger);
  const transport = new PeerTransport({
    ...peerTransportLimitsDefault,
    frameBytesMax,
    sendQueueBytesMax: 2 * frameBytesMax,
    // Every group heartbeats every heartbeatTicks, so a peer silent for four election timeouts
    // sits behind a broken path: redial rather than wait out TCP's retransmission backoff.
    peerSilenceMsMax: 4 * config.electionTimeoutTicks * config.tickMs,
    reconnectDelayMsMax: 1000,
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    secret: config.secret,
    listenHost: config.raft.host,
    listenPort: config.raft.port,
    peers: config.peers,
    localAddress: config.raft.host,
    wireLimits,
    logger: transportLogger(logger),
    // The host is built below; the transport delivers nothing before start().
    onBatch: (from, batch) => { host.receive(batch, from); },
  });
  const metrics = createNodeMetrics({ host: { status: () => host.status() }, peerTraffic: () => transport.stats().peers });
  const host = new MultiRaftHost({
    nodeId: config.nodeId,
    storage: timedHostStorage(store, metrics),
    transport: { send: (peer, batch) => void transport.send(peer, batch) },
    rng: createRng(randomInt(2 ** 31)),
    raft: {
      electionTimeoutTicks: config.electionTimeoutTicks,
      heartbeatTicks: config.heartbeatTicks,
      leaseReads: config.leaseReads,
      leaseTicks: config.electionTimeoutTicks - config.heartbeatTicks,
      entryBytesMax,
      snapshotChunkBytesMax,
      snapshotIntervalEntries: config.snapshotIntervalEntries,
      quiesceAfterTicks: config.quiesceAfterTicks,
    },
    tickMs: config.tickMs,
    pingMs: config.heartbeatTicks * config.tickMs,
    peerSilenceMs: config.electionTimeoutTicks * config.tickMs,
    proposalQueueMax: config.proposalQueueMax,
    commitFlushMs: 1000,
    requestTimeoutMs: config.requestTimeoutMs,
    observeTurn: (seconds) => { metrics.observeTurnDuration(seconds); },
  });
  for (const group of config.kvGroups) host.addGroup(group, new KvModel());
  await transport.start();
  host.start();
  const forward = httpForward(config);
  const app = buildApp({ nodeId: config.nodeId, clusterId: config.clusterId, host, groups: config.kvGroups, ...(forward === undefined ? {} : { forward }), metrics, logger });
  await app.listen({ host: config.http.host, port: config.http.port });
  const httpUrl = `http://${config.http.host}:${config.http.port}`;
  // The binary client protocol, next to the HTTP API, when --client is given.
  const binary = config.client === undefined ? undefined : new BinaryServer({
    nodeId: config.nodeId,
    host,
    placement: createKvPlacement(config.kvGroups),
    listenHost: config.client.host,
    listenPort: config.client.port,
    metrics,
    onProtocolError: (reason) => { logger.warn({ reason }, 'binary client connection closed: bad frame'); },
    onConnectionRefused: (open) => { logger.warn({ open }, 'binary client connection refused: connectionsMax connections are open'); },
  });
  await binary?.start();
  logger.info({ http: httpUrl, ...(config.client === undefined ? {} : { client: `${config.client.host}:${config.client.port}` }), raft: `${config.raft.host}:${config.raft.port}`, groups: config.kvGroups.length }, 'node started');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('stopping');
      clearInterval(watchdog);
      await binary?.stop();
      await app.close();
      await host.stop();
      await transport.stop();
      await store.close();
      logger.info('stopped');
    })());
  // A storage failure stops the host; the process must not linger half-alive.
  const watchdog = setInterval(() => {
    const failure = host.failure();
    if (failure === undefined) return;
    logger.fatal({ err: failure }, 'storage failure: stopping the node');
    void stop().finally(() => process.exit(1));
  }, 100);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void stop().then(() => process.exit(0));
    });
  }
  return { httpUrl, stop };
}

/** First start with --init: every kv group begins with the peers as voters (log entry 1/1). */
async function initializeGroups(store: DiskStore, config: NodeConfig, logger: Logger): Promise<void> {
  const existing = new Set(store.groupIds());
  const missing = config.kvGroups.filter((group) => !existing.has(group));
  if (missing.length === 0) return;
  if (!config.init) {
    throw new Error(`${config.dataDir} holds no data for groups ${missing.join(', ')}: start the cluster's first run with --init --peers`);
  }
  const confState = confStateOf([...config.peers.keys()]);
  const writes = missing.map((group: GroupId) => ({ group, entries: [bootstrapEntry(confState)], hardState: { term: 1 as Term, vote: 0 as NodeId, commit: 1 as LogIndex } }));
  await store.write(writes, { sync: true });
  logger.info({ groups: missing.length, voters: [...config.peers.keys()] }, 'groups initialized');
}

/**
 * Forwards an API request to the leader's node over HTTP (addresses from --peer-http). Outgoing
 * connections bind this node's own address, like the peer transport's (DESIGN.md decision 11),
 * so a partition by source address cuts forwarding too instead of letting it leak around.
 */
function httpForward(config: NodeConfig): Forward | undefined {
  if (config.peerHttp.size === 0) return undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return (leader, request) => {
    const address = config.peerHttp.get(leader);
    if (address === undefined) return Promise.reject(new Error(`no HTTP address for node ${leader} (--peer-http)`));
    return new Promise((resolve, reject) => {
      const outgoing = http.request(
        { host: address.host, port: address.port, method: request.method, path: request.url, headers: request.headers, agent, localAddress: config.raft.host, timeout: config.requestTimeoutMs + 1000 },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(response.headers)) if (typeof value === 'string') headers[name] = value;
            resolve({ status: response.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
          });
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error(`forward to node ${leader} timed out`)));
      outgoing.on('error', reject);
      outgoing.end(request.body);
    });
  };
}

function transportLogger(logger: Logger): TransportLogger {
  return {
    info: (message, fields) => { logger.info(fields, message); },
    warn: (message, fields) => { logger.warn(fields, message); },
    error: (message, fields) => { logger.error(fields, message); },
  };
}
