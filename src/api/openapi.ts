// The hand-written parts of the OpenAPI 3 description at `GET /docs/json` (src/api/api-docs.ts
// generates the document from the route table and lays these operations over it): per route the
// error codes it answers, its headers and bodies. The error-code list comes from the registry, so
// the two cannot drift; test/api/admin.test.ts checks the document against the routes served.
//
// Called by: src/api/app.ts; src/api/openapi-actions.ts extends it.

import { kvKeyBytesMax, kvValueBytesMax } from '../codec/kv.ts';
import { errorRegistry } from './errors.ts';

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const kvHeaders = {
  'X-Dram-Index': { $ref: '#/components/headers/XDramIndex' },
  'X-Dram-Shard': { $ref: '#/components/headers/XDramShard' },
  'X-Dram-Leader': { $ref: '#/components/headers/XDramLeader' },
};

const writeResult = {
  description: 'Applied at `index`.',
  headers: kvHeaders,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/WriteResult' } } },
};

const writeErrors = {
  '400': errorResponse('DRAM_ERR_BAD_REQUEST'),
  '409': errorResponse('DRAM_ERR_STALE_REQUEST'),
  '412': errorResponse('DRAM_ERR_CAS_MISMATCH'),
  '413': errorResponse('DRAM_ERR_KEY_TOO_LARGE or DRAM_ERR_VALUE_TOO_LARGE'),
  '503': errorResponse(
    'DRAM_ERR_NOT_LEADER, DRAM_ERR_NO_LEADER, DRAM_ERR_OVERLOADED (definitely not applied) or DRAM_ERR_INDETERMINATE (may be applied)',
  ),
};

const clientParameters = [
  {
    name: 'X-Dram-Client-Id',
    in: 'header',
    required: false,
    description: 'Exactly-once retries: a client id (1-128 bytes), sent together with X-Dram-Request-Seq.',
    schema: { type: 'string' },
  },
  {
    name: 'X-Dram-Request-Seq',
    in: 'header',
    required: false,
    description: 'The request sequence number of this client; a retry with the same id and seq is applied once.',
    schema: { type: 'integer', minimum: 0 },
  },
];

export const openApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'dram node HTTP API',
    version: '1',
    description:
      'Every node serves this API; a request reaching a follower is forwarded to the leader of the group concerned. ' +
      'Besides the answers listed per route, any request may get, in the same error shape: 400 DRAM_ERR_BAD_REQUEST ' +
      '(malformed HTTP, a repeated Host/Content-Type/Authorization/X-Dram-* header), 408 DRAM_ERR_REQUEST_TIMEOUT, ' +
      '413 DRAM_ERR_BODY_TOO_LARGE (a body on a route that takes none), 415 DRAM_ERR_UNSUPPORTED_MEDIA_TYPE, ' +
      '417 DRAM_ERR_EXPECTATION_FAILED, 431 DRAM_ERR_HEADERS_TOO_LARGE, 503 DRAM_ERR_OVERLOADED (connection limit) ' +
      'and 503 DRAM_ERR_SHUTTING_DOWN. JSON bodies are application/json (UTF-8), a few KiB, nested at most 16 deep.',
  },
  paths: {
    '/v1/kv/{key}': {
      parameters: [{ $ref: '#/components/parameters/Key' }],
      put: {
        summary: 'Store the raw request body under the key',
        parameters: [{ $ref: '#/components/parameters/Cas' }, ...clientParameters],
        requestBody: {
          required: false,
          content: { '*/*': { schema: { type: 'string', format: 'binary', maxLength: kvValueBytesMax } } },
        },
        responses: { '200': writeResult, ...writeErrors },
      },
      get: {
        summary: 'Read the raw value of the key',
        parameters: [
          {
            name: 'consistency',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['linearizable', 'lease', 'stale'], default: 'linearizable' },
          },
        ],
        responses: {
          '200': {
            description: 'The value as stored.',
            headers: kvHeaders,
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST'),
          '404': errorResponse('DRAM_ERR_KEY_NOT_FOUND'),
          '503': errorResponse('DRAM_ERR_NO_LEADER, DRAM_ERR_NOT_LEADER or DRAM_ERR_OVERLOADED'),
          '504': errorResponse('DRAM_ERR_TIMEOUT'),
        },
      },
      delete: {
        summary: 'Delete the key',
        parameters: [{ $ref: '#/components/parameters/Cas' }, ...clientParameters],
        responses: { '200': writeResult, '404': errorResponse('DRAM_ERR_KEY_NOT_FOUND'), ...writeErrors },
      },
    },
    '/v1/status': {
      get: {
        summary: 'This node and every group it hosts',
        responses: {
          '200': {
            description: 'Node status.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } },
          },
        },
      },
    },
    '/v1/admin/groups/{group}/transfer-leadership': {
      post: {
        summary: "Admin failover: move the group's leadership",
        parameters: [{ name: 'group', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        requestBody: {
          required: false,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  to: {
                    type: 'integer',
                    minimum: 1,
                    description: 'Target node id; default: the most caught-up other voter.',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'The target already leads.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Transfer' } } },
          },
          '202': {
            description: 'Transfer started; it completes or aborts within an election timeout.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Transfer' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (malformed body, target is not a voter)'),
          '404': errorResponse('DRAM_ERR_UNKNOWN_GROUP'),
          '409': errorResponse('DRAM_ERR_TRANSFER_FAILED'),
          '503': errorResponse('DRAM_ERR_NOT_LEADER or DRAM_ERR_NO_LEADER'),
        },
      },
    },
    '/v1/admin/groups/{group}/compact': {
      post: {
        summary:
          "Snapshot this node's replica of the group now and compact its log behind it (the action dram.io/group.compact, waited for)",
        parameters: [
          { name: 'group', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } },
          { name: 'wait', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] } },
        ],
        requestBody: {
          required: false,
          content: { 'application/json': { schema: { type: 'object', additionalProperties: false } } },
        },
        responses: {
          '200': {
            description:
              'The action is DONE: the node answered `started` (the snapshot at `index` is being taken and stored without pausing writes), `in_progress` or `up_to_date`; `action` is its id. (On a node without the meta model, the direct answer: `in_progress` or `up_to_date`.)',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Compaction' } } },
          },
          '202': {
            description:
              '`?wait=false`, or still running: `{action, phase}`. (On a node without the meta model: the snapshot is being taken, at `index`.)',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (a body other than {})'),
          '404': errorResponse('DRAM_ERR_UNKNOWN_GROUP (this node does not host the group)'),
          '409': errorResponse('DRAM_ERR_ACTION_FAILED'),
        },
      },
    },
    '/v1/admin/members': {
      get: {
        summary: "The cluster as this node knows it: kv groups and every node's addresses (what a joining node needs)",
        responses: {
          '200': {
            description: 'Members.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Members' } } },
          },
        },
      },
      post: {
        summary:
          'Add a node: record its addresses, then make it a learner and, once caught up, a voter of every kv group',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/MemberRequest' } } },
        },
        responses: {
          '200': {
            description: 'The node is a voter of every kv group.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/MemberAdded' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (nothing was changed)'),
          '409': errorResponse('DRAM_ERR_MEMBER_CONFLICT or DRAM_ERR_CLUSTER_MISMATCH (nothing was changed)'),
          '413': errorResponse('DRAM_ERR_BODY_TOO_LARGE'),
          '503': errorResponse(
            'DRAM_ERR_MEMBERSHIP_PENDING: not a voter of every group yet; `details.groups` has a GroupMember per group; retry to continue',
          ),
        },
      },
    },
    '/v1/admin/groups/{group}/members': {
      post: {
        summary: 'Add a node to one group (learner, then voter once caught up); a follower forwards to the leader',
        parameters: [{ name: 'group', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/MemberRequest' } } },
        },
        responses: {
          '200': {
            description: 'The node is a voter of the group.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/GroupMember' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (nothing was changed)'),
          '404': errorResponse('DRAM_ERR_UNKNOWN_GROUP'),
          '409': errorResponse('DRAM_ERR_MEMBER_CONFLICT or DRAM_ERR_CLUSTER_MISMATCH (nothing was changed)'),
          '413': errorResponse('DRAM_ERR_BODY_TOO_LARGE'),
          '502': errorResponse('DRAM_ERR_FORWARD_FAILED'),
          '503': errorResponse(
            'DRAM_ERR_MEMBERSHIP_PENDING (`details` is a GroupMember), DRAM_ERR_NOT_LEADER or DRAM_ERR_NO_LEADER',
          ),
        },
      },
    },
    '/v1/admin/members/{nodeId}': {
      delete: {
        summary:
          'Remove a node: out of every kv group (each through its leader), then forgotten by every member (address book, peer transport, forwarding)',
        parameters: [{ $ref: '#/components/parameters/NodeId' }],
        responses: {
          '200': {
            description: 'The node is in no kv group (also when it was in none: nothing changed then).',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/MemberRemoved' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (nothing was changed)'),
          '409': errorResponse('DRAM_ERR_LAST_VOTER: the node is the last voter of a group (nothing was changed)'),
          '503': errorResponse(
            'DRAM_ERR_MEMBERSHIP_PENDING: still a member of some group; `details.groups` has a GroupMember per group; retry to continue',
          ),
        },
      },
    },
    '/v1/admin/groups/{group}/members/{nodeId}': {
      delete: {
        summary: 'Remove a node from one group; a follower forwards to the leader',
        parameters: [
          { name: 'group', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } },
          { $ref: '#/components/parameters/NodeId' },
        ],
        responses: {
          '200': {
            description: 'The node is not a member of the group.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/GroupMember' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST (nothing was changed)'),
          '404': errorResponse('DRAM_ERR_UNKNOWN_GROUP'),
          '409': errorResponse('DRAM_ERR_LAST_VOTER (nothing was changed)'),
          '502': errorResponse('DRAM_ERR_FORWARD_FAILED'),
          '503': errorResponse(
            'DRAM_ERR_MEMBERSHIP_PENDING (`details` is a GroupMember), DRAM_ERR_NOT_LEADER or DRAM_ERR_NO_LEADER',
          ),
        },
      },
    },
    '/v1/databases/{nameOrAlias}/query/{endpoint}': {
      post: {
        summary:
          'Run a query endpoint over a database (by name or alias): map on one replica of every shard, reduce on this member (docs/query.md)',
        parameters: [
          { name: 'nameOrAlias', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'endpoint', in: 'path', required: true, schema: { type: 'string' } },
          {
            name: 'scope',
            in: 'query',
            required: false,
            description: '`local`: only the shards this member holds',
            schema: { type: 'string', enum: ['local'] },
          },
          {
            name: 'shards',
            in: 'query',
            required: false,
            description: 'Only these shards, comma-separated (e.g. `0,3,7`)',
            schema: { type: 'string' },
          },
          {
            name: 'partial',
            in: 'query',
            required: false,
            description:
              '`deny` (default): 503 DRAM_ERR_PARTIAL when a shard is missing; `allow`: answer what there is',
            schema: { type: 'string', enum: ['allow', 'deny'] },
          },
        ],
        requestBody: {
          required: false,
          description: "The endpoint's params (validated against its JSON schema); none is `{}`.",
          content: { 'application/json': { schema: {} } },
        },
        responses: {
          '200': {
            description:
              'The answer and its coverage: `{ result, coverage: { complete, shards: [{ shard, node, version, ms } | { shard, skipped, message? }] } }`.',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          '400': errorResponse('DRAM_ERR_BAD_REQUEST or DRAM_ERR_INVALID_PARAMS (nothing was run)'),
          '404': errorResponse('DRAM_ERR_DATABASE_NOT_FOUND, DRAM_ERR_UNKNOWN_ENDPOINT or DRAM_ERR_UNKNOWN_SHARD'),
          '409': errorResponse('DRAM_ERR_NO_LOCAL_SHARDS (?scope=local on a member holding none of them)'),
          '422': errorResponse('DRAM_ERR_QUERY_FAILED, DRAM_ERR_QUERY_MEMORY or DRAM_ERR_ANSWER_TOO_LARGE'),
          '429': errorResponse('DRAM_ERR_ENDPOINT_BUSY'),
          '503': errorResponse('DRAM_ERR_PARTIAL (`details.coverage`), DRAM_ERR_OVERLOADED or DRAM_ERR_S3_UNAVAILABLE'),
          '504': errorResponse('DRAM_ERR_QUERY_TIMEOUT'),
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics (see docs/metrics.md)',
        responses: {
          '200': {
            description: 'Prometheus text exposition format.',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    '/docs': {
      get: {
        summary: 'The interactive API page (Swagger UI) over this document',
        responses: { '200': { description: 'HTML.', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    '/docs/json': {
      get: {
        summary: 'This OpenAPI document, generated from the route table (src/api/api-docs.ts)',
        responses: {
          '200': { description: 'OpenAPI 3 JSON.', content: { 'application/json': { schema: { type: 'object' } } } },
        },
      },
    },
  },
  components: {
    parameters: {
      Key: {
        name: 'key',
        in: 'path',
        required: true,
        description: `1-${kvKeyBytesMax} UTF-8 bytes, percent-encoded.`,
        schema: { type: 'string' },
      },
      NodeId: {
        name: 'nodeId',
        in: 'path',
        required: true,
        description: 'The node to remove.',
        schema: { type: 'integer', minimum: 1 },
      },
      Cas: {
        name: 'cas',
        in: 'query',
        required: false,
        description: "Apply only if the key's modify index equals this; 0 means only if the key is absent.",
        schema: { type: 'integer', minimum: 0 },
      },
    },
    headers: {
      XDramIndex: {
        description: "The key's modify index (the applied index for a write; 0 when absent).",
        schema: { type: 'integer' },
      },
      XDramShard: { description: 'The id of the Raft group that holds the key.', schema: { type: 'integer' } },
      XDramLeader: { description: "The node id of that group's leader (0: none known).", schema: { type: 'integer' } },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error', 'code', 'message'],
        properties: {
          error: { type: 'boolean', enum: [true] },
          code: { type: 'string', enum: Object.keys(errorRegistry) },
          message: { type: 'string' },
          details: { type: 'object' },
        },
      },
      WriteResult: { type: 'object', required: ['index'], properties: { index: { type: 'integer' } } },
      Transfer: {
        type: 'object',
        required: ['group', 'from', 'to'],
        properties: { group: { type: 'integer' }, from: { type: 'integer' }, to: { type: 'integer' } },
      },
      Compaction: {
        type: 'object',
        required: ['group', 'node', 'index', 'state'],
        properties: {
          group: { type: 'integer' },
          node: { type: 'integer' },
          index: { type: 'integer', description: 'The snapshot index (taken, being stored, or the last one).' },
          state: { type: 'string', enum: ['started', 'in_progress', 'up_to_date'] },
          action: {
            type: 'string',
            description: 'The dram.io/group.compact action that ran it (with the meta model).',
          },
        },
      },
      Member: {
        type: 'object',
        required: ['nodeId', 'raft'],
        properties: {
          nodeId: { type: 'integer', minimum: 1 },
          raft: { type: 'string', description: 'host:port of its peer transport' },
          http: { type: 'string', description: 'host:port of its HTTP API (absent when unknown)' },
        },
      },
      Members: {
        type: 'object',
        required: ['nodeId', 'clusterId', 'groups', 'members'],
        properties: {
          nodeId: { type: 'integer' },
          clusterId: { type: 'string' },
          groups: { type: 'array', items: { type: 'integer' } },
          members: { type: 'array', items: { $ref: '#/components/schemas/Member' } },
        },
      },
      MemberRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['nodeId', 'raft', 'http'],
        properties: {
          nodeId: { type: 'integer', minimum: 1 },
          raft: { type: 'string', description: 'host:port other nodes dial (not 0.0.0.0)' },
          http: { type: 'string', description: 'host:port of its HTTP API' },
          clusterId: {
            type: 'string',
            description: "Refused with DRAM_ERR_CLUSTER_MISMATCH when not this cluster's id.",
          },
        },
      },
      GroupMember: {
        type: 'object',
        required: ['group', 'leader', 'state', 'steps'],
        properties: {
          group: { type: 'integer' },
          leader: { type: 'integer', description: 'The leader that handled the group (0: none reached).' },
          state: { type: 'string', enum: ['voter', 'learner', 'absent', 'unknown'] },
          steps: {
            type: 'array',
            items: { type: 'string', enum: ['add_learner', 'add_voter', 'remove_node'] },
            description: 'Changes this request applied; empty when already done.',
          },
          pending: { type: 'string', description: 'Why the node is not a voter (or, removing it, not out) yet.' },
          voters: {
            type: 'array',
            items: { type: 'integer' },
            description: "Removal only: the group's voters once the node is out.",
          },
        },
      },
      MemberAdded: {
        type: 'object',
        required: ['nodeId', 'groups', 'members'],
        properties: {
          nodeId: { type: 'integer' },
          groups: { type: 'array', items: { $ref: '#/components/schemas/GroupMember' } },
          members: { type: 'array', items: { $ref: '#/components/schemas/Member' } },
        },
      },
      MemberRemoved: {
        type: 'object',
        required: ['nodeId', 'groups', 'warnings', 'members'],
        properties: {
          nodeId: { type: 'integer' },
          groups: { type: 'array', items: { $ref: '#/components/schemas/GroupMember' } },
          warnings: {
            type: 'array',
            items: { type: 'string' },
            description: 'A group left with fewer than three voters tolerates no failure.',
          },
          members: { type: 'array', items: { $ref: '#/components/schemas/Member' } },
        },
      },
      Status: {
        type: 'object',
        required: ['nodeId', 'clusterId', 'groups'],
        properties: {
          nodeId: { type: 'integer' },
          clusterId: { type: 'string' },
          groups: {
            type: 'array',
            items: {
              type: 'object',
              required: ['group', 'role', 'term', 'commit', 'applied', 'leader', 'lag', 'quiesced', 'lastLeaderChange'],
              properties: {
                group: { type: 'integer' },
                role: { type: 'string', enum: ['follower', 'pre_candidate', 'candidate', 'leader'] },
                term: { type: 'integer' },
                commit: { type: 'integer', description: 'Commit index (the commit offset).' },
                applied: { type: 'integer' },
                firstIndex: {
                  type: 'integer',
                  description:
                    "The first entry of this replica's log: past a snapshot (taken here or installed from the leader) less the tail kept behind it.",
                },
                lastIndex: { type: 'integer', description: "The last entry of this replica's log." },
                leader: { type: 'integer', description: 'Leader node id, 0 when none is known.' },
                lag: {
                  type: 'integer',
                  description: 'Replication lag in log entries as the leader sees it (0 on followers).',
                },
                voters: {
                  type: 'array',
                  items: { type: 'integer' },
                  description: 'Voting members as this node has applied the configuration.',
                },
                learners: {
                  type: 'array',
                  items: { type: 'integer' },
                  description: 'Non-voting members (a joining node before its promotion).',
                },
                quiesced: {
                  type: 'boolean',
                  description: 'The group is idle and quiet here: no ticks, no heartbeats until something happens.',
                },
                lastLeaderChange: {
                  type: 'object',
                  nullable: true,
                  description:
                    "The last change of leader this node saw (null: none since it started). `cause` is 'transfer' when this node saw the new leader's election start as an admin transfer, else 'automatic'; a learner, or a voter cut off during a transfer, takes a transfer for automatic.",
                  required: ['at', 'from', 'to', 'term', 'cause'],
                  properties: {
                    at: {
                      type: 'string',
                      format: 'date-time',
                      description: 'When this node noticed it (its wall clock).',
                    },
                    from: { type: 'integer', description: 'The leader this node knew before, 0 when none.' },
                    to: { type: 'integer' },
                    term: { type: 'integer' },
                    cause: { type: 'string', enum: ['transfer', 'automatic'] },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;
