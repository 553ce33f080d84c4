// Finds Debian's prometheus and promtool for the ops tests. CI (CI=true) installs the package in
// .ci/run, so there a missing tool is an error; elsewhere the tests skip with a loud warning
// (install it with `apt-get install -y --no-install-recommends prometheus`).

import { spawnSync } from 'node:child_process';

export interface PrometheusTools {
  readonly promtool: string;
  readonly prometheus: string;
}

const runs = (command: string): boolean => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;

/** The tools, or undefined (after a warning) when they are missing outside CI. Throws in CI. */
export function prometheusTools(): PrometheusTools | undefined {
  const missing = ['promtool', 'prometheus'].filter((command) => !runs(command));
  if (missing.length === 0) return { promtool: 'promtool', prometheus: 'prometheus' };
  const advice = `${missing.join(' and ')} not found: apt-get install -y --no-install-recommends prometheus`;
  if (process.env.CI === 'true') throw new Error(`CI: ${advice} (.ci/run installs it)`);
  console.warn(`\n*** SKIPPING Prometheus tests: ${advice} ***\n`);
  return undefined;
}

/** Runs promtool with `input` on stdin; its exit status and everything it printed. */
export function promtool(
  tools: PrometheusTools,
  args: readonly string[],
  input = '',
): { readonly status: number | null; readonly output: string } {
  const result = spawnSync(tools.promtool, args, { input, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The dram metric names a PromQL expression uses (quoted strings left out), histogram suffixes removed. */
export function dramMetricNames(expression: string): string[] {
  const unquoted = expression.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = [...unquoted.matchAll(/\bdram_[a-z0-9_]+/g)].map((match) => match[0]);
  return [...new Set(names.map((name) => name.replace(/_(bucket|sum|count)$/, '')))];
}
