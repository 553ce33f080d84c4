// A node started with neither --init nor --join, on an empty data dir, is not in a cluster: it
// serves the agent API and dram's status routes from a stand-in host with no groups (so it reports
// NOT_IN_CLUSTER and no shards) and waits for one of two actions (src/control/bootstrap.ts):
//  - agent.replicante.io/cluster.init: the node creates a cluster of its own (as --init would,
//    with its --peers, by default itself alone);
//  - agent.replicante.io/cluster.join {node: "<member URL>"}: the node learns the cluster from
//    that member (as --join would: cluster id checked, the groups and members recorded in the join
//    record and the address book) and joins it. cluster.add, run on a member, asks the new node
//    to run this one.
// Taking an action writes it to <data dir>/bootstrap.json first (the "held" action), so a crash
// restarts into the same step. Then the waiting API closes and the node starts as --init or
// --join would have started it (src/node/node.ts). A cluster.join whose member refuses or never
// answers is FAILED here with the reason, the held file is removed, and the node waits again.
// One such action at a time: another one is refused while one is under way.
//
// A held action is not in the cluster's log yet (the node has no log): the node lists and shows
// it itself (NEW, or FAILED) until, once it is in the cluster, it writes the record to the meta
// log (`recordHeldAction`) with the same id; the meta leader's executor then finishes it there
// (src/control/action-steps.ts). After that the log's record is the one shown.
//
// Called by: src/node/node.ts.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildApp } from '../api/app.ts';
import type { ApiHost } from '../api/ports.ts';
import { proposeMeta, type MetaProposeContext } from '../api/meta-propose.ts';
import { NO_NODE } from '../base/ids.ts';
import { actionRequest, type ActionRecord, type ActionRequest } from '../codec/meta.ts';
import { clusterInitKind, clusterJoinKind, nodeUrlOfArgs, objectOf } from '../control/action-kinds.ts';
import { planBootstrapAction, type HeldDecision } from '../control/bootstrap.ts';
import { memoryDirectory } from '../control/member-directory.ts';
import { createNodeMetrics } from '../metrics/registry.ts';
import { MetaModel } from '../models/meta.ts';
import { readJson, writeJsonAtomic } from './atomic-file.ts';
import type { NodeConfig } from './config.ts';
import { learnClusterVia } from './membership.ts';

export const heldActionFile = 'bootstrap.json';
const heldFileVersion = 1;
/** How often a node that holds an action tries to write it to the meta log, and how many times at most. */
export const heldRecordRetryMs = 1000;
export const heldRecordAttemptsMax = 600;
/** A cluster.join taken while waiting asks the member this many times, a second apart, before it fails. */
const joinAttemptsMax = 5;

export interface HeldAction {
  readonly decision: HeldDecision;
  readonly action: ActionRequest;
  /** When the node took it (the record's scheduled time). */
  readonly takenMs: number;
}

export class HeldActionError extends Error {
  override readonly name = 'HeldActionError';
  readonly code = 'DRAM_ERR_HELD_ACTION';
}

export function readHeldAction(dataDir: string): HeldAction | undefined {
  const path = join(dataDir, heldActionFile);
  try {
    const value = readJson(path);
    if (value === undefined) return undefined;
    const raw = value as Record<string, unknown>;
    const decision = raw['decision'] as Record<string, unknown> | undefined;
    const takenMs = raw['takenMs'];
    if (raw['version'] !== heldFileVersion || typeof takenMs !== 'number') throw new Error('unknown version');
    const action = actionRequest(raw['action'], 'action');
    if (decision?.['kind'] === 'create') return { decision: { kind: 'create' }, action, takenMs };
    if (decision?.['kind'] === 'join' && typeof decision['via'] === 'string')
      return { decision: { kind: 'join', via: decision['via'] }, action, takenMs };
    throw new Error('unknown decision');
  } catch (error) {
    throw new HeldActionError(`${path} is not a held action this version understands: ${String(error)}`);
  }
}

function writeHeldAction(dataDir: string, held: HeldAction): void {
  writeJsonAtomic(join(dataDir, heldActionFile), { version: heldFileVersion, ...held });
}

/** The held action's record as this node shows it until the log has it. */
export function heldRecord(held: HeldAction, failure?: { message: string; atMs: number }): ActionRecord {
  return {
    ...held.action,
    scheduledMs: held.takenMs,
    startedMs: failure === undefined ? null : held.takenMs,
    finishedMs: failure?.atMs ?? null,
    state:
      failure === undefined
        ? { phase: 'NEW', payload: null, error: null }
        : { phase: 'FAILED', payload: null, error: { error_msg: failure.message } },
    version: 0,
  };
}

/** Serves NOT_IN_CLUSTER until cluster.init or cluster.join is taken and ready; resolves with it. */
export async function awaitBootstrap(config: NodeConfig, httpUrl: string, version: string, logger: Logger) {
  const failed: ActionRecord[] = [];
  let current: HeldAction | undefined;
  let settle: (held: HeldAction) => void = () => undefined;
  const decided = new Promise<HeldAction>((resolve) => {
    settle = resolve;
  });
  const take = (request: ActionRequest): string | undefined => {
    const via = nodeUrlOfArgs(objectOf(request.args)?.['node']);
    const step = planBootstrapAction(request.kind === clusterInitKind ? 'init' : 'join', via, current !== undefined);
    if (step.kind === 'refuse') return step.reason;
    const held: HeldAction = { decision: step, action: request, takenMs: Date.now() };
    current = held;
    writeHeldAction(config.dataDir, held);
    logger.info({ id: request.id, kind: request.kind }, 'not in a cluster: taking the action');
    if (step.kind === 'create') {
      // Answer the request before the waiting API closes.
      setImmediate(() => {
        settle(held);
      });
      return undefined;
    }
    void learnClusterVia(config, step.via, logger, {
      attemptsMax: joinAttemptsMax,
      retryDelayMs: 1000,
      callTimeoutMs: 5000,
    })
      .then(() => {
        settle(held);
      })
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        logger.warn({ id: request.id, via: step.via, err: message }, 'cluster.join failed: still not in a cluster');
        failed.push(heldRecord(held, { message, atMs: Date.now() }));
        rmSync(join(config.dataDir, heldActionFile), { force: true });
        current = undefined;
      });
    return undefined;
  };
  const app = buildApp({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    host: noGroups,
    // The routes need the kv groups' ids to place keys; none is hosted, so every key is refused.
    groups: config.kvGroups,
    forward: undefined,
    members: memoryDirectory([], config.nodeId),
    metrics: createNodeMetrics({ host: { status: () => [] }, dataDir: config.dataDir }),
    logger,
    meta: {
      model: new MetaModel(),
      info: { httpUrl, version, clusterId: config.clusterId },
      wallNowMs: () => Date.now(),
      bootstrap: {
        inCluster: false,
        schedule: (request) => Promise.resolve(take(request)),
        records: () => [...failed, ...(current === undefined ? [] : [heldRecord(current)])],
      },
    },
  });
  await app.listen({ host: config.http.host, port: config.http.port });
  logger.warn(
    { http: httpUrl, kinds: [clusterInitKind, clusterJoinKind] },
    'not in a cluster (neither --init nor --join): waiting for cluster.init or cluster.join (or cluster.add on a member)',
  );
  const held = await decided;
  await app.close();
  return held;
}

/**
 * Once the node is in the cluster: writes the held action's record to the meta log (same id, so a
 * retry or a restart schedules it once), every `heldRecordRetryMs` until the log has it.
 */
export function recordHeldAction(
  dataDir: string,
  held: HeldAction,
  context: MetaProposeContext,
  model: MetaModel,
  logger: Logger,
): { stop(): void } {
  let attempts = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    if (model.action(held.action.id) !== undefined) {
      // The log has it: the file has done its job (a later restart must not schedule it again).
      rmSync(join(dataDir, heldActionFile), { force: true });
      clearInterval(timer);
      return;
    }
    if (++attempts > heldRecordAttemptsMax) {
      logger.warn({ id: held.action.id }, 'gave up recording the held action in the meta log');
      clearInterval(timer);
      return;
    }
    busy = true;
    proposeMeta(context, { type: 'action.schedule', action: held.action, atMs: held.takenMs })
      .catch(() => undefined) // no meta leader known here yet: the next tick tries again
      .finally(() => {
        busy = false;
      });
  }, heldRecordRetryMs);
  return {
    stop: () => {
      clearInterval(timer);
    },
  };
}

/** The API's host while the node is in no cluster: no groups, so every group is unknown. */
const noGroups: ApiHost = {
  propose: () => Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } }),
  proposeConfChange: () => Promise.resolve({ kind: 'refused', reason: { kind: 'unknown_group' } }),
  read: () => Promise.resolve({ kind: 'refused', reason: 'unknown_group', leaderHint: NO_NODE }),
  transferLeadership: () => ({ kind: 'unknown_group' }),
  compactNow: () => ({ kind: 'unknown_group' }),
  status: () => [],
  groupStatus: () => undefined,
  groupLeader: () => undefined,
  model: () => undefined,
  backupSnapshot: () => undefined,
};
