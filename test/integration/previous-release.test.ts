// A node of the previous release beside current ones, then a rolling upgrade of it (docs/deploy.md,
// "Upgrading"). The previous release is the newest one in releases.json, its tree extracted from
// its commit with `git archive` (test/support/previous-release.ts). A three-node cluster is
// formed with node 1 running that release and nodes 2 and 3 this checkout; every write is made
// through every node and read back through every node; every group's leadership (the meta group's
// too, so the old node runs the cluster's actions) is moved onto the old node with the current
// `dram failover` and off it again with the release's own; then node 1 is upgraded as an operator
// would (SIGTERM, restarted from the same data dir with this checkout's code, no --init) while
// the others take writes, and every acknowledged write is read back through every node.
//
// If the release speaks another peer protocol than this checkout, no mixed cluster can form: the
// second test checks instead that both sides refuse each other with a message naming the two
// versions (a stop-the-world upgrade, docs/deploy.md).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { protocolVersion } from '../../src/codec/wire.ts';
import { dramBinOf } from '../support/dram-process.ts';
import { extractPreviousRelease, repositoryRoot, type ExtractedRelease } from '../support/previous-release.ts';
import { dramCli, eventually, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const kvGroups = 4;
/** Writes through each node per round. */
const writesPerNode = 6;

let release: ExtractedRelease;
let releaseProtocol: number;
const clusters: ProcessCluster[] = [];

beforeAll(() => {
  release = extractPreviousRelease();
  const wire = readFileSync(join(release.root, 'src', 'codec', 'wire.ts'), 'utf8');
  const found = /export const protocolVersion = (\d+);/u.exec(wire)?.[1];
  if (found === undefined) throw new Error(`release ${release.version}: no protocolVersion in src/codec/wire.ts`);
  releaseProtocol = Number(found);
});

afterAll(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stopAll();
  release.remove();
});

function packageVersion(root: string): string {
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Node 1 from the release, nodes 2 and 3 from this checkout, all with --init. */
function mixedCluster(): ProcessCluster {
  const cluster = processCluster(3, { started: false });
  clusters.push(cluster);
  onTestFailed(() => {
    for (const id of cluster.ids) console.error(`--- node ${id} ---\n${cluster.logs(id).slice(-4000)}`);
  });
  cluster.start(1, { init: true, sourceRoot: release.root });
  cluster.start(2);
  cluster.start(3);
  return cluster;
}

interface Status {
  readonly groups: readonly { readonly group: number; readonly leader: number }[];
}

async function status(cluster: ProcessCluster, id: number): Promise<Status> {
  return JSON.parse((await request(`${cluster.url(id)}/v1/status`)).text) as Status;
}

/** Waits until every node lists the meta group and every kv group, each with a leader. */
async function everyGroupLed(cluster: ProcessCluster): Promise<void> {
  await eventually(async () => {
    for (const id of cluster.ids) {
      const groups = (await status(cluster, id)).groups;
      if (groups.length !== kvGroups + 1 || groups.some((g) => g.leader === 0)) return undefined;
    }
    return true;
  }, 200);
}

async function nodeInfo(cluster: ProcessCluster, id: number): Promise<{ version: string; status: string }> {
  const body = JSON.parse((await request(`${cluster.url(id)}/api/unstable/info/node`)).text) as {
    agent_version: { number: string };
    node_status: string;
  };
  return { version: body.agent_version.number, status: body.node_status };
}

/** Writes `count` keys through node `id` (retrying while a group has no leader); records each acknowledged one. */
async function writeThrough(
  cluster: ProcessCluster,
  id: number,
  round: string,
  acknowledged: Map<string, string>,
): Promise<void> {
  for (let k = 0; k < writesPerNode; k++) {
    const key = `${round}-n${id}-${k}`;
    const value = `${key}@${Date.now()}`;
    await eventually(async () => {
      const put = await request(`${cluster.url(id)}/v1/kv/${key}`, 'PUT', value);
      return put.status === 200 ? true : undefined;
    });
    acknowledged.set(key, value);
  }
}

/** Every acknowledged key, read linearizably through every node, has its last acknowledged value. */
async function readEverywhere(cluster: ProcessCluster, acknowledged: ReadonlyMap<string, string>): Promise<void> {
  for (const id of cluster.ids)
    for (const [key, value] of acknowledged) {
      const text = await eventually(async () => {
        const got = await request(`${cluster.url(id)}/v1/kv/${key}`);
        return got.status === 200 || got.status === 404 ? `${got.status} ${got.text}` : undefined;
      });
      expect({ node: id, key, read: text }).toEqual({ node: id, key, read: `200 ${value}` });
    }
}

/** Moves every group's leadership to `to` with `dram failover` (`bin`: whose CLI), asked of node `via`. */
async function leadAll(cluster: ProcessCluster, to: number, via: number, bin?: string): Promise<void> {
  for (let group = 0; group <= kvGroups; group++) {
    const args = ['failover', String(group), '--to', String(to), '--url', cluster.url(via)];
    const moved = await dramCli(args, 120_000, bin);
    expect({ group, code: moved.code, err: moved.err }).toEqual({ group, code: 0, err: '' });
    await eventually(async () => {
      const led = (await status(cluster, to)).groups.find((g) => g.group === group);
      return led?.leader === to ? true : undefined;
    }, 150);
  }
}

describe(`a node of the previous release beside current ones`, () => {
  it('serves, leads and is upgraded in place with no acknowledged write lost', async (context) => {
    if (releaseProtocol !== protocolVersion) context.skip();
    const cluster = mixedCluster();
    await everyGroupLed(cluster);
    // Node 1 really runs the release (its package.json's version), the others this checkout.
    const current = packageVersion(repositoryRoot);
    expect((await nodeInfo(cluster, 1)).version).toBe(packageVersion(release.root));
    expect((await nodeInfo(cluster, 2)).version).toBe(current);

    const acknowledged = new Map<string, string>();
    for (const id of cluster.ids) await writeThrough(cluster, id, 'mixed', acknowledged);
    await readEverywhere(cluster, acknowledged);

    // The old node leads everything (the meta group included: it runs the actions that follow).
    await leadAll(cluster, 1, 2);
    for (const id of cluster.ids) await writeThrough(cluster, id, 'old-leads', acknowledged);
    await readEverywhere(cluster, acknowledged);
    // And hands it all back, through the release's own CLI and HTTP API.
    await leadAll(cluster, 2, 1, dramBinOf(release.root));
    for (const id of cluster.ids) await writeThrough(cluster, id, 'new-leads', acknowledged);

    // The rolling upgrade of node 1: stopped cleanly, restarted from its data dir with this checkout.
    await cluster.kill(1, 'SIGTERM');
    for (const id of [2, 3]) await writeThrough(cluster, id, 'one-down', acknowledged);
    cluster.start(1, { init: false });
    await eventually(async () => {
      const info = await nodeInfo(cluster, 1);
      return info.status === 'HEALTHY' && info.version === current ? true : undefined;
    }, 200);
    await everyGroupLed(cluster);
    for (const id of cluster.ids) await writeThrough(cluster, id, 'upgraded', acknowledged);
    await readEverywhere(cluster, acknowledged);
    // The upgraded node can lead again.
    await leadAll(cluster, 1, 3);
    await readEverywhere(cluster, acknowledged);
  }, 600_000);

  it('refuses a peer of another protocol version with a message naming both', async (context) => {
    if (releaseProtocol === protocolVersion) context.skip();
    const cluster = mixedCluster();
    const refusal = new RegExp(`protocol version ${releaseProtocol}, expected ${protocolVersion}`, 'u');
    await eventually(() => Promise.resolve(refusal.test(cluster.logs(2)) ? true : undefined), 100);
    const seen = `protocol version ${protocolVersion}, expected ${releaseProtocol}`;
    await eventually(() => Promise.resolve(cluster.logs(1).includes(seen) ? true : undefined), 100);
  }, 120_000);
});
