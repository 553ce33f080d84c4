// PUT /v1/placement/settings and GET /v1/placement on an in-process three-node cluster with the meta
// group (test/control/meta-cluster.ts): moveStalledMs is recorded like the other settings, from any
// node; a bad value is refused with 400 DRAM_ERR_BAD_REQUEST and records nothing on any node. While
// a node of an older release is registered, the answer says why shard groups are not moved, and
// moveStalledMs (which that node could not read) is refused with 409 DRAM_ERR_OLDER_NODES.

import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMetaCommand } from '../../src/codec/meta.ts';
import { moveStalledMsMax, moveStalledMsMin } from '../../src/codec/meta-placement.ts';
import type { PlacementAnswer } from '../../src/api/placement-routes.ts';
import { shardGroupPlacementVersion } from '../../src/control/release-guard.ts';
import { metaGroupId } from '../../src/models/meta.ts';
import { agreedLeader, startMetaCluster, waitFor, type MetaCluster, type MetaNode } from '../control/meta-cluster.ts';
import { nodeRecord } from '../support/node-record.ts';
import { errorCode } from './cluster.ts';

let cluster: MetaCluster;
let leader: MetaNode;
let follower: MetaNode;

beforeAll(async () => {
  cluster = startMetaCluster();
  leader = await agreedLeader(cluster, metaGroupId);
  follower = [...cluster.nodes.values()].find((node) => node.id !== leader.id) ?? leader;
});

afterAll(async () => {
  await cluster.stop();
});

function putSettings(node: MetaNode, body: unknown): Promise<LightMyRequestResponse> {
  return node.app.inject({
    method: 'PUT',
    url: '/v1/placement/settings',
    payload: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
}

async function placement(node: MetaNode): Promise<PlacementAnswer> {
  const response = await node.app.inject({ url: '/v1/placement' });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<PlacementAnswer>();
}

function metaApplied(node: MetaNode): number {
  return node.host.status().find((hosted) => hosted.group === metaGroupId)?.appliedIndex ?? 0;
}

/** Waits until every node's meta replica has applied what the leader has. */
async function everyNodeApplied(): Promise<void> {
  const applied = metaApplied(leader);
  await waitFor('every meta replica to apply what the leader applied', () =>
    [...cluster.nodes.values()].every((node) => metaApplied(node) >= applied) ? true : undefined,
  );
}

describe('PUT /v1/placement/settings moveStalledMs', () => {
  it('records it from any node and shows it in GET /v1/placement, with the defaults of the others', async () => {
    const response = await putSettings(follower, { moveStalledMs: 12_000 });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      settings: { nodeGoneGraceMs: 60_000, movesPerNodeMax: 2, moveStalledMs: 12_000 },
    });
    await everyNodeApplied();
    for (const node of cluster.nodes.values())
      expect(node.model.placementSettings()).toEqual({ moveStalledMs: 12_000 });
    expect((await placement(leader)).settings).toEqual({
      nodeGoneGraceMs: 60_000,
      movesPerNodeMax: 2,
      moveStalledMs: 12_000,
    });
  });

  it('refuses a value out of bounds or of another type with 400 DRAM_ERR_BAD_REQUEST, and records nothing', async () => {
    const before = leader.model.placementSettings();
    for (const moveStalledMs of [moveStalledMsMin - 1, moveStalledMsMax + 1, 0, -5000, 7000.5, '7000', null, []]) {
      for (const node of [leader, follower]) {
        // With a good setting beside it: nothing of the request is recorded.
        const response = await putSettings(node, { nodeGoneGraceMs: 1000, moveStalledMs });
        expect(response.statusCode, `${JSON.stringify(moveStalledMs)}: ${response.body}`).toBe(400);
        expect(errorCode(response)).toBe('DRAM_ERR_BAD_REQUEST');
        expect(response.json<{ message: string }>().message).toMatch(/moveStalledMs/);
      }
    }
    await everyNodeApplied();
    for (const node of cluster.nodes.values()) expect(node.model.placementSettings()).toEqual(before);
  });
});

describe('GET /v1/placement in a mixed-release cluster', () => {
  it('says shard groups are not moved while a registered node reports an older version, naming it, and refuses moveStalledMs', async () => {
    expect((await placement(leader)).shardMovesHeld).toBeNull();
    const propose = (version: string) =>
      leader.host.propose(
        metaGroupId,
        encodeMetaCommand({ type: 'node.upsert', node: nodeRecord(2, 'ACTIVE', version) }),
      );
    await propose('0.1.0');
    await everyNodeApplied();
    for (const node of [leader, follower]) {
      const held = (await placement(node)).shardMovesHeld;
      expect(held).toContain(`node 2 runs 0.1.0, older than ${shardGroupPlacementVersion}`);
    }
    // moveStalledMs would stop node 2 (a meta command it cannot read): refused, nothing recorded;
    // the settings that release reads are recorded as before.
    const before = leader.model.placementSettings();
    for (const node of [leader, follower]) {
      const refused = await putSettings(node, { nodeGoneGraceMs: 3000, moveStalledMs: 20_000 });
      expect(refused.statusCode, refused.body).toBe(409);
      expect(errorCode(refused)).toBe('DRAM_ERR_OLDER_NODES');
      expect(refused.json<{ details: unknown }>().details).toEqual({ nodes: [{ node: 2, version: '0.1.0' }] });
    }
    await everyNodeApplied();
    for (const node of cluster.nodes.values()) expect(node.model.placementSettings()).toEqual(before);
    expect((await putSettings(follower, { nodeGoneGraceMs: 3000 })).statusCode).toBe(200);
    // Upgraded: it registers its new version, and the hold ends.
    await propose(nodeRecord(2).agentVersion);
    await everyNodeApplied();
    expect((await placement(leader)).shardMovesHeld).toBeNull();
    expect((await putSettings(follower, { moveStalledMs: 20_000 })).statusCode).toBe(200);
  });
});
