// dram's own action routes (errors in dram's shape, codes from the registry):
//   GET  /v1/actions              the whole cluster's queue and finished records (what `dram actions ls` shows)
//   GET  /v1/actions/:id          one action (404 DRAM_ERR_ACTION_NOT_FOUND)
//   POST /v1/actions              schedule: the agent API's request body; answers {id}
//   POST /v1/actions/:id/cancel   {reason?}: an unfinished action becomes FAILED ("cancelled: <reason>")
//   POST /v1/meta/commands        internal: a follower forwards a meta command to the meta leader
//                                 (src/api/meta-propose.ts); answers {index, outcome}
//
// Called by: src/api/app.ts (registered when the node hosts the meta model).

import type { FastifyPluginCallback } from 'fastify';
import type { NodeId } from '../base/ids.ts';
import { textBytesMax } from '../codec/meta.ts';
import {
  actionBodyBytesMax,
  cancelAction,
  executionJson,
  findAction,
  heldActions,
  idFromPath,
  parseScheduleBody,
  scheduleAction,
  type ActionsContext,
} from './action-schedule.ts';
import { ApiError } from './errors.ts';
import { jsonBody } from './request-guard.ts';
import { forwardedCommand, metaCommandsPath, proposeOnce } from './meta-propose.ts';

export interface ActionRoutesOptions {
  readonly nodeId: NodeId;
  readonly actions: ActionsContext;
}

const metaCommandBytesMax = 2 * actionBodyBytesMax;

function parseCancelReason(body: unknown): string {
  if (body === undefined || body === null) return 'cancelled by an operator';
  if (typeof body !== 'object' || Array.isArray(body))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', 'body must be a JSON object such as {"reason": "..."}');
  const reason = (body as Record<string, unknown>)['reason'];
  if (reason === undefined) return 'cancelled by an operator';
  if (typeof reason !== 'string' || reason.length > textBytesMax / 4)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `reason must be a string of at most ${textBytesMax / 4} characters`);
  return reason;
}

export const actionRoutes: FastifyPluginCallback<ActionRoutesOptions> = (app, options, done) => {
  const { nodeId, actions } = options;
  const found = (raw: string) => {
    const id = idFromPath(raw);
    const record = id === undefined ? undefined : findAction(actions, id);
    if (id === undefined || record === undefined)
      throw new ApiError('DRAM_ERR_ACTION_NOT_FOUND', `no action ${raw}`, { id: raw });
    return record;
  };

  app.get('/v1/actions', () => ({
    queue: [...heldActions(actions, false), ...actions.model.queue()].map(executionJson),
    finished: [...heldActions(actions, true), ...actions.model.finishedActions()].map(executionJson),
  }));

  app.get<{ Params: { id: string } }>('/v1/actions/:id', (request) => executionJson(found(request.params.id)));

  app.post('/v1/actions', jsonBody(actionBodyBytesMax), async (request) => {
    const action = parseScheduleBody(request.body, nodeId, actions.wallNowMs());
    return { id: await scheduleAction({ ...actions, log: request.log }, action) };
  });

  app.post<{ Params: { id: string } }>('/v1/actions/:id/cancel', jsonBody(4096), async (request) => {
    // Not looked up here first: an action scheduled through another node may not be applied here yet.
    const id = idFromPath(request.params.id);
    if (id === undefined)
      throw new ApiError('DRAM_ERR_ACTION_NOT_FOUND', `no action ${request.params.id}`, { id: request.params.id });
    const reason = parseCancelReason(request.body);
    return executionJson(await cancelAction({ ...actions, log: request.log }, id, reason));
  });

  app.post(metaCommandsPath, jsonBody(metaCommandBytesMax), async (request) => {
    const command = forwardedCommand(request.body);
    return proposeOnce({ ...actions, log: request.log }, command, false);
  });

  done();
};
