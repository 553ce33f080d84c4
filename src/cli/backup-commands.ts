// `dram backup`, `dram restore`, `dram recover` (docs/deploy.md, "Backup and restore", "Loss of
// quorum"). backup talks to a running cluster: every group's snapshot, each from a member that
// hosts it (GET /v1/admin/groups/:group/snapshot, after a linearizable read barrier), into one
// backup file (src/codec/backup.ts) on disk or in S3; a kv group the meta group records that no
// member's status listed is asked of every member, and a backup still without it is refused. restore and recover are offline tools on
// a stopped node's data dir (src/node/cluster-backup.ts). Called by src/cli/main.ts.

import type { Command } from 'commander';
import type { StatusAnswer } from '../api/admin-routes.ts';
import type { GroupId } from '../base/ids.ts';
import type { BackupGroup } from '../codec/backup.ts';
import { asGroupId, asNodeId } from '../base/ids.ts';
import { parsePeerList, resolveS3, type RawConfig } from '../node/config.ts';
import { call, describeError } from './http-client.ts';

/** A group's snapshot may be large and is taken between turns: give it time. */
const snapshotTimeoutMs = 120_000;

function s3Options(command: Command): Command {
  return command
    .option('--s3-endpoint <url>', 'an S3-compatible server (default: AWS S3); credentials from the AWS_* chain')
    .option('--s3-region <region>', 'S3 region (default us-east-1)')
    .option('--s3-path-style', 'address buckets as endpoint/bucket/key (most S3-compatible servers)');
}

function json(body: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(body));
}

/** Every member's base URL (the --url first), from the member list; the scheme is the --url's. */
async function memberUrls(url: string): Promise<string[]> {
  const answer = await call(url, 'GET', '/v1/admin/members');
  if (answer.status !== 200) return [url];
  const scheme = new URL(url).protocol;
  const listed = (json(answer.body) as { members: { http?: string }[] }).members.flatMap((member) =>
    member.http === undefined ? [] : [`${scheme}//${member.http}`],
  );
  return [url, ...listed.filter((other) => new URL(other).host !== new URL(url).host)];
}

/** Every group of the cluster with a member hosting it, from the members' status. */
async function groupHosts(urls: readonly string[]): Promise<{ clusterId: string; hosts: Map<GroupId, string> }> {
  const hosts = new Map<GroupId, string>();
  let clusterId: string | undefined;
  for (const url of urls) {
    const answer = await call(url, 'GET', '/v1/status').catch(() => undefined);
    if (answer?.status !== 200) continue;
    const status = json(answer.body) as StatusAnswer;
    clusterId ??= status.clusterId;
    for (const group of status.groups) if (!hosts.has(asGroupId(group.group))) hosts.set(asGroupId(group.group), url);
  }
  if (clusterId === undefined) throw new Error(`no member answered GET /v1/status (${urls.join(', ')})`);
  return { clusterId, hosts };
}

/** Each group's part of the timeframe as printed: index, term and configuration. */
function timeframeJson(groups: readonly BackupGroup[]): unknown[] {
  return groups.map(({ group, index, term, confState }) => ({
    group,
    index,
    term,
    voters: confState.voters,
    learners: confState.learners,
  }));
}

/**
 * Every group's snapshot: from a member whose status lists it, then, for a kv group the meta
 * group's snapshot records that no status listed, from any member that has it. A group still
 * missing is refused when the backup is assembled.
 */
async function groupSnapshots(
  urls: readonly string[],
  hosts: ReadonlyMap<GroupId, string>,
): Promise<Map<GroupId, Uint8Array>> {
  const { backupChecksum, groupsMissing } = await import('../node/cluster-backup.ts');
  const { backupGroup } = await import('../codec/backup.ts');
  const snapshots = new Map<GroupId, Uint8Array>();
  for (const [group, url] of [...hosts].sort(([a], [b]) => a - b))
    snapshots.set(group, await groupSnapshot(url, group));
  const parts = [...snapshots].map(([group, bytes]) => backupGroup(group, bytes, backupChecksum));
  for (const group of groupsMissing(parts))
    for (const url of urls) {
      const found = await groupSnapshot(url, group).catch(() => undefined);
      if (found === undefined) continue;
      snapshots.set(group, found);
      break;
    }
  return snapshots;
}

async function groupSnapshot(url: string, group: GroupId): Promise<Uint8Array> {
  const answer = await call(url, 'GET', `/v1/admin/groups/${group}/snapshot`, undefined, snapshotTimeoutMs);
  if (answer.status !== 200) throw new Error(`the snapshot of group ${group} from ${url}: ${describeError(answer)}`);
  return answer.body;
}

export function registerBackupCommands(program: Command, defaultUrl: string, fail: (message: string) => never): void {
  addBackupCommand(program, defaultUrl, fail);
  addRestoreCommand(program, fail);
  addRecoverCommand(program, fail);
}

function addBackupCommand(program: Command, defaultUrl: string, fail: (message: string) => never): void {
  s3Options(
    program
      .command('backup <destination>')
      .description(
        "save the whole cluster's state (every group's snapshot, KV included, with its timeframe) to a file or s3://bucket/key",
      )
      .option('--url <url>', 'any member', defaultUrl),
  ).action(async (destination: string, flags: RawConfig & { url: string }) => {
    const { assembleBackup, backupChecksum, BackupError, parseBackupLocation, writeBackup } = await import(
      '../node/cluster-backup.ts'
    );
    const { dramVersion } = await import('../node/meta-group.ts');
    const where = parseBackupLocation(destination);
    const urls = await memberUrls(flags.url);
    const { clusterId, hosts } = await groupHosts(urls);
    const snapshots = await groupSnapshots(urls, hosts);
    let bytes: Uint8Array;
    try {
      bytes = assembleBackup('cluster', clusterId, dramVersion(), Date.now(), snapshots);
    } catch (error) {
      if (error instanceof BackupError) fail(error.message);
      throw error;
    }
    await writeBackup(where, bytes, resolveS3(flags));
    const { decodeBackup } = await import('../codec/backup.ts');
    const written = decodeBackup(bytes, backupChecksum);
    console.log(
      JSON.stringify({ destination, clusterId, bytes: bytes.length, timeframe: timeframeJson(written.groups) }),
    );
  });
}

function addRestoreCommand(program: Command, fail: (message: string) => never): void {
  s3Options(
    program
      .command('restore <source>')
      .description(
        'write a backup (file or s3://bucket/key) into the EMPTY data dir of one member of a new cluster; then start each member with --init',
      )
      .requiredOption('--data-dir <dir>', "the new member's data dir (must be empty)")
      .requiredOption('--peers <list>', 'id=raftHost:port,... of every member of the new cluster (as for dram start)'),
  ).action(async (source: string, flags: RawConfig & { dataDir: string; peers: string }) => {
    const { BackupError, parseBackupLocation, readBackup, restoreDataDir } = await import('../node/cluster-backup.ts');
    const members = [...parsePeerList(flags.peers, 'peers').keys()];
    if (members.length === 0) fail('--peers: list every member of the new cluster');
    try {
      const backup = await readBackup(parseBackupLocation(source), resolveS3(flags));
      const { groups } = await restoreDataDir(backup, { dataDir: flags.dataDir, members });
      const kvGroups = groups.filter((group) => group !== 0).length;
      console.log(
        JSON.stringify({
          source,
          kind: backup.kind,
          clusterId: backup.clusterId,
          createdAt: new Date(backup.createdAtMs).toISOString(),
          timeframe: timeframeJson(backup.groups),
          next:
            backup.kind === 'cluster'
              ? `dram start --init --peers ${flags.peers} --kv-groups ${kvGroups} --cluster-id ${backup.clusterId} --data-dir ${flags.dataDir} ... on every member`
              : `dram start --init --peers ${flags.peers} --cluster-id ${backup.clusterId} --data-dir ${flags.dataDir} ... on every member (the kv groups start empty)`,
        }),
      );
    } catch (error) {
      if (error instanceof BackupError) fail(error.message);
      throw error;
    }
  });
}

function addRecoverCommand(program: Command, fail: (message: string) => never): void {
  program
    .command('recover')
    .description(
      "after quorum loss: rewrite a stopped survivor's data dir into a one-node cluster, then start it and let others join it",
    )
    .requiredOption('--data-dir <dir>', "the survivor's data dir (the node must be stopped)")
    .requiredOption('--node-id <id>', "the survivor's node id")
    .option('--force-new-cluster', 'required: this node becomes the only voter of every group')
    .action(async (flags: { dataDir: string; nodeId: string; forceNewCluster?: boolean }) => {
      if (flags.forceNewCluster !== true)
        fail('recover rewrites every group to this node alone: confirm with --force-new-cluster');
      const nodeId = Number(flags.nodeId);
      if (!Number.isSafeInteger(nodeId) || nodeId < 1) fail('--node-id: expected a positive integer');
      const { BackupError, recoverDataDir } = await import('../node/cluster-backup.ts');
      try {
        const groups = await recoverDataDir({ dataDir: flags.dataDir, nodeId: asNodeId(nodeId) });
        console.log(JSON.stringify({ dataDir: flags.dataDir, nodeId, groups }));
      } catch (error) {
        if (error instanceof BackupError) fail(error.message);
        throw error;
      }
    });
}
