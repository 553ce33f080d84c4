// `dram query` against a member serving the query route (buildApp over the stub host, inline
// endpoints, a directory with two local shards and one on an unreachable member): the result and
// the coverage table are printed, --json prints the answer as sent, and a partial answer refused
// by the default policy prints the coverage naming the missing shard and exits non-zero.

import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { asNodeId } from '../../src/base/ids.ts';
import type { QueryEngine } from '../../src/data/query-engine.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { queryPath } from '../../src/cli/query-command.ts';
import type { DirectoryShard } from '../../src/query/database-directory.ts';
import { endpointSet } from '../../src/query/endpoint-loader.ts';
import type { EndpointContext } from '../../src/query/endpoint-module.ts';
import { LocalRunner } from '../../src/query/local-runner.ts';
import { stubGroups, stubHost } from '../api/stub-host.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
const run = promisify(execFile);
const noEngine: QueryEngine = { sql: () => Promise.reject(new Error('no SQL here')), close: () => Promise.resolve() };

const shard = (id: string, node: number): DirectoryShard => ({
  shard: id,
  replicas: [{ node: asNodeId(node), state: 'loaded', version: 'v7' }],
  local: node === 1 ? { shard: id, dir: '/nowhere', files: [] } : undefined,
});

let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  const stub = stubHost();
  const endpoints = endpointSet([
    {
      file: 'shard-number.mjs',
      exported: {
        name: 'shard-number',
        map: (context: EndpointContext) => Number(context.shard),
        reduce: (partials: number[]) => ({ sum: partials.reduce((sum, value) => sum + value, 0) }),
      },
    },
  ]);
  app = buildApp({
    nodeId: asNodeId(1),
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    forward: () => Promise.reject(new Error('connect ECONNREFUSED')),
    query: {
      runner: new LocalRunner({ endpoints, engine: noEngine }),
      directory: {
        resolve: (name) =>
          name === 'events'
            ? {
                name,
                version: 'v7',
                globalDir: undefined,
                globalFiles: [],
                shards: [shard('3', 1), shard('4', 1), shard('5', 2)],
              }
            : undefined,
      },
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
});

async function dram(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args, '--url', url], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('dram query', () => {
  it('builds the route path with the options given', () => {
    expect(queryPath('a b', 'top-k', { scope: 'local', shards: '0,3' })).toBe(
      '/v1/databases/a%20b/query/top-k?scope=local&shards=0%2C3',
    );
    expect(queryPath('events', 'count', {})).toBe('/v1/databases/events/query/count');
  });

  it('prints the result and the coverage; --json prints the answer', async () => {
    const local = await dram('query', 'events', 'shard-number', '{}', '--scope', 'local');
    expect(local.code).toBe(0);
    expect(local.stdout).toContain('"sum": 7');
    expect(local.stdout).toMatch(/complete/u);
    const json = await dram('query', 'events', 'shard-number', '--shards', '4', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({
      result: { sum: 4 },
      coverage: { complete: true, shards: [{ shard: '4', node: 1, version: 'v7' }] },
    });
  });

  it('shows which shard is missing and fails under the default policy; --partial allow answers the rest', async () => {
    const denied = await dram('query', 'events', 'shard-number');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('DRAM_ERR_PARTIAL');
    expect(denied.stdout).toMatch(/unavailable/u);
    const allowed = await dram('query', 'events', 'shard-number', '--partial', 'allow');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('"sum": 7');
    expect(allowed.stdout).toContain('PARTIAL');
    const bad = await dram('query', 'events', 'shard-number', '{not json');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('params must be JSON');
  });
});
