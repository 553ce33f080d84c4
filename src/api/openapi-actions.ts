// The OpenAPI description of the agent API (/api/unstable, Replicante's shapes) and dram's action
// routes (/v1/actions), added to `GET /docs` on a node that serves them. Plain data, written by
// hand like src/api/openapi.ts; docs/agent-api.md has the field-by-field description.
//
// Called by: src/api/app.ts.

import { openApiDocument } from './openapi.ts';

const json = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({
  description,
  content: { 'application/json': { schema } },
});
const agentError = (description: string) =>
  json(`${description}; body {"error": true, "error_msg": "..."}`, {
    type: 'object',
    required: ['error', 'error_msg'],
    properties: { error: { type: 'boolean' }, error_msg: { type: 'string' } },
  });
const dramError = (description: string) => json(description, { $ref: '#/components/schemas/Error' });
const idParameter = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }];
const scheduleBody = {
  required: true,
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['kind'],
        properties: {
          kind: { type: 'string' },
          args: {},
          id: { type: 'string', format: 'uuid' },
          created_time: { type: 'string', format: 'date-time' },
          metadata: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  },
};
const schedule = (errors: (what: string) => object) => ({
  summary: 'Schedule an agent action (docs/agent-api.md lists the kinds)',
  requestBody: scheduleBody,
  responses: {
    '200': json('Scheduled: {"id": "<uuid>"}'),
    '400': errors('Unknown kind, invalid args, bad id, time or metadata; nothing was scheduled'),
    '409': errors('The id is already used by another action'),
    '413': errors('The body is larger than the limit'),
    '429': errors('actionsQueuedMax unfinished actions; retry later'),
  },
});

const actionPaths = {
  '/api/unstable/info/node': { get: { summary: 'Replicante Node', responses: { '200': json('Node') } } },
  '/api/unstable/info/store': { get: { summary: 'Replicante StoreExtras', responses: { '200': json('StoreExtras') } } },
  '/api/unstable/info/shards': {
    get: { summary: 'Every group hosted here ("0": the meta group)', responses: { '200': json('ShardsInfo') } },
  },
  '/api/unstable/action': { post: schedule(agentError) },
  '/api/unstable/action/': { post: schedule(agentError) },
  '/api/unstable/action/{id}': {
    get: {
      summary: 'Any action of the cluster',
      parameters: idParameter,
      responses: { '200': json('ActionExecution'), '404': { description: 'Unknown action (empty body)' } },
    },
  },
  '/api/unstable/actions/finished': {
    get: { summary: 'Finished actions scheduled through this node', responses: { '200': json('ActionExecutionList') } },
  },
  '/api/unstable/actions/queue': {
    get: {
      summary: 'Unfinished actions scheduled through this node',
      responses: { '200': json('ActionExecutionList') },
    },
  },
  '/v1/actions': {
    get: { summary: "The whole cluster's queue and finished actions", responses: { '200': json('{queue, finished}') } },
    post: schedule(dramError),
  },
  '/v1/actions/{id}': {
    get: {
      summary: 'One action',
      parameters: idParameter,
      responses: { '200': json('ActionExecution'), '404': dramError('DRAM_ERR_ACTION_NOT_FOUND') },
    },
  },
  '/v1/actions/{id}/cancel': {
    post: {
      summary: 'Cancel an unfinished action: FAILED with "cancelled: <reason>"',
      parameters: idParameter,
      responses: {
        '200': json('ActionExecution'),
        '404': dramError('DRAM_ERR_ACTION_NOT_FOUND'),
        '409': dramError('DRAM_ERR_ACTION_FINISHED'),
      },
    },
  },
  '/v1/placement': {
    get: {
      summary:
        'Placement: per kv and shard group desired and actual replicas and state, moves in progress with catch-up, the last moves with reasons, why shard groups are held, failed loads that keep nodes out of shard groups',
      responses: { '200': json('PlacementStatus') },
    },
  },
  '/v1/placement/settings': {
    put: {
      summary: 'Set placement settings in the meta model: {nodeGoneGraceMs?, movesPerNodeMax?, moveStalledMs?}',
      responses: { '200': json('{settings}'), '400': dramError('DRAM_ERR_BAD_REQUEST') },
    },
  },
  '/v1/meta/commands': {
    post: {
      summary: 'Internal: a member forwards a meta command to the meta leader',
      responses: { '200': json('{index, outcome}'), '400': dramError('DRAM_ERR_BAD_REQUEST') },
    },
  },
};

export const openApiWithActions = {
  ...openApiDocument,
  paths: { ...openApiDocument.paths, ...actionPaths },
};
