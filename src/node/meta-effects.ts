// The effects of action steps that reach outside the meta log.
//  - Admin operations the HTTP API already has, carried out by calling this node's own API in
//    process (`inject`, no socket): the API does the forwarding to each group's leader and its own
//    retries, and the action steps see one answer. These are the direct routes under
//    /v1/internal/ (the public /v1/admin/ ones schedule an action and wait for it, so calling
//    them from a step would wait on itself):
//     - transfer leadership: POST /v1/internal/groups/:group/transfer-leadership {to?};
//     - remove a node from every kv group: DELETE /v1/internal/members/:node (idempotent);
//     - compact a node's replica of a group: POST /v1/internal/groups/:group/compact {node}
//       (answered here, or forwarded to that node).
//    A 4xx is final (the step fails with its message); anything else is retried on the next step.
//  - cluster.add's calls to the new node's agent API over HTTP (GET info/node and info/store;
//    POST action to run cluster.join there), each bounded by `nodeCallTimeoutMs`. No answer is
//    retried on the next step; a 409 to the join request means it was asked before (same id).
//
// Called by: src/node/node.ts (the meta controller's effects), test/control/.

import { randomUUID } from 'node:crypto';
import { asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import type { JsonValue } from '../codec/meta.ts';
import type { EffectResult, NodeDescription } from '../control/action-steps.ts';
import { clusterJoinKind } from '../control/action-kinds.ts';
import type { ControllerEffects } from '../control/controller.ts';

/** One call to another node's agent API waits at most this long. */
export const nodeCallTimeoutMs = 5000;
const agentApi = '/api/unstable';

/** The part of a fastify app this needs (its `inject`). */
export interface InjectableApp {
  inject(request: {
    readonly method: 'GET' | 'POST' | 'DELETE' | 'PUT';
    readonly url: string;
    readonly payload?: string;
    readonly headers?: Record<string, string>;
  }): PromiseLike<{ readonly statusCode: number; readonly body: string }>;
}

export function apiEffects(app: InjectableApp): ControllerEffects {
  return {
    transferLeadership: async (group: GroupId, to: NodeId | undefined) => {
      const response = await app.inject({
        method: 'POST',
        url: `/v1/internal/groups/${group}/transfer-leadership`,
        payload: JSON.stringify(to === undefined ? {} : { to }),
        headers: { 'content-type': 'application/json' },
      });
      return resultOf(response, (body) => (typeof body['to'] === 'number' ? body['to'] : null));
    },
    compactGroup: async (group: GroupId, node: NodeId) => {
      const response = await app.inject({
        method: 'POST',
        url: `/v1/internal/groups/${group}/compact`,
        payload: JSON.stringify({ node }),
        headers: { 'content-type': 'application/json' },
      });
      return resultOf(response, (body) => ({
        node: jsonOrNull(body['node']),
        state: jsonOrNull(body['state']),
        index: jsonOrNull(body['index']),
      }));
    },
    removeFromKvGroups: async (node: NodeId) => {
      const response = await app.inject({ method: 'DELETE', url: `/v1/internal/members/${node}` });
      // The per-group report (leader, steps, voters left) and the warnings, for the action's payload.
      return resultOf(response, (body) => ({
        groups: jsonOrNull(body['groups']),
        warnings: jsonOrNull(body['warnings']),
      }));
    },
    describeNode,
    askToJoin,
    newActionId: () => randomUUID(),
  };
}

async function describeNode(url: string): Promise<NodeDescription | string> {
  const node = await getJson(`${url}${agentApi}/info/node`);
  if (typeof node === 'string') return node;
  const store = await getJson(`${url}${agentApi}/info/store`);
  if (typeof store === 'string') return store;
  const id = Number(node['node_id']);
  const status = node['node_status'];
  const clusterId = store['cluster_id'];
  if (!Number.isSafeInteger(id) || id < 1 || typeof status !== 'string' || typeof clusterId !== 'string')
    return `${url} answered something else than a dram node's info`;
  return { nodeId: asNodeId(id), status, clusterId };
}

async function askToJoin(url: string, id: string, via: string): Promise<EffectResult> {
  let response: Response;
  try {
    response = await fetch(`${url}${agentApi}/action`, {
      method: 'POST',
      body: JSON.stringify({ id, kind: clusterJoinKind, args: { node: via } }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(nodeCallTimeoutMs),
    });
  } catch (error) {
    return { ok: false, final: false, message: `no answer from ${url}: ${String(error)}` };
  }
  const text = await response.text().catch(() => '');
  if (response.ok || response.status === 409) return { ok: true, detail: null };
  return {
    ok: false,
    final: response.status >= 400 && response.status < 500,
    message: `${url} refused cluster.join: ${response.status} ${text.slice(0, 200)}`,
  };
}

async function getJson(url: string): Promise<Record<string, unknown> | string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(nodeCallTimeoutMs) });
    if (!response.ok) return `${url} answered ${response.status}`;
    const body: unknown = await response.json();
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : `${url}: not a JSON object`;
  } catch (error) {
    return `no answer from ${url}: ${String(error)}`;
  }
}

/** A value from our own API's JSON answer (so JSON already), or null. */
function jsonOrNull(value: unknown): JsonValue {
  return value === undefined ? null : (value as JsonValue);
}

function resultOf(
  response: { readonly statusCode: number; readonly body: string },
  detail: (body: Record<string, unknown>) => JsonValue,
): EffectResult {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(response.body);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: the status alone decides
  }
  if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, detail: detail(body) };
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const message = `${response.statusCode} ${text(body['code'])} ${text(body['message'])}`.trim();
  return { ok: false, final: response.statusCode >= 400 && response.statusCode < 500, message };
}
