// An endpoint's concurrency limit counts this member's own queries and the maps other members ask
// of it apart: a member busy with its own queries still serves maps for a fan-out elsewhere (and
// the reverse), each pool refusing with DRAM_ERR_ENDPOINT_BUSY only when itself is full.

import { describe, expect, it } from 'vitest';
import { isQueryError, type QueryEngine } from '../../src/data/query-engine.ts';
import { endpointSet } from '../../src/query/endpoint-loader.ts';
import { LocalRunner, type LocalDatabase } from '../../src/query/local-runner.ts';

const noEngine: QueryEngine = { sql: () => Promise.reject(new Error('no SQL here')), close: () => Promise.resolve() };
const database: LocalDatabase = {
  name: 'events',
  version: 'v1',
  globalDir: undefined,
  globalFiles: [],
  shards: [{ shard: '0', dir: '/nowhere', files: [] }],
};

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    return isQueryError(error) ? error.code : String(error);
  }
}

describe('concurrency slot pools', () => {
  it("counts a member's own queries and the maps asked of it apart, each under the endpoint's limit", async () => {
    const releases: (() => void)[] = [];
    const endpoints = endpointSet([
      {
        file: 'held.mjs',
        exported: {
          name: 'held',
          concurrencyMax: 1,
          map: () =>
            new Promise((resolve) => {
              releases.push(() => {
                resolve(1);
              });
            }),
        },
      },
    ]);
    const runner = new LocalRunner({ endpoints, engine: noEngine });
    const query = { endpoint: 'held', params: {}, database };
    const own = runner.run(query);
    const forOthers = runner.mapShards(query);
    expect(runner.running('held')).toBe(1);
    expect(runner.running('held', 'maps')).toBe(1);
    expect(await code(runner.run(query))).toBe('DRAM_ERR_ENDPOINT_BUSY');
    expect(await code(runner.mapShards(query))).toBe('DRAM_ERR_ENDPOINT_BUSY');
    for (const release of releases) release();
    expect(await own).toMatchObject({ result: [1] });
    expect(await forOthers).toMatchObject([{ shard: '0', result: 1 }]);
    expect(runner.running('held') + runner.running('held', 'maps')).toBe(0);
  });
});
