// Drives Debian's headless Chromium (`chromium-headless-shell`, else `chromium`) from its command
// line for the status page test: the page's DOM after its scripts ran for a while, and a
// screenshot. CI (CI=true) installs the package in .ci/run, so there a missing browser is an error;
// elsewhere the test skips with a loud warning.

import { spawnSync } from 'node:child_process';

const candidates = ['chromium-headless-shell', 'chromium'];

/** The browser's command, or undefined (after a warning) when none is installed outside CI. Throws in CI. */
export function findChromium(): string | undefined {
  const found = candidates.find(
    (command) => spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  );
  if (found !== undefined) return found;
  const advice = 'no headless Chromium: apt-get install -y --no-install-recommends chromium-headless-shell';
  if (process.env.CI === 'true') throw new Error(`CI: ${advice} (.ci/run installs it)`);
  console.warn(`\n*** SKIPPING the status page test: ${advice} ***\n`);
  return undefined;
}

// --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. The virtual time
// budget lets the page's timers (its polling) run that long; it waits while fetches are pending.
function browserArgs(extra: readonly string[], url: string, budgetMs: number): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--hide-scrollbars',
    '--window-size=1280,860',
    `--virtual-time-budget=${budgetMs}`,
    ...extra,
    url,
  ];
}

/** The page's DOM (serialised HTML) after its scripts ran for `budgetMs` of virtual time. */
export function dumpDom(chromium: string, url: string, budgetMs = 3000): string {
  const result = spawnSync(chromium, browserArgs(['--dump-dom'], url, budgetMs), {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  if (result.status !== 0) throw new Error(`${chromium} --dump-dom failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** Writes a PNG screenshot of the page to `path`. */
export function screenshot(chromium: string, url: string, path: string, budgetMs = 3000): void {
  const result = spawnSync(chromium, browserArgs([`--screenshot=${path}`], url, budgetMs), {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`${chromium} --screenshot failed (${result.status}): ${result.stderr}`);
}
