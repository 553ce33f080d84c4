// The KV routes of the external contract (docs/ARCHITECTURE.md): `PUT|GET|DELETE /v1/kv/:key`. A key's group
// comes from the hash placement (src/models/kv-placement.ts). Writes are proposed on this node
// whichever node leads (src/api/kv-outcomes.ts, writeKv: a follower hands them to the leader inside
// Raft and answers once it has applied them). Linearizable and lease reads are served locally once
// the host says the read is safe (a follower gets its read index from the leader through the Raft
// core, so the value itself never crosses the network twice); only a read the core refuses with a
// known leader is forwarded over HTTP. Stale reads answer at once from the local replica.
//
// Invariants:
//  - every KV answer carries X-Dram-Index, X-Dram-Shard and X-Dram-Leader. X-Dram-Index is the
//    key's modify index the answer is about: the applied index of a write, the index a read saw, the
//    current index on a CAS mismatch, 0 for an absent key; on a 503/504, where nothing was read,
//    it is this replica's local (possibly stale) view. X-Dram-Leader is 0 when no leader is known.
//  - a write answers 200 only when its entry was applied, a definite-failure code only when it
//    certainly was not, and DRAM_ERR_INDETERMINATE otherwise (never a false success or failure).
//  - the body of PUT is stored as raw bytes whatever its (well-formed) Content-Type, up to
//    kvValueBytesMax bytes; GET and DELETE take no body (src/api/request-guard.ts).
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { GroupId, NodeId } from '../base/ids.ts';
import { kvValueBytesMax, type KvClientStamp, type KvCommand } from '../codec/kv.ts';
import type { KvPlacement } from '../models/kv-placement.ts';
import { KvModel } from '../models/kv.ts';
import type { ReadOutcome } from '../multiraft/host.ts';
import { ApiError } from './errors.ts';
import { forwardOrRefuse, forwardToAny, type ForwardContext } from './forwarding.ts';
import { leaderOf } from './host-view.ts';
import { groupStoppedMeanwhile, kvModelOf, NodeSession, readLabel, readRefusalError, writeKv } from './kv-outcomes.ts';
import { parseClientStamp, parseKey, parseReadQuery, parseWriteQuery, type RawQuery } from './kv-input.ts';
import type { ApiHost, ApiMetrics, Forward, ReadConsistency } from './ports.ts';
import { rawBody } from './request-guard.ts';

export interface KvRoutesOptions {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly placement: KvPlacement;
  readonly forward: Forward | undefined;
  readonly metrics: ApiMetrics;
  /** The nodes hosting a group (the meta model's record), for a key whose group is not hosted here. */
  readonly locate?: ((group: GroupId) => readonly NodeId[]) | undefined;
  /** Whether this node's replica of a hosted group was removed from it (the meta model says so): served elsewhere. */
  readonly removedHere?: ((group: GroupId) => boolean) | undefined;
}

export const indexHeader = 'x-dram-index';
export const shardHeader = 'x-dram-shard';
export const leaderHeader = 'x-dram-leader';

interface KvRoute {
  Params: { key: string };
  Querystring: RawQuery;
}

interface KvContext extends ForwardContext {
  readonly host: ApiHost;
  readonly session: NodeSession;
  readonly placement: KvPlacement;
  readonly metrics: ApiMetrics;
  readonly locate: ((group: GroupId) => readonly NodeId[]) | undefined;
  readonly removedHere: ((group: GroupId) => boolean) | undefined;
}

export const kvRoutes: FastifyPluginCallback<KvRoutesOptions> = (app, options, done) => {
  const context: KvContext = {
    nodeId: options.nodeId,
    forward: options.forward,
    host: options.host,
    session: new NodeSession(options.nodeId),
    placement: options.placement,
    metrics: options.metrics,
    locate: options.locate,
    removedHere: options.removedHere,
  };
  // Any well-formed content type is a value: the bytes are kept as they came.
  app.put<KvRoute>('/v1/kv/:key', rawBody(kvValueBytesMax), (request, reply) => {
    const key = parseKey(request.params.key);
    const { cas } = parseWriteQuery(request.query);
    const client = parseClientStamp(request.headers);
    const elsewhere = hostedElsewhere(context, key);
    if (elsewhere !== undefined) return forwardToMember(context, request, reply, elsewhere, 'indeterminate');
    return write(context, request, reply, {
      op: 'put',
      key,
      value: bodyOf(request) ?? new Uint8Array(0),
      ...stampOf(cas, client),
    });
  });

  app.delete<KvRoute>('/v1/kv/:key', (request, reply) => {
    const key = parseKey(request.params.key);
    const { cas } = parseWriteQuery(request.query);
    const client = parseClientStamp(request.headers);
    const elsewhere = hostedElsewhere(context, key);
    if (elsewhere !== undefined) return forwardToMember(context, request, reply, elsewhere, 'indeterminate');
    return write(context, request, reply, { op: 'delete', key, ...stampOf(cas, client) });
  });

  app.get<KvRoute>('/v1/kv/:key', (request, reply) => {
    const key = parseKey(request.params.key);
    const { consistency } = parseReadQuery(request.query);
    const elsewhere = hostedElsewhere(context, key);
    if (elsewhere !== undefined) return forwardToMember(context, request, reply, elsewhere, 'forward_failed');
    return read(context, request, reply, key, consistency).catch((error: unknown) => {
      // See groupStoppedMeanwhile (the model may also be gone between the read index and the answer).
      if (groupStoppedMeanwhile(error, context.locate))
        return forwardToMember(context, request, reply, context.placement.groupOf(key), 'forward_failed');
      throw error;
    });
  });

  done();
};

/**
 * The key's group when this node does not serve it (and knows who does), else undefined: it does
 * not host the group, or its replica was removed from it (see removedHereOf in app.ts).
 */
function hostedElsewhere(context: KvContext, key: string): GroupId | undefined {
  if (context.locate === undefined) return undefined;
  const group = context.placement.groupOf(key);
  const elsewhere = context.host.groupLeader(group) === undefined || context.removedHere?.(group) === true;
  return elsewhere ? group : undefined;
}

/**
 * A key of a group this node does not host: handed to a node that does (any member serves: a
 * write is proposed there and forwarded inside Raft, a read gets its read index there).
 */
function forwardToMember(
  context: KvContext,
  request: FastifyRequest,
  reply: FastifyReply,
  group: GroupId,
  onFailure: 'indeterminate' | 'forward_failed',
): Promise<FastifyReply> {
  const members = (context.locate?.(group) ?? []).filter((node) => node !== context.nodeId);
  reply.header(shardHeader, String(group));
  reply.header(leaderHeader, '0');
  reply.header(indexHeader, '0');
  const body = Buffer.isBuffer(request.body) ? request.body : undefined;
  return forwardToAny(context, request, reply, { group, members, body, onFailure });
}

/** The headers as this replica sees the key right now; outcomes overwrite them with what they know. */
function describe(context: KvContext, reply: FastifyReply, group: GroupId, key: string): void {
  const model = context.host.model(group);
  reply.header(shardHeader, String(group));
  reply.header(leaderHeader, String(leaderOf(context.host, group)));
  reply.header(indexHeader, String(model instanceof KvModel ? (model.get(key)?.modifyIndex ?? 0) : 0));
}

async function write(
  context: KvContext,
  request: FastifyRequest,
  reply: FastifyReply,
  command: KvCommand,
): Promise<FastifyReply> {
  const group = context.placement.groupOf(command.key);
  return writeHere(context, reply, group, command).catch((error: unknown) => {
    // Refused before it reached the log (definitely not applied): see groupStoppedMeanwhile.
    if (groupStoppedMeanwhile(error, context.locate))
      return forwardToMember(context, request, reply, group, 'indeterminate');
    throw error;
  });
}

async function writeHere(
  context: KvContext,
  reply: FastifyReply,
  group: GroupId,
  command: KvCommand,
): Promise<FastifyReply> {
  describe(context, reply, group, command.key);
  const answer = await writeKv(context.host, context.session, context.metrics, group, command);
  reply.header(leaderHeader, String(leaderOf(context.host, group)));
  if (!answer.ok) {
    if (answer.index !== undefined) reply.header(indexHeader, String(answer.index));
    throw answer.error;
  }
  reply.header(indexHeader, String(answer.modifyIndex));
  return reply.code(200).send({ index: answer.modifyIndex });
}

async function read(
  context: KvContext,
  request: FastifyRequest<KvRoute>,
  reply: FastifyReply,
  key: string,
  consistency: ReadConsistency,
): Promise<FastifyReply> {
  const group = context.placement.groupOf(key);
  describe(context, reply, group, key);
  if (consistency === 'stale') {
    context.metrics.read(consistency, 'served');
    return answerRead(reply, kvModelOf(context.host, group), key);
  }
  const outcome: ReadOutcome = await context.host.read(group, consistency);
  context.metrics.read(consistency, outcome.kind === 'ready' ? 'served' : readLabel(outcome.reason));
  if (outcome.kind === 'ready') {
    reply.header(leaderHeader, String(leaderOf(context.host, group)));
    return answerRead(reply, kvModelOf(context.host, group), key);
  }
  if (outcome.reason === 'not_leader' || outcome.reason === 'leader_changed') {
    return forwardOrRefuse(context, request, reply, {
      group,
      leaderHint: outcome.leaderHint,
      body: undefined,
      onFailure: 'forward_failed',
    });
  }
  throw readRefusalError(group, outcome.reason);
}

function stampOf(cas: number | undefined, client: KvClientStamp | undefined): { cas?: number; client?: KvClientStamp } {
  return { ...(cas === undefined ? {} : { cas }), ...(client === undefined ? {} : { client }) };
}

/** The raw body: a Buffer from this plugin's parser, or undefined when the request had none. */
function bodyOf(request: FastifyRequest): Buffer | undefined {
  return Buffer.isBuffer(request.body) ? request.body : undefined;
}

function answerRead(reply: FastifyReply, model: KvModel, key: string): FastifyReply {
  const record = model.get(key);
  if (record === undefined) {
    reply.header(indexHeader, '0');
    throw new ApiError('DRAM_ERR_KEY_NOT_FOUND', 'key not found');
  }
  reply.header(indexHeader, String(record.modifyIndex));
  const value = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  return reply.code(200).type('application/octet-stream').send(value);
}
