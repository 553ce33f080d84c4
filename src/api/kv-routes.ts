// The KV routes of the external contract (DESIGN.md): `PUT|GET|DELETE /v1/kv/:key`. A key's group
// comes from the hash placement (src/models/kv-placement.ts). Writes are proposed to the local host;
// a follower's refusal (not_leader) is turned into a forward to the leader. Linearizable and lease
// reads are served locally once the host says the read is safe (a follower gets its read index from
// the leader through the Raft core, so the value itself never crosses the network twice); only a
// read the core refuses with a known leader is forwarded over HTTP. Stale reads answer at once
// from the local replica.
//
// Invariants:
//  - every KV answer carries X-Dram-Index, X-Dram-Shard and X-Dram-Leader. X-Dram-Index is the
//    key's modify index the answer is about: the applied index of a write, the index a read saw, the
//    current index on a CAS mismatch, 0 for an absent key; on a 503/504, where nothing was read,
//    it is this replica's local (possibly stale) view. X-Dram-Leader is 0 when no leader is known.
//  - a write answers 200 only when its entry was applied, a definite-failure code only when it
//    certainly was not, and DRAM_ERR_INDETERMINATE otherwise (never a false success or failure).
//  - the body of PUT is stored as raw bytes whatever its Content-Type; this plugin replaces every
//    content-type parser (in its own encapsulated context) with one that collects up to
//    kvValueBytesMax bytes.
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { GroupId, NodeId } from '../base/ids.ts';
import { encodeKvCommand, kvValueBytesMax, type KvClientStamp, type KvCommand } from '../codec/kv.ts';
import type { KvPlacement } from '../models/kv-placement.ts';
import { KvModel, type KvOutcome } from '../models/kv.ts';
import type { ProposalOutcome, ReadOutcome } from '../multiraft/host.ts';
import { ApiError } from './errors.ts';
import { forwardOrRefuse, noLeaderError, notLeaderError, type ForwardContext } from './forwarding.ts';
import { leaderOf } from './host-view.ts';
import { parseClientStamp, parseKey, parseReadQuery, parseWriteQuery, type RawQuery } from './kv-input.ts';
import type { ApiHost, ApiMetrics, Forward, ProposalOutcomeLabel, ReadConsistency } from './ports.ts';

export interface KvRoutesOptions {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly placement: KvPlacement;
  readonly forward: Forward | undefined;
  readonly metrics: ApiMetrics;
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
  readonly placement: KvPlacement;
  readonly metrics: ApiMetrics;
}

export const kvRoutes: FastifyPluginCallback<KvRoutesOptions> = (app, options, done) => {
  const context: KvContext = { nodeId: options.nodeId, forward: options.forward, host: options.host, placement: options.placement, metrics: options.metrics };
  // Any content type is a value: drop JSON/text parsing here and keep the bytes as they came.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: kvValueBytesMax }, (_request, body, parsed) => {
    parsed(null, body);
  });

  app.put<KvRoute>('/v1/kv/:key', (request, reply) => {
    const key = parseKey(request.params.key);
    const { cas } = parseWriteQuery(request.query);
    const client = parseClientStamp(request.headers);
    return write(context, request, reply, { op: 'put', key, value: bodyOf(request) ?? new Uint8Array(0), ...stampOf(cas, client) });
  });

  app.delete<KvRoute>('/v1/kv/:key', (request, reply) => {
    const key = parseKey(request.params.key);
    const { cas } = parseWriteQuery(request.query);
    const client = parseClientStamp(request.headers);
    return write(context, request, reply, { op: 'delete', key, ...stampOf(cas, client) });
  });

  app.get<KvRoute>('/v1/kv/:key', (request, reply) => {
    const key = parseKey(request.params.key);
    const { consistency } = parseReadQuery(request.query);
    return read(context, request, reply, key, consistency);
  });

  done();
};

function kvModelOf(host: ApiHost, group: GroupId): KvModel {
  const model = host.model(group);
  if (!(model instanceof KvModel)) throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
  return model;
}

/** The headers as this replica sees the key right now; outcomes overwrite them with what they know. */
function describe(context: KvContext, reply: FastifyReply, group: GroupId, key: string): void {
  const model = context.host.model(group);
  reply.header(shardHeader, String(group));
  reply.header(leaderHeader, String(leaderOf(context.host, group)));
  reply.header(indexHeader, String(model instanceof KvModel ? (model.get(key)?.modifyIndex ?? 0) : 0));
}

async function write(context: KvContext, request: FastifyRequest<KvRoute>, reply: FastifyReply, command: KvCommand): Promise<FastifyReply> {
  const group = context.placement.groupOf(command.key);
  describe(context, reply, group, command.key);
  const outcome = await context.host.propose(group, encodeKvCommand(command));
  context.metrics.proposal(proposalLabel(outcome));
  if (outcome.kind === 'indeterminate') throw new ApiError('DRAM_ERR_INDETERMINATE', 'the write may or may not have been applied (no answer in time)', { group });
  if (outcome.kind === 'applied') {
    reply.header(leaderHeader, String(context.nodeId));
    return answerApplied(reply, group, command, outcome.result as KvOutcome | undefined);
  }
  const reason = outcome.reason;
  switch (reason.kind) {
    case 'not_leader':
      return forwardOrRefuse(context, request, reply, { group, leaderHint: reason.leaderHint, body: bodyOf(request), onFailure: 'indeterminate' });
    case 'transferring':
      throw notLeaderError(group, reason.target, `leadership is moving to node ${reason.target}`);
    case 'superseded':
      throw notLeaderError(group, leaderOf(context.host, group), 'leadership changed before the write committed; it was not applied');
    case 'overloaded':
      throw new ApiError('DRAM_ERR_OVERLOADED', 'proposal queue is full', { queued: reason.queued, queuedMax: reason.queuedMax });
    case 'uncommitted_full':
      throw new ApiError('DRAM_ERR_OVERLOADED', 'too many uncommitted bytes in this group', { bytes: reason.bytes, bytesMax: reason.bytesMax });
    case 'entry_too_large':
      throw new ApiError('DRAM_ERR_VALUE_TOO_LARGE', `the write is ${reason.bytes} bytes encoded, more than the entry limit ${reason.bytesMax}`, { bytes: reason.bytes, bytesMax: reason.bytesMax });
    case 'unknown_group':
      throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
    case 'conf_change_pending':
    case 'conf_change_invalid':
      throw new ApiError('DRAM_ERR_INTERNAL', `unexpected refusal of a KV write: ${reason.kind}`);
  }
}

async function read(context: KvContext, request: FastifyRequest<KvRoute>, reply: FastifyReply, key: string, consistency: ReadConsistency): Promise<FastifyReply> {
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
  switch (outcome.reason) {
    case 'not_leader':
    case 'leader_changed':
      return forwardOrRefuse(context, request, reply, { group, leaderHint: outcome.leaderHint, body: undefined, onFailure: 'forward_failed' });
    case 'no_leader':
      throw noLeaderError(group);
    case 'read_queue_full':
      throw new ApiError('DRAM_ERR_OVERLOADED', 'read queue is full', { group });
    case 'timeout':
      throw new ApiError('DRAM_ERR_TIMEOUT', 'the read did not become safe to serve in time', { group });
    case 'unknown_group':
      throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
  }
}

function stampOf(cas: number | undefined, client: KvClientStamp | undefined): { cas?: number; client?: KvClientStamp } {
  return { ...(cas === undefined ? {} : { cas }), ...(client === undefined ? {} : { client }) };
}

/** The raw body: a Buffer from this plugin's parser, or undefined when the request had none. */
function bodyOf(request: FastifyRequest): Buffer | undefined {
  return Buffer.isBuffer(request.body) ? request.body : undefined;
}

function answerApplied(reply: FastifyReply, group: GroupId, command: KvCommand, result: KvOutcome | undefined): FastifyReply {
  if (result === undefined) throw new ApiError('DRAM_ERR_INTERNAL', 'the KV model did not return an outcome for an applied write');
  if (result.ok) {
    reply.header(indexHeader, String(result.modifyIndex));
    return reply.code(200).send({ index: result.modifyIndex });
  }
  switch (result.code) {
    case 'cas_mismatch':
      reply.header(indexHeader, String(result.currentIndex));
      throw new ApiError('DRAM_ERR_CAS_MISMATCH', `key's modify index is ${result.currentIndex}, not ${command.cas ?? 'absent'}`, { group, currentIndex: result.currentIndex });
    case 'key_not_found':
      reply.header(indexHeader, '0');
      throw new ApiError('DRAM_ERR_KEY_NOT_FOUND', 'key not found', { group });
    case 'stale_request':
      throw new ApiError('DRAM_ERR_STALE_REQUEST', `request seq is older than the last one applied for this client (${result.lastSeq})`, { lastSeq: result.lastSeq });
  }
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

function proposalLabel(outcome: ProposalOutcome): ProposalOutcomeLabel {
  if (outcome.kind !== 'refused') return outcome.kind;
  const reason = outcome.reason;
  switch (reason.kind) {
    case 'not_leader':
      return reason.leaderHint === 0 ? 'no_leader' : 'not_leader';
    case 'transferring':
    case 'superseded':
    case 'overloaded':
    case 'unknown_group':
      return reason.kind;
    case 'uncommitted_full':
      return 'overloaded';
    case 'entry_too_large':
      return 'too_large';
    case 'conf_change_pending':
    case 'conf_change_invalid':
      return 'rejected';
  }
}

function readLabel(reason: Extract<ReadOutcome, { kind: 'refused' }>['reason']): 'not_leader' | 'no_leader' | 'leader_changed' | 'overloaded' | 'timeout' | 'unknown_group' {
  return reason === 'read_queue_full' ? 'overloaded' : reason;
}
