// The database routes (docs/databases.md), errors in dram's shape:
//   POST   /v1/databases                 {name, source, replicas?, lazy?, metadataPattern?} -> 202 {action, name}
//   GET    /v1/databases                 the catalog, one summary per database
//   GET    /v1/databases/:name           one database: version, shards, per replica state and progress
//   GET    /v1/databases/:name/shards    which members hold which shards: version, state, the shard's
//                                        group and leader, each member's role (PRIMARY, SECONDARY,
//                                        RECOVERING), commit offset and lag
//   GET    /v1/databases/:name/progress  this node's download jobs of the database and its replicas of
//                                        the shard groups (what the two GETs above ask every member
//                                        holding a replica for)
//   POST   /v1/databases/:name/reload    -> 202 {action, name}
//   DELETE /v1/databases/:name           -> 202 {action, name}
//
// Every change is an agent action (dram.io/db.add, db.reload, db.remove) scheduled through the meta
// log; the route checks what it can before scheduling (the request's shape, the name against the
// catalog, the replica count against the active nodes, and for an add the source: its bucket must
// exist and hold an object under the prefix), so bad input is a 4xx and nothing is scheduled.
// Progress (bytes, files, rate, ETA) is not in the log: each member keeps its own, and the GET
// asks the members holding replicas, each within `progressAskMs`; a member that does not answer
// shows its recorded state without progress.
//
// Called by: src/api/app.ts (registered with the meta model and a database port).

import { randomUUID } from 'node:crypto';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeId } from '../base/ids.ts';
import type { JsonValue } from '../codec/meta.ts';
import { databasesMax, type DatabaseRecord, type DatabaseVersion } from '../codec/meta-databases.ts';
import {
  databaseAddKind,
  databaseReloadKind,
  databaseRemoveKind,
  parseSource,
  replicasOfArgs,
  type DatabaseKind,
} from '../control/database-kinds.ts';
import { databaseArgsProblem } from '../control/database-kinds.ts';
import { memberRole, reportedLeader, type ShardGroupReport } from '../control/shard-roles.ts';
import type { JobProgress } from '../data/database-downloads.ts';
import type { DatabasePort } from '../data/database-port.ts';
import { percentile, type QueryFigures } from '../data/query-stats.ts';
import { aggregate, type MemberProgress } from './database-stats.ts';
import { assignedNodes, loadedCopies, replicaView, requiredCopies } from '../models/meta-databases.ts';
import { actionTimeoutMsDefault, scheduleAction, type ActionsContext } from './action-schedule.ts';
import { ApiError } from './errors.ts';
import { forwardedByHeader } from './forwarding.ts';
import type { Forward } from './ports.ts';
import { jsonBody } from './request-guard.ts';

/** A member asked for its progress answers within this, or is shown without progress. */
export const progressAskMs = 1500;
const databaseBodyBytesMax = 8 * 1024;

export interface DatabaseRoutesOptions {
  readonly nodeId: NodeId;
  readonly actions: ActionsContext;
  readonly databases: DatabasePort;
}

function bodyFields(body: unknown): Record<string, JsonValue> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(
      'DRAM_ERR_INVALID_DATABASE',
      'body must be a JSON object such as {"name": "shop", "source": "s3://bucket/prefix"}',
    );
  return body as Record<string, JsonValue>;
}

export async function scheduleDatabaseAction(
  context: ActionsContext,
  kind: DatabaseKind,
  args: JsonValue,
  route: string,
): Promise<string> {
  return scheduleAction(context, {
    id: randomUUID(),
    kind,
    args,
    metadata: { 'dram.io/route': route },
    createdMs: context.wallNowMs(),
    node: context.nodeId,
    timeoutMs: actionTimeoutMsDefault,
  });
}

function found(context: ActionsContext, name: string): DatabaseRecord {
  const record = context.model.databases.database(name);
  if (record === undefined) throw new ApiError('DRAM_ERR_DATABASE_NOT_FOUND', `no database ${name}`, { name });
  return record;
}

function files(version: DatabaseVersion): { files: number; bytes: number } {
  const all = [...version.global, ...version.shards.flatMap((shard) => shard.files)];
  return { files: all.length, bytes: all.reduce((sum, file) => sum + file.bytes, 0) };
}

/** loaded when every shard has its copies, failed when a shard cannot get them, else loading. */
function versionState(record: DatabaseRecord, version: DatabaseVersion, active: readonly NodeId[]): string {
  const required = requiredCopies(record.replicas, active);
  const copies = loadedCopies(record, version, active);
  if ([...copies.values()].every((count) => count >= required)) return 'loaded';
  const failed = version.shards.some((shard) =>
    assignedNodes(version, shard.shard, record.replicas, active).some(
      (node) => replicaView(record, version.version, shard.shard, node).state === 'failed',
    ),
  );
  return failed ? 'failed' : 'loading';
}

function summaryJson(context: ActionsContext, record: DatabaseRecord): Record<string, JsonValue> {
  const active = context.model.activeNodes();
  return {
    name: record.name,
    source: `s3://${record.bucket}/${record.prefix}`,
    replicas: record.replicas,
    lazy: record.lazy,
    version: record.current.version,
    state: versionState(record, record.current, active),
    shards: record.current.shards.length,
    ...files(record.current),
    next:
      record.next === null ? null : { version: record.next.version, state: versionState(record, record.next, active) },
    aliases: context.model.databases
      .aliases()
      .filter((alias) => alias.database === record.name)
      .map((alias) => alias.alias),
  };
}

/** This node's answer for the database (what `GET /v1/databases/:name/progress` sends). */
function ownProgress(options: DatabaseRoutesOptions, name: string): MemberProgress {
  return {
    jobs: options.databases.progress(name),
    queries: options.databases.queries(name),
    groups: options.databases.shardGroups?.(name) ?? [],
  };
}

/** Each member's progress for the database: this node's own, the others' over HTTP (null: no answer). */
async function gatherProgress(
  options: DatabaseRoutesOptions,
  name: string,
  nodes: readonly NodeId[],
): Promise<Map<NodeId, MemberProgress | null>> {
  const forward: Forward | undefined = options.actions.forward;
  const answers = await Promise.all(
    nodes.map(async (node): Promise<[NodeId, MemberProgress | null]> => {
      if (node === options.nodeId) return [node, ownProgress(options, name)];
      if (forward === undefined) return [node, null];
      try {
        const response = await Promise.race([
          forward(node, {
            method: 'GET',
            url: `/v1/databases/${encodeURIComponent(name)}/progress`,
            headers: { [forwardedByHeader]: String(options.nodeId) },
            body: undefined,
          }),
          new Promise<never>((_, reject) =>
            setTimeout(() => {
              reject(new Error('no answer'));
            }, progressAskMs),
          ),
        ]);
        if (response.status !== 200) return [node, null];
        const parsed = JSON.parse(response.body.toString('utf8')) as {
          jobs?: unknown;
          queries?: unknown;
          groups?: unknown;
        };
        if (!Array.isArray(parsed.jobs)) return [node, null];
        const queries = typeof parsed.queries === 'object' ? (parsed.queries as QueryFigures | null) : null;
        const groups = Array.isArray(parsed.groups) ? (parsed.groups as ShardGroupReport[]) : [];
        return [node, { jobs: parsed.jobs as JobProgress[], queries, groups }];
      } catch {
        return [node, null];
      }
    }),
  );
  return new Map(answers);
}

/** The members holding any shard of the database (current or next version), in id order. */
function holders(record: DatabaseRecord, active: readonly NodeId[]): NodeId[] {
  const nodes = new Set<NodeId>();
  for (const version of [record.current, record.next])
    for (const shard of version?.shards ?? [])
      for (const node of assignedNodes(version ?? record.current, shard.shard, record.replicas, active))
        nodes.add(node);
  return [...nodes].sort((a, b) => a - b);
}

/** GET /v1/databases/:name/shards: per shard and version, its group, leader and each member's role. */
async function shardsJson(options: DatabaseRoutesOptions, name: string) {
  const { actions } = options;
  const record = found(actions, name);
  const active = actions.model.activeNodes();
  const answers = await gatherProgress(options, record.name, holders(record, active));
  const groups = actions.model.shardGroups(record.name);
  return {
    name: record.name,
    shards: [record.current, record.next].flatMap((version) => {
      if (version === null) return [];
      return version.shards.map((shard) => {
        const group = groups.get(shard.shard)?.id ?? null;
        const members = assignedNodes(version, shard.shard, record.replicas, active);
        const reports = new Map(
          members.map((node) => [node, answers.get(node)?.groups.find((report) => report.group === group)]),
        );
        return {
          shard: shard.shard,
          version: version.version,
          role: version === record.current ? 'current' : 'next',
          group,
          leader: reportedLeader(reports.values()),
          members: members.map((node) => {
            const state = replicaView(record, version.version, shard.shard, node).state;
            return { node, state, ...memberRole(node, state, reports) };
          }),
        };
      });
    }),
  };
}

function versionJson(
  record: DatabaseRecord,
  version: DatabaseVersion,
  active: readonly NodeId[],
  progress: ReadonlyMap<NodeId, MemberProgress | null>,
): Record<string, JsonValue> {
  return {
    version: version.version,
    listedAt: new Date(version.listedMs).toISOString(),
    state: versionState(record, version, active),
    ...files(version),
    globalFiles: version.global.length,
    shards: version.shards.map((shard) => {
      const shardFiles = { files: shard.files.length, bytes: shard.files.reduce((sum, file) => sum + file.bytes, 0) };
      return {
        shard: shard.shard,
        ...shardFiles,
        replicas: assignedNodes(version, shard.shard, record.replicas, active).map((node) => {
          const view = replicaView(record, version.version, shard.shard, node);
          const answered = progress.get(node)?.jobs;
          const job = answered?.find(
            (entry) => entry.version === version.version && entry.shards.includes(shard.shard),
          );
          return {
            node,
            // A lazy replica whose cache evicted some of its files since it fetched them (still served).
            state: view.state === 'loaded' && job?.state === 'evicted' ? 'evicted' : view.state,
            lazy: record.lazy,
            error: view.error ?? job?.error ?? null,
            since: view.atMs === null ? null : new Date(view.atMs).toISOString(),
            // The job's figures cover the node's shards of this version and the global files together.
            bytes: job?.bytesDone ?? null,
            bytesTotal: job?.bytesTotal ?? null,
            files: job?.filesDone ?? null,
            filesTotal: job?.filesTotal ?? null,
            progress: job === undefined ? null : job.bytesTotal === 0 ? 1 : job.bytesDone / job.bytesTotal,
            bytesPerSecond: job?.bytesPerSecond ?? null,
            etaSeconds: job?.etaSeconds ?? null,
            s3Requests: job?.s3Requests ?? null,
            s3Bytes: job?.bytesFetched ?? null,
            cache: job?.cache === undefined || job.cache === null ? null : { ...job.cache },
            footerRows: job?.footerRows ?? null,
          };
        }),
      };
    }),
  };
}

/** POST /v1/databases: checks the request and the source, then schedules db.add. */
async function addDatabase(
  options: DatabaseRoutesOptions,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { actions } = options;
  const fields = bodyFields(request.body);
  const problem = databaseArgsProblem(databaseAddKind, fields);
  if (problem !== undefined) throw new ApiError('DRAM_ERR_INVALID_DATABASE', problem);
  const name = fields['name'] as string;
  const catalog = actions.model.databases;
  if (catalog.database(name) !== undefined || catalog.aliases().some((alias) => alias.alias === name))
    throw new ApiError('DRAM_ERR_DATABASE_EXISTS', `a database or alias named ${name} exists`, { name });
  if (catalog.databases().length >= databasesMax)
    throw new ApiError('DRAM_ERR_CATALOG_FULL', `the catalog holds ${databasesMax} databases`, { databasesMax });
  const replicas = replicasOfArgs(fields['replicas']);
  const active = actions.model.activeNodes().length;
  if (typeof replicas === 'number' && replicas > active)
    throw new ApiError('DRAM_ERR_INVALID_DATABASE', `replicas ${replicas} is more than the ${active} active nodes`);
  const source = parseSource(fields['source']);
  if (typeof source === 'string') throw new ApiError('DRAM_ERR_INVALID_DATABASE', source);
  const check = await options.databases.checkSource(source.bucket, source.prefix);
  if (!check.ok)
    throw new ApiError(
      check.kind === 'not_found'
        ? 'DRAM_ERR_SOURCE_NOT_FOUND'
        : check.kind === 'denied'
          ? 'DRAM_ERR_SOURCE_DENIED'
          : 'DRAM_ERR_SOURCE_UNAVAILABLE',
      check.message,
      { source: fields['source'] },
    );
  const action = await scheduleDatabaseAction(
    { ...actions, log: request.log },
    databaseAddKind,
    fields,
    'POST /v1/databases',
  );
  return reply.code(202).send({ action, name });
}

/** GET /v1/databases/:name: the catalog's record with every replica's progress, asked of its member. */
async function databaseDetail(options: DatabaseRoutesOptions, name: string) {
  const { actions } = options;
  const record = found(actions, name);
  const active = actions.model.activeNodes();
  const progress = await gatherProgress(options, record.name, holders(record, active));
  return {
    ...summaryJson(actions, record),
    stats: { ...aggregate(progress) },
    members: [...progress].map(([node, answer]) => ({
      node,
      answered: answer !== null,
      queries: answer?.queries?.served ?? null,
      queriesFailed: answer?.queries?.failed ?? null,
      queryP50Ms: percentile(answer?.queries?.recentMs ?? [], 0.5),
      queryP99Ms: percentile(answer?.queries?.recentMs ?? [], 0.99),
    })),
    createdAt: new Date(record.createdMs).toISOString(),
    metadataPattern: record.metadataPattern,
    requiredCopies: requiredCopies(record.replicas, active),
    current: versionJson(record, record.current, active, progress),
    next: record.next === null ? null : versionJson(record, record.next, active, progress),
  };
}

export const databaseRoutes: FastifyPluginCallback<DatabaseRoutesOptions> = (app, options, done) => {
  const { actions } = options;

  app.post('/v1/databases', jsonBody(databaseBodyBytesMax), (request, reply) => addDatabase(options, request, reply));

  app.get('/v1/databases', async () => {
    const active = actions.model.activeNodes();
    return {
      databases: await Promise.all(
        actions.model.databases.databases().map(async (record) => ({
          ...summaryJson(actions, record),
          stats: { ...aggregate(await gatherProgress(options, record.name, holders(record, active))) },
        })),
      ),
    };
  });

  app.get<{ Params: { name: string } }>('/v1/databases/:name', (request) =>
    databaseDetail(options, request.params.name),
  );

  app.get<{ Params: { name: string } }>('/v1/databases/:name/shards', (request) =>
    shardsJson(options, request.params.name),
  );

  app.get<{ Params: { name: string } }>('/v1/databases/:name/progress', (request) => ({
    node: options.nodeId,
    ...ownProgress(options, request.params.name),
  }));

  // The body, when one is sent, is ignored ({} from most clients).
  app.post<{ Params: { name: string } }>('/v1/databases/:name/reload', jsonBody(1024), async (request, reply) => {
    const record = found(actions, request.params.name);
    const action = await scheduleDatabaseAction(
      { ...actions, log: request.log },
      databaseReloadKind,
      { name: record.name },
      'POST /v1/databases/:name/reload',
    );
    return reply.code(202).send({ action, name: record.name });
  });

  app.delete<{ Params: { name: string } }>('/v1/databases/:name', async (request, reply) => {
    const record = found(actions, request.params.name);
    const action = await scheduleDatabaseAction(
      { ...actions, log: request.log },
      databaseRemoveKind,
      { name: record.name },
      'DELETE /v1/databases/:name',
    );
    return reply.code(202).send({ action, name: record.name });
  });

  done();
};
