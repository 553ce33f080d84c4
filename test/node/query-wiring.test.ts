// The node's query wiring (`--endpoints DIR`): the directory comes from the flag or DRAM_ENDPOINTS,
// made absolute; its modules are loaded and checked at start, a broken one refusing the start with
// an error naming the file; and a node wired so serves its endpoints on the query route, where
// every database is unknown until the catalog is wired in.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { asNodeId } from '../../src/base/ids.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { mergeSources, resolveConfig } from '../../src/node/config.ts';
import { openNodeQuery } from '../../src/node/query-wiring.ts';
import { stubGroups, stubHost } from '../api/stub-host.ts';

const folders: string[] = [];

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function folder(): string {
  const path = mkdtempSync(join(tmpdir(), 'dram-query-wiring-'));
  folders.push(path);
  return path;
}

const base = {
  nodeId: '4',
  dataDir: '/tmp/dram-config-test',
  http: '127.0.0.1:8084',
  raft: '127.0.0.1:9084',
  secret: 'config-test-secret-0123',
};

describe('query wiring', () => {
  it('takes --endpoints (or DRAM_ENDPOINTS) as an absolute directory; none without it', () => {
    expect(resolveConfig(mergeSources({ ...base, endpoints: 'examples/endpoints' }, {})).endpoints).toBe(
      resolve('examples/endpoints'),
    );
    expect(resolveConfig(mergeSources(base, { DRAM_ENDPOINTS: '/srv/endpoints' })).endpoints).toBe('/srv/endpoints');
    expect(resolveConfig(mergeSources(base, {})).endpoints).toBeUndefined();
  });

  it('refuses to start over a module that cannot be served, naming the file', async () => {
    const endpoints = folder();
    writeFileSync(join(endpoints, 'broken.mjs'), 'export default { name: "broken", reducer() {} };\n');
    await expect(openNodeQuery({ endpoints, dataDir: folder() })).rejects.toMatchObject({
      code: 'DRAM_ERR_ENDPOINT_LOAD',
      file: join(endpoints, 'broken.mjs'),
    });
    expect(await openNodeQuery({ dataDir: folder() })).toBeUndefined();
  });

  it('serves the loaded endpoints; without a catalog every database is unknown', async () => {
    const query = await openNodeQuery({ endpoints: resolve('examples/endpoints'), dataDir: folder() });
    if (query === undefined) throw new Error('no query wiring');
    const stub = stubHost();
    const app = buildApp({
      nodeId: asNodeId(1),
      host: stub.host,
      groups: stubGroups,
      metrics: createNodeMetrics({ host: stub.host }),
      query: query.options,
    });
    try {
      const ask = async (path: string) =>
        (
          await app.inject({
            method: 'POST',
            url: `/v1/databases/${path}`,
            headers: { 'content-type': 'application/json' },
            payload: '{}',
          })
        ).json<{ code: string }>().code;
      expect(await ask('events/query/count')).toBe('DRAM_ERR_DATABASE_NOT_FOUND');
      expect(await ask('events/query/nope')).toBe('DRAM_ERR_UNKNOWN_ENDPOINT');
    } finally {
      await app.close();
      await query.close();
    }
  });
});
