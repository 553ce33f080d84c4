// A node that fails to load a database shard, on real processes (docs/placement.md, "Database shard
// groups"): four nodes (kv groups at three copies, so placement is on) and a real S3 server
// (s3rver) holding a one-shard database with three copies, so one node holds no copy. The shard's
// objects are deleted from S3, then a node holding the shard is killed past the grace period: the
// move that re-creates its copy adds the fourth node, whose download fails (the object is gone).
// The move is cancelled at once with the node and the error in the history, the failure is listed
// in `GET /v1/placement`'s `loadFailures`, and the group stays `under_replicated`, its detail
// naming the node kept out (no other node can take the copy), rather than moving in a loop.
// Every wait is a bounded poll.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlacementAnswer } from '../../src/api/placement-routes.ts';
import { startSampleS3, type SampleS3 } from '../support/sample-s3.ts';
import { eventually, processCluster, type ProcessCluster } from './cluster-process.ts';
import { addShop, json, kvGroupsLed, stopDbCluster } from './db-cluster.ts';

const root = mkdtempSync(join(tmpdir(), 'dram-db-failed-load-it-'));
let s3: SampleS3;
let cluster: ProcessCluster;

interface Shard {
  shard: string;
  group: number | null;
  members: { node: number; state: string }[];
}

beforeAll(async () => {
  s3 = await startSampleS3(root, 1);
  const clusterId = `db-failed-load-it-${process.pid}-${Date.now()}`;
  cluster = processCluster(4, { args: [...s3.nodeArgs, '--cluster-id', clusterId] });
  await kvGroupsLed(cluster, 4);
}, 240_000);

afterAll(() => stopDbCluster(cluster, s3, root));

describe('a node that fails to load a shard', () => {
  it('its move is cancelled at once, the failure listed, and the group left under-replicated with the reason', async () => {
    await addShop(cluster, s3.source, 3, 3000);
    // Three loaded copies of the one shard.
    const shard = await eventually(async () => {
      const answer = await json(`${cluster.url(1)}/v1/databases/shop/shards`);
      const shards = answer.status === 200 ? (answer.body as { shards: Shard[] }).shards : [];
      const [only] = shards;
      const loaded = only?.members.filter((member) => member.state === 'loaded').length ?? 0;
      return shards.length === 1 && loaded === 3 ? only : undefined;
    }, 600);
    expect(await s3.deleteShardObjects()).toBeGreaterThan(0);

    // Kill a holder that does not lead the meta group; the node holding no copy is the only one left to take it.
    const status = (await json(`${cluster.url(1)}/v1/status`)).body as { groups: { group: number; leader: number }[] };
    const metaLeader = status.groups.find((group) => group.group === 0)?.leader ?? 0;
    const holders = shard.members.map((member) => member.node);
    const victim = holders.find((node) => node !== metaLeader) ?? 0;
    const spare = cluster.ids.find((id) => !holders.includes(id)) ?? 0;
    expect(victim).toBeGreaterThan(0);
    expect(spare).toBeGreaterThan(0);
    await cluster.kill(victim);
    const live = cluster.ids.find((id) => id !== victim) ?? 1;

    const failedMove = `node ${spare} failed to load the shard:`;
    const answer = await eventually(
      async () => {
        const placement = await json(`${cluster.url(live)}/v1/placement`);
        if (placement.status !== 200) return undefined;
        const body = placement.body as PlacementAnswer;
        const group = body.groups.find((entry) => entry.kind === 'db');
        const done =
          body.history.some((move) => move.add === spare && move.detail.startsWith(failedMove)) &&
          body.loadFailures.some((failure) => failure.node === spare) &&
          group?.state === 'under_replicated';
        return done ? body : undefined;
      },
      600,
      200,
    );
    const cancelled = answer.history.find((move) => move.add === spare && move.outcome === 'cancelled');
    expect(cancelled?.detail).toMatch(new RegExp(`^${failedMove} .+`));
    expect(answer.loadFailures).toMatchObject([{ database: 'shop', shard: shard.shard, node: spare, version: 1 }]);
    const group = answer.groups.find((entry) => entry.kind === 'db');
    expect(group?.detail).toContain(failedMove);
    expect(answer.moves.filter((move) => move.group === group?.group && move.add === spare)).toEqual([]);
  }, 300_000);
});
