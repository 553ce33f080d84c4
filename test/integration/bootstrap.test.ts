// A cluster built with agent actions alone, on five real processes on 127.0.0.1, each started with
// neither --init nor --join: each reports NOT_IN_CLUSTER and refuses every other action (4xx in
// Replicante's shape, nothing scheduled); cluster.init on node 1 creates the cluster; cluster.add on
// node 1 brings node 2 in, and cluster.join on node 3 joins it through node 2; then, while a
// test.loop runs, the meta leader is killed with SIGKILL and nodes 4 (cluster.add) and 5
// (cluster.join) join anyway: the new meta leader resumes the loop, which ends with its count
// exactly at its target (each step applied once), and every action finishes DONE; `dram members
// remove` takes the dead leader out (the action cluster.remove, waited for). Every wait is a
// bounded poll that fails with a message.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, groupStatus, processCluster, request, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
const groupCount = 2;
const nodeArgs = { init: false, args: ['--kv-groups', String(groupCount)] } as const;
const uuid = (n: number): string => `b0075000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
let cluster: ProcessCluster;

interface Execution {
  id: string;
  kind: string;
  finished_time: string | null;
  state: { phase: string; payload: Record<string, unknown> | null; error: unknown };
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it expects
async function json<T>(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const answer = await request(url, method, body === undefined ? undefined : JSON.stringify(body), 'application/json');
  return { status: answer.status, body: (answer.text === '' ? undefined : JSON.parse(answer.text)) as T };
}

async function nodeStatus(id: number): Promise<unknown> {
  return (await json<{ node_status: unknown }>(`${cluster.url(id)}/api/unstable/info/node`)).body.node_status;
}

function schedule(id: number, fields: Record<string, unknown>) {
  return json<Record<string, unknown>>(`${cluster.url(id)}/api/unstable/action`, 'POST', fields);
}

/** The action as node `id` shows it, once it is finished (DONE or FAILED). */
async function finished(id: number, action: string, tries = 600): Promise<Execution> {
  return eventually(async () => {
    const answer = await json<Execution | undefined>(`${cluster.url(id)}/api/unstable/action/${action}`);
    return answer.status === 200 && answer.body?.finished_time !== null ? answer.body : undefined;
  }, tries);
}

/** Node `id` has applied `voters` (and no learners) as the voters of every kv group. */
async function votersAre(id: number, voters: readonly number[]): Promise<true | undefined> {
  const groups = await groupStatus(cluster.url(id));
  return groups.length === groupCount &&
    groups.every((g) => [...g.voters].sort().join(' ') === voters.join(' ') && g.learners.length === 0)
    ? true
    : undefined;
}

async function metaLeader(id: number): Promise<number | undefined> {
  const status = await json<{ groups: { group: number; leader: number }[] }>(`${cluster.url(id)}/v1/status`);
  const leader = status.body.groups.find((g) => g.group === 0)?.leader ?? 0;
  return leader === 0 ? undefined : leader;
}

function logsOf(ids: readonly number[]): string {
  return ids.map((id) => `--- node ${id} ---\n${cluster.logs(id).slice(-3000)}`).join('\n');
}

beforeAll(async () => {
  cluster = processCluster(0);
  for (let id = 1; id <= 5; id++) cluster.start(id, nodeArgs);
  for (let id = 1; id <= 5; id++)
    await eventually(async () => ((await nodeStatus(id)) === 'NOT_IN_CLUSTER' ? true : undefined), 200);
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

describe('a cluster built with agent actions', () => {
  it('a node started with neither --init nor --join is NOT_IN_CLUSTER and refuses all but cluster.init and cluster.join', async () => {
    expect((await json(`${cluster.url(1)}/api/unstable/info/shards`)).body).toEqual({ shards: [] });
    const refusals = [
      [{ kind: 'agent.replicante.io/test.success' }, 409, 'not in a cluster'],
      [{ kind: 'example.com/no.such-kind' }, 400, 'unknown action kind'],
      [{ kind: 'agent.replicante.io/cluster.join', args: { node: 'ftp://10.0.0.1' } }, 400, 'args.node'],
      [{ kind: 'agent.replicante.io/cluster.join', args: { node: 'x'.repeat(70_000) } }, 400, 'larger than'],
      [{ kind: 'agent.replicante.io/cluster.init', id: 'not-a-uuid' }, 400, 'UUID'],
    ] as const;
    for (const [body, status, message] of refusals) {
      const answer = await schedule(1, body);
      expect({ body, status: answer.status }).toEqual({ body, status });
      expect(answer.body['error']).toBe(true);
      expect(String(answer.body['error_msg'])).toContain(message);
    }
    const own = await json<{ code: string }>(`${cluster.url(1)}/v1/actions`, 'POST', {
      kind: 'agent.replicante.io/test.success',
    });
    expect([own.status, own.body.code]).toEqual([409, 'DRAM_ERR_NOT_IN_CLUSTER']);
    for (const list of ['queue', 'finished'])
      expect((await json(`${cluster.url(1)}/api/unstable/actions/${list}`)).body).toEqual({ actions: [] });
  });

  it('cluster.init on node 1 creates the cluster, and its record is DONE in the log', async () => {
    expect(await schedule(1, { kind: 'agent.replicante.io/cluster.init', id: uuid(1) })).toEqual({
      status: 200,
      body: { id: uuid(1) },
    });
    // The node's own record until the log has it, then the log's: found either way (the node is
    // briefly unreachable while its waiting API gives way to the cluster's).
    await eventually(async () =>
      (await json<Execution>(`${cluster.url(1)}/api/unstable/action/${uuid(1)}`)).status === 200 ? true : undefined,
    );
    const done = await finished(1, uuid(1));
    expect(done.state).toEqual({ phase: 'DONE', payload: { cluster_id: 'dram', node_id: 1 }, error: null });
    await eventually(async () => ((await nodeStatus(1)) === 'HEALTHY' ? true : undefined), 200);
    // dram's own facts: the data dir holds the log now.
    await eventually(async () => {
      const node = await json<{ attributes: Record<string, unknown> }>(`${cluster.url(1)}/api/unstable/info/node`);
      const bytes = node.body.attributes['dram.io/data-dir-bytes'];
      return typeof bytes === 'number' && bytes > 0 ? true : undefined;
    }, 200);
    // The id is taken now: a second action with it is refused and nothing is scheduled.
    const again = await schedule(1, { kind: 'agent.replicante.io/test.success', id: uuid(1) });
    expect(again.status).toBe(409);
    const initAgain = await schedule(1, { kind: 'agent.replicante.io/cluster.init' });
    expect(initAgain.status).toBe(409);
    expect((await json<{ queue: unknown[] }>(`${cluster.url(1)}/v1/actions`)).body.queue).toEqual([]);
  }, 60_000);

  it('cluster.add on node 1 brings node 2 in; cluster.join on node 3 joins through node 2', async () => {
    expect(
      (await schedule(1, { kind: 'agent.replicante.io/cluster.add', id: uuid(2), args: { node: cluster.url(2) } }))
        .status,
    ).toBe(200);
    const added = await finished(1, uuid(2));
    expect(added.state, logsOf([1, 2])).toMatchObject({ phase: 'DONE', payload: { node: cluster.url(2), node_id: 2 } });
    expect(
      (await schedule(3, { kind: 'agent.replicante.io/cluster.join', id: uuid(3), args: { node: cluster.url(2) } }))
        .status,
    ).toBe(200);
    const joined = await finished(3, uuid(3));
    expect(joined.state, logsOf([2, 3])).toEqual({
      phase: 'DONE',
      payload: { node: cluster.url(2), node_id: 3 },
      error: null,
    });
    for (const id of [1, 2, 3]) await eventually(() => votersAre(id, [1, 2, 3]), 200);
    // Found from any node: the record is in the cluster's log.
    expect((await finished(1, uuid(3))).state.phase).toBe('DONE');
  }, 120_000);

  it('two more join while the meta leader is killed mid-action; the queue moves on and each action takes effect once', async () => {
    const leader = await eventually(() => metaLeader(1), 100);
    const survivor = [1, 2, 3].find((id) => id !== leader) ?? 1;
    const target = 25;
    expect(
      (await schedule(survivor, { kind: 'agent.replicante.io/test.loop', id: uuid(10), args: { target } })).status,
    ).toBe(200);
    expect(
      (
        await schedule(survivor, {
          kind: 'agent.replicante.io/cluster.add',
          id: uuid(11),
          args: { node: cluster.url(4) },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await schedule(5, {
          kind: 'agent.replicante.io/cluster.join',
          id: uuid(12),
          args: { node: cluster.url(survivor) },
        })
      ).status,
    ).toBe(200);
    // Kill the meta leader while the loop runs.
    await eventually(async () => {
      const loop = await json<Execution>(`${cluster.url(survivor)}/v1/actions/${uuid(10)}`);
      const count = loop.body.state.payload?.['count'];
      return typeof count === 'number' && count >= 3 ? true : undefined;
    }, 200);
    await cluster.kill(leader, 'SIGKILL');
    const loop = await finished(survivor, uuid(10));
    expect(loop.state).toEqual({ phase: 'DONE', payload: { count: target, target }, error: null });
    const add = await finished(survivor, uuid(11));
    expect(add.state, logsOf([survivor, 4])).toMatchObject({
      phase: 'DONE',
      payload: { node: cluster.url(4), node_id: 4 },
    });
    const join = await finished(5, uuid(12));
    expect(join.state, logsOf([survivor, 5])).toMatchObject({ phase: 'DONE', payload: { node_id: 5 } });
    const all = [1, 2, 3, 4, 5];
    const alive = all.filter((id) => id !== leader);
    for (const id of alive) await eventually(() => votersAre(id, all), 200);
    // Each action once: the registry holds every node once, and the log holds each record once.
    const actions = await json<{ queue: Execution[]; finished: Execution[] }>(`${cluster.url(survivor)}/v1/actions`);
    const ids = actions.body.finished.map((action) => action.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(actions.body.finished.every((action) => action.state.phase === 'DONE')).toBe(true);

    // The dead leader is removed with the CLI, which waits for the action cluster.remove.
    const removal = await promisify(execFile)(process.execPath, [
      bin,
      'members',
      'remove',
      String(leader),
      '--url',
      cluster.url(survivor),
    ]);
    expect(removal.stdout).toContain(`node ${leader} is out of every group`);
    for (const id of alive) await eventually(() => votersAre(id, alive), 200);
    const store = await json<{ attributes: Record<string, unknown> }>(
      `${cluster.url(survivor)}/api/unstable/info/store`,
    );
    expect(store.body.attributes['dram.io/nodes-registered']).toBe(alive.length);
  }, 240_000);
});
