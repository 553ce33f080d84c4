// A real Prometheus (Debian's package) scraping a real three-process dram cluster every second,
// with deploy/prometheus/alerts.yml loaded: every target is up; leader changes (also one caused
// here by a leadership transfer), commit indexes, replication lag, proposal outcomes and the load
// states of a database (added from a real S3 server, s3rver) are queryable through its HTTP API; a node's /metrics answer passes promtool check metrics; the
// rules Prometheus loaded are the ones test/ops/deploy-files.ts reads, and each evaluates without
// error; every dashboard expression runs. Bounded: polls of at most 30 s each.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  formed,
  groupStatus,
  processCluster,
  request,
  type ProcessCluster,
} from '../integration/cluster-process.ts';
import { startSampleS3, type SampleS3 } from '../support/sample-s3.ts';
import { alertRules, dashboardTargets, deployDir, withGrafanaVariables } from './deploy-files.ts';
import { prometheusTools, promtool } from './prometheus-tools.ts';

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

const tools = prometheusTools();
const kvGroupCount = 4; // processCluster's --kv-groups
// Every node also hosts group 0, the meta group (three voters here), and reports it like the kv groups.
const groupCount = kvGroupCount + 1;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe.skipIf(tools === undefined)('Prometheus scraping a three-node cluster', () => {
  let cluster: ProcessCluster;
  let s3: SampleS3 | undefined;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let prometheusUrl = '';
  const dir = mkdtempSync(join(tmpdir(), 'dram-prometheus-'));

  async function api(path: string): Promise<unknown> {
    const answer = await request(`${prometheusUrl}${path}`);
    const body = JSON.parse(answer.text) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? answer.text}`);
    return body.data;
  }
  const query = async (expression: string): Promise<Sample[]> =>
    ((await api(`/api/v1/query?query=${encodeURIComponent(expression)}`)) as { result: Sample[] }).result;
  /** Polls `expression` until `done` holds for its samples (at most 30 s). */
  const queryUntil = (expression: string, done: (samples: Sample[]) => boolean): Promise<Sample[]> =>
    eventually(
      async () => {
        const samples = await query(expression);
        return done(samples) ? samples : undefined;
      },
      150,
      200,
    );

  beforeAll(async () => {
    s3 = await startSampleS3(dir);
    cluster = processCluster(3, { args: s3.nodeArgs });
    await formed(cluster, kvGroupCount);
    for (const id of cluster.ids)
      for (let k = 0; k < 5; k++) {
        await eventually(async () => {
          const answer = await request(`${cluster.url(id)}/v1/kv/prom-${id}-${k}`, 'PUT', `value ${k}`);
          return answer.status === 200 ? true : undefined;
        });
      }

    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const targets = cluster.ids.map((id) => `'${new URL(cluster.url(id)).host}'`).join(', ');
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${deployDir}alerts.yml']`,
        'scrape_configs:',
        `  - { job_name: dram, metrics_path: /metrics, static_configs: [{ targets: [${targets}] }] }`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      tools?.prometheus ?? 'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (chunk: Buffer) => (prometheusLog += chunk.toString()));
    prometheus.stderr?.on('data', (chunk: Buffer) => (prometheusLog += chunk.toString()));
    await eventually(
      async () => ((await request(`${prometheusUrl}/-/ready`)).status === 200 ? true : undefined),
      150,
      200,
    ).catch((error: unknown) => {
      throw new Error(`prometheus did not become ready: ${String(error)}\n${prometheusLog}`);
    });
  }, 90_000);

  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await cluster.stopAll();
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('scrapes every node: all three targets are up', async () => {
    const up = await queryUntil(
      'up{job="dram"}',
      (samples) => samples.length === 3 && samples.every((s) => s.value[1] === '1'),
    );
    expect(up.map((s) => s.metric.instance).sort()).toEqual(
      cluster.ids.map((id) => new URL(cluster.url(id)).host).sort(),
    );
  });

  it('answers for commit indexes, replication lag and proposal outcomes', async () => {
    // Every node reports a commit index for every group (groupCount includes group 0, the meta group).
    const commits = await queryUntil('dram_group_commit_index > 0', (samples) => samples.length === 3 * groupCount);
    expect(new Set(commits.map((s) => s.metric.group)).size).toBe(groupCount);
    // Each group's leader reports the lag of its two followers.
    const lag = await queryUntil('dram_group_replication_lag_entries', (samples) => samples.length === 2 * groupCount);
    for (const sample of lag) expect(sample.metric.instance).not.toBe(undefined);
    expect(new Set(lag.map((s) => `${s.metric.group}/${s.metric.peer}`)).size).toBe(2 * groupCount);
    // 15 writes succeeded; forwarded ones count as applied on the leader that made them.
    const applied = await queryUntil('sum(dram_proposals_total{outcome="applied"})', (samples) => samples.length === 1);
    expect(Number(applied[0]?.value[1])).toBeGreaterThanOrEqual(15);
  });

  it("answers for a database's load states: every node's versions, the meta leader's shard replicas", async () => {
    const added = await request(
      `${cluster.url(1)}/v1/databases`,
      'POST',
      JSON.stringify({ name: 'shop', source: s3?.source, replicas: 'all' }),
      'application/json',
    );
    expect(added.status).toBeLessThan(300);
    // Each node holds the version loaded; the meta leader alone exports the replicas per shard.
    const versions = await queryUntil('dram_database_versions{database="shop",state="loaded"} == 1', (samples) => {
      return samples.length === 3;
    });
    expect(versions.map((s) => s.metric.instance).sort()).toEqual(
      cluster.ids.map((id) => new URL(cluster.url(id)).host).sort(),
    );
    const replicas = await queryUntil(
      'dram_database_shard_replicas{database="shop",state="loaded"} == 3',
      (samples) => {
        return samples.length === 2;
      },
    );
    const shards = JSON.parse((await request(`${cluster.url(2)}/v1/databases/shop/shards`)).text) as {
      shards: { shard: string }[];
    };
    expect(replicas.map((s) => s.metric.shard).sort()).toEqual(shards.shards.map((shard) => shard.shard).sort());
  });

  it('counts leader changes, and sees the one a leadership transfer causes', async () => {
    // The meta and kv groups; the database added above brings shard groups too (ids from 1,000,000).
    const initial = await queryUntil(
      'max by (group) (dram_leader_changes_total{group!~"[0-9]{7,}"})',
      (s) => s.length === groupCount,
    );
    for (const sample of initial) expect(Number(sample.value[1])).toBeGreaterThanOrEqual(1);
    const group = (await groupStatus(cluster.url(1)))[0];
    if (group === undefined) throw new Error('no group');
    const target = cluster.ids.find((id) => id !== group.leader) ?? 1;
    const before = Number(
      (
        await query(`dram_leader_changes_total{group="${group.group}",instance="${new URL(cluster.url(target)).host}"}`)
      )[0]?.value[1],
    );
    await eventually(async () => {
      const answer = await request(
        `${cluster.url(target)}/v1/admin/groups/${group.group}/transfer-leadership`,
        'POST',
        JSON.stringify({ to: target }),
        'application/json',
      );
      return answer.status === 200 || answer.status === 202 ? true : undefined;
    });
    await queryUntil(
      `dram_leader_changes_total{group="${group.group}",instance="${new URL(cluster.url(target)).host}"} > ${before}`,
      (samples) => samples.length === 1,
    );
    await queryUntil(
      `dram_group_role{group="${group.group}",instance="${new URL(cluster.url(target)).host}"} == 2`,
      (samples) => samples.length === 1,
    );
  });

  it("a node's /metrics answer passes promtool check metrics", async () => {
    if (tools === undefined) return;
    const text = (await request(`${cluster.url(1)}/metrics`)).text;
    expect(text).toContain('dram_group_replication_lag_entries');
    expect(promtool(tools, ['check', 'metrics'], text)).toEqual({ status: 0, output: '' });
  });

  it('loads the shipped rules, evaluates each without error, and runs every dashboard expression', async () => {
    interface Rule {
      readonly name: string;
      readonly health: string;
      readonly labels: Record<string, string>;
      readonly lastError?: string;
    }
    const rules = await eventually(
      async () => {
        const data = (await api('/api/v1/rules')) as { groups: { rules: Rule[] }[] };
        const loaded = data.groups.flatMap((g) => g.rules);
        return loaded.length > 0 && loaded.every((rule) => rule.health !== 'unknown') ? loaded : undefined;
      },
      150,
      200,
    );
    expect(rules.map((rule) => ({ name: rule.name, planned: rule.labels.planned === 'true' }))).toEqual(
      alertRules().map((rule) => ({ name: rule.name, planned: rule.planned })),
    );
    for (const rule of rules)
      expect({ name: rule.name, health: rule.health, error: rule.lastError ?? '' }).toEqual({
        name: rule.name,
        health: 'ok',
        error: '',
      });
    for (const { panel, expr } of dashboardTargets()) {
      const result = await query(withGrafanaVariables(expr, '5s')).catch((error: unknown) => String(error));
      expect({ panel, error: typeof result === 'string' ? result : '' }).toEqual({ panel, error: '' });
    }
  });
});
