// The effects of action steps that reuse an admin operation the HTTP API already has, carried out
// by calling this node's own API in process (`inject`, no socket): the API does the forwarding
// to each group's leader and its own retries, and the action steps see one answer.
//  - transfer leadership: POST /v1/admin/groups/:group/transfer-leadership {to?};
//  - remove a node from every kv group: DELETE /v1/admin/members/:node (idempotent).
// A 4xx is final (the step fails with its message); anything else is retried on the next step.
//
// Called by: src/node/node.ts (the meta controller's effects), test/control/.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { EffectResult, StepContext } from '../control/action-steps.ts';

/** The part of a fastify app this needs (its `inject`). */
export interface InjectableApp {
  inject(request: {
    readonly method: 'POST' | 'DELETE';
    readonly url: string;
    readonly payload?: string;
    readonly headers?: Record<string, string>;
  }): PromiseLike<{ readonly statusCode: number; readonly body: string }>;
}

export function apiEffects(app: InjectableApp): Pick<StepContext, 'transferLeadership' | 'removeFromKvGroups'> {
  return {
    transferLeadership: async (group: GroupId, to: NodeId | undefined) => {
      const response = await app.inject({
        method: 'POST',
        url: `/v1/admin/groups/${group}/transfer-leadership`,
        payload: JSON.stringify(to === undefined ? {} : { to }),
        headers: { 'content-type': 'application/json' },
      });
      return resultOf(response, (body) => body['to']);
    },
    removeFromKvGroups: async (node: NodeId) => {
      const response = await app.inject({ method: 'DELETE', url: `/v1/admin/members/${node}` });
      return resultOf(response, () => null);
    },
  };
}

function resultOf(
  response: { readonly statusCode: number; readonly body: string },
  detail: (body: Record<string, unknown>) => unknown,
): EffectResult {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(response.body);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: the status alone decides
  }
  if (response.statusCode >= 200 && response.statusCode < 300) {
    const value = detail(body);
    return { ok: true, detail: typeof value === 'number' ? value : null };
  }
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const message = `${response.statusCode} ${text(body['code'])} ${text(body['message'])}`.trim();
  return { ok: false, final: response.statusCode >= 400 && response.statusCode < 500, message };
}
