// The metrics registry: docs/metrics.md lists exactly its metrics with the same types and labels
// (both directions); collect() refreshes the group gauges from the host, counts leader changes,
// and keeps peer byte counters monotonic across a transport restart; the storage wrapper times
// every batch write.

import { describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { createNodeMetrics, type GroupStatusSource } from '../../src/metrics/registry.ts';
import { timedHostStorage } from '../../src/metrics/timed-storage.ts';
import type { Role } from '../../src/raft/types.ts';
import { MemoryHostStorage } from '../support/memory-host.ts';
import { documentedMetrics } from './metrics-docs.ts';

interface FakeGroup {
  group: GroupId;
  status: { role: Role; term: number; commit: number; leader: NodeId; quiesced: boolean };
  appliedIndex: number;
  failoversWon?: number;
}

function fakeHost(groups: FakeGroup[]): GroupStatusSource {
  // Replication progress is tested in test/ops/metrics.test.ts; here every log is fully committed.
  return {
    status: () =>
      groups.map((g) => ({
        ...g,
        status: { ...g.status, lastIndex: g.status.commit, progress: [] },
        failoversWon: g.failoversWon ?? 0,
      })),
  };
}

describe('node metrics', () => {
  it('match docs/metrics.md exactly: names, types and labels, in both directions', () => {
    const documented = documentedMetrics();
    const registered = createNodeMetrics({ host: fakeHost([]) }).catalog();
    expect(documented.map((m) => m.name).sort()).toEqual(registered.map((m) => m.name).sort());
    for (const metric of registered) {
      const doc = documented.find((d) => d.name === metric.name);
      expect({ name: metric.name, type: doc?.type, labels: [...(doc?.labels ?? [])].sort() }).toEqual({
        name: metric.name,
        type: metric.type,
        labels: [...metric.labels].sort(),
      });
      expect(metric.name).toMatch(/^dram_[a-z_]+$/);
      if (metric.type === 'counter') expect(metric.name).toMatch(/_total$/);
    }
    for (const doc of documented) expect(doc.meaning.length).toBeGreaterThan(10);
  });

  it('refreshes group gauges on collect and counts each observed leader change once', async () => {
    const group = {
      group: asGroupId(7),
      status: { role: 'follower' as Role, term: 3, commit: 10, leader: asNodeId(2), quiesced: false },
      appliedIndex: 9,
    };
    const metrics = createNodeMetrics({ host: fakeHost([group]) });
    let text = (await metrics.render()).body;
    expect(text).toContain('dram_group_role{group="7"} 0');
    expect(text).toContain('dram_group_term{group="7"} 3');
    expect(text).toContain('dram_group_commit_index{group="7"} 10');
    expect(text).toContain('dram_group_applied_index{group="7"} 9');
    expect(text).toContain('dram_group_leader_node_id{group="7"} 2');
    expect(text).toContain('dram_group_quiesced{group="7"} 0');
    expect(text).toContain('dram_leader_changes_total{group="7"} 1');

    group.status = { role: 'leader', term: 4, commit: 12, leader: asNodeId(1), quiesced: false };
    text = (await metrics.render()).body;
    expect(text).toContain('dram_group_role{group="7"} 2');
    expect(text).toContain('dram_leader_changes_total{group="7"} 2');
    // No leader for a while, then the same one again: not a change.
    group.status = { role: 'pre_candidate', term: 4, commit: 12, leader: asNodeId(0), quiesced: true };
    text = (await metrics.render()).body;
    expect(text).toContain('dram_group_role{group="7"} 1');
    expect(text).toContain('dram_group_quiesced{group="7"} 1');
    group.status = { role: 'leader', term: 4, commit: 12, leader: asNodeId(1), quiesced: false };
    text = (await metrics.render()).body;
    expect(text).toContain('dram_leader_changes_total{group="7"} 2');
  });

  it('counts the failovers the host reports won, across collections and a host restart', async () => {
    const group: FakeGroup = {
      group: asGroupId(0),
      status: { role: 'leader', term: 5, commit: 10, leader: asNodeId(1), quiesced: false },
      appliedIndex: 10,
      failoversWon: 0,
    };
    const metrics = createNodeMetrics({ host: fakeHost([group]) });
    expect((await metrics.render()).body).toContain('dram_failovers_total{group="0"} 0');
    group.failoversWon = 2;
    expect((await metrics.render()).body).toContain('dram_failovers_total{group="0"} 2');
    expect((await metrics.render()).body).toContain('dram_failovers_total{group="0"} 2');
    // The group was hosted anew (its total restarted from zero) and won one since.
    group.failoversWon = 1;
    expect((await metrics.render()).body).toContain('dram_failovers_total{group="0"} 3');
  });

  it('follows cumulative peer traffic totals and survives a transport restart', async () => {
    let totals = new Map([[asNodeId(2), { bytesSent: 100, bytesReceived: 40 }]]);
    const metrics = createNodeMetrics({ host: fakeHost([]), peerTraffic: () => totals });
    expect((await metrics.render()).body).toContain('dram_peer_sent_bytes_total{peer="2"} 100');
    totals = new Map([[asNodeId(2), { bytesSent: 150, bytesReceived: 40 }]]);
    expect((await metrics.render()).body).toContain('dram_peer_sent_bytes_total{peer="2"} 150');
    totals = new Map([[asNodeId(2), { bytesSent: 30, bytesReceived: 5 }]]); // restarted: counting from 0 again
    const text = (await metrics.render()).body;
    expect(text).toContain('dram_peer_sent_bytes_total{peer="2"} 180');
    expect(text).toContain('dram_peer_received_bytes_total{peer="2"} 45');
  });

  it('times storage batch writes through the wrapper, labelled by sync', async () => {
    const metrics = createNodeMetrics({ host: fakeHost([]) });
    const storage = timedHostStorage(new MemoryHostStorage(), metrics);
    await storage.write([], { sync: true });
    await storage.write([], { sync: true });
    await storage.write([], { sync: false });
    const text = (await metrics.render()).body;
    expect(text).toContain('dram_storage_write_duration_seconds_count{sync="true"} 2');
    expect(text).toContain('dram_storage_write_duration_seconds_count{sync="false"} 1');
  });

  it('keeps separate registries per node', async () => {
    const one = createNodeMetrics({ host: fakeHost([]) });
    const two = createNodeMetrics({ host: fakeHost([]) });
    one.proposal('applied');
    expect((await one.render()).body).toContain('dram_proposals_total{outcome="applied"} 1');
    expect((await two.render()).body).not.toContain('dram_proposals_total{outcome="applied"}');
  });
});
