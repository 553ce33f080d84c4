// The per-node Prometheus metrics (the only importer of prom-client, docs/ARCHITECTURE.md "The
// layers"). One `NodeMetrics` per process owns its own prom-client Registry (never the global one, so
// several nodes in one test process do not collide). Names follow docs/CONTRIBUTING.md ("Batching and
// metrics"): prefix `dram_`, base units as suffixes, `_total` on counters; every one is documented in
// docs/metrics.md, and test/api/metrics.test.ts keeps the two in step.
//
// Invariants: per-group gauges show the host's state as of the last collect(), which render()
// runs first; replication lag is exported only by a group's current leader (its gauge is cleared
// at every collection, so a node that lost leadership stops reporting it); leader changes are counted by comparing each collection with the previous one
// (several changes between two scrapes count as one); failovers and peer byte counters only ever
// increase: they follow the host's and the transport's cumulative totals and treat a total that
// went down as a restart (its new total is all new).
//
// Called by: src/node/ (wiring: host, transport stats), src/api/app.ts through the ApiMetrics port,
// the host or storage wrapper through observeTurnDuration / observeStorageWrite.

import { statfsSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiMetrics, ProposalOutcomeLabel, ReadConsistency, ReadOutcomeLabel } from '../api/ports.ts';

type FanOutMetrics = NonNullable<ApiMetrics['queryFanOut']>;
import type { GroupId, NodeId } from '../base/ids.ts';
import type { Role } from '../raft/types.ts';

/** The host's view of its groups (MultiRaftHost.status() satisfies it). */
export interface GroupStatusSource {
  status(): readonly {
    readonly group: GroupId;
    readonly status: {
      readonly role: Role;
      readonly term: number;
      readonly commit: number;
      readonly leader: NodeId;
      readonly quiesced: boolean;
      readonly lastIndex: number;
      /** Per-member replication progress; only on the leader (empty elsewhere). */
      readonly progress: readonly { readonly id: NodeId; readonly match: number }[];
    };
    readonly appliedIndex: number;
    /** Automatic failovers this node won in the group, since it started (cumulative). */
    readonly failoversWon: number;
  }[];
}

/** Cumulative traffic per peer (the peer transport's `stats().peers` satisfies it). */
export type PeerTrafficSource = () => ReadonlyMap<
  NodeId,
  { readonly bytesSent: number; readonly bytesReceived: number }
>;

export interface NodeMetricsOptions {
  readonly host: GroupStatusSource;
  readonly peerTraffic?: PeerTrafficSource;
  /** The node's data directory: its file system's free and total bytes are exported. */
  readonly dataDir?: string;
  /** This node's download jobs (src/data/database-downloads.ts), read at scrape time. */
  readonly databases?: () => readonly DatabaseJobStats[];
  /** The catalog's replica counts, exported while this node leads the meta group (undefined: it does not). */
  readonly catalog?: () => CatalogStats | undefined;
  /** Placement as this node's meta replica records it (kv groups with fewer replicas than the factor). */
  readonly placement?: () => { readonly underReplicated: number };
}

/** Per shard of each database's current version: replicas by state; and the replica count each asks for. */
export interface CatalogStats {
  readonly shards: readonly {
    readonly database: string;
    readonly shard: string;
    readonly state: string;
    readonly replicas: number;
  }[];
  readonly desired: readonly { readonly database: string; readonly replicas: number }[];
}

/** One database version's download job on this node, as the metrics see it. */
export interface DatabaseJobStats {
  readonly database: string;
  readonly state: 'loading' | 'loaded' | 'failed' | 'evicted';
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly filesDone: number;
  /** A lazy job's data files in the cache (null for a full download). */
  readonly cache: { readonly files: number; readonly bytes: number } | null;
}

/** What the data plane tells the metrics per database (src/data/database-downloads.ts DownloadEvent). */
export type DatabaseEventLabel = 's3_request' | 'cache_hit' | 'cache_miss' | 'cache_eviction';

/** Role as a number so a dashboard can plot it: 0 follower, 1 candidate (pre-vote included), 2 leader. */
export const roleValue = { follower: 0, pre_candidate: 1, candidate: 1, leader: 2 } as const satisfies Record<
  Role,
  number
>;

// Seconds. A turn with an fsync sits around 0.1-10 ms on SSDs; the tail up to a second is what an
// operator needs to see when a disk stalls.
const durationBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

export interface NodeMetrics extends ApiMetrics {
  /** Refreshes the per-group gauges, the leader-change counter and the peer byte counters. */
  collect(): void;
  observeTurnDuration(seconds: number): void;
  observeStorageWrite(seconds: number, sync: boolean): void;
  /** Bytes of a database this node fetched from S3. */
  databaseBytesFetched(database: string, bytes: number): void;
  /** An S3 request, or a lazy cache hit, miss or eviction, for a database. */
  databaseEvent(database: string, event: DatabaseEventLabel): void;
  /** A query of a database this node took, its duration and whether it answered. */
  databaseQuery(database: string, seconds: number, ok: boolean): void;
  /** A placement move started, finished or failed (cancelled), on the meta leader. */
  placementMove(event: 'started' | 'finished' | 'failed'): void;
  /** Every metric this registry exposes, with its type (for the docs parity test). */
  catalog(): { readonly name: string; readonly type: string; readonly labels: readonly string[] }[];
}

/** What a cumulative total added since `last`; a total that went down restarted from zero (all of it is new). */
function increaseSince(last: number, total: number): number {
  return total >= last ? total - last : total;
}

type Registers = Registry[];

/** The per-group gauges and counters (labelled by group), and the leader's replication lag. */
function groupMetrics(registers: Registers) {
  const group = (name: string, help: string) => new Gauge({ name, help, labelNames: ['group'] as const, registers });
  return {
    role: group('dram_group_role', 'Raft role of this replica: 0 follower, 1 candidate, 2 leader.'),
    term: group('dram_group_term', 'Current Raft term of this replica.'),
    commit: group('dram_group_commit_index', 'Highest log index this replica knows to be committed.'),
    applied: group('dram_group_applied_index', 'Highest log index applied to the state machine on this replica.'),
    leader: group('dram_group_leader_node_id', 'Node id of the leader this replica knows of (0: none).'),
    quiesced: group(
      'dram_group_quiesced',
      '1 while this replica of the group is quiet (idle: no ticks, no heartbeats), else 0.',
    ),
    replicationLag: new Gauge({
      name: 'dram_group_replication_lag_entries',
      help: "Leader's last log index minus a member's match index (exported by the group's leader only).",
      labelNames: ['group', 'peer'] as const,
      registers,
    }),
    leaderChanges: new Counter({
      name: 'dram_leader_changes_total',
      help: 'Leader changes observed by this node, per group.',
      labelNames: ['group'] as const,
      registers,
    }),
    failovers: new Counter({
      name: 'dram_failovers_total',
      help: 'Automatic failovers won by this node, per group: elections it won that no admin transfer started, after another leader.',
      labelNames: ['group'] as const,
      registers,
    }),
  };
}

/** What the node's API counts: proposals, reads and HTTP requests by outcome. */
function requestMetrics(registers: Registers) {
  return {
    proposals: new Counter({
      name: 'dram_proposals_total',
      help: 'Proposals made by this node, by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    reads: new Counter({
      name: 'dram_reads_total',
      help: 'KV reads answered by this node, by consistency and outcome.',
      labelNames: ['consistency', 'outcome'] as const,
      registers,
    }),
    httpRequests: new Counter({
      name: 'dram_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
  };
}

/** The process's durations, peer traffic and data file system. */
function processMetrics(registers: Registers) {
  const peerBytes = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['peer'] as const, registers });
  return {
    turnDuration: new Histogram({
      name: 'dram_turn_duration_seconds',
      help: 'Duration of one multi-Raft host turn (collect, persist, send, apply).',
      buckets: durationBucketsSeconds,
      registers,
    }),
    storageWrite: new Histogram({
      name: 'dram_storage_write_duration_seconds',
      help: 'Duration of one storage batch write; sync="true" ones include the fsync.',
      labelNames: ['sync'] as const,
      buckets: durationBucketsSeconds,
      registers,
    }),
    peerSent: peerBytes(
      'dram_peer_sent_bytes_total',
      'Bytes sent to a peer over the Raft transport, frame headers included.',
    ),
    peerReceived: peerBytes(
      'dram_peer_received_bytes_total',
      'Bytes received from a peer over the Raft transport, frame headers included.',
    ),
    filesystemAvailable: new Gauge({
      name: 'dram_data_filesystem_available_bytes',
      help: 'Bytes available to dram on the file system of its data directory.',
      registers,
    }),
    filesystemSize: new Gauge({
      name: 'dram_data_filesystem_size_bytes',
      help: 'Total size of the file system of the data directory.',
      registers,
    }),
  };
}

/** Databases in use: S3 requests, the lazy cache, the queries this node took. */
function databaseUseMetrics(registers: Registers) {
  return {
    cacheBytes: new Gauge({
      name: 'dram_database_cache_bytes',
      help: "Bytes of a lazy database's data files in this node's cache (every version it holds).",
      labelNames: ['database'] as const,
      registers,
    }),
    s3Requests: new Counter({
      name: 'dram_database_object_store_requests_total',
      help: 'S3 requests this node sent for a database (GETs of whole files, ranges and footers).',
      labelNames: ['database'] as const,
      registers,
    }),
    cacheRequests: new Counter({
      name: 'dram_database_cache_requests_total',
      help: "A lazy database's files a query needed on this node, by outcome: hit (on disk) or miss (fetched).",
      labelNames: ['database', 'outcome'] as const,
      registers,
    }),
    cacheEvictions: new Counter({
      name: 'dram_database_cache_evictions_total',
      help: "A lazy database's data files this node evicted from its cache.",
      labelNames: ['database'] as const,
      registers,
    }),
    queries: new Counter({
      name: 'dram_database_queries_total',
      help: 'Queries of a database this node took, by outcome (ok or error).',
      labelNames: ['database', 'outcome'] as const,
      registers,
    }),
    queryDuration: new Histogram({
      name: 'dram_database_query_duration_seconds',
      help: 'Duration of the queries of a database this node took, from the request to the answer.',
      labelNames: ['database'] as const,
      buckets: durationBucketsSeconds,
      registers,
    }),
  };
}

/** Databases: this node's downloads and local files, and (on the meta leader) the catalog's replica counts. */
function databaseMetrics(registers: Registers) {
  return {
    ...databaseUseMetrics(registers),
    fetched: new Counter({
      name: 'dram_database_download_bytes_total',
      help: 'Bytes of a database this node fetched from S3 (retries and resumed files counted as fetched).',
      labelNames: ['database'] as const,
      registers,
    }),
    bytes: new Gauge({
      name: 'dram_database_local_bytes',
      help: "Bytes of a database's files complete on this node's disk (every version it holds).",
      labelNames: ['database'] as const,
      registers,
    }),
    files: new Gauge({
      name: 'dram_database_local_files',
      help: "Files of a database complete on this node's disk (every version it holds).",
      labelNames: ['database'] as const,
      registers,
    }),
    versions: new Gauge({
      name: 'dram_database_versions',
      help: 'Versions of a database this node holds shards of, by load state (loading, loaded, failed, evicted).',
      labelNames: ['database', 'state'] as const,
      registers,
    }),
    shardReplicas: new Gauge({
      name: 'dram_database_shard_replicas',
      help: "Replicas of a database shard (current version) by load state, from the meta model; the meta leader's only.",
      labelNames: ['database', 'shard', 'state'] as const,
      registers,
    }),
    replicasDesired: new Gauge({
      name: 'dram_database_replicas_desired',
      help: 'The replica count a database asks for ("all" resolved to the active nodes); the meta leader\'s only.',
      labelNames: ['database'] as const,
      registers,
    }),
  };
}

// Seconds. A shard's map runs from about a millisecond (a small shard, local) to the endpoint's
// timeout (30 s by default); a hedge or a retry shows as a step of the per-shard timeout.
const shardBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Shards per fanned-out query: powers of two up to the 1,024 a database may have.
const widthBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** The query fan-out of the queries this node took (src/query/fan-out.ts). */
function fanOutMetrics(registers: Registers): FanOutMetrics {
  const width = new Histogram({
    name: 'dram_query_fanout_shards',
    help: 'Shards a query taken by this node was fanned out over (its width).',
    buckets: widthBuckets,
    registers,
  });
  const shardDuration = new Histogram({
    name: 'dram_query_shard_duration_seconds',
    help: "One shard's answer within a fanned-out query, from its first attempt to its answer (retries, hedges and queueing included).",
    buckets: shardBucketsSeconds,
    registers,
  });
  const skipped = new Counter({
    name: 'dram_query_shards_skipped_total',
    help: 'Shards of fanned-out queries left without an answer, by reason (unavailable, timeout, loading, lagging, error).',
    labelNames: ['reason'] as const,
    registers,
  });
  const counter = (name: string, help: string) => new Counter({ name, help, registers });
  const retries = counter('dram_query_shard_retries_total', 'Shard attempts started after a failed or timed-out one.');
  const hedgesSent = counter(
    'dram_query_hedges_sent_total',
    'Hedges sent: a second call for a shard whose first ran past the latency percentile.',
  );
  const hedgesWon = counter('dram_query_hedges_won_total', 'Hedges that answered before the call they hedged.');
  const partial = counter(
    'dram_query_partial_answers_total',
    'Queries answered with some shards missing (?partial=allow); the coverage names them.',
  );
  return {
    fanOutStarted: (shards) => {
      width.observe(shards);
    },
    shardAnswered: (ms) => {
      shardDuration.observe(ms / 1000);
    },
    shardSkipped: (reason) => {
      skipped.inc({ reason });
    },
    shardRetried: () => {
      retries.inc();
    },
    hedgeSent: () => {
      hedgesSent.inc();
    },
    hedgeWon: () => {
      hedgesWon.inc();
    },
    partialAnswered: () => {
      partial.inc();
    },
  };
}

function collectCatalog(gauges: ReturnType<typeof databaseMetrics>, stats: CatalogStats | undefined): void {
  gauges.shardReplicas.reset();
  gauges.replicasDesired.reset();
  for (const entry of stats?.shards ?? [])
    gauges.shardReplicas.set({ database: entry.database, shard: entry.shard, state: entry.state }, entry.replicas);
  for (const entry of stats?.desired ?? []) gauges.replicasDesired.set({ database: entry.database }, entry.replicas);
}

function collectDatabases(gauges: ReturnType<typeof databaseMetrics>, jobs: readonly DatabaseJobStats[]): void {
  // Reset first: a dropped database stops being exported.
  for (const gauge of [gauges.bytes, gauges.files, gauges.versions, gauges.cacheBytes]) gauge.reset();
  for (const job of jobs) {
    gauges.bytes.inc({ database: job.database }, job.bytesDone + (job.cache?.bytes ?? 0));
    gauges.files.inc({ database: job.database }, job.filesDone + (job.cache?.files ?? 0));
    if (job.cache !== null) gauges.cacheBytes.inc({ database: job.database }, job.cache.bytes);
    gauges.versions.inc({ database: job.database, state: job.state });
  }
}

/** Placement: moves the meta leader ran, groups under their factor, this node's primaries. */
function placementMetrics(registers: Registers) {
  return {
    moves: new Counter({
      name: 'dram_placement_moves_total',
      help: 'Placement moves by event: started, finished, failed (cancelled); counted by the meta leader that ran them.',
      labelNames: ['event'] as const,
      registers,
    }),
    underReplicated: new Gauge({
      name: 'dram_placement_groups_under_replicated',
      help: "KV groups whose recorded replicas are fewer than the replication factor (this node's meta replica).",
      registers,
    }),
    primaries: new Gauge({
      name: 'dram_placement_primaries',
      help: 'KV groups this node leads (its primaries).',
      registers,
    }),
  };
}

function collectPlacement(
  gauges: ReturnType<typeof placementMetrics>,
  host: GroupStatusSource,
  placement: NodeMetricsOptions['placement'],
): void {
  gauges.primaries.set(host.status().filter(({ group: id, status }) => id !== 0 && status.role === 'leader').length);
  if (placement !== undefined) gauges.underReplicated.set(placement().underReplicated);
}

function groupCollector(gauges: ReturnType<typeof groupMetrics>, host: GroupStatusSource): () => void {
  const lastLeader = new Map<GroupId, NodeId>();
  const lastFailovers = new Map<GroupId, number>();
  return () => {
    gauges.replicationLag.reset();
    for (const { group: id, status, appliedIndex, failoversWon } of host.status()) {
      const labels = { group: String(id) };
      gauges.role.set(labels, roleValue[status.role]);
      gauges.term.set(labels, status.term);
      gauges.commit.set(labels, status.commit);
      gauges.applied.set(labels, appliedIndex);
      gauges.leader.set(labels, status.leader);
      gauges.quiesced.set(labels, status.quiesced ? 1 : 0);
      for (const member of status.progress) {
        if (member.id === status.leader) continue;
        gauges.replicationLag.set(
          { group: String(id), peer: String(member.id) },
          Math.max(0, status.lastIndex - member.match),
        );
      }
      if (status.leader !== 0 && status.leader !== (lastLeader.get(id) ?? 0)) gauges.leaderChanges.inc(labels);
      if (status.leader !== 0) lastLeader.set(id, status.leader);
      gauges.failovers.inc(labels, increaseSince(lastFailovers.get(id) ?? 0, failoversWon));
      lastFailovers.set(id, failoversWon);
    }
  };
}

/** Adds each peer's traffic since the last call to the byte counters. */
function peerCollector(counters: ReturnType<typeof processMetrics>, peerTraffic: PeerTrafficSource): () => void {
  const lastTraffic = new Map<NodeId, { sent: number; received: number }>();
  return () => {
    for (const [peer, traffic] of peerTraffic()) {
      const last = lastTraffic.get(peer) ?? { sent: 0, received: 0 };
      const labels = { peer: String(peer) };
      counters.peerSent.inc(labels, increaseSince(last.sent, traffic.bytesSent));
      counters.peerReceived.inc(labels, increaseSince(last.received, traffic.bytesReceived));
      lastTraffic.set(peer, { sent: traffic.bytesSent, received: traffic.bytesReceived });
    }
  };
}

function collectFilesystem(gauges: ReturnType<typeof processMetrics>, dataDir: string): void {
  // A failed statfs (the directory gone, say) must not fail the scrape: the storage layer is the
  // one that reports, fatally, a disk it cannot use; these gauges then keep their last values.
  let stats;
  try {
    stats = statfsSync(dataDir);
  } catch {
    return;
  }
  gauges.filesystemAvailable.set(stats.bavail * stats.bsize);
  gauges.filesystemSize.set(stats.blocks * stats.bsize);
}

export function createNodeMetrics(options: NodeMetricsOptions): NodeMetrics {
  const registry = new Registry();
  const registers = [registry];
  const groups = groupMetrics(registers);
  const requests = requestMetrics(registers);
  const runtime = processMetrics(registers);
  const databases = databaseMetrics(registers);
  const placement = placementMetrics(registers);
  const queryFanOut = fanOutMetrics(registers);
  const collectGroups = groupCollector(groups, options.host);
  const peerTraffic = options.peerTraffic;
  const collectPeers = peerTraffic === undefined ? undefined : peerCollector(runtime, peerTraffic);

  const metrics: NodeMetrics = {
    queryFanOut,
    collect() {
      collectGroups();
      collectPeers?.();
      if (options.dataDir !== undefined) collectFilesystem(runtime, options.dataDir);
      collectPlacement(placement, options.host, options.placement);
      if (options.databases !== undefined) collectDatabases(databases, options.databases());
      if (options.catalog !== undefined) collectCatalog(databases, options.catalog());
    },
    databaseBytesFetched(database: string, bytes: number) {
      databases.fetched.inc({ database }, bytes);
    },
    databaseEvent(database, event) {
      if (event === 's3_request') databases.s3Requests.inc({ database });
      else if (event === 'cache_eviction') databases.cacheEvictions.inc({ database });
      else databases.cacheRequests.inc({ database, outcome: event === 'cache_hit' ? 'hit' : 'miss' });
    },
    databaseQuery(database, seconds, ok) {
      databases.queries.inc({ database, outcome: ok ? 'ok' : 'error' });
      databases.queryDuration.observe({ database }, seconds);
    },
    proposal(outcome: ProposalOutcomeLabel) {
      requests.proposals.inc({ outcome });
    },
    read(consistency: ReadConsistency, outcome: ReadOutcomeLabel) {
      requests.reads.inc({ consistency, outcome });
    },
    httpRequest(method: string, route: string, status: number) {
      requests.httpRequests.inc({ method, route, status: String(status) });
    },
    observeTurnDuration(seconds: number) {
      runtime.turnDuration.observe(seconds);
    },
    observeStorageWrite(seconds: number, sync: boolean) {
      runtime.storageWrite.observe({ sync: String(sync) }, seconds);
    },
    placementMove(event) {
      placement.moves.inc({ event });
    },
    async render() {
      metrics.collect();
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    catalog() {
      // prom-client keeps each metric's label names on the instance but leaves them out of its types.
      return registry.getMetricsAsArray().map((metric) => ({
        name: metric.name,
        type: String(metric.type),
        labels: [...((metric as unknown as { labelNames?: readonly string[] }).labelNames ?? [])],
      }));
    },
  };
  return metrics;
}
