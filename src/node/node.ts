// Wires one dram process (the only place concrete adapters meet): LevelDB storage, the address
// book, the peer transport, the multi-Raft host with a KV model per kv group, metrics, and the
// HTTP API. On first start with --init it bootstraps every kv group with the --peers as voters;
// with --join it learns the cluster from a member, hosts the groups empty and, once serving, asks
// to become a voter of each (src/node/membership.ts); a data dir that already holds groups
// restarts from them. Members learn each other's addresses from the admin API and from the
// authenticated peer handshake, and remember them in the address book; a node removed from every
// group (DELETE /v1/admin/members/:id, on any member) is forgotten by each member as it applies
// the removal (src/node/removal-watch.ts), and a removed node says so and serves nothing.
// SIGTERM/SIGINT stop it gracefully: the API stops accepting, the host finishes its turn and
// answers what waits, the transport flushes, the store closes. A fatal error (a storage failure,
// an assertion in the core or the host, a model that threw) stops the host, which answers every
// waiting request at once (503 DRAM_ERR_NODE_STOPPED, or DRAM_ERR_INDETERMINATE for a write
// already proposed); the node then closes every port at once and exits non-zero within
// `fatalExitMsMax`, its last log line naming the cause (see `fatalCause`).

import { randomInt } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildApp, locateOf, removedHereOf } from '../api/app.ts';
import { BinaryServer } from '../api/binary-server.ts';
import { forwardNoAddressCode, type Forward } from '../api/ports.ts';
import type { NodeId } from '../base/ids.ts';
import { createRng } from '../base/rng.ts';
import { kvKeyBytesMax, kvValueBytesMax } from '../codec/kv.ts';
import type { Advertisement } from '../codec/wire.ts';
import { createNodeMetrics } from '../metrics/registry.ts';
import { timedHostStorage } from '../metrics/timed-storage.ts';
import { createKvPlacement } from '../models/kv-placement.ts';
import { AssertionError } from '../base/assert.ts';
import { ModelError, MultiRaftHost, type HostOptions } from '../multiraft/host.ts';
import { DiskStore } from '../storage/disk-store.ts';
import { StorageCorruptionError, StorageError } from '../storage/errors.ts';
import {
  peerTransportLimitsDefault,
  type PeerTransportOptions,
  type TransportLogger,
} from '../transport/peer-options.ts';
import { PeerTransport } from '../transport/peer-transport.ts';
import type { AddressBook } from './address-book.ts';
import { insecureDevSecret, type NodeConfig } from './config.ts';
import { bootstrapGroup, finishJoin, planStart, readJoinRecord, type JoiningNode } from './membership.ts';
import { planBootstrap } from '../control/bootstrap.ts';
import { awaitBootstrap, heldRecord, readHeldAction, recordHeldAction, type HeldAction } from './waiting.ts';
import { RemovalWatch } from './removal-watch.ts';
import { runStopSteps, type StopOutcome, type StopStep } from './stop-steps.ts';
import { GroupHosting, modelFor } from './group-hosting.ts';
import { placementPorts } from './placement-ports.ts';
import { PlacementController } from '../control/placement-controller.ts';
import { encodeMetaCommand } from '../codec/meta.ts';
import { initialPlacement, type InitialReplicas } from '../control/placement-initial.ts';
import { replicationFactorDefault } from '../control/placement-planner.ts';
import { shardFactor, shardInputs } from '../control/placement-view.ts';
import { proposeMeta } from '../api/meta-propose.ts';
import { MetaController, type ControllerEffects } from '../control/controller.ts';
import type { GroupRecord, MetaCommand } from '../codec/meta.ts';
import { membersMax, type MemberDirectory } from '../control/member-directory.ts';
import { MetaModel, metaGroupId } from '../models/meta.ts';
import { systemClock } from '../multiraft/system-clock.ts';
import { watchDataDir } from './data-dir-size.ts';
import { apiEffects, type InjectableApp } from './meta-effects.ts';
import { peerSigner, type PeerSigner } from './peer-signer.ts';
import { openNodeQuery, type NodeQuery } from './query-wiring.ts';
import { catalogDirectory } from './catalog-directory.ts';
import { emptyDatabaseDirectory, type DatabaseDirectory } from '../query/database-directory.ts';
import { dramVersion, prepareMetaGroup, selfRecord } from './meta-group.ts';
import { startConfigBackup } from './config-backup-wiring.ts';
import { catalogStats, nodeDatabases } from './databases.ts';

// A KV entry is the value plus its key and a few bytes of framing: leave room above the value limit.
const entryBytesMax = kvValueBytesMax + kvKeyBytesMax + 1024;
const snapshotChunkBytesMax = 1 << 20;
const snapshotDataBytesMax = 1 << 30;
// One frame carries a whole turn's messages to a peer: with 8 groups each pipelining 1 MiB appends
// it can reach tens of MiB, and a frame over the limit is dropped whole.
const frameBytesMax = 128 << 20;
/** A node stopped by a fatal error exits within this, whatever its connections are doing. */
export const fatalExitMsMax = 2000;
/** How often the node checks whether the host stopped on a fatal error. */
const fatalCheckMs = 20;
/** On a fatal error, answers already settled by the host get this long to be written before connections are cut. */
const fatalDrainMs = 200;
const wireLimits = {
  messagesPerFrameMax: 1 << 16,
  entriesPerMessageMax: 1 << 16,
  entryBytesMax,
  snapshotChunkBytesMax,
};

export interface RunningNode {
  readonly httpUrl: string;
  stop(): Promise<void>;
}

/** What start-up opened before anything runs: the effective config, the store, the start plan. */
interface OpenedNode {
  readonly config: NodeConfig;
  readonly store: DiskStore;
  readonly httpUrl: string;
  readonly version: string;
  readonly held: HeldAction | undefined;
  readonly plan: StartPlan;
  readonly query: NodeQuery | undefined;
  /** The query route resolves names through this; the catalog fills it in once the meta model exists. */
  readonly directory: { current: DatabaseDirectory };
}

/** The replication core: transport, metrics, host, the meta model and the loops that follow membership. */
interface NodeCore {
  readonly transport: PeerTransport;
  readonly metrics: ReturnType<typeof createNodeMetrics>;
  readonly host: MultiRaftHost;
  readonly metaModel: MetaModel;
  readonly hosting: GroupHosting;
  readonly databases: NodeDatabases;
  readonly agent: http.Agent;
  readonly sign: PeerSigner;
  readonly forward: Forward;
}

/** The node's services over the core: the API, the controllers and the loops around them. */
interface NodeServices {
  readonly app: ReturnType<typeof buildApp>;
  readonly placement: PlacementController;
  readonly controller: MetaController;
  readonly configBackup: { stop(): Promise<void> } | undefined;
  readonly heldRecording: { stop(): void } | undefined;
  readonly dataDir: ReturnType<typeof watchDataDir>;
  readonly binary: BinaryServer | undefined;
}

type NodeDatabases = ReturnType<typeof nodeDatabases>;
type StartPlan = Awaited<ReturnType<typeof planStart>>;

export async function startNode(configured: NodeConfig, logger: Logger = nodeLogger(configured)): Promise<RunningNode> {
  const opened = await openNode(configured, logger);
  const { config, httpUrl, plan } = opened;
  const core = buildCore(opened, logger);
  await core.transport.start();
  core.host.start();
  const services = await startServices(opened, core, logger);
  logger.info(
    {
      http: httpUrl,
      ...(config.client === undefined ? {} : { client: `${config.client.host}:${config.client.port}` }),
      raft: `${config.raft.host}:${config.raft.port}`,
      groups: plan.hosted.length,
    },
    'node started',
  );
  let stopping: Promise<StopOutcome> | undefined;
  const stopped = (): Promise<StopOutcome> => (stopping ??= stopNode(opened, core, services, watchdog, logger));
  const stop = async (): Promise<void> => {
    await stopped();
  };
  const watchdog = watchFatal(core.host, stop, logger);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void stopped().then((outcome) =>
        process.exit(core.host.failure() === undefined && outcome.kind === 'stopped' ? 0 : 1),
      );
    });
  }
  try {
    await finishJoin(config, plan, joiningNode(core.transport), logger);
  } catch (error) {
    // Refused, or not done within the retries: nothing half-running is left behind, and the
    // next start with the same flags continues the join where it stopped.
    await stop();
    throw error;
  }
  return { httpUrl, stop };
}

/** Opens what the node starts from: endpoint modules, the store, the bootstrap decision, the start plan. */
async function openNode(configured: NodeConfig, logger: Logger): Promise<OpenedNode> {
  mkdirSync(configured.dataDir, { recursive: true });
  // Before anything else opens: an endpoint module that cannot be served stops the start here.
  // The catalog opens later (it needs the meta model): until then, every database is unknown.
  const directory = { current: emptyDatabaseDirectory };
  const query = await openNodeQuery(configured, { resolve: (nameOrAlias) => directory.current.resolve(nameOrAlias) });
  const store = await DiskStore.open(join(configured.dataDir, 'raft'), {
    entryDataBytesMax: entryBytesMax,
    snapshotDataBytesMax,
  });
  if (configured.secret === insecureDevSecret)
    logger.warn(
      '--insecure-dev-secret: the peer secret is public, anyone who can reach the peer port can act as a member',
    );
  const httpUrl = `${configured.tls === undefined ? 'http' : 'https'}://${configured.http.host}:${configured.http.port}`;
  const version = dramVersion();
  const { config, held } = await bootstrap(configured, store, httpUrl, version, logger);
  const plan = await planStart(config, store, logger);
  await prepareMetaGroup(store, config, logger);
  return { config, store, httpUrl, version, held, plan, query, directory };
}

/**
 * Builds the replication core. The transport, the metrics and the host refer to each other; each
 * reference is called only once the host has started, after everything here exists.
 */
function buildCore(opened: OpenedNode, logger: Logger): NodeCore {
  const { config, plan } = opened;
  const late = {} as { host: MultiRaftHost; removals: RemovalWatch; hosting: GroupHosting; databases: NodeDatabases };
  const transport = peerTransport(config, plan.book, logger, {
    onBatch: (from, batch) => {
      late.host.receive(batch, from);
    },
    onPeerLost: (peer) => {
      late.host.peerLost(peer);
    },
  });
  const metaModel = new MetaModel();
  const metrics = createNodeMetrics({
    host: { status: () => late.host.status() },
    peerTraffic: () => transport.stats().peers,
    dataDir: config.dataDir,
    databases: () => late.databases.downloads.allProgress(),
    catalog: () => (late.host.groupStatus(metaGroupId)?.status.role === 'leader' ? catalogStats(metaModel) : undefined),
    placement: () => underReplicated(metaModel),
  });
  const host = multiRaftHost(opened.store, config, transport, metrics, {
    onConfApplied: (group, confState) => {
      late.removals.confApplied(group, confState);
    },
    onSnapshotRefused: (group, reason) => {
      logger.warn({ group }, reason);
    },
    onUnknownGroup: () => {
      late.hosting.poke();
    },
  });
  late.host = host;
  host.addGroup(metaGroupId, metaModel);
  for (const group of plan.hosted) host.addGroup(group, modelFor(group));
  late.removals = watchRemovals(config.nodeId, host, plan.book, transport, logger);
  late.hosting = new GroupHosting({
    self: config.nodeId,
    host,
    model: metaModel,
    bootstrap: (group, voters) => bootstrapGroup(opened.store, group, voters),
    log: (level, message, fields) => {
      logger[level](fields, message);
    },
    onChange: (group, hosted) => {
      if (!hosted) late.removals.groupStopped(group);
    },
  });
  const agent = forwardAgent(config);
  const sign = peerSigner(config);
  const forward = httpForward(config, plan.book, agent, sign);
  late.databases = databasesOf(config, host, metaModel, forward, metrics, logger);
  return {
    transport,
    metrics,
    host,
    metaModel,
    hosting: late.hosting,
    databases: late.databases,
    agent,
    sign,
    forward,
  };
}

/** This node's databases: downloads, the local copies and the catalog port (src/node/databases.ts). */
function databasesOf(
  config: NodeConfig,
  host: MultiRaftHost,
  metaModel: MetaModel,
  forward: Forward,
  metrics: ReturnType<typeof createNodeMetrics>,
  logger: Logger,
): NodeDatabases {
  return nodeDatabases({
    nodeId: config.nodeId,
    dataDir: config.dataDir,
    s3: config.s3,
    model: metaModel,
    host,
    catalogCurrent: metaCaughtUp(host),
    proposeAnywhere: proposeFromHere(config, host, forward, logger),
    log: (level, message, fields) => {
      logger[level](fields, message);
    },
    onBytes: (database, bytes) => {
      metrics.databaseBytesFetched(database, bytes);
    },
    onEvent: (database, event) => {
      metrics.databaseEvent(database, event);
    },
    onQuery: (database, ms, ok) => {
      metrics.databaseQuery(database, ms / 1000, ok);
    },
    lazyCacheBytes: config.lazyCacheBytes,
  });
}

/**
 * Whether this node's meta model has applied what group 0 committed. A restarted follower learns
 * the leader from a heartbeat whose commit index may be the one from before it went down, so the
 * first answer also waits for one linearizable read of group 0 (asked for here, once it succeeds
 * never again): until then a restarting node's catalog may lack databases added meanwhile, and the
 * downloads would delete their partial files.
 */
function metaCaughtUp(host: MultiRaftHost): () => boolean {
  let read: 'none' | 'asking' | 'done' = 'none';
  return () => {
    const meta = host.groupStatus(metaGroupId);
    if (meta === undefined || meta.status.leader === 0) return false;
    if (read === 'none') {
      read = 'asking';
      void host.read(metaGroupId, 'linearizable').then(
        (outcome) => {
          read = outcome.kind === 'ready' ? 'done' : 'none';
        },
        () => {
          read = 'none';
        },
      );
    }
    return read === 'done' && meta.appliedIndex >= meta.status.commit;
  };
}

/** The peer transport; it delivers nothing before start(), so its callbacks may reach what is built later. */
function peerTransport(
  config: NodeConfig,
  book: AddressBook,
  logger: Logger,
  deliver: Pick<PeerTransportOptions, 'onBatch' | 'onPeerLost'>,
): PeerTransport {
  const transport: PeerTransport = new PeerTransport({
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
    peers: book.raftAddresses(),
    advertise: { raft: config.raft, http: config.http },
    // The address book holds this node too: one entry fewer for learned peers.
    discovery: {
      peersMax: membersMax - 1,
      onPeerAdvertised: (peer, advertised) => {
        rememberPeer(book, transport, peer, advertised, logger);
      },
    },
    localAddress: config.raft.host,
    wireLimits,
    logger: transportLogger(logger),
    ...(config.tls?.ca === undefined ? {} : { tls: { cert: config.tls.cert, key: config.tls.key, ca: config.tls.ca } }),
    ...deliver,
  });
  return transport;
}

/** The multi-Raft host over the store, with the node's Raft settings. */
function multiRaftHost(
  store: DiskStore,
  config: NodeConfig,
  transport: PeerTransport,
  metrics: ReturnType<typeof createNodeMetrics>,
  hooks: Pick<HostOptions, 'onConfApplied' | 'onSnapshotRefused' | 'onUnknownGroup'>,
): MultiRaftHost {
  return new MultiRaftHost({
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
      snapshotTailEntries: config.snapshotTailEntries,
      quiesceAfterTicks: config.quiesceAfterTicks,
    },
    snapshotSend: {
      snapshotSendBytesPerSecMax: config.snapshotSendBytesPerSecMax,
      snapshotSendsMax: config.snapshotSendsMax,
    },
    tickMs: config.tickMs,
    pingMs: config.heartbeatTicks * config.tickMs,
    peerSilenceMs: config.electionTimeoutTicks * config.tickMs,
    proposalQueueMax: config.proposalQueueMax,
    commitFlushMs: 1000,
    requestTimeoutMs: config.requestTimeoutMs,
    observeTurn: (seconds) => {
      metrics.observeTurnDuration(seconds);
    },
    ...hooks,
  });
}

/** The API, the controllers and the loops over the core, started; the HTTP port listens when this returns. */
async function startServices(opened: OpenedNode, core: NodeCore, logger: Logger): Promise<NodeServices> {
  const { config, plan } = opened;
  const { host, metaModel, forward, sign, databases } = core;
  // A member added through the API is dialed at once and forwarded to from now on.
  const members: MemberDirectory = {
    list: () => plan.book.list(),
    record: (member) => {
      const raft = plan.book.record(member);
      if (raft !== undefined) core.transport.setPeer(member.nodeId, raft);
    },
    forget: (node) => {
      forgetMember(plan.book, core.transport, node, logger);
    },
  };
  const dataDir = watchDataDir(config.dataDir);
  opened.directory.current = catalogDirectory({
    catalog: () => ({ model: metaModel.databases, active: metaModel.activeNodes() }),
    local: databases.local,
    ensureLazy: (database, version, paths) => databases.downloads.ensureLazy(database, version, paths),
  });
  const late = {} as { app: ReturnType<typeof buildApp> };
  const placement = new PlacementController({
    host,
    model: metaModel,
    clock: systemClock,
    wallNowMs: () => Date.now(),
    // The ports call the app only once the controller runs, after the app exists.
    ports: placementPorts(
      config.nodeId,
      { inject: (request) => signedInject(late.app, sign).inject(request) },
      forward,
    ),
    propose: async (command) => {
      const outcome = await host.propose(metaGroupId, encodeMetaCommand(command));
      return outcome.kind === 'applied' && (outcome.result as { ok?: unknown } | undefined)?.ok === true;
    },
    onMove: (event) => {
      core.metrics.placementMove(event);
    },
    log: (level, message, fields) => {
      logger[level](fields, message);
    },
  });
  const app = nodeApp(opened, core, { members, dataDir, placement }, logger);
  late.app = app;
  await app.listen({ host: config.http.host, port: config.http.port });
  return startLoops(opened, core, { app, placement, dataDir }, logger);
}

function nodeApp(
  opened: OpenedNode,
  core: NodeCore,
  parts: { members: MemberDirectory; dataDir: ReturnType<typeof watchDataDir>; placement: PlacementController },
  logger: Logger,
): ReturnType<typeof buildApp> {
  const { config, plan, held, httpUrl, version } = opened;
  return buildApp({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    host: core.host,
    groups: plan.groups,
    forward: core.forward,
    members: parts.members,
    requestTimeoutMs: config.requestTimeoutMs,
    metrics: core.metrics,
    logger,
    tls: config.tls,
    auth: { token: config.token, readToken: config.readToken, secret: config.secret, clusterId: config.clusterId },
    query:
      opened.query === undefined
        ? undefined
        : {
            ...opened.query.options,
            onQuery: (nameOrAlias, ms, ok) => {
              core.databases.observeQuery(nameOrAlias, ms, ok);
            },
          },
    meta: {
      model: core.metaModel,
      info: { httpUrl, version, clusterId: config.clusterId, dataDirBytes: () => parts.dataDir.bytes() },
      wallNowMs: () => Date.now(),
      placementRound: () => parts.placement.lastRound(),
      bootstrap: {
        inCluster: true,
        schedule: () => Promise.resolve('this node is already in a cluster'),
        records: () => (held === undefined ? [] : [heldRecord(held)]),
      },
      databases: core.databases.port,
    },
  });
}

/** Starts the controllers and background loops once the API listens, then the binary port. */
async function startLoops(
  opened: OpenedNode,
  core: NodeCore,
  parts: Pick<NodeServices, 'app' | 'placement' | 'dataDir'>,
  logger: Logger,
): Promise<NodeServices> {
  const { config, held, httpUrl, version } = opened;
  const { host, metaModel, forward } = core;
  const heldRecording =
    held === undefined
      ? undefined
      : recordHeldAction(
          config.dataDir,
          held,
          { nodeId: config.nodeId, host, forward, requestTimeoutMs: config.requestTimeoutMs, log: logger },
          metaModel,
          logger,
        );
  const controller = metaController(
    config,
    host,
    metaModel,
    { ...apiEffects(signedInject(parts.app, core.sign)), drain: (node) => parts.placement.drain(node) },
    forward,
    httpUrl,
    version,
    logger,
    core.databases.listObjects,
  );
  controller.start();
  const configBackup = config.backup === undefined ? undefined : startConfigBackup(config, host, version, logger);
  core.databases.start();
  parts.placement.start();
  core.hosting.start();
  const binary = binaryServer(config, core, opened.plan, logger);
  await binary?.start();
  return { ...parts, controller, configBackup, heldRecording, binary };
}

/** The binary client protocol, next to the HTTP API, when --client is given. */
function binaryServer(config: NodeConfig, core: NodeCore, plan: StartPlan, logger: Logger): BinaryServer | undefined {
  if (config.client === undefined) return undefined;
  return new BinaryServer({
    nodeId: config.nodeId,
    host: core.host,
    // A key of a group placed on other nodes goes to one of them, as over HTTP.
    locate: locateOf(core.metaModel),
    removedHere: removedHereOf(core.metaModel, core.host, config.nodeId),
    forward: core.forward,
    placement: createKvPlacement(plan.groups),
    listenHost: config.client.host,
    listenPort: config.client.port,
    ...config.clientLimits,
    auth: { token: config.token, readToken: config.readToken },
    metrics: core.metrics,
    onProtocolError: (reason) => {
      logger.warn({ reason }, 'binary client connection closed: bad frame');
    },
    onConnectionRefused: (open, address) => {
      if (address === undefined)
        logger.warn({ open }, 'binary client connection refused: connectionsMax connections are open');
      else logger.warn({ address }, 'binary client connection refused: connectionsPerAddressMax from that address');
    },
    onConnectionTimedOut: (reason) => {
      logger.info({ reason }, 'binary client connection closed');
    },
  });
}

/**
 * Stops the node. Graceful: the API drains while the host still replicates, then the host answers
 * what waits. After a fatal error the host answered everything already: every port stops
 * accepting at once and what lingers is cut. Either way the steps get `gracefulStopMsMax` in all
 * (src/node/stop-steps.ts): a step still running then is named in the log, and the process exits
 * anyway.
 */
async function stopNode(
  opened: OpenedNode,
  core: NodeCore,
  services: NodeServices,
  watchdog: NodeJS.Timeout,
  logger: Logger,
): Promise<StopOutcome> {
  const { host, transport } = core;
  const { app, binary } = services;
  logger.info('stopping');
  clearInterval(watchdog);
  services.controller.stop();
  let hostingStopped: Promise<void> = Promise.resolve();
  const ports: StopStep[] =
    host.failure() === undefined
      ? [
          { name: 'binary protocol', run: () => binary?.stop() },
          { name: 'http api', run: () => app.close() },
          { name: 'multi-raft host', run: () => host.stop() },
          { name: 'peer transport', run: () => transport.stop() },
        ]
      : [
          {
            name: 'ports after a fatal error',
            run: async () => {
              const httpClosed = app.close();
              core.agent.destroy();
              await Promise.all([binary?.stop(), transport.stop(), delay(fatalDrainMs)]);
              app.server.closeAllConnections();
              await httpClosed;
            },
          },
          { name: 'multi-raft host', run: () => host.stop() },
        ];
  const outcome = await runStopSteps(
    [
      { name: 'config backup', run: () => services.configBackup?.stop() },
      {
        name: 'background loops',
        run: () => {
          core.databases.stop();
          services.placement.stop();
          // A pass waiting on the host is answered when the host stops; awaited before the store closes.
          hostingStopped = core.hosting.stop();
          services.heldRecording?.stop();
          services.dataDir.stop();
          return undefined;
        },
      },
      ...ports,
      { name: 'query engine', run: () => opened.query?.close() },
      { name: 'group hosting', run: () => hostingStopped },
      { name: 'store', run: () => opened.store.close() },
    ],
    {
      onError: (step, error) => {
        logger.error({ err: error, step }, 'a step of the stop failed');
      },
      onStep: (step) => {
        logger.info({ step }, 'stopping: step');
      },
    },
  );
  if (outcome.kind === 'stopped') logger.info('stopped');
  else
    logger.error(
      { step: outcome.step, timeoutMs: outcome.timeoutMs },
      `not stopped within ${outcome.timeoutMs} ms (still waiting on: ${outcome.step}): exiting anyway`,
    );
  return outcome;
}

/** A fatal error stops the host; the process must not linger half-alive. */
function watchFatal(host: MultiRaftHost, stop: () => Promise<void>, logger: Logger): NodeJS.Timeout {
  const watchdog = setInterval(() => {
    const failure = host.failure();
    if (failure === undefined) return;
    clearInterval(watchdog);
    const cause = fatalCause(failure);
    logger.fatal({ err: failure, cause }, `${cause}: stopping the node`);
    setTimeout(() => {
      logger.fatal({ cause }, `${cause}: not stopped within ${fatalExitMsMax} ms, exiting anyway`);
      process.exit(1);
    }, fatalExitMsMax);
    void stop().finally(() => process.exit(1));
  }, fatalCheckMs);
  return watchdog;
}

/**
 * Where the node stands at start (src/control/bootstrap.ts): in a cluster already, told by its
 * flags, or told by an action it took while waiting (NOT_IN_CLUSTER, src/node/waiting.ts). Both
 * ways in go through the same paths: cluster.init is --init, cluster.join is --join.
 */
async function bootstrap(
  config: NodeConfig,
  store: DiskStore,
  httpUrl: string,
  version: string,
  logger: Logger,
): Promise<{ config: NodeConfig; held: HeldAction | undefined }> {
  let held = readHeldAction(config.dataDir);
  const joinRecorded = readJoinRecord(config.dataDir) !== undefined;
  const step = planBootstrap({
    init: config.init,
    join: config.join,
    holdsGroups: store.groupIds().length > 0,
    joinRecorded,
    held: held?.decision,
  });
  if (step.kind === 'wait') held = await awaitBootstrap(config, httpUrl, version, logger);
  const decision = held?.decision;
  // --init creates only what is missing, so a crash half-way through a cluster.init finishes it.
  if (decision?.kind === 'create') return { config: { ...config, init: true }, held };
  if (decision?.kind === 'join' && readJoinRecord(config.dataDir) === undefined)
    return { config: { ...config, join: decision.via }, held };
  return { config, held };
}

/**
 * JSON lines by default (for production: every field kept, machine-readable); `pretty` sends them
 * through pino-pretty in a worker thread (a dev dependency: `dram dev` and `npm start` use it).
 */
export function nodeLogger(config: Pick<NodeConfig, 'nodeId' | 'logFormat'>): Logger {
  const base = { base: { node: config.nodeId } };
  if (config.logFormat === 'json') return pino(base);
  return pino({
    ...base,
    transport: {
      target: 'pino-pretty',
      options: {
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,node',
        messageFormat: 'node {node}: {msg}',
        singleLine: true,
      },
    },
  });
}

/** The meta controller (src/control/controller.ts): actions and the meta group's membership, on the meta leader. */
function metaController(
  config: NodeConfig,
  host: MultiRaftHost,
  model: MetaModel,
  effects: ControllerEffects,
  forward: Forward,
  httpUrl: string,
  version: string,
  logger: Logger,
  listObjects: ControllerEffects['listObjects'],
): MetaController {
  return new MetaController({
    nodeId: config.nodeId,
    host,
    model,
    clock: systemClock,
    wallNowMs: () => Date.now(),
    effects: { ...effects, ...(listObjects === undefined ? {} : { listObjects }) },
    selfUrl: httpUrl,
    clusterId: config.clusterId,
    ...initialPlacementOf(config),
    selfRecord: selfRecord(config, httpUrl, version),
    proposeAnywhere: proposeFromHere(config, host, forward, logger),
    log: (level, message, fields) => {
      logger[level](fields, message);
    },
  });
}

/** Proposes a meta command through group 0 from this node (forwarded to its leader); true when applied ok. */
function proposeFromHere(
  config: NodeConfig,
  host: MultiRaftHost,
  forward: Forward,
  logger: Logger,
): (command: MetaCommand) => Promise<boolean> {
  const context = { nodeId: config.nodeId, host, forward, requestTimeoutMs: config.requestTimeoutMs, log: logger };
  return async (command) => {
    try {
      return (await proposeMeta(context, command)).outcome.ok;
    } catch {
      return false; // retried on a later tick
    }
  };
}

/**
 * A node creating the cluster (--init) knows the first placement of every kv group, and records
 * it when the meta model does not have it yet. The kv replication factor is recorded (which turns
 * the placement controller on) only when the groups are spread over a subset of the nodes: on
 * three nodes or fewer every node hosts every group, as before placement, until an operator sets
 * a factor (dram.io/replication.set).
 */
function initialPlacementOf(
  config: NodeConfig,
): { initialGroups: InitialReplicas[]; initialKvFactor?: number } | Record<string, never> {
  if (!config.init || config.peers.size === 0) return {};
  const peers = [...config.peers.keys()];
  const initialGroups = initialPlacement(peers, config.kvGroups, replicationFactorDefault);
  return peers.length > replicationFactorDefault
    ? { initialGroups, initialKvFactor: replicationFactorDefault }
    : { initialGroups };
}

/**
 * KV groups whose recorded replicas are fewer than the kv factor, and database shard groups fewer
 * than their database's copies (0 while no factor is recorded: placement is off).
 */
function underReplicated(model: MetaModel): { underReplicated: number } {
  const factor = model.replicationFactor('kv');
  if (factor === undefined) return { underReplicated: 0 };
  const inputs = shardInputs(model);
  const desired = (group: GroupRecord): number | undefined =>
    group.kind === 'kv' ? factor : shardFactor(inputs, group);
  const short = model.groups().filter((group) => group.replicas.length < (desired(group) ?? 0));
  return { underReplicated: short.length };
}

/** What stopped the host, in the words of the node's last log line. */
export function fatalCause(error: Error): string {
  if (error instanceof StorageError || error instanceof StorageCorruptionError) return 'storage failure';
  if (error instanceof ModelError) return 'model error';
  if (error instanceof AssertionError) return 'assertion failure';
  return 'internal error';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Removed nodes stay out of the transport (not dialed, handshakes refused) from the start, even
 * when --peers names them; the watch forgets the ones removed from now on.
 */
function watchRemovals(
  self: NodeId,
  host: MultiRaftHost,
  book: AddressBook,
  transport: PeerTransport,
  logger: Logger,
): RemovalWatch {
  const removed = book.removedNodes();
  for (const node of removed) transport.removePeer(node);
  if (removed.length > 0)
    logger.info({ removed }, 'nodes removed from the cluster are not dialed, whatever --peers says');
  const initial = new Map(host.status().map(({ group, status }) => [group, status.confState]));
  const watch = new RemovalWatch(
    {
      self,
      forget: (node) => {
        forgetMember(book, transport, node, logger);
      },
      log: (level, message, fields) => {
        logger[level](fields, message);
      },
    },
    initial,
  );
  if (watch.removed()) logger.warn('this node was removed from every group: it serves nothing and can be stopped');
  return watch;
}

function forgetMember(book: AddressBook, transport: PeerTransport, node: NodeId, logger: Logger): void {
  try {
    book.forget(node);
  } catch (error) {
    // Called from the host's turn: must not throw. The transport still drops the node below.
    logger.error({ err: error, peer: node }, 'could not save the address book');
  }
  transport.removePeer(node);
}

function joiningNode(transport: PeerTransport): JoiningNode {
  return {
    peerConnected: () => [...transport.stats().peers.values()].some((peer) => peer.connected),
    handshakeTrouble: () =>
      `${transport.stats().handshakeFailures} handshakes refused; the transport's warnings say why`,
  };
}

/**
 * A peer's authenticated handshake told us where it is: remember it, and dial it there unless
 * the operator pinned another address for it (the book decides).
 */
function rememberPeer(
  book: AddressBook,
  transport: PeerTransport,
  peer: NodeId,
  advertised: Advertisement,
  logger: Logger,
): void {
  try {
    const raft = book.record({ nodeId: peer, raft: advertised.raft, http: advertised.http });
    if (raft !== undefined) transport.setPeer(peer, raft);
  } catch (error) {
    // The transport must not see a throw; the address is still used until the next restart.
    logger.error({ err: error, peer }, 'could not save the address book');
  }
}

/**
 * Forwards an API request to the leader's node over HTTP (addresses from the address book:
 * --peer-http, the admin API, the peers' handshakes). Outgoing connections bind this node's own
 * address, like the peer transport's (docs/ARCHITECTURE.md, key decision 9), so a partition by source address
 * cuts forwarding too instead of letting it leak around.
 */
/**
 * The connections forwarding uses: HTTPS when this node serves HTTPS (members share their TLS
 * settings), checked against --tls-ca when given (the cluster's CA; host names are not checked,
 * as on the peer connections), else against the system's CAs.
 */
function forwardAgent(config: NodeConfig): http.Agent {
  const pool = { keepAlive: true, maxSockets: 256 };
  if (config.tls === undefined) return new http.Agent(pool);
  const ca = config.tls.ca;
  return new https.Agent(ca === undefined ? pool : { ...pool, ca, checkServerIdentity: () => undefined });
}

function httpForward(config: NodeConfig, book: AddressBook, agent: http.Agent, sign: PeerSigner): Forward {
  return (leader, request) => {
    const address = book.httpAddress(leader);
    // Nothing was sent: the API answers NOT_LEADER with the hint, a definite failure.
    if (address === undefined)
      return Promise.reject(
        Object.assign(new Error(`no HTTP address known for node ${leader} (--peer-http)`), {
          code: forwardNoAddressCode,
        }),
      );
    const client = agent instanceof https.Agent ? https : http;
    return new Promise((resolve, reject) => {
      const outgoing = client.request(
        {
          host: address.host,
          port: address.port,
          method: request.method,
          path: request.url,
          headers: { ...request.headers, ...sign(request.method, request.url) },
          agent,
          localAddress: config.raft.host,
          timeout: request.timeoutMs ?? config.requestTimeoutMs + 1000,
          ...(request.signal === undefined ? {} : { signal: request.signal }),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(response.headers))
              if (typeof value === 'string') headers[name] = value;
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

/** The app's inject(), each call carrying this node's member credential (the API may require one). */
function signedInject(app: ReturnType<typeof buildApp>, sign: PeerSigner): InjectableApp {
  return {
    inject: (request) =>
      app.inject({ ...request, headers: { ...request.headers, ...sign(request.method, request.url) } }),
  };
}

function transportLogger(logger: Logger): TransportLogger {
  return {
    info: (message, fields) => {
      logger.info(fields, message);
    },
    warn: (message, fields) => {
      logger.warn(fields, message);
    },
    error: (message, fields) => {
      logger.error(fields, message);
    },
  };
}
