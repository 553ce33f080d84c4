// The metrics an operator needs beyond the basics (test/api/metrics.test.ts): replication lag is
// exported by a group's leader only and disappears when it loses leadership; the data directory's
// file system is measured; and everything the registry serves passes `promtool check metrics`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type NodeId } from '../../src/base/ids.ts';
import { createNodeMetrics, type GroupStatusSource } from '../../src/metrics/registry.ts';
import type { Role } from '../../src/raft/types.ts';
import { prometheusTools, promtool } from './prometheus-tools.ts';

type GroupStatus = ReturnType<GroupStatusSource['status']>[number];

function replica(role: Role, lastIndex: number, progress: { id: NodeId; match: number }[]): GroupStatus {
  return {
    group: asGroupId(3),
    status: {
      role,
      term: 2,
      commit: lastIndex,
      leader: asNodeId(role === 'leader' ? 1 : 2),
      quiesced: false,
      lastIndex,
      progress,
    },
    appliedIndex: lastIndex,
    failoversWon: role === 'leader' ? 1 : 0,
  };
}

describe('operator metrics', () => {
  it('exports replication lag per member on the leader only, and drops it on losing leadership', async () => {
    let groups = [
      replica('leader', 40, [
        { id: asNodeId(1), match: 40 },
        { id: asNodeId(2), match: 33 },
        { id: asNodeId(3), match: 40 },
      ]),
    ];
    const metrics = createNodeMetrics({ host: { status: () => groups } });
    let text = (await metrics.render()).body;
    expect(text).toContain('dram_group_replication_lag_entries{group="3",peer="2"} 7');
    expect(text).toContain('dram_group_replication_lag_entries{group="3",peer="3"} 0');
    expect(text).not.toContain('dram_group_replication_lag_entries{group="3",peer="1"}');
    groups = [replica('follower', 41, [])];
    text = (await metrics.render()).body;
    expect(text).not.toMatch(/^dram_group_replication_lag_entries\{/m);
  });

  it("measures the data directory's file system, and a missing directory does not fail the scrape", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dram-metrics-'));
    try {
      const text = (await createNodeMetrics({ host: { status: () => [] }, dataDir: dir }).render()).body;
      const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(value('dram_data_filesystem_size_bytes')).toBeGreaterThan(0);
      expect(value('dram_data_filesystem_available_bytes')).toBeGreaterThan(0);
      expect(value('dram_data_filesystem_available_bytes')).toBeLessThanOrEqual(
        value('dram_data_filesystem_size_bytes'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const missing = createNodeMetrics({ host: { status: () => [] }, dataDir: join(dir, 'gone') });
    expect((await missing.render()).body).toContain('dram_data_filesystem_size_bytes 0');
  });

  const tools = prometheusTools();
  it.skipIf(tools === undefined)('passes promtool check metrics with every metric populated', async () => {
    if (tools === undefined) return;
    const dir = mkdtempSync(join(tmpdir(), 'dram-metrics-'));
    try {
      const metrics = createNodeMetrics({
        host: { status: () => [replica('leader', 5, [{ id: asNodeId(2), match: 4 }])] },
        peerTraffic: () => new Map([[asNodeId(2), { bytesSent: 10, bytesReceived: 20 }]]),
        dataDir: dir,
        databases: () => [
          { database: 'shop', state: 'loaded', bytesDone: 100, bytesTotal: 100, filesDone: 2, cache: null },
          {
            database: 'lazy',
            state: 'evicted',
            bytesDone: 10,
            bytesTotal: 10,
            filesDone: 1,
            cache: { files: 1, bytes: 5 },
          },
        ],
        catalog: () => ({
          shards: [{ database: 'shop', shard: '1', state: 'loaded', replicas: 2 }],
          desired: [{ database: 'shop', replicas: 2 }],
        }),
      });
      metrics.databaseBytesFetched('shop', 100);
      for (const event of ['s3_request', 'cache_hit', 'cache_miss', 'cache_eviction'] as const)
        metrics.databaseEvent('lazy', event);
      metrics.databaseQuery('shop', 0.012, true);
      metrics.proposal('applied');
      metrics.read('linearizable', 'served');
      metrics.httpRequest('GET', '/v1/kv/:key', 200);
      metrics.observeTurnDuration(0.002);
      metrics.observeStorageWrite(0.004, true);
      metrics.placementMove('started');
      const fanOut = metrics.queryFanOut;
      if (fanOut === undefined) throw new Error('the registry has no fan-out metrics');
      fanOut.fanOutStarted(8);
      fanOut.shardAnswered(3);
      fanOut.shardSkipped('timeout');
      fanOut.shardRetried();
      fanOut.hedgeSent();
      fanOut.hedgeWon();
      fanOut.partialAnswered();
      const text = (await metrics.render()).body;
      // Every registered metric has at least one sample, so promtool sees them all.
      for (const { name } of metrics.catalog()) expect(text).toMatch(new RegExp(`^${name}(_bucket|_count)?[{ ]`, 'm'));
      expect(promtool(tools, ['check', 'metrics'], text)).toEqual({ status: 0, output: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
