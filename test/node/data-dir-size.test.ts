// The data dir's size for the agent API: every file under it, nested directories included; the
// walk stops counting at filesMax.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { directoryBytes } from '../../src/node/data-dir-size.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('data dir size', () => {
  it('sums every file under the directory, nested ones included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dram-size-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'raft', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'peers.json'), 'x'.repeat(100));
    writeFileSync(join(dir, 'raft', 'a.log'), 'x'.repeat(1000));
    writeFileSync(join(dir, 'raft', 'deep', 'b.sst'), 'x'.repeat(10_000));
    expect(await directoryBytes(dir)).toBe(11_100);
    expect(await directoryBytes(join(dir, 'missing'))).toBe(0);
  });

  it('counts at most filesMax files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dram-size-'));
    dirs.push(dir);
    for (let k = 0; k < 5; k++) writeFileSync(join(dir, `f${k}`), 'x'.repeat(10));
    expect(await directoryBytes(dir, 3)).toBe(30);
  });
});
