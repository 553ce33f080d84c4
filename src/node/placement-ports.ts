// The placement controller's ports (src/control/placement-controller.ts), over this node's own API
// in process for itself and over the member-only HTTP routes for the others (the Forward port:
// the address book's HTTP addresses, signed with the cluster secret, bounded in time):
//  - survey: GET /v1/internal/placement/report on every registered node at once; a node that
//    does not answer (or answers something else) is not live this round;
//  - confChange: POST /v1/internal/groups/:group/conf-change?confIndex=N at the group's leader;
//  - transfer: POST /v1/internal/groups/:group/transfer-leadership {to} at the group's leader.
// The report is validated here, at the edge: what is not a report is treated as no answer.
//
// Called by: src/node/node.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { Forward, ForwardMethod } from '../api/ports.ts';
import type { PlacementEffect, PlacementPorts } from '../control/placement-controller.ts';
import type { GroupReport, NodeReport } from '../control/placement-view.ts';
import type { InjectableApp } from './meta-effects.ts';

/** A report lists at most this many groups (a node hosts at most this many). */
const reportGroupsMax = 1 << 16;

interface Answer {
  readonly status: number;
  readonly body: string;
}

export function placementPorts(self: NodeId, app: InjectableApp, forward: Forward): PlacementPorts {
  const call = async (node: NodeId, method: ForwardMethod, url: string, body?: unknown): Promise<Answer> => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (node === self) {
      const injected = await app.inject({
        method,
        url,
        ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'application/json' } }),
      });
      return { status: injected.statusCode, body: injected.body };
    }
    const response = await forward(node, {
      method,
      url,
      headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      body: payload === undefined ? undefined : Buffer.from(payload),
    });
    return { status: response.status, body: response.body.toString('utf8') };
  };
  const effect = async (node: NodeId, url: string, body: unknown): Promise<PlacementEffect> => {
    if (node === 0) return { ok: false, message: 'no known leader' };
    try {
      const answer = await call(node, 'POST', url, body);
      if (answer.status >= 200 && answer.status < 300) return { ok: true };
      return { ok: false, message: `node ${node} answered ${answer.status} ${answer.body.slice(0, 300)}` };
    } catch (error) {
      return { ok: false, message: `node ${node}: ${String(error)}` };
    }
  };
  return {
    async survey(nodes) {
      const answers = await Promise.all(
        nodes.map(async (node) => {
          try {
            const answer = await call(node, 'GET', '/v1/internal/placement/report');
            return answer.status === 200 ? reportOf(node, answer.body) : undefined;
          } catch {
            return undefined;
          }
        }),
      );
      const reports = new Map<NodeId, NodeReport>();
      for (const report of answers) if (report !== undefined) reports.set(report.node, report);
      return reports;
    },
    confChange: (node, group: GroupId, change, confIndex) =>
      effect(node, `/v1/internal/groups/${group}/conf-change?confIndex=${confIndex}`, change),
    transfer: (node, group: GroupId, to) => effect(node, `/v1/internal/groups/${group}/transfer-leadership`, { to }),
  };
}

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isNodes = (value: unknown): value is NodeId[] =>
  Array.isArray(value) && value.length <= reportGroupsMax && value.every(isCount);

/** `{id, match, snapshot?: {ackedBytes, totalBytes}}`: a leader's view of one member. */
function isMemberProgress(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const member = value as Record<string, unknown>;
  const snapshot = member['snapshot'];
  const snapshotOk =
    snapshot === undefined ||
    (typeof snapshot === 'object' &&
      snapshot !== null &&
      isCount((snapshot as Record<string, unknown>)['ackedBytes']) &&
      isCount((snapshot as Record<string, unknown>)['totalBytes']));
  return isCount(member['id']) && isCount(member['match']) && snapshotOk;
}

/** The report `node` answered, or undefined when it is not one. */
export function reportOf(node: NodeId, text: string): NodeReport | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const fields = raw as Record<string, unknown>;
  const groups = fields['groups'];
  if (fields['node'] !== node || !Array.isArray(groups) || groups.length > reportGroupsMax) return undefined;
  const parsed: GroupReport[] = [];
  for (const item of groups as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined;
    const g = item as Record<string, unknown>;
    const progress = g['progress'];
    const counts = ['group', 'term', 'leader', 'commit', 'applied', 'confIndex'].every((name) => isCount(g[name]));
    const lists = ['voters', 'learners', 'votersOutgoing', 'learnersNext'].every((name) => isNodes(g[name]));
    const members = Array.isArray(progress) && progress.every(isMemberProgress);
    if (!counts || !lists || !members || typeof g['role'] !== 'string') return undefined;
    parsed.push(item as GroupReport);
  }
  return { node, groups: parsed };
}
