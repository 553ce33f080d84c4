// deploy/prometheus/ against the real tools and the docs: promtool accepts the scrape config and
// the alerting rules, and its unit tests (alerts.test.yml, one case or more per rule) pass; every metric a rule or a dashboard panel uses is documented in
// docs/metrics.md; rules on planned (not yet exported) metrics are labelled planned, and no other
// rule or panel uses a planned metric; every rule the docs name exists and the reverse.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { documentedMetrics, plannedMetrics } from '../api/metrics-docs.ts';
import { alertRules, dashboard, dashboardPanels, dashboardTargets, deployDir } from './deploy-files.ts';
import { dramMetricNames, prometheusTools, promtool } from './prometheus-tools.ts';

const exported = new Set(documentedMetrics().map((metric) => metric.name));
const planned = new Set(plannedMetrics().map((metric) => metric.name));

describe('deploy/prometheus', () => {
  const tools = prometheusTools();
  it.skipIf(tools === undefined)('promtool accepts the scrape config (with its rule file) and the rules', () => {
    if (tools === undefined) return;
    const config = promtool(tools, ['check', 'config', `${deployDir}prometheus.yml`]);
    expect(config.output).toContain('1 rule files found');
    expect(config.status).toBe(0);
    const rules = promtool(tools, ['check', 'rules', `${deployDir}alerts.yml`]);
    expect(rules.output).toContain(`${alertRules().length} rules found`);
    expect(rules.status).toBe(0);
  });

  it.skipIf(tools === undefined)('promtool test rules: each rule fires on its synthetic series, and only then', () => {
    if (tools === undefined) return;
    const tests = readFileSync(`${deployDir}alerts.test.yml`, 'utf8');
    const tested = new Set([...tests.matchAll(/alertname: (\S+)/g)].map((match) => match[1]));
    expect(alertRules().filter((rule) => !tested.has(rule.name))).toEqual([]);
    const result = promtool(tools, ['test', 'rules', `${deployDir}alerts.test.yml`]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it('has the rules an operator needs, each on documented metrics, planned ones labelled', () => {
    const rules = alertRules();
    expect(rules.map((rule) => rule.name)).toEqual(
      expect.arrayContaining([
        'DramNodeDown',
        'DramGroupWithoutLeader',
        'DramReplicationLagHigh',
        'DramDiskNearlyFull',
        'DramActionsFailing',
        'DramDatabaseUnderReplicated',
      ]),
    );
    for (const rule of rules) {
      const names = dramMetricNames(rule.expr);
      expect({ rule: rule.name, unknown: names.filter((n) => !exported.has(n) && !planned.has(n)) }).toEqual({
        rule: rule.name,
        unknown: [],
      });
      expect({ rule: rule.name, planned: rule.planned }).toEqual({
        rule: rule.name,
        planned: names.some((name) => planned.has(name)),
      });
    }
  });

  it('names in docs/metrics.md exactly the rules alerts.yml has', () => {
    const docs = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const named = new Set([...docs.matchAll(/`(Dram[A-Za-z]+)`/g)].map((match) => match[1]));
    expect([...named].sort()).toEqual(
      alertRules()
        .map((rule) => rule.name)
        .sort(),
    );
    for (const metric of [...documentedMetrics(), ...plannedMetrics()]) {
      expect({ metric: metric.name, unit: metric.unit.length > 0, alertOn: metric.alertOn.length > 0 }).toEqual({
        metric: metric.name,
        unit: true,
        alertOn: true,
      });
    }
  });

  it('ships a Grafana dashboard whose every expression uses exported, documented metrics', () => {
    const { title, uid } = dashboard();
    expect({ title, uid }).toEqual({ title: 'dram', uid: 'dram-overview' });
    const panels = dashboardPanels();
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const targets = dashboardTargets();
    expect(targets.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const { panel, expr } of targets) {
      const names = dramMetricNames(expr);
      expect(names.length + (/\bup\{/.test(expr) ? 1 : 0)).toBeGreaterThan(0);
      expect({ panel, undocumented: names.filter((name) => !exported.has(name)) }).toEqual({ panel, undocumented: [] });
      for (const name of names) used.add(name);
    }
    // The panels an operator looks for first.
    for (const name of [
      'dram_leader_changes_total',
      'dram_group_commit_index',
      'dram_group_replication_lag_entries',
      'dram_proposals_total',
      'dram_data_filesystem_available_bytes',
    ])
      expect(used).toContain(name);
  });
});
