// How a starting node comes to host its kv groups, and who it knows. Three cases:
//  - creating the cluster (--init, first start): each kv group is bootstrapped with its first
//    replicas as voters (log entry 1/1), chosen from the --peers (src/control/placement-initial.ts;
//    on three nodes or fewer with the default factor 3, every node of every group), and this node
//    writes the groups placed on it;
//  - joining (--join http://member, empty data dir): the member tells us the cluster id (checked
//    against ours before anything is written), the kv groups and every member's addresses. We
//    record them (address book, and a join record listing the groups) and host the groups with
//    EMPTY storage: no bootstrap entry, the leaders replicate the whole log from index 1 (or send
//    a snapshot). Once the node serves and a member accepted its peer handshake (proof that the
//    secret is right: without it the learners could never catch up), finishJoin() asks the member
//    to make it a voter of every group, and marks the join record complete. When the cluster
//    places its groups (the member reports a kv replication factor), the node hosts no kv group
//    at first and the member only registers it: the placement controller then hands it groups
//    (each started by the hosting loop when a move adds it, src/node/group-hosting.ts);
//  - restarting: a data dir with a join record hosts its groups (an unfinished join continues
//    through the recorded member, or --join if given); one without hosts --kv-groups as created.
// The join record (<data dir>/join.json) is written before the groups are first hosted, so a
// crash at any point restarts into the same plan, and a retried join only finishes what is left.
// The decisions (which case, whether the member's cluster suits us) are pure planners in
// src/control/bootstrap.ts (`planGroups`, `joinProblem`); this file does the I/O around them.
//
// Called by: src/node/node.ts.

import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { joinProblem, planGroups } from '../control/bootstrap.ts';
import { formatAddress, type MemberAddresses } from '../control/member-directory.ts';
import type { GroupId, LogIndex, NodeId, Term } from '../base/ids.ts';
import { NO_NODE, asGroupId } from '../base/ids.ts';
import { confStateOf } from '../raft/confchange.ts';
import { bootstrapEntry } from '../raft/storage.ts';
import { initialPlacement } from '../control/placement-initial.ts';
import { replicationFactorDefault } from '../control/placement-planner.ts';
import { metaGroupId } from '../models/meta.ts';
import type { DiskStore } from '../storage/disk-store.ts';
import { AddressBook } from './address-book.ts';
import { readJson, writeJsonAtomic } from './atomic-file.ts';
import type { NodeConfig } from './config.ts';
import {
  clusterGroupsMax,
  fetchClusterView,
  JoinError,
  joinRetryDefault,
  requestMembership,
  type JoinLog,
  type JoinRetry,
} from './join-client.ts';
import { peerSigner } from './peer-signer.ts';

export const joinRecordFile = 'join.json';
/** How long a joining node waits for its first authenticated connection to a member before giving up. */
export const joinHandshakeWaitMsMax = 15_000;
const joinHandshakePollMs = 50;
const joinRecordVersion = 1;

export interface JoinRecord {
  /** The member joined through. */
  readonly via: string;
  readonly groups: readonly GroupId[];
  /** This node is a voter of every group (the member said so), or registered when `placed`. */
  readonly complete: boolean;
  /** The cluster places its kv groups: this node hosts what placement gives it, not every group. */
  readonly placed?: boolean;
}

export interface StartPlan {
  readonly book: AddressBook;
  /** Every kv group of the cluster (keys are placed on them by hash). */
  readonly groups: readonly GroupId[];
  /** The kv groups this node hosts at start (a subset of `groups` once placement spreads them). */
  readonly hosted: readonly GroupId[];
  /** Set while a join is unfinished: the member to finish it through once the node serves. */
  readonly joinVia: string | undefined;
}

export async function planStart(
  config: NodeConfig,
  store: DiskStore,
  logger: Logger,
  retry: JoinRetry = joinRetryDefault,
): Promise<StartPlan> {
  const book = AddressBook.open(config.dataDir, selfOf(config), configuredMembers(config));
  const record = readJoinRecord(config.dataDir);
  const step = planGroups({ record, join: config.join, holdsGroups: store.groupIds().length > 0 });
  switch (step.kind) {
    case 'joined': {
      if (step.ignoredJoin) logger.info({ via: config.join }, 'this node joined the cluster before: --join ignored');
      const groups = record?.groups ?? [];
      const stored = storedKvGroups(store);
      return {
        book,
        groups,
        hosted: stored.length > 0 || record?.placed === true ? stored : groups,
        joinVia: undefined,
      };
    }
    case 'resume_join':
      logger.info({ via: step.via }, 'resuming an unfinished join');
      return {
        book,
        groups: record?.groups ?? [],
        hosted: record?.placed === true ? storedKvGroups(store) : (record?.groups ?? []),
        joinVia: step.via,
      };
    case 'learn': {
      const view = await learnCluster(config, step.via, book, logger, retry);
      return { book, groups: view.groups, hosted: view.placed ? [] : view.groups, joinVia: step.via };
    }
    case 'configured':
      if (step.ignoredJoin) logger.warn({ via: config.join }, 'the data dir already holds groups: --join ignored');
      await initializeGroups(store, config, logger);
      return { book, groups: config.kvGroups, hosted: storedKvGroups(store), joinVia: undefined };
  }
}

/** What finishJoin() needs to know of the running node. */
export interface JoiningNode {
  /** Whether some member accepted this node's peer handshake (the transport is connected to it). */
  readonly peerConnected: () => boolean;
  /** Why handshakes failed, for the error message (e.g. the transport's refusal count). */
  readonly handshakeTrouble: () => string;
}

/** Asks the member to make this (serving) node a voter of every group; throws JoinError when it refuses or never gets there. */
export async function finishJoin(
  config: NodeConfig,
  plan: StartPlan,
  node: JoiningNode,
  logger: Logger,
  retry: JoinRetry = joinRetryDefault,
): Promise<void> {
  const via = plan.joinVia;
  if (via === undefined) return;
  const placed = readJoinRecord(config.dataDir)?.placed === true;
  await awaitFirstPeer(node);
  logger.info(
    { via, groups: plan.groups.length },
    placed
      ? 'joining: asking to be registered (placement gives this node its groups)'
      : 'joining: asking to become a voter of every group',
  );
  const others = plan.book
    .list()
    .flatMap((member) =>
      member.nodeId === config.nodeId || member.http === undefined ? [] : [`http://${formatAddress(member.http)}`],
    )
    .filter((url) => url !== via);
  await requestMembership(
    via,
    others,
    { ...selfOf(config), clusterId: config.clusterId },
    retry,
    joinLog(logger),
    peerSigner(config),
  );
  writeJoinRecord(config.dataDir, { via, groups: plan.groups, complete: true, ...(placed ? { placed } : {}) });
  logger.info(
    { via, groups: plan.groups.length },
    placed
      ? 'joined: registered; the placement controller gives this node its groups'
      : 'joined: a voter of every group',
  );
}

async function awaitFirstPeer(node: JoiningNode): Promise<void> {
  for (let poll = 0; poll < joinHandshakeWaitMsMax / joinHandshakePollMs; poll++) {
    if (node.peerConnected()) return;
    await new Promise((resolve) => setTimeout(resolve, joinHandshakePollMs));
  }
  throw new JoinError(
    `no member accepted this node's peer handshake within ${joinHandshakeWaitMsMax} ms (${node.handshakeTrouble()}): check --secret and --cluster-id, and that the members' raft addresses are reachable from here; nothing was changed in the cluster`,
  );
}

function selfOf(config: NodeConfig): MemberAddresses {
  return { nodeId: config.nodeId, raft: config.raft, http: config.http };
}

/** What the flags say: --peers (raft addresses) with --peer-http where given. */
function configuredMembers(config: NodeConfig): MemberAddresses[] {
  return [...config.peers].map(([nodeId, raft]) => ({ nodeId, raft, http: config.peerHttp.get(nodeId) }));
}

function joinLog(logger: Logger): JoinLog {
  return (message, fields) => {
    logger.warn(fields, message);
  };
}

/**
 * cluster.join taken while waiting (src/node/waiting.ts): learns the cluster as --join does and
 * writes the unfinished join record, so the start that follows continues the join from it.
 */
export async function learnClusterVia(
  config: NodeConfig,
  via: string,
  logger: Logger,
  retry: JoinRetry,
): Promise<void> {
  const book = AddressBook.open(config.dataDir, selfOf(config), configuredMembers(config));
  await learnCluster(config, via, book, logger, retry);
}

/** The member's view of the cluster, checked and recorded (address book, then the join record). */
async function learnCluster(
  config: NodeConfig,
  via: string,
  book: AddressBook,
  logger: Logger,
  retry: JoinRetry,
): Promise<{ readonly groups: readonly GroupId[]; readonly placed: boolean }> {
  logger.info({ via }, 'joining a running cluster');
  const view = await fetchClusterView(via, retry, joinLog(logger), peerSigner(config));
  const problem = joinProblem(
    { nodeId: config.nodeId, clusterId: config.clusterId, raft: formatAddress(config.raft) },
    {
      clusterId: view.clusterId,
      members: view.members.map((member) => ({ nodeId: member.nodeId, raft: formatAddress(member.raft) })),
    },
    via,
  );
  if (problem !== undefined) throw new JoinError(problem);
  for (const member of view.members) book.record(member);
  writeJoinRecord(config.dataDir, {
    via,
    groups: view.groups,
    complete: false,
    ...(view.placed ? { placed: true } : {}),
  });
  logger.info(
    { via, groups: view.groups.length, members: view.members.map((member) => member.nodeId), placed: view.placed },
    'learned the cluster',
  );
  return view;
}

/** The kv groups the data dir holds (every group but the meta group). */
function storedKvGroups(store: DiskStore): GroupId[] {
  return store.groupIds().filter((group) => group !== metaGroupId);
}

/**
 * First start with --init: each kv group begins with its first replicas as voters (log entry
 * 1/1), chosen from the --peers by src/control/placement-initial.ts, the same on every node; this
 * node writes the groups placed on it, in one batch. A data dir that holds any group is past
 * that point: nothing is created again (a group this node was since removed from stays gone).
 */
/**
 * Written by a configuration restore (src/node/cluster-backup.ts) beside the meta group it wrote:
 * the next start with --init creates the kv groups placed on this member, although the data dir
 * already holds a group.
 */
export const kvInitPendingFile = 'kv-init-pending.json';

async function initializeGroups(store: DiskStore, config: NodeConfig, logger: Logger): Promise<void> {
  // A configuration restore (dram restore) leaves the meta group and this marker: create the kv groups.
  const pending = join(config.dataDir, kvInitPendingFile);
  const restored = existsSync(pending);
  if (store.groupIds().length > 0 && !restored) return;
  if (!config.init) {
    throw new Error(
      `${config.dataDir} holds no data: create a cluster with --init --peers, or join a running one with --join http://member`,
    );
  }
  const placed = initialPlacement([...config.peers.keys()], config.kvGroups, replicationFactorDefault);
  const writes = placed
    .filter(({ voters }) => voters.includes(config.nodeId))
    .map(({ group, voters }) => ({
      group,
      entries: [bootstrapEntry(confStateOf(voters))],
      hardState: { term: 1 as Term, vote: NO_NODE, commit: 1 as LogIndex },
    }));
  if (writes.length > 0) await store.write(writes, { sync: true });
  if (restored) rmSync(pending);
  logger.info(
    { groups: writes.map(({ group }) => group), of: config.kvGroups.length, peers: [...config.peers.keys()] },
    'groups initialized',
  );
}

/**
 * Writes a brand-new group's first entry (1/1: `voters` as its configuration, committed) and syncs
 * it: what every replica of a database shard group writes before it first hosts the group, the
 * same on each, so the group elects a leader with nobody adding it (src/node/group-hosting.ts).
 */
export async function bootstrapGroup(store: DiskStore, group: GroupId, voters: readonly NodeId[]): Promise<void> {
  const entries = [bootstrapEntry(confStateOf(voters))];
  await store.write([{ group, entries, hardState: { term: 1 as Term, vote: NO_NODE, commit: 1 as LogIndex } }], {
    sync: true,
  });
}

export function readJoinRecord(dataDir: string): JoinRecord | undefined {
  const path = join(dataDir, joinRecordFile);
  let value: unknown;
  try {
    value = readJson(path);
  } catch (error) {
    throw new JoinError(`${path} is unreadable: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === undefined) return undefined;
  const raw = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const groups = raw['groups'];
  const valid =
    raw['version'] === joinRecordVersion &&
    typeof raw['via'] === 'string' &&
    typeof raw['complete'] === 'boolean' &&
    Array.isArray(groups) &&
    groups.length > 0 &&
    groups.length <= clusterGroupsMax &&
    groups.every((group: unknown) => typeof group === 'number' && Number.isSafeInteger(group) && group >= 0);
  if (!valid) throw new JoinError(`${path} is not a join record this version understands`);
  return {
    via: raw['via'] as string,
    groups: (groups as number[]).map(asGroupId),
    complete: raw['complete'] as boolean,
    ...(raw['placed'] === true ? { placed: true } : {}),
  };
}

function writeJoinRecord(dataDir: string, record: JoinRecord): void {
  writeJsonAtomic(join(dataDir, joinRecordFile), {
    version: joinRecordVersion,
    via: record.via,
    groups: record.groups,
    complete: record.complete,
    ...(record.placed === true ? { placed: true } : {}),
  });
}
