// Reads deploy/prometheus/ for the ops tests: the alerting rules (a line reader for the plain
// layout alerts.yml keeps: `- alert:`, `expr:` inline or as a `|` block, `planned: "true"`; the
// Prometheus integration test checks it against the rules Prometheus itself loaded) and every
// expression of the Grafana dashboard.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const deployDir = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));

export interface AlertRule {
  readonly name: string;
  readonly expr: string;
  readonly planned: boolean;
}

const indentOf = (line: string): number => line.length - line.trimStart().length;

export function alertRules(): AlertRule[] {
  const lines = readFileSync(`${deployDir}alerts.yml`, 'utf8').split('\n');
  const rules: { name: string; expr: string; planned: boolean }[] = [];
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k] ?? '';
    const alert = /^\s*- alert: (\S+)$/.exec(line);
    if (alert !== null) rules.push({ name: alert[1] ?? '', expr: '', planned: false });
    const current = rules.at(-1);
    if (current === undefined) continue;
    if (/^\s*planned: "true"$/.test(line)) current.planned = true;
    const expr = /^\s*expr: (.*)$/.exec(line);
    if (expr === null) continue;
    if (expr[1] !== '|') {
      current.expr = expr[1] ?? '';
      continue;
    }
    const block: string[] = [];
    while (k + 1 < lines.length && indentOf(lines[k + 1] ?? '') > indentOf(line)) block.push((lines[++k] ?? '').trim());
    current.expr = block.join(' ');
  }
  return rules;
}

export interface DashboardTarget {
  readonly panel: string;
  readonly expr: string;
}

interface Panel {
  readonly id?: number;
  readonly title?: string;
  readonly type?: string;
  readonly targets?: readonly { readonly expr?: string }[];
  readonly panels?: readonly Panel[];
}

export function dashboard(): { readonly panels: readonly Panel[]; readonly [key: string]: unknown } {
  return JSON.parse(readFileSync(`${deployDir}grafana-dashboard.json`, 'utf8')) as { panels: Panel[] };
}

/** Every panel, rows' nested panels included. */
export function dashboardPanels(): Panel[] {
  const all: Panel[] = [];
  const visit = (panels: readonly Panel[]): void => {
    for (const panel of panels) {
      all.push(panel);
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard().panels);
  return all;
}

export function dashboardTargets(): DashboardTarget[] {
  return dashboardPanels().flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title ?? '', expr: target.expr ?? '' })),
  );
}

/** Grafana's interval variables replaced by a literal, so Prometheus itself can run the expression. */
export function withGrafanaVariables(expr: string, interval: string): string {
  return expr.replaceAll('$__rate_interval', interval).replaceAll('$__interval', interval);
}
