// Keeps each database shard group's model (src/models/shard.ts) in step with the catalog: pure,
// from what this node sees (the shard groups it hosts, whether it leads each, their models, and
// the meta model's catalog) to the commands to propose to each group. Run by src/node/shard-sync.ts
// on every node, once its meta model is current (a restarting node's older catalog must not drop
// a version the group already holds).
//
//  - the group's leader records the manifest of each version of the catalog that has the shard
//    (current, and a reload's next): `shard.version`, the shard's files and the global files;
//  - the leader drops the versions the catalog no longer has, older than its newest one
//    (`shard.retain`): a replaced or superseded version goes with its replicas' states;
//  - the leader drops the load states of nodes outside the group's configuration as it applied
//    it (`shard.forget`): a node removed from the group takes its states with it, as the catalog's
//    placement drops them (src/models/meta-databases.ts `placeShard`);
//  - every member records its own load state of each version the group holds, as the download
//    controller recorded it in the catalog (`loaded`, or `failed` with the error), when the
//    group's record differs (`shard.replica`, forwarded to the leader by a follower).
// Proposing the same command twice changes nothing, so a pass that races the previous one's
// entries is harmless.
//
// Called by: src/node/shard-sync.ts; test/control/.

import type { GroupId, NodeId } from '../base/ids.ts';
import type { DatabaseVersion } from '../codec/meta-databases.ts';
import type { ShardCommand, ShardVersion } from '../codec/shard.ts';
import { replicaView, type DatabasesModel } from '../models/meta-databases.ts';
import type { ShardModel } from '../models/shard.ts';

/** A command without its request id (the proposer adds one). */
export type ShardCommandDraft = ShardCommand extends infer C
  ? C extends ShardCommand
    ? Omit<C, 'request'>
    : never
  : never;

export interface HostedShardGroup {
  readonly group: GroupId;
  readonly database: string;
  readonly shard: string;
  /** This node leads the group and has applied an entry of its term (its model is current). */
  readonly leading: boolean;
  /** The group's members (voters and learners, in and out of a joint change) as this node applied them. */
  readonly members: readonly NodeId[];
  readonly model: Pick<ShardModel, 'versions' | 'replica' | 'replicas'>;
}

export interface ShardSyncView {
  readonly self: NodeId;
  readonly catalog: Pick<DatabasesModel, 'database'>;
  readonly groups: readonly HostedShardGroup[];
}

/** The shard's part of a catalog version: what its group's model records. */
export function shardVersionOf(version: DatabaseVersion, shard: string): ShardVersion | undefined {
  const found = version.shards.find((entry) => entry.shard === shard);
  if (found === undefined) return undefined;
  return { version: version.version, listedMs: version.listedMs, files: found.files, global: version.global };
}

export function planShardSync(view: ShardSyncView): { group: GroupId; command: ShardCommandDraft }[] {
  const steps: { group: GroupId; command: ShardCommandDraft }[] = [];
  for (const hosted of view.groups) {
    const record = view.catalog.database(hosted.database);
    if (record === undefined) continue; // dropped: hosting stops the group
    const wanted = [record.current, record.next].flatMap((version) => {
      const part = version === null ? undefined : shardVersionOf(version, hosted.shard);
      return part === undefined ? [] : [part];
    });
    const held = new Set(hosted.model.versions().map((version) => version.version));
    if (hosted.leading) {
      for (const version of wanted)
        if (!held.has(version.version))
          steps.push({
            group: hosted.group,
            command: { type: 'shard.version', database: hosted.database, shard: hosted.shard, version },
          });
      const newest = Math.max(0, ...wanted.map((version) => version.version));
      const keep = wanted.map((version) => version.version);
      if ([...held].some((version) => version < newest && !keep.includes(version)))
        steps.push({ group: hosted.group, command: { type: 'shard.retain', versions: keep } });
      const gone = [...new Set(hosted.model.replicas().map((state) => state.node))].filter(
        (node) => !hosted.members.includes(node),
      );
      if (gone.length > 0) steps.push({ group: hosted.group, command: { type: 'shard.forget', nodes: gone } });
    }
    for (const version of wanted) {
      if (!held.has(version.version)) continue;
      const catalog = replicaView(record, version.version, hosted.shard, view.self);
      if (catalog.state !== 'loaded' && catalog.state !== 'failed') continue;
      const recorded = hosted.model.replica(version.version, view.self);
      if (recorded.state === catalog.state && recorded.error === catalog.error) continue;
      steps.push({
        group: hosted.group,
        command: {
          type: 'shard.replica',
          version: version.version,
          node: view.self,
          state: catalog.state,
          error: catalog.error,
          atMs: catalog.atMs ?? 0,
        },
      });
    }
  }
  return steps;
}
