// Reads the metrics tables of docs/metrics.md for the parity tests: the exported metrics (section
// "Metrics") and the planned ones (section "Planned metrics"). Columns are found by their header
// (name, type, unit, labels, meaning, alert on), so a new column does not shift the others.

import { readFileSync } from 'node:fs';

export interface DocumentedMetric {
  readonly name: string;
  readonly type: string;
  readonly unit: string;
  readonly labels: readonly string[];
  readonly meaning: string;
  readonly alertOn: string;
}

const cells = (line: string): string[] =>
  line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());

function metricsTable(section: string): DocumentedMetric[] {
  const text = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const lines = text.split('\n');
  const start = lines.indexOf(`## ${section}`);
  if (start < 0) throw new Error(`docs/metrics.md has no section "${section}"`);
  const rows: DocumentedMetric[] = [];
  let header: string[] | undefined;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    if (/^\|\s*name\s*\|/.test(line)) header = cells(line);
    if (header === undefined || !/^\|\s*`dram_/.test(line)) continue;
    // No cell contains a pipe (the table would not render either).
    const row = cells(line);
    const column = (name: string): string => row[header?.indexOf(name) ?? -1] ?? '';
    rows.push({
      name: column('name').replaceAll('`', ''),
      type: column('type'),
      unit: column('unit'),
      labels: [...column('labels').matchAll(/`(\w+)`/g)].map((label) => label[1] ?? ''),
      meaning: column('meaning'),
      alertOn: column('alert on'),
    });
  }
  return rows;
}

/** The metrics every node exports today. */
export function documentedMetrics(): DocumentedMetric[] {
  return metricsTable('Metrics');
}

/** Metrics the shipped alerting rules already use but no node exports yet. */
export function plannedMetrics(): DocumentedMetric[] {
  return metricsTable('Planned metrics');
}
