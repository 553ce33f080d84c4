// Wires the configuration backup (src/data/config-backup.ts) into a node: the S3 adapter, the
// meta group of this node's host, the monotonic clock, and the log. Called by src/node/node.ts
// when --backup is given; stop() closes the S3 client after a write in progress.

import type { Logger } from 'pino';
import { ConfigBackup, configBackupDefaults } from '../data/config-backup.ts';
import { metaGroupId } from '../models/meta.ts';
import type { MultiRaftHost } from '../multiraft/host.ts';
import { s3Store } from './cluster-backup.ts';
import type { NodeConfig } from './config.ts';

export function startConfigBackup(
  config: NodeConfig,
  host: MultiRaftHost,
  version: string,
  logger: Logger,
): { stop(): Promise<void> } {
  const target = config.backup;
  if (target === undefined) throw new Error('startConfigBackup without --backup');
  const store = s3Store(config.s3);
  const where = `s3://${target.bucket}/${target.prefix}`;
  const backup = new ConfigBackup({
    ...configBackupDefaults,
    keep: target.keep,
    debounceMs: target.debounceMs,
    intervalMs: target.intervalMs,
    store,
    bucket: target.bucket,
    prefix: target.prefix,
    clusterId: config.clusterId,
    version,
    isLeader: () => host.groupStatus(metaGroupId)?.status.role === 'leader',
    appliedIndex: () => host.groupStatus(metaGroupId)?.appliedIndex ?? 0,
    capture: () => host.backupSnapshot(metaGroupId),
    nowMs: () => performance.now(),
    onWritten: (key, index, deleted) => {
      logger.info({ key: `s3://${target.bucket}/${key}`, metaIndex: index, deleted }, 'configuration backed up');
    },
    onFailed: (error) => {
      logger.warn({ err: error, where }, 'configuration backup failed; retrying');
    },
  });
  backup.start();
  logger.info({ where, keep: target.keep }, 'configuration backup on');
  return {
    stop: async () => {
      await backup.stop();
      store.close();
    },
  };
}
