// The mixed-release guard of placement (docs/placement.md, "Database shard groups"): during a
// rolling upgrade from a release before database shard groups were placed, no shard group is moved
// nor founded again. Such a release neither knows the `group.refound` meta command (its replica of
// the meta group stops on it) nor keeps the catalog's placement of a shard in step with the shard
// group's record and moves (its catalog would keep the old placement, silently). kv groups keep
// being placed: every release that places them records their moves alike.
//
// A node's release is what the node registry records it reports (`agentVersion`, its package.json
// version, registered by the node itself once it runs). A registered node reporting a version older
// than `shardGroupPlacementVersion`, or one that cannot be parsed (a node registered by another
// before it recorded itself), holds the shard groups' moves until it runs a newer release or leaves
// the registry. Pure.
//
// The same registry tells PUT /v1/placement/settings to refuse `moveStalledMs` while a node of a
// release that cannot read it is registered (it would stop on the command).
//
// Called by: src/control/placement-view.ts (the hold per shard group), src/control/placement-controller.ts
// (its log line, cluster.remove's drain), src/api/placement-routes.ts (GET /v1/placement, the settings).

import type { NodeId } from '../base/ids.ts';
import { compareSemver, parseSemver } from '../base/semver.ts';
import type { NodeRecord } from '../codec/meta.ts';

/** The first dram version that places database shard groups (moves them, founds them again). */
export const shardGroupPlacementVersion = '0.12.0-dev';

/**
 * The first dram version that reads the placement setting `moveStalledMs` (a settings command at
 * meta command version 2, src/codec/meta.ts): an older node stops on it, so it is refused while one
 * is registered.
 */
export const moveStalledSettingVersion = '0.12.0-dev';

export interface OlderNode {
  readonly node: NodeId;
  /** As the registry records it (may be empty: not reported yet). */
  readonly version: string;
}

/** Older nodes a hold's reason names (the others are counted). */
export const heldByNamedMax = 8;

/** Registered nodes reporting a version older than `since`, or one that is not a semantic version, by id. */
export function nodesOlderThan(nodes: readonly NodeRecord[], since: string): OlderNode[] {
  const floor = parseSemver(since);
  if (floor === undefined) throw new Error(`not a semantic version: ${since}`);
  return nodes
    .filter((node) => {
      const version = parseSemver(node.agentVersion);
      return version === undefined || compareSemver(version, floor) < 0;
    })
    .map((node) => ({ node: node.id, version: node.agentVersion }))
    .sort((a, b) => a.node - b.node);
}

/** The older nodes in words: `node 1 runs 0.1.0, node 3 (version not reported yet)`, at most heldByNamedMax named. */
export function describeOlderNodes(older: readonly OlderNode[]): string {
  const named = older
    .slice(0, heldByNamedMax)
    .map(({ node, version }) =>
      version === '' ? `node ${node} (version not reported yet)` : `node ${node} runs ${version}`,
    );
  if (older.length > heldByNamedMax) named.push(`${older.length - heldByNamedMax} more`);
  return named.join(', ');
}

/**
 * Why database shard groups are not moved nor founded again (a registered node runs a release
 * that does not place them), or undefined when every registered node places them.
 */
export function shardPlacementHold(nodes: readonly NodeRecord[]): string | undefined {
  const older = nodesOlderThan(nodes, shardGroupPlacementVersion);
  if (older.length === 0) return undefined;
  return `shard group moves held: ${describeOlderNodes(older)}, older than ${shardGroupPlacementVersion} (the first release that places shard groups); upgrade every node`;
}
