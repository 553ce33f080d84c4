// What the query routes run: one query of an endpoint over a database named by its name or an
// alias, with its coverage, and the member-to-member map of some local shards.
//
//  - `query` resolves the database (DRAM_ERR_DATABASE_NOT_FOUND), the shards asked for (`?shards=`,
//    DRAM_ERR_UNKNOWN_SHARD), admits the query on this member (the endpoint's 404, params 400,
//    busy 429; one slot and one timeout for the whole query), then either maps this member's own
//    shards (`scope: 'local'`, DRAM_ERR_NO_LOCAL_SHARDS when it holds none of them) or fans the
//    maps out over the cluster (fan-out.ts), and reduces on this member. The answer is
//    `{ result, coverage: { complete, shards } }`; with `partial: 'deny'` (the default) a query
//    missing any shard is DRAM_ERR_PARTIAL carrying the coverage, never a short answer; with
//    `partial: 'allow'` reduce gets the answers there are, and the coverage says which are missing.
//  - `mapShards` is the other side of a fan-out: a member asked for some of its shards at a given
//    version runs their maps (admitted like a query on it, its slots counted apart from the
//    member's own queries) and answers the partials; a shard it
//    does not hold loaded at that version is DRAM_ERR_NO_LOCAL_SHARDS with the reason (loading,
//    lagging, unavailable), which the asking member turns into a retry elsewhere.
// Every shard of one query is served at one version (the view's), so a query through an alias
// being swapped sees one database version or the other, never a mix; the coverage shows it.
//
// Called by: src/api/query-routes.ts. Ports: DatabaseDirectory (the catalog), the remote MapPort
// (the API's HTTP calls to members), the clock.

import type { NodeId } from '../base/ids.ts';
import { QueryError, type JsonValue } from '../data/query-engine.ts';
import { gather, pickShards, roundMs, shardsListedMax, type Coverage, type PartialPolicy } from './coverage.ts';
import type { DatabaseDirectory, DatabaseView, DirectoryShard } from './database-directory.ts';
import {
  FanOut,
  ShardCallError,
  type FanOutClock,
  type FanOutLimits,
  type FanOutMetrics,
  type MapPort,
  type ShardCall,
  type SkipReason,
} from './fan-out.ts';
import type { LocalDatabase, LocalRunner, LocalShard, ShardAnswer } from './local-runner.ts';

export type QueryScope = 'cluster' | 'local';

export interface QueryRequest {
  readonly nameOrAlias: string;
  readonly endpoint: string;
  /** The request body; undefined (none) is `{}`. */
  readonly params: JsonValue | undefined;
  readonly scope: QueryScope;
  /** Only these shards (`?shards=`); undefined: every shard of the database. */
  readonly shards?: readonly string[] | undefined;
  readonly partial: PartialPolicy;
  /** The caller's: aborting stops the query. */
  readonly signal?: AbortSignal | undefined;
}

export interface QueryAnswer {
  readonly result: JsonValue;
  readonly coverage: Coverage;
}

/** A member's map of some of its shards, asked by another member. */
export interface MapRequest {
  readonly database: string;
  readonly version: string;
  readonly endpoint: string;
  readonly params: JsonValue | undefined;
  readonly shards: readonly string[];
  readonly signal?: AbortSignal | undefined;
}

/** The maps of some local shards, and the params they ran with (checked, defaults filled in). */
export interface MapAnswer {
  readonly partials: readonly ShardAnswer[];
  readonly params: JsonValue;
}

/** A smart client's reduce of the partials it gathered. */
export interface ReduceRequest {
  readonly endpoint: string;
  readonly params: JsonValue | undefined;
  readonly partials: readonly JsonValue[];
  readonly signal?: AbortSignal | undefined;
}

/** Shards named in one `?shards=` or one member-to-member map; more is refused. */
export const queryShardsListedMax = shardsListedMax;

/** Database names and aliases in a query URL: no `/`, no `..`, nothing a path could misread. */
export const databaseNamePattern = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/u;

export interface QueryServiceOptions {
  readonly self: NodeId;
  readonly runner: LocalRunner;
  readonly directory: DatabaseDirectory;
  /** Calls another member's map of one shard (src/api/query-routes.ts over HTTP). */
  readonly remote: MapPort;
  readonly clock: FanOutClock;
  readonly fanOutLimits?: FanOutLimits | undefined;
  /** The fan-out's figures (width, per-shard latency, retries, hedges, partial answers). */
  readonly metrics?: FanOutMetrics | undefined;
}

/** Why this member cannot serve `shard` at `version`: the reason a fan-out shows for it. */
function notLocalReason(self: NodeId, shard: DirectoryShard, version: string): Exclude<SkipReason, 'timeout'> {
  const mine = shard.replicas.find((replica) => replica.node === self);
  if (mine?.state === 'loading') return 'loading';
  if (mine?.state === 'loaded' && (mine.version !== version || mine.lagging === true)) return 'lagging';
  return 'unavailable';
}

/** Runs `work` once the view has the shards' files here (a lazy database), releasing them after. */
async function prepared<T>(
  view: DatabaseView,
  shards: readonly string[],
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  const release = await view.prepare?.(shards, signal);
  try {
    return await work();
  } finally {
    release?.();
  }
}

function localDatabase(view: DatabaseView, shards: readonly LocalShard[]): LocalDatabase {
  return { name: view.name, version: view.version, globalDir: view.globalDir, globalFiles: view.globalFiles, shards };
}

export class QueryService {
  private readonly self: NodeId;
  private readonly runner: LocalRunner;
  private readonly directory: DatabaseDirectory;
  readonly fanOut: FanOut;
  private readonly metrics: FanOutMetrics | undefined;

  constructor(options: QueryServiceOptions) {
    this.self = options.self;
    this.runner = options.runner;
    this.directory = options.directory;
    this.metrics = options.metrics;
    const map: MapPort = (node, call, signal) =>
      node === this.self ? this.mapOneHere(call, signal) : options.remote(node, call, signal);
    this.fanOut = new FanOut({
      self: options.self,
      map,
      clock: options.clock,
      ...(options.fanOutLimits === undefined ? {} : { limits: options.fanOutLimits }),
      metrics: options.metrics,
    });
  }

  async query(request: QueryRequest): Promise<QueryAnswer> {
    if (this.runner.endpoint(request.endpoint) === undefined)
      throw new QueryError('DRAM_ERR_UNKNOWN_ENDPOINT', `no endpoint named "${request.endpoint}" is loaded`);
    const view = this.directory.resolve(request.nameOrAlias);
    if (view === undefined)
      throw new QueryError('DRAM_ERR_DATABASE_NOT_FOUND', `no database or alias named "${request.nameOrAlias}"`);
    const asked = pickShards(view.name, view.shards, request.shards);
    return request.scope === 'local' ? this.queryHere(view, asked, request) : this.queryCluster(view, asked, request);
  }

  /** `?scope=local`: the asked shards this member holds (every one of them when `?shards=` names them). */
  private async queryHere(
    view: DatabaseView,
    asked: readonly DirectoryShard[],
    request: QueryRequest,
  ): Promise<QueryAnswer> {
    const held = asked.filter((shard) => shard.local !== undefined);
    const missing = asked.filter((shard) => shard.local === undefined);
    if (held.length === 0 || (request.shards !== undefined && missing.length > 0)) {
      const first = missing[0];
      throw new QueryError(
        'DRAM_ERR_NO_LOCAL_SHARDS',
        held.length === 0
          ? `node ${this.self} holds no shard of database "${view.name}" (version ${view.version}) loaded`
          : `node ${this.self} does not hold shard(s) ${missing.map((shard) => shard.shard).join(', ')} of database "${view.name}" loaded`,
        { reason: first === undefined ? 'unavailable' : notLocalReason(this.self, first, view.version) },
      );
    }
    const shards = held.flatMap((shard) => (shard.local === undefined ? [] : [shard.local]));
    return this.runner.runWith(request, async (admitted) => {
      const answer = await prepared(
        view,
        shards.map((shard) => shard.shard),
        admitted.signal,
        () => this.runner.runAdmitted(admitted, localDatabase(view, shards)),
      );
      const coverage = answer.shards.map(({ shard, ms }) => ({
        shard,
        node: this.self,
        version: view.version,
        ms: roundMs(ms),
      }));
      return { result: answer.result, coverage: { complete: true, shards: coverage } };
    });
  }

  private queryCluster(
    view: DatabaseView,
    asked: readonly DirectoryShard[],
    request: QueryRequest,
  ): Promise<QueryAnswer> {
    return this.runner.runWith(request, async (admitted) => {
      const outcomes = await this.fanOut.run({
        database: view.name,
        version: view.version,
        endpoint: admitted.endpoint.name,
        params: admitted.params,
        shards: asked,
        signal: admitted.signal,
        failOnDefinite: request.partial === 'deny',
      });
      const { coverage, partials } = gather(view.name, outcomes, request.partial);
      if (!coverage.complete) this.metrics?.partialAnswered();
      return { result: await this.runner.reduce(admitted.endpoint, partials, admitted.params), coverage };
    });
  }

  /** The local files of `names` of database `name` at `version`, or DRAM_ERR_NO_LOCAL_SHARDS saying why not. */
  private localShards(
    name: string,
    version: string,
    names: readonly string[],
  ): { view: DatabaseView; shards: LocalShard[] } {
    const view = this.directory.resolve(name);
    if (view === undefined || view.name !== name)
      throw new QueryError('DRAM_ERR_NO_LOCAL_SHARDS', `node ${this.self} has no database "${name}"`, {
        reason: 'unavailable',
      });
    const shards: LocalShard[] = [];
    for (const wanted of names) {
      const shard = view.shards.find((candidate) => candidate.shard === wanted);
      const reason =
        shard === undefined
          ? 'unavailable'
          : view.version !== version
            ? 'lagging'
            : shard.local === undefined || this.lagsHere(shard)
              ? notLocalReason(this.self, shard, version)
              : undefined;
      if (reason !== undefined || shard?.local === undefined)
        throw new QueryError(
          'DRAM_ERR_NO_LOCAL_SHARDS',
          `node ${this.self} does not hold shard ${wanted} of database "${name}" version ${version} loaded (${reason ?? 'unavailable'})`,
          { reason: reason ?? 'unavailable' },
        );
      shards.push(shard.local);
    }
    return { view, shards };
  }

  /** Whether the catalog sees this member's replica of the shard behind (a fan-out asks another one). */
  private lagsHere(shard: DirectoryShard): boolean {
    return shard.replicas.some((replica) => replica.node === this.self && replica.lagging === true);
  }

  /**
   * Another member's (or a smart client's) request for the maps of some of this member's shards,
   * admitted here like any query; answers the partials and the checked params (defaults filled in),
   * which a caller that reduces itself hands to reduce.
   */
  async mapShards(request: MapRequest): Promise<MapAnswer> {
    if (this.runner.endpoint(request.endpoint) === undefined)
      throw new QueryError('DRAM_ERR_UNKNOWN_ENDPOINT', `no endpoint named "${request.endpoint}" is loaded`);
    const { view, shards } = this.localShards(request.database, request.version, request.shards);
    return this.runner.runWith(
      request,
      (admitted) =>
        prepared(view, request.shards, admitted.signal, async () => ({
          partials: await this.runner.mapAll(admitted, localDatabase(view, shards)),
          params: admitted.params,
        })),
      'maps',
    );
  }

  /**
   * A smart client's reduce: the endpoint's `reduce` over partials it gathered itself, admitted like
   * a query here (params checked, the endpoint's slot and timeout).
   */
  async reduce(request: ReduceRequest): Promise<JsonValue> {
    return this.runner.runWith(request, (admitted) =>
      this.runner.reduce(admitted.endpoint, [...request.partials], admitted.params),
    );
  }

  /** A fan-out's map of one of this member's shards, inside the query's own admission (no second slot). */
  private async mapOneHere(call: ShardCall, signal: AbortSignal): Promise<JsonValue> {
    const endpoint = this.runner.endpoint(call.endpoint);
    let local: { view: DatabaseView; shards: LocalShard[] };
    try {
      if (endpoint === undefined) throw new ShardCallError('error', `no endpoint named "${call.endpoint}"`);
      local = this.localShards(call.database, call.version, [call.shard]);
    } catch (error) {
      if (error instanceof ShardCallError) throw error;
      const reason = ((error as QueryError).details?.['reason'] ?? 'unavailable') as Exclude<SkipReason, 'timeout'>;
      throw new ShardCallError(reason, (error as Error).message);
    }
    const [shard] = local.shards;
    if (shard === undefined) throw new ShardCallError('unavailable', `shard ${call.shard} is not here`);
    return prepared(local.view, [call.shard], signal, () =>
      this.runner.mapShard({ endpoint, params: call.params, signal }, localDatabase(local.view, [shard]), shard),
    );
  }
}
