// The status page (`GET /`, docs/status-page.md) in a real browser: a three-node cluster of real
// processes, the page of node 1 opened in headless Chromium. It shows every node up, every group
// with its PRIMARY and the leader the API reports; after `dram failover 1 --to <other>`, the page
// shows the new leader of group 1 and the change itself. With a database added from a real S3
// server (s3rver, a generated sample database) and an alias pointed at it, the page lists the
// database loaded, with its alias and this node's download at 100%. A screenshot is taken each
// time (UPDATE_SCREENSHOT=1 writes the last one to docs/status-page.png). Every wait is bounded.

import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  formed,
  groupStatus,
  processCluster,
  type ProcessCluster,
} from '../integration/cluster-process.ts';
import { testSuccessKind } from '../../src/control/action-kinds.ts';
import { request } from '../integration/cluster-process.ts';
import { startSampleS3, type SampleS3 } from '../support/sample-s3.ts';
import { dumpDom, findChromium, screenshot } from './chromium.ts';

const chromium = findChromium();
const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
const shots = mkdtempSync(join(tmpdir(), 'dram-status-page-'));
let started: ProcessCluster | undefined;
let cluster: ProcessCluster;
let s3: SampleS3 | undefined;

interface PageGroup {
  readonly group: number;
  readonly leader: number;
  readonly row: string;
}

/** The group rows the page drew (their data attributes and text). */
function pageGroups(dom: string): PageGroup[] {
  return [...dom.matchAll(/<tr data-group="(\d+)" data-leader="(\d+)"[^>]*>(.*?)<\/tr>/gsu)].map((match) => ({
    group: Number(match[1]),
    leader: Number(match[2]),
    row: (match[3] ?? '').replace(/<[^>]+>/gu, ' '),
  }));
}

function pageNodes(dom: string): Map<number, string> {
  return new Map(
    [...dom.matchAll(/<tr data-node="(\d+)" data-status="([A-Za-z_]+)"/gu)].map((m) => [Number(m[1]), m[2] ?? '']),
  );
}

function shoot(name: string): string {
  const path = join(shots, `${name}.png`);
  screenshot(chromium ?? '', `${cluster.url(1)}/`, path);
  const png = readFileSync(path);
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a'); // the PNG signature
  expect(png.length).toBeGreaterThan(10_000); // a drawn page, not a blank one
  return path;
}

beforeAll(async () => {
  if (chromium === undefined) return;
  s3 = await startSampleS3(shots);
  cluster = processCluster(3, { args: s3.nodeArgs });
  started = cluster;
  await formed(cluster, 4);
}, 120_000);

afterAll(async () => {
  await started?.stopAll();
  await s3?.stop();
  rmSync(shots, { recursive: true, force: true });
});

describe.skipIf(chromium === undefined)('the status page in headless Chromium', () => {
  it('shows the nodes and the groups with their leaders, then the leader change after dram failover', async () => {
    const page = `${cluster.url(1)}/`;
    const leaderOfOne = async () => (await groupStatus(cluster.url(1))).find((g) => g.group === 1)?.leader ?? 0;
    const before = await leaderOfOne();
    const shown = await eventually(() => {
      const dom = dumpDom(chromium ?? '', page);
      const group = pageGroups(dom).find((g) => g.group === 1);
      const nodes = pageNodes(dom);
      return Promise.resolve(group?.leader === before && nodes.size === 3 ? { dom, group, nodes } : undefined);
    }, 10);
    expect([...shown.nodes.values()]).toEqual(['HEALTHY', 'HEALTHY', 'HEALTHY']);
    expect(pageGroups(shown.dom).map((g) => g.group)).toEqual([0, 1, 2, 3, 4]);
    expect(shown.group.row).toContain('PRIMARY');
    expect(shown.group.row).toContain('SECONDARY');
    shoot('before');

    const target = cluster.ids.find((id) => id !== before) ?? 0;
    await promisify(execFile)(
      process.execPath,
      [bin, 'failover', '1', '--to', String(target), '--url', cluster.url(2)],
      {
        timeout: 30_000,
      },
    );
    await eventually(async () => ((await leaderOfOne()) === target ? true : undefined), 100);
    const after = await eventually(() => {
      const group = pageGroups(dumpDom(chromium ?? '', page)).find((g) => g.group === 1);
      return Promise.resolve(group?.leader === target ? group : undefined);
    }, 10);
    expect(after.row).toContain(`${before} → ${target} (transfer`);
    // Records in the action log appear under the recent actions.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [bin, 'actions', 'schedule', testSuccessKind, '--url', cluster.url(3)],
      { timeout: 30_000 },
    );
    const actionId = stdout.trim();
    await eventually(
      () => Promise.resolve(dumpDom(chromium ?? '', page).includes(`<tr data-action="${actionId}"`) ? true : undefined),
      10,
    );
    shoot('after');
  }, 120_000);

  it("lists a database with its state, its alias and this node's download", async () => {
    const page = `${cluster.url(1)}/`;
    const source = s3?.source ?? '';
    const added = await request(
      `${cluster.url(2)}/v1/databases`,
      'POST',
      JSON.stringify({ name: 'shop', source, replicas: 'all' }),
      'application/json',
    );
    expect(added.status).toBeLessThan(300);
    await eventually(async () => {
      const answer = await request(
        `${cluster.url(1)}/v1/aliases/live`,
        'PUT',
        '{"database":"shop"}',
        'application/json',
      );
      return answer.status === 200 ? true : undefined; // refused until the database is loaded
    }, 300);
    const shown = await eventually(() => {
      const match = /<tr data-database="shop" data-state="([a-z]+)"[^>]*>(.*?)<\/tr>/su.exec(
        dumpDom(chromium ?? '', page),
      );
      const text = (match?.[2] ?? '').replace(/<[^>]+>/gu, ' ');
      return Promise.resolve(match?.[1] === 'loaded' && text.includes('live') ? text : undefined);
    }, 10);
    expect(shown).toContain(source);
    expect(shown).toContain('100%');
    const path = shoot('databases');
    if (process.env.UPDATE_SCREENSHOT === '1')
      copyFileSync(path, fileURLToPath(new URL('../../docs/status-page.png', import.meta.url)));
  }, 120_000);
});
