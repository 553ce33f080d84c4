// Reads the metrics table of docs/metrics.md (name, type, labels, meaning) for the parity tests.

import { readFileSync } from 'node:fs';

export interface DocumentedMetric {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
  readonly meaning: string;
}

export function documentedMetrics(): DocumentedMetric[] {
  const text = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const rows: DocumentedMetric[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `dram_')) continue;
    // | `name` | type | `label`, `label` | meaning |  (the meaning itself never contains a pipe)
    const [, name = '', type = '', labels = '', meaning = ''] = line.split('|').map((cell) => cell.trim());
    rows.push({
      name: name.replaceAll('`', ''),
      type,
      labels: [...labels.matchAll(/`(\w+)`/g)].map((label) => label[1] ?? ''),
      meaning,
    });
  }
  return rows;
}
