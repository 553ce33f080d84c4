// Authentication with real processes (docs/security.md): three nodes started with --token. Users
// need the token everywhere but /v1/status, /metrics and the status page; members still reach
// each other with the cluster secret alone: writes sent to followers are forwarded to the leaders,
// every node registers itself in the meta group through the meta leader, a transfer action runs
// (the controller's own in-process calls), a fourth node joins with --join, and the CLI passes
// the token from --token or DRAM_TOKEN. Every wait is a bounded poll that fails with a message.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transferLeadershipKind } from '../../src/control/action-kinds.ts';
import { eventually, formed, processCluster, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
const token = 'integration-test-token-0123';
let cluster: ProcessCluster;

async function call(
  url: string,
  method = 'GET',
  body?: string,
  headers: Record<string, string> = { authorization: `Bearer ${token}` },
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  return promisify(execFile)(process.execPath, [bin, ...args], {
    timeout: 30_000,
    env: { ...process.env, DRAM_TOKEN: '', ...env },
  }).then(
    ({ stdout }) => ({ code: 0, out: stdout }),
    (error: unknown) => {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? 1, out: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
    },
  );
}

beforeAll(async () => {
  cluster = processCluster(3, { args: ['--token', token] });
  await formed(cluster, 4); // /v1/status is open with --token alone
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
});

describe('a cluster with --token', () => {
  it('refuses users without the token and changes nothing', async () => {
    const refused = await call(`${cluster.url(1)}/v1/kv/secret-key`, 'PUT', 'x', {});
    expect(refused.status).toBe(401);
    const wrong = await call(`${cluster.url(1)}/v1/kv/secret-key`, 'PUT', 'x', { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect((await call(`${cluster.url(2)}/v1/kv/secret-key`)).status).toBe(404);
    expect((await call(`${cluster.url(1)}/metrics`, 'GET', undefined, {})).status).toBe(200);
  });

  it('forwards writes from every node to the leaders with the cluster secret', async () => {
    for (const id of cluster.ids) {
      for (let k = 0; k < 8; k++) {
        const answer = await call(`${cluster.url(id)}/v1/kv/key-${id}-${k}`, 'PUT', `v${k}`);
        expect({ id, k, status: answer.status, text: answer.text }).toMatchObject({ id, k, status: 200 });
      }
    }
    expect((await call(`${cluster.url(3)}/v1/kv/key-1-7`)).text).toBe('v7');
  });

  it('registers every node in the meta group and runs a transfer action', async () => {
    await eventually(async () => {
      const store = await call(`${cluster.url(2)}/api/unstable/info/store`);
      const attributes = (JSON.parse(store.text) as { attributes: Record<string, unknown> }).attributes;
      return attributes['dram.io/nodes-registered'] === 3 ? true : undefined;
    }, 150);
    const scheduled = await call(
      `${cluster.url(3)}/v1/actions`,
      'POST',
      JSON.stringify({ kind: transferLeadershipKind, args: { group: 1 } }),
    );
    expect(scheduled.status).toBe(200);
    const id = (JSON.parse(scheduled.text) as { id: string }).id;
    const phase = await eventually(async () => {
      const action = JSON.parse((await call(`${cluster.url(1)}/v1/actions/${id}`)).text) as {
        state: { phase: string; error: unknown };
      };
      return action.state.phase === 'DONE' || action.state.phase === 'FAILED' ? action.state : undefined;
    }, 150);
    expect(phase).toMatchObject({ phase: 'DONE' });
  });

  it('passes the token from the CLI (--token or DRAM_TOKEN), and fails without it', async () => {
    const without = await cli(['kv', 'put', 'cli-key', 'one', '--url', cluster.url(2)]);
    expect(without.code).not.toBe(0);
    expect(without.out).toContain('401 DRAM_ERR_UNAUTHORIZED');
    const flag = await cli(['kv', 'put', 'cli-key', 'two', '--url', cluster.url(2), '--token', token]);
    expect(flag).toMatchObject({ code: 0 });
    const env = await cli(['kv', 'get', 'cli-key', '--url', cluster.url(3)], { DRAM_TOKEN: token });
    expect(env).toEqual({ code: 0, out: 'two\n' });
  });

  it('lets a fourth node join through a member with the cluster secret alone', async () => {
    cluster.start(4, { init: false, join: cluster.url(1) });
    await eventually(async () => {
      const status = JSON.parse((await call(`${cluster.url(1)}/v1/status`)).text) as {
        groups: { group: number; voters: number[] }[];
      };
      const kvGroups = status.groups.filter((g) => g.group !== 0);
      return kvGroups.length === 4 && kvGroups.every((g) => g.voters.includes(4)) ? true : undefined;
    }, 300);
  }, 60_000);
});
