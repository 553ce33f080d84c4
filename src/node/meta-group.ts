// Group 0, the meta group, on this node (docs/ARCHITECTURE.md, key decision 7): every node hosts it.
//  - A node that creates the cluster (--init, first start) bootstraps it like the kv groups (log
//    entry 1/1): the first `metaVotersMax` (5) of the --peers by id are voters, the rest learners.
//  - Any other node without it (a node joining with --join, or a data dir written before the
//    meta group existed, restarted without --init) hosts it with EMPTY storage: the meta leader's
//    controller adds it as a learner once it is in the kv groups, and promotes it while there are
//    fewer than 5 voters (src/control/meta-membership.ts).
// A cluster created before the meta group existed gets one when its nodes restart with --init
// (which only creates what is missing).
//
// Also builds this node's record for the meta model's node registry.
//
// Called by: src/node/node.ts.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { LogIndex, Term } from '../base/ids.ts';
import { NO_NODE } from '../base/ids.ts';
import type { NodeRecord } from '../codec/meta.ts';
import { metaVotersMax } from '../control/meta-membership.ts';
import { metaGroupId } from '../models/meta.ts';
import { confStateOf } from '../raft/confchange.ts';
import { bootstrapEntry } from '../raft/storage.ts';
import type { DiskStore } from '../storage/disk-store.ts';
import type { NodeConfig } from './config.ts';

export async function prepareMetaGroup(store: DiskStore, config: NodeConfig, logger: Logger): Promise<void> {
  if (store.groupIds().includes(metaGroupId)) return;
  if (!config.init) {
    logger.info('the meta group starts empty here: its leader adds this node as a learner');
    return;
  }
  const ids = [...config.peers.keys()].sort((a, b) => a - b);
  const confState = confStateOf(ids.slice(0, metaVotersMax), ids.slice(metaVotersMax));
  await store.write(
    [
      {
        group: metaGroupId,
        entries: [bootstrapEntry(confState)],
        hardState: { term: 1 as Term, vote: NO_NODE, commit: 1 as LogIndex },
      },
    ],
    { sync: true },
  );
  logger.info({ voters: confState.voters, learners: confState.learners }, 'meta group initialized');
}

/** dram's version, from package.json (the agent's and the store's: one process is both). */
export function dramVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** This node's registry record (field order as the codec builds it, so records compare by JSON). */
export function selfRecord(config: NodeConfig, httpUrl: string, version: string): NodeRecord {
  return {
    id: config.nodeId,
    address: { member: httpUrl, client: httpUrl, raft: `${config.raft.host}:${config.raft.port}` },
    agentVersion: version,
    storeVersion: version,
    attributes: {},
    status: 'ACTIVE',
  };
}
