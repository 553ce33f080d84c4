// The meta group and the Replicante agent API with real processes on 127.0.0.1: three nodes
// created with --init host group 0, record the cluster id and register themselves, report HEALTHY
// with group "0" in info/shards; a fourth node joining with --join becomes a meta learner and then
// a voter (fewer than 5); actions scheduled through different nodes run in order, each once, and
// are found from any node; `dram actions` lists, shows, schedules and cancels. Every wait is a
// bounded poll that fails with a message.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
let cluster: ProcessCluster;

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it expects
async function json<T>(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const answer = await request(url, method, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  return { status: answer.status, body: (answer.text === '' ? undefined : JSON.parse(answer.text)) as T };
}

async function healthy(id: number): Promise<true | undefined> {
  const node = await json<{ node_status: unknown }>(`${cluster.url(id)}/api/unstable/info/node`);
  return node.body.node_status === 'HEALTHY' ? true : undefined;
}

beforeAll(async () => {
  cluster = processCluster(3);
  for (const id of cluster.ids) await eventually(() => healthy(id), 200);
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

describe('the meta group on real processes', () => {
  it('records the cluster id and every node, and lists group 0 in info/shards', async () => {
    await eventually(async () => {
      const store = await json<{ cluster_id: string; attributes: Record<string, unknown> }>(
        `${cluster.url(1)}/api/unstable/info/store`,
      );
      return store.body.attributes['dram.io/nodes-registered'] === 3 ? store : undefined;
    }, 100);
    const shards = await json<{ shards: { id: string; role: unknown }[] }>(
      `${cluster.url(2)}/api/unstable/info/shards`,
    );
    expect(shards.body.shards.map((s) => s.id)).toEqual(['0', '1', '2', '3', '4']);
  });

  it('runs actions scheduled through every node in order, each once, found from any node', async () => {
    const ids: string[] = [];
    for (const id of [1, 2, 3, 1, 2, 3]) {
      const answer = await json<{ id: string }>(`${cluster.url(id)}/api/unstable/action`, 'POST', {
        kind: 'agent.replicante.io/test.loop',
        args: { target: 3 },
      });
      expect(answer.status).toBe(200);
      ids.push(answer.body.id);
    }
    let previousFinish = '';
    for (const id of ids) {
      const record = await eventually(async () => {
        const answer = await json<{
          state: { phase: string; payload: unknown };
          scheduled_time: string;
          finished_time: string | null;
        }>(`${cluster.url(3)}/api/unstable/action/${id}`);
        return answer.status === 200 && answer.body.finished_time !== null ? answer.body : undefined;
      }, 100);
      expect(record.state).toMatchObject({ phase: 'DONE', payload: { count: 3, target: 3 } });
      const finishedAt = record.finished_time ?? '';
      expect(finishedAt >= previousFinish).toBe(true);
      previousFinish = finishedAt;
    }
  }, 30_000);

  it('dram actions schedule | ls | show | cancel', async () => {
    const run = promisify(execFile);
    const url = cluster.url(2);
    const scheduled = await run('node', [
      bin,
      'actions',
      'schedule',
      'agent.replicante.io/test.loop',
      '{"target": 10000}',
      '--url',
      url,
      '--json',
    ]);
    const id = (JSON.parse(scheduled.stdout) as { id: string }).id;
    const listed = await run('node', [bin, 'actions', 'ls', '--url', url]);
    expect(listed.stdout).toContain(id);
    const cancelled = await run('node', [bin, 'actions', 'cancel', id, '--url', url, '--json']);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id, state: { phase: 'FAILED' } });
    const shown = await run('node', [bin, 'actions', 'show', id, '--url', cluster.url(1), '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      id,
      state: { phase: 'FAILED', error: { error_msg: 'cancelled: cancelled by an operator' } },
    });
  }, 30_000);

  it('a joining node becomes a meta learner, then a voter while there are fewer than 5', async () => {
    cluster.start(4, { init: false, join: cluster.url(2) });
    await eventually(async () => {
      const status = await json<{ groups: { group: number; voters: number[] }[] }>(`${cluster.url(1)}/v1/status`);
      return status.body.groups.find((g) => g.group === 0)?.voters.includes(4) === true ? true : undefined;
    }, 300);
    await eventually(() => healthy(4), 200);
  }, 60_000);
});
