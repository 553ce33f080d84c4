// Scheduling, cancelling and showing agent actions: what the Replicante agent routes
// (agent-routes.ts) and dram's own action routes (action-routes.ts) share. Parsing a schedule
// request checks everything before anything is proposed (kind, args for the kind, id, times,
// metadata, sizes), so a refused request leaves the queue unchanged; errors are ApiErrors, which
// each route family renders in its own shape.
//
// The wire shape of an action execution is Replicante's: `args`, `created_time`, `finished_time`,
// `id`, `kind`, `metadata`, `scheduled_time`, `state: {error, payload, phase}`, times as RFC 3339
// UTC strings.
//
// A node that is not in a cluster has no meta log to schedule into: it takes cluster.init and
// cluster.join through its `BootstrapPort` (src/node/membership.ts keeps them, runs them, and
// writes their records to the meta log once the node is in the cluster); lookups and lists find
// those records there until the log has them.
//
// The admin routes that change the cluster (adding and removing members, moving a group's
// leader) schedule their action and wait for it (`runAsAction`): 200 with the action's payload
// once it is DONE, an error with its message when it FAILED, 202 `{action, phase}` with
// `?wait=false` at once, or when it is still running after `actionWaitMsMax`.
//
// Called by: src/api/agent-routes.ts, src/api/action-routes.ts, the admin and member routes.

import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GroupId, NodeId } from '../base/ids.ts';
import {
  actionId,
  jsonValue,
  metadataEntriesMax,
  stringMap,
  type ActionRecord,
  type ActionRequest,
  type JsonValue,
} from '../codec/meta.ts';
import {
  argsProblem,
  isActionKind,
  objectOf,
  scheduleProblem,
  type ActionKind,
  type ScheduleProblem,
} from '../control/action-kinds.ts';
import type { MetaModel } from '../models/meta.ts';
import { ApiError } from './errors.ts';
import { proposeMeta, type MetaProposeContext } from './meta-propose.ts';

/** An action may run this long once started before the executor fails it. */
export const actionTimeoutMsDefault = 60_000;
/** A schedule request body is the args (at most 64 KiB as JSON) plus a little. */
export const actionBodyBytesMax = 96 * 1024;

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/u;

/** Parses an RFC 3339 time that must be UTC (Z, +00:00 or -00:00) into epoch milliseconds. */
export function parseUtcTime(value: unknown, field: string): number {
  const match = typeof value === 'string' ? rfc3339.exec(value) : null;
  if (match === null) throw new ApiError('DRAM_ERR_BAD_REQUEST', `${field} must be an RFC 3339 time`);
  const offset = match[8] ?? '';
  if (!/^([Zz]|[+-]00:00)$/u.test(offset))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `The provided ${field} MUST be in UTC`);
  const ms = Date.parse((value as string).replace(/[+-]00:00$/u, 'Z'));
  if (!Number.isFinite(ms) || ms < 0) throw new ApiError('DRAM_ERR_BAD_REQUEST', `${field} is not a valid time`);
  return Math.floor(ms);
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A schedule request (Replicante's `ActionExecutionRequest`: kind, args?, id?, created_time?,
 * metadata?; other fields are ignored) checked into an action request.
 */
export function parseScheduleBody(body: unknown, node: NodeId, nowMs: number): ActionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'body must be a JSON object such as {"kind": "...", "args": {}}');
  const fields = body as Record<string, unknown>;
  const kind = fields['kind'];
  if (typeof kind !== 'string') throw new ApiError('DRAM_ERR_BAD_REQUEST', 'kind must be a string');
  if (!isActionKind(kind)) throw new ApiError('DRAM_ERR_UNKNOWN_ACTION_KIND', `unknown action kind ${kind}`, { kind });
  let args: JsonValue;
  try {
    args = jsonValue(fields['args'] ?? null, 'args');
  } catch (error) {
    throw new ApiError('DRAM_ERR_INVALID_ACTION_ARGS', error instanceof Error ? error.message : String(error));
  }
  const problem = argsProblem(kind, args);
  if (problem !== undefined) throw new ApiError('DRAM_ERR_INVALID_ACTION_ARGS', problem, { kind });
  return {
    id: parseId(fields['id']),
    kind,
    args,
    metadata: parseMetadata(fields['metadata']),
    createdMs: fields['created_time'] === undefined ? nowMs : parseUtcTime(fields['created_time'], 'created_time'),
    node,
    timeoutMs: actionTimeoutMsDefault,
  };
}

function parseId(value: unknown): string {
  if (value === undefined || value === null) return randomUUID();
  const id = typeof value === 'string' ? value.toLowerCase() : value;
  try {
    return actionId(id, 'id');
  } catch {
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'id must be a UUID such as 308fb8bc-79a1-49d9-bf71-1191d7d6c5d2');
  }
}

function parseMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  try {
    return stringMap(value, 'metadata', metadataEntriesMax);
  } catch (error) {
    throw new ApiError(
      'DRAM_ERR_BAD_REQUEST',
      `metadata must map names to strings (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

/** Parses an action id from a URL (any case); undefined when it is not a UUID. */
export function idFromPath(value: string): string | undefined {
  try {
    return actionId(value.toLowerCase(), 'id');
  } catch {
    return undefined;
  }
}

/** What a node not (yet) in the cluster's log does with cluster.init and cluster.join. */
export interface BootstrapPort {
  /** False while the node waits for cluster.init or cluster.join (it has no meta log). */
  readonly inCluster: boolean;
  /** Takes a cluster.init or cluster.join on a node not in a cluster; resolves with why not when refused. */
  schedule(request: ActionRequest): Promise<string | undefined>;
  /** The actions this node took that the meta log does not hold yet. */
  records(): readonly ActionRecord[];
}

export interface ActionsContext extends MetaProposeContext {
  readonly model: MetaModel;
  readonly wallNowMs: () => number;
  readonly bootstrap?: BootstrapPort | undefined;
}

/** Any action of the cluster, or one this node holds until the log has it. */
export function findAction(context: ActionsContext, id: string): ActionRecord | undefined {
  return context.model.action(id) ?? context.bootstrap?.records().find((record) => record.id === id);
}

/** The actions this node holds that the log does not have yet, by whether they finished. */
export function heldActions(context: ActionsContext, finished: boolean): ActionRecord[] {
  return (context.bootstrap?.records() ?? []).filter(
    (record) => context.model.action(record.id) === undefined && (record.finishedMs !== null) === finished,
  );
}

function problemError(problem: ScheduleProblem, kind: string): ApiError {
  switch (problem.kind) {
    case 'not_in_cluster':
      return new ApiError('DRAM_ERR_NOT_IN_CLUSTER', problem.message, { kind });
    case 'in_cluster':
      return new ApiError('DRAM_ERR_IN_CLUSTER', problem.message, { kind });
    case 'invalid_args':
      return new ApiError('DRAM_ERR_INVALID_ACTION_ARGS', problem.message, { kind });
    case 'unknown_group':
      return new ApiError('DRAM_ERR_UNKNOWN_GROUP', problem.message, { group: problem.group });
  }
}

/** Schedules the action through group 0; resolves with its id, or throws why not (queue unchanged). */
export async function scheduleAction(context: ActionsContext, request: ActionRequest): Promise<string> {
  if (findAction(context, request.id) !== undefined)
    throw new ApiError('DRAM_ERR_ACTION_EXISTS', 'The action ID is already used by another action', {
      id: request.id,
    });
  const problem = scheduleProblem(request.kind as ActionKind, request.args, {
    inCluster: context.bootstrap?.inCluster ?? true,
    groupVoters: (group) => context.host.groupStatus(group as GroupId)?.status.confState.voters,
  });
  if (problem !== undefined) throw problemError(problem, request.kind);
  if (context.bootstrap !== undefined && !context.bootstrap.inCluster) {
    const refused = await context.bootstrap.schedule(request);
    if (refused !== undefined) throw new ApiError('DRAM_ERR_IN_CLUSTER', refused, { kind: request.kind });
    return request.id;
  }
  const proposed = await proposeMeta(context, { type: 'action.schedule', action: request, atMs: context.wallNowMs() });
  const outcome = proposed.outcome;
  if (outcome.ok) return request.id;
  switch (outcome.code) {
    case 'exists':
      // Our own earlier attempt whose answer was lost: scheduled once, and that is success.
      if (outcome.sameRequest && proposed.attempts > 1) return request.id;
      throw new ApiError('DRAM_ERR_ACTION_EXISTS', 'The action ID is already used by another action', {
        id: request.id,
      });
    case 'queue_full':
      throw new ApiError('DRAM_ERR_ACTIONS_QUEUE_FULL', `${outcome.queued} actions are waiting; retry later`, {
        queued: outcome.queued,
        queuedMax: outcome.queuedMax,
      });
    default:
      throw new ApiError('DRAM_ERR_INTERNAL', `unexpected outcome ${outcome.code}`);
  }
}

/** Cancels an unfinished action (FAILED with the reason); throws when unknown or already finished. */
export async function cancelAction(context: ActionsContext, id: string, reason: string): Promise<ActionRecord> {
  const proposed = await proposeMeta(context, { type: 'action.cancel', id, reason, atMs: context.wallNowMs() });
  const outcome = proposed.outcome;
  const record = context.model.action(id);
  if (outcome.ok && record !== undefined) return record;
  if (!outcome.ok && outcome.code === 'finished') {
    // A retry of our own cancel finds it finished by that cancel: success.
    if (proposed.attempts > 1 && record !== undefined) return record;
    throw new ApiError('DRAM_ERR_ACTION_FINISHED', `action ${id} has already finished (${outcome.phase})`, {
      id,
      phase: outcome.phase,
    });
  }
  throw new ApiError('DRAM_ERR_ACTION_NOT_FOUND', `no action ${id}`, { id });
}

/** Replicante's ActionExecution. */
export function executionJson(record: ActionRecord): Record<string, unknown> {
  return {
    args: record.args,
    created_time: formatTime(record.createdMs),
    finished_time: record.finishedMs === null ? null : formatTime(record.finishedMs),
    id: record.id,
    kind: record.kind,
    metadata: record.metadata,
    scheduled_time: formatTime(record.scheduledMs),
    state: { error: record.state.error, payload: record.state.payload, phase: record.state.phase },
  };
}

/** Replicante's ActionExecutionList item. */
export function listItemJson(record: ActionRecord): Record<string, unknown> {
  return { id: record.id, kind: record.kind, phase: record.state.phase };
}

/** How long an admin route waits for the action it scheduled: the action's own timeout, and a little. */
export const actionWaitMsMax = actionTimeoutMsDefault + 5000;
const actionWaitPollMs = 20;

/** `?wait=false` (or `0`): answer 202 with the action id at once; anything else waits. */
export function waitAsked(request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined;
  const wait = query?.['wait'];
  if (wait === undefined || wait === 'true' || wait === '1') return true;
  if (wait === 'false' || wait === '0') return false;
  throw new ApiError('DRAM_ERR_BAD_REQUEST', `wait must be true or false, got ${JSON.stringify(wait)}`);
}

/**
 * An admin route as a thin wrapper: schedules `kind` with `args` through this node, then answers
 * from the action's record (see the header). Bad args are refused before anything is scheduled.
 */
export async function runAsAction(
  context: ActionsContext,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: ActionKind,
  args: JsonValue,
): Promise<FastifyReply> {
  const wait = waitAsked(request);
  const problem = argsProblem(kind, args);
  if (problem !== undefined) throw new ApiError('DRAM_ERR_INVALID_ACTION_ARGS', problem, { kind });
  const nowMs = context.wallNowMs();
  const id = await scheduleAction(
    { ...context, log: request.log },
    {
      id: randomUUID(),
      kind,
      args,
      metadata: { 'dram.io/route': `${request.method} ${request.routeOptions.url ?? ''}` },
      createdMs: nowMs,
      node: context.nodeId,
      timeoutMs: actionTimeoutMsDefault,
    },
  );
  if (!wait) return reply.code(202).send({ action: id, phase: 'NEW' });
  let record = findAction(context, id);
  for (let waited = 0; waited < actionWaitMsMax && record?.finishedMs === null; waited += actionWaitPollMs) {
    await new Promise((resolve) => setTimeout(resolve, actionWaitPollMs));
    record = findAction(context, id);
  }
  if (record === undefined || record.finishedMs === null)
    return reply.code(202).send({ action: id, phase: record?.state.phase ?? 'NEW' });
  if (record.state.phase === 'FAILED') {
    const error = record.state.error;
    const text = objectOf(error)?.['error_msg'];
    const message = typeof text === 'string' ? text : JSON.stringify(error);
    throw new ApiError('DRAM_ERR_ACTION_FAILED', `action ${id} (${kind}) failed: ${message}`, { action: id, error });
  }
  const payload = record.state.payload;
  return reply.code(200).send({ ...(objectOf(payload) ?? { payload }), action: id });
}
