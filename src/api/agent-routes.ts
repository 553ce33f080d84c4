// The Replicante agent API ("main" generation) under /api/unstable, for a Replicante Core or any
// client built on Replicante's SDK (docs/agent-api.md):
//   GET  info/node      Node: address, agent_version, attributes, node_id, node_status, store_id, store_version
//   GET  info/store     StoreExtras: cluster_id, attributes
//   GET  info/shards    {shards: [{id, role, commit_offset, lag}]}: every group hosted here, "0" the meta group;
//                       a database shard's group not loaded here yet is Recovering
//   POST action (and action/)   ActionExecutionRequest -> {id}; 400 unknown kind or bad input, 409 id used, 429 queue full
//   GET  action/:id     ActionExecution of any action of the cluster; 404 with an empty body when unknown
//   GET  actions/finished, actions/queue   {actions: [{id, kind, phase}]}: the actions scheduled through this node
// Errors use Replicante's shape, `{"error": true, "error_msg": "..."}`, with the status of dram's
// registry for the same failure (this plugin's own error handler; the rest of the API keeps dram's).
//
// Called by: src/api/app.ts (registered when the node hosts the meta model).

import type { FastifyError, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeId } from '../base/ids.ts';
import type { AttributeValue } from '../codec/meta.ts';
import { lagOf, nodeHealth, shardRole } from '../control/node-health.ts';
import { shardGroupRecovering } from '../control/shard-roles.ts';
import {
  actionBodyBytesMax,
  executionJson,
  findAction,
  heldActions,
  idFromPath,
  listItemJson,
  parseScheduleBody,
  scheduleAction,
  type ActionsContext,
} from './action-schedule.ts';
import { agentApiPrefix, sendApiError, toApiError } from './errors.ts';
import { jsonBody } from './request-guard.ts';

export const storeId = 'dram.io/dram';
/** Units of the shard offsets: Raft log indexes and entries (custom units in Replicante's shape). */
export const commitOffsetUnit = { unit: 'log-index' } as const;
export const lagUnit = { unit: 'entries' } as const;

export interface AgentInfo {
  /** This node's HTTP URL (`http://host:port`): `address.member` and `address.client`. */
  readonly httpUrl: string;
  /** dram's version (package.json): the agent's and the store's, one process being both. */
  readonly version: string;
  /** The source checkout, when known. */
  readonly checkout?: string;
  readonly clusterId: string;
  /** Bytes under the node's data directory, as last measured (null: not measured yet). */
  readonly dataDirBytes?: () => number | null;
}

export interface AgentRoutesOptions {
  readonly nodeId: NodeId;
  readonly info: AgentInfo;
  readonly actions: ActionsContext;
}

function sendAgentError(reply: FastifyReply, error: unknown, request: FastifyRequest): FastifyReply {
  const apiError = toApiError(error, request.url);
  if (apiError.code === 'DRAM_ERR_INTERNAL') request.log.error({ err: error }, 'unhandled error in agent route');
  return sendApiError(reply, apiError);
}

export const agentRoutes: FastifyPluginCallback<AgentRoutesOptions> = (app, options, done) => {
  const { nodeId, info, actions } = options;
  const host = actions.host;
  app.setErrorHandler((error: FastifyError, request, reply) => sendAgentError(reply, error, request));

  app.get(`${agentApiPrefix}/info/node`, () => {
    const groups = host.status();
    const health = nodeHealth(nodeId, groups);
    const attributes: Record<string, AttributeValue> = {
      'dram.io/groups-hosted': groups.length,
      'dram.io/leaders-held': groups.filter((g) => g.status.role === 'leader').length,
      'dram.io/unhealthy-reason': health.reason,
      'dram.io/data-dir-bytes': info.dataDirBytes?.() ?? null,
    };
    return {
      address: { client: info.httpUrl, member: info.httpUrl },
      agent_version: { checkout: info.checkout ?? 'unknown', number: info.version, taint: 'not tainted' },
      attributes,
      node_id: String(nodeId),
      node_status: health.status,
      store_id: storeId,
      store_version: { checkout: info.checkout ?? null, number: info.version, extra: null },
    };
  });

  app.get(`${agentApiPrefix}/info/store`, () => {
    const meta = actions.model;
    const attributes: Record<string, AttributeValue> = {
      'dram.io/nodes-registered': meta.nodes().length,
      'dram.io/groups': meta.groups().length,
      'dram.io/actions-queued': meta.queue().length,
    };
    return { cluster_id: meta.clusterId === '' ? info.clusterId : meta.clusterId, attributes };
  });

  app.get(`${agentApiPrefix}/info/shards`, () => ({
    shards: host
      .status()
      .sort((a, b) => a.group - b.group)
      .map(({ group, status, appliedIndex }) => {
        const lag = lagOf(status, appliedIndex);
        return {
          id: String(group),
          // A database shard's replica that has not loaded the shard is Recovering, whatever its Raft role.
          role: shardGroupRecovering(actions.model, group, nodeId) ? 'Recovering' : shardRole(status, appliedIndex),
          commit_offset: { unit: commitOffsetUnit, value: status.commit },
          lag: lag === null ? null : { unit: lagUnit, value: lag },
        };
      }),
  }));

  const schedule = async (request: FastifyRequest): Promise<{ id: string }> => {
    const action = parseScheduleBody(request.body, nodeId, actions.wallNowMs());
    return { id: await scheduleAction({ ...actions, log: request.log }, action) };
  };
  app.post(`${agentApiPrefix}/action`, jsonBody(actionBodyBytesMax), schedule);
  app.post(`${agentApiPrefix}/action/`, jsonBody(actionBodyBytesMax), schedule);

  app.get<{ Params: { id: string } }>(`${agentApiPrefix}/action/:id`, (request, reply) => {
    const id = idFromPath(request.params.id);
    const record = id === undefined ? undefined : findAction(actions, id);
    if (record === undefined) return reply.code(404).send();
    return executionJson(record);
  });

  // The actions this node took but the log does not hold yet (cluster.init, cluster.join) come first.
  app.get(`${agentApiPrefix}/actions/finished`, () => ({
    actions: [...heldActions(actions, true), ...actions.model.finishedActions()]
      .filter((record) => record.node === nodeId)
      .map(listItemJson),
  }));
  app.get(`${agentApiPrefix}/actions/queue`, () => ({
    actions: [...heldActions(actions, false), ...actions.model.queue()]
      .filter((record) => record.node === nodeId)
      .map(listItemJson),
  }));

  done();
};
