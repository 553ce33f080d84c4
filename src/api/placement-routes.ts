// Placement over HTTP (docs/placement.md):
//  - `GET /v1/placement`: per kv group the desired and actual replicas, its state in the last
//    planning round and why, the moves in progress (with the learner's catch-up: its match index
//    against the leader's commit index, and the snapshot bytes it acknowledged while it gets
//    one), the last finished moves with their reasons, the load failures that keep nodes out of
//    shard groups, the kv replication factor and the settings, and why shard groups are not moved
//    (a node of an older release: release-guard.ts). The planner runs on the meta leader, so a follower
//    forwards the request there (one hop); when it cannot, it answers from its own meta replica
//    with `state: null` (what the model records, without the last round's view).
//  - `PUT /v1/placement/settings` `{nodeGoneGraceMs?, movesPerNodeMax?, moveStalledMs?}`: records
//    the settings in the meta model (proposed through group 0 from any node); 200 with the settings
//    in effect; a value out of its bounds 400 DRAM_ERR_BAD_REQUEST, nothing recorded. A node of
//    v0.11.0 stops on a moveStalledMs (a meta command it cannot read), so setting it while one is
//    registered is 409 DRAM_ERR_OLDER_NODES (release-guard.ts), nothing recorded.
//  - member-only, for the placement controller on the meta leader:
//    `GET /v1/internal/placement/report` (the groups this node hosts: role, term, leader, commit,
//    configuration and the index of its entry, and on a leader each member's match index), and
//    `POST /v1/internal/groups/:group/conf-change?confIndex=N` `{changes: [{type, node}], transition}`
//    (one membership change, run only where the group's leader is: 200 once applied; a follower
//    answers 503 DRAM_ERR_NOT_LEADER with the hint, an unhosted group 404 DRAM_ERR_UNKNOWN_GROUP,
//    and a leader whose applied configuration is no longer the one at `confIndex`, the one the
//    change was planned from, 409 DRAM_ERR_CONF_CHANGED without changing anything).
//
// Called by: src/api/app.ts (registered as a plugin with its dependencies as options).

import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { asGroupId, type GroupId, type NodeId } from '../base/ids.ts';
import { settingsPatch, type PlacementSettingsRecord } from '../codec/meta-placement.ts';
import { CodecError, confChange } from '../codec/validate.ts';
import { configurationMoved, type PlacementRound } from '../control/placement-controller.ts';
import {
  learnerCatchUpEntriesMax,
  nodeReportOf,
  settingsOf,
  shardFactor,
  shardInputs,
  type NodeReport,
} from '../control/placement-view.ts';
import {
  describeOlderNodes,
  heldByNamedMax,
  moveStalledSettingVersion,
  nodesOlderThan,
  shardPlacementHold,
} from '../control/release-guard.ts';
import { metaGroupId } from '../models/meta.ts';
import type { ActionsContext } from './action-schedule.ts';
import { ApiError } from './errors.ts';
import { forwardedByHeader, forwardOrRefuse, notLeaderError } from './forwarding.ts';
import { parseCounter } from './route-input.ts';
import { proposeMeta } from './meta-propose.ts';
import { jsonBody, memberOnly } from './request-guard.ts';

export interface PlacementRoutesOptions {
  readonly actions: ActionsContext;
  /** The placement controller's last round, on the meta leader. */
  readonly round?: (() => PlacementRound | undefined) | undefined;
}

export const placementPath = '/v1/placement';
export const placementReportPath = '/v1/internal/placement/report';
export const confChangePath = '/v1/internal/groups/:group/conf-change';
const settingsBodyBytesMax = 1024;
const confChangeBodyBytesMax = 4096;

export const placementRoutes: FastifyPluginCallback<PlacementRoutesOptions> = (app, options, done) => {
  const context = options.actions;

  app.get(placementPath, async (request, reply) => {
    const meta = context.host.groupStatus(metaGroupId)?.status;
    const round = options.round?.();
    if (round === undefined && meta !== undefined && meta.role !== 'leader' && meta.leader !== 0) {
      if (request.headers[forwardedByHeader] === undefined && context.forward !== undefined) {
        try {
          return await forwardOrRefuse(context, request, reply, {
            group: metaGroupId,
            leaderHint: meta.leader,
            body: undefined,
            onFailure: 'forward_failed',
          });
        } catch (error) {
          request.log.warn({ err: error }, 'placement: the meta leader did not answer; answering from this node');
        }
      }
    }
    return placementAnswer(context, round);
  });

  app.put(placementPath + '/settings', jsonBody(settingsBodyBytesMax), async (request) => {
    let settings;
    try {
      settings = settingsPatch(request.body ?? {}, 'settings');
    } catch (error) {
      if (error instanceof CodecError) throw new ApiError('DRAM_ERR_BAD_REQUEST', error.message);
      throw error;
    }
    refuseForOlderNodes(context, settings);
    const proposed = await proposeMeta(context, { type: 'placement.settings', settings });
    if (!proposed.outcome.ok) throw new ApiError('DRAM_ERR_INTERNAL', `settings refused: ${proposed.outcome.code}`);
    return { settings: settingsOf(context.model.placementSettings()) };
  });

  app.get(placementReportPath, memberOnly, () => nodeReport(context));

  app.post<{ Params: { group: string }; Querystring: { confIndex?: string } }>(
    confChangePath,
    { ...jsonBody(confChangeBodyBytesMax), ...memberOnly },
    (request, reply) => changeHere(context, request, reply),
  );

  done();
};

/** A setting an older release cannot read is refused while a node of it is registered (it would stop). */
function refuseForOlderNodes(context: ActionsContext, settings: Partial<PlacementSettingsRecord>): void {
  if (settings.moveStalledMs === undefined) return;
  const older = nodesOlderThan(context.model.nodes(), moveStalledSettingVersion);
  if (older.length === 0) return;
  throw new ApiError(
    'DRAM_ERR_OLDER_NODES',
    `moveStalledMs is read from ${moveStalledSettingVersion} on; ${describeOlderNodes(older)}, and would stop on it: upgrade every node first`,
    { nodes: older.slice(0, heldByNamedMax) },
  );
}

function nodeReport(context: ActionsContext): NodeReport {
  return nodeReportOf(context.nodeId, context.host.status());
}

async function changeHere(
  context: ActionsContext,
  request: FastifyRequest<{ Params: { group: string }; Querystring: { confIndex?: string } }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const group: GroupId = asGroupId(parseCounter(request.params.group, 'group'));
  const planned =
    request.query.confIndex === undefined ? undefined : parseCounter(request.query.confIndex, 'confIndex');
  let change;
  try {
    change = confChange(request.body, 'body');
  } catch (error) {
    if (error instanceof CodecError) throw new ApiError('DRAM_ERR_BAD_REQUEST', error.message);
    throw error;
  }
  const hosted = context.host.groupStatus(group);
  if (hosted === undefined)
    throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
  const status = hosted.status;
  if (status.role !== 'leader') throw notLeaderError(group, status.leader, 'membership changes run at the leader');
  const moved = configurationMoved(planned, hosted.confIndex);
  if (moved !== undefined) throw new ApiError('DRAM_ERR_CONF_CHANGED', `group ${group}: ${moved}`, { group });
  const outcome = await context.host.proposeConfChange(group, change);
  switch (outcome.kind) {
    case 'applied': {
      const conf = context.host.groupStatus(group)?.status.confState;
      return reply.code(200).send({ group, voters: conf?.voters ?? [], learners: conf?.learners ?? [] });
    }
    case 'refused':
      throw new ApiError('DRAM_ERR_MEMBERSHIP_PENDING', `group ${group} refused the change (${outcome.reason.kind})`, {
        group,
        reason: outcome.reason.kind,
      });
    case 'indeterminate':
      throw new ApiError('DRAM_ERR_INDETERMINATE', `the change of group ${group} was not applied in time`, { group });
  }
}

function placementAnswer(context: ActionsContext, round: PlacementRound | undefined) {
  const model = context.model;
  const statuses = new Map(round?.plan.groups.map((status) => [status.group, status]) ?? []);
  const factor = model.replicationFactor('kv') ?? null;
  const nodeOrNull = (node: NodeId): NodeId | null => (node === 0 ? null : node);
  return {
    factor,
    settings: settingsOf(model.placementSettings()),
    // Why no shard group moves (a node of an older release is registered), from the registry.
    shardMovesHeld: shardPlacementHold(model.nodes()) ?? null,
    plannedAt: round === undefined ? null : new Date(round.atMs).toISOString(),
    live: round?.live ?? null,
    groups: model
      .groups()
      .filter((record) => record.kind === 'kv' || record.kind === 'db')
      .map((record) => {
        const status = statuses.get(record.id);
        const leader = round?.leaders.get(record.id);
        return {
          group: record.id,
          kind: record.kind,
          shard: record.shard ?? null,
          desired: record.kind === 'kv' ? factor : (shardFactor(shardInputs(model), record) ?? null),
          replicas: record.replicas,
          voters: leader?.voters ?? null,
          learners: leader?.learners ?? null,
          leader: leader?.leader ?? null,
          state: status?.state ?? null,
          detail: status?.detail ?? null,
        };
      }),
    moves: model.moves().map((move) => {
      const leader = round?.leaders.get(move.group);
      const member = leader?.progress.find((candidate) => candidate.id === move.add);
      const match = member?.match;
      return {
        group: move.group,
        add: nodeOrNull(move.add),
        remove: nodeOrNull(move.remove),
        reason: move.reason,
        started: new Date(move.startedMs).toISOString(),
        progress:
          leader === undefined || move.add === 0
            ? null
            : {
                match: match ?? 0,
                commit: leader.commit,
                caughtUp: match !== undefined && match > 0 && match + learnerCatchUpEntriesMax >= leader.commit,
                // While the learner catches up by snapshot: the bytes it acknowledged, of the total.
                snapshot: member?.snapshot === undefined ? null : { ...member.snapshot },
              },
      };
    }),
    history: model
      .moveHistory()
      .map((move) => ({
        group: move.group,
        add: nodeOrNull(move.add),
        remove: nodeOrNull(move.remove),
        reason: move.reason,
        outcome: move.outcome,
        detail: move.detail,
        started: new Date(move.startedMs).toISOString(),
        finished: new Date(move.finishedMs).toISOString(),
      }))
      .reverse(),
    loadFailures: loadFailuresAnswer(model),
  };
}

/** The failed loads that keep nodes out of shard groups (docs/placement.md), oldest first. */
function loadFailuresAnswer(model: ActionsContext['model']) {
  return model.loadFailures().map((failure) => ({
    database: failure.database,
    shard: failure.shard,
    node: failure.node,
    version: failure.version,
    error: failure.error,
    at: new Date(failure.atMs).toISOString(),
  }));
}

/** The body of `GET /v1/placement`; the CLI's `dram placement` reads it with this type. */
export type PlacementAnswer = ReturnType<typeof placementAnswer>;
