// Steps the database placement tests on real processes share (db-placement.test.ts,
// db-failed-load.test.ts): a JSON call, the teardown, the wait until every kv group is led (DuckDB makes a
// start slow on a busy machine), and the database `shop` added with a short grace period. Every
// wait is a bounded poll.

import { rmSync } from 'node:fs';
import type { SampleS3 } from '../support/sample-s3.ts';
import { eventually, groupStatus, request, type ProcessCluster } from './cluster-process.ts';

export async function json(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: unknown }> {
  const answer = await request(url, method, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  return { status: answer.status, body: answer.text === '' ? {} : (JSON.parse(answer.text) as unknown) };
}

/** Waits until `kvGroups` kv groups have a leader. */
export async function kvGroupsLed(cluster: ProcessCluster, kvGroups: number): Promise<void> {
  await eventually(async () => {
    const leaders = new Set<number>();
    for (const id of cluster.ids)
      for (const group of await groupStatus(cluster.url(id)))
        if (group.role === 'leader' && group.group > 0) leaders.add(group.group);
    return leaders.size === kvGroups ? true : undefined;
  }, 600);
}

/** Sets the grace period, then adds `shop` from `source` with `replicas` copies per shard. */
export async function addShop(
  cluster: ProcessCluster,
  source: string,
  replicas: number,
  graceMs: number,
): Promise<void> {
  // Retried while the meta group settles just after the cluster formed (503).
  await eventually(async () => {
    const grace = await json(`${cluster.url(1)}/v1/placement/settings`, 'PUT', { nodeGoneGraceMs: graceMs });
    return grace.status === 200 ? true : undefined;
  }, 100);
  // Retried while too few nodes are registered ACTIVE, just after the cluster formed (400).
  await eventually(async () => {
    const added = await json(`${cluster.url(1)}/v1/databases`, 'POST', { name: 'shop', source, replicas });
    return added.status === 202 ? true : undefined;
  }, 100);
}

/** Stops the nodes and the S3 server and deletes the test's directory. */
export async function stopDbCluster(cluster: ProcessCluster, s3: SampleS3, root: string): Promise<void> {
  await cluster.stopAll();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}
