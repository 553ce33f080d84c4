// Proposing a meta command (group 0) from any node: this node proposes it when it leads group 0;
// otherwise it forwards the command, as JSON, to the leader's `POST /v1/meta/commands` (one hop;
// the leader validates it again, proposes it and answers the model's outcome and the entry's
// index). Before answering, a follower waits until it has applied that index itself, so that a
// client that scheduled through this node finds the action here at once (read your writes).
//
// An indeterminate proposal (no answer in time, a forward that lost its answer) is retried with
// the same command: an action schedule carries its id, and the model tells a retry of the same
// request (`exists`, sameRequest) from another action's id, so a lost answer never schedules
// twice. At most `metaProposeAttemptsMax` attempts.
//
// Called by: src/api/action-schedule.ts and action-routes.ts (the agent and action routes), src/node/node.ts
// and src/node/waiting.ts.

import type { FastifyBaseLogger } from 'fastify';
import type { NodeId } from '../base/ids.ts';
import { encodeMetaCommand, metaCommand, type MetaCommand } from '../codec/meta.ts';
import { metaGroupId, type MetaOutcome } from '../models/meta.ts';
import { ApiError, isErrorCode } from './errors.ts';
import { forwardedByHeader, noLeaderError, notLeaderError } from './forwarding.ts';
import { writeRefusalError } from './kv-outcomes.ts';
import type { ApiHost, Forward } from './ports.ts';

export const metaCommandsPath = '/v1/meta/commands';
export const metaProposeAttemptsMax = 3;
const applyPollMs = 10;

export interface MetaProposeContext {
  readonly nodeId: NodeId;
  readonly host: ApiHost;
  readonly forward: Forward | undefined;
  readonly requestTimeoutMs: number;
  readonly log: FastifyBaseLogger;
}

export interface MetaProposed {
  readonly outcome: MetaOutcome;
  readonly index: number;
  /** How many times it was proposed (more than 1: an earlier attempt's outcome was unknown). */
  readonly attempts: number;
}

export async function proposeMeta(context: MetaProposeContext, command: MetaCommand): Promise<MetaProposed> {
  let lastError: ApiError | undefined;
  for (let attempt = 1; attempt <= metaProposeAttemptsMax; attempt++) {
    try {
      const result = await proposeOnce(context, command, true);
      return { ...result, attempts: attempt };
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== 'DRAM_ERR_INDETERMINATE') throw error;
      lastError = error;
      context.log.warn({ attempt, type: command.type }, 'meta proposal indeterminate: retrying the same command');
    }
  }
  throw lastError ?? new ApiError('DRAM_ERR_INDETERMINATE', 'meta proposal outcome unknown');
}

/** Proposes here when leading group 0; otherwise forwards once (when `mayForward`). */
export async function proposeOnce(
  context: MetaProposeContext,
  command: MetaCommand,
  mayForward: boolean,
): Promise<{ outcome: MetaOutcome; index: number }> {
  const outcome = await context.host.propose(metaGroupId, encodeMetaCommand(command));
  switch (outcome.kind) {
    case 'applied':
      return { outcome: outcome.result as MetaOutcome, index: outcome.index };
    case 'indeterminate':
      throw new ApiError('DRAM_ERR_INDETERMINATE', 'the meta group did not apply the command in time');
    case 'refused': {
      const reason = outcome.reason;
      if (reason.kind !== 'not_leader') throw writeRefusalError(context.host, metaGroupId, reason);
      if (!mayForward) throw notLeaderError(metaGroupId, reason.leaderHint, 'request was already forwarded once');
      return forwardToLeader(context, command, reason.leaderHint);
    }
  }
}

async function forwardToLeader(
  context: MetaProposeContext,
  command: MetaCommand,
  leader: NodeId,
): Promise<{ outcome: MetaOutcome; index: number }> {
  if (leader === 0) throw noLeaderError(metaGroupId);
  if (context.forward === undefined) throw notLeaderError(metaGroupId, leader, 'forwarding is not configured');
  let response;
  try {
    response = await context.forward(leader, {
      method: 'POST',
      url: metaCommandsPath,
      headers: { 'content-type': 'application/json', [forwardedByHeader]: String(context.nodeId) },
      body: Buffer.from(JSON.stringify(command)),
    });
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
    if (code === 'ECONNREFUSED' || code === 'DRAM_FORWARD_NO_ADDRESS')
      throw notLeaderError(metaGroupId, leader, `node ${leader} is unreachable`);
    throw new ApiError('DRAM_ERR_INDETERMINATE', `forward to node ${leader} got no answer`, { leaderHint: leader });
  }
  const body = parseJson(response.body);
  if (response.status !== 200) {
    const code = body?.['code'];
    const message = typeof body?.['message'] === 'string' ? body['message'] : `leader answered ${response.status}`;
    if (isErrorCode(code)) throw new ApiError(code, message);
    throw new ApiError('DRAM_ERR_FORWARD_FAILED', message, { leaderHint: leader });
  }
  const index = body?.['index'];
  const outcome = body?.['outcome'];
  if (typeof index !== 'number' || typeof outcome !== 'object' || outcome === null)
    throw new ApiError('DRAM_ERR_FORWARD_FAILED', `node ${leader} answered something else than an outcome`);
  await awaitApplied(context, index);
  return { outcome: outcome as MetaOutcome, index };
}

/** Waits (bounded by the request timeout) until this node has applied group 0 up to `index`. */
async function awaitApplied(context: MetaProposeContext, index: number): Promise<void> {
  for (let waited = 0; waited < context.requestTimeoutMs; waited += applyPollMs) {
    if ((context.host.groupStatus(metaGroupId)?.appliedIndex ?? 0) >= index) return;
    await new Promise((resolve) => setTimeout(resolve, applyPollMs));
  }
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a member may hand the meta leader: schedules and cancels, its own registry record, the
 * record of a group it leads (src/control/controller.ts), and placement settings from the API.
 */
const forwardableCommands: ReadonlySet<MetaCommand['type']> = new Set([
  'action.schedule',
  'action.cancel',
  'node.upsert',
  'group.set',
  'placement.settings',
]);

/** The leader's side of a forwarded command: validated here again (it came over the network). */
export function forwardedCommand(body: unknown): MetaCommand {
  let command: MetaCommand;
  try {
    command = metaCommand(body, 'command');
  } catch (error) {
    throw new ApiError('DRAM_ERR_BAD_REQUEST', error instanceof Error ? error.message : String(error));
  }
  // A replica's load state is reported by its own node, wherever the meta leader is.
  const replicaState = command.type === 'databases' && command.command.type === 'db.replica';
  if (!forwardableCommands.has(command.type) && !replicaState)
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `command ${command.type} is not accepted from another node`);
  return command;
}
