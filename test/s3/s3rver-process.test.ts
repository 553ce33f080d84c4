// The s3rver process manager: two servers on free loopback ports at once, objects kept in the
// directory across a restart, stop() ends the process (and is idempotent), and a server that cannot
// start is an error, not a hang; a server whose parent is killed stops by itself.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import { startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverStore } from './support.ts';
import { processAlive as alive } from '../support/process-alive.ts';
import { eventually } from '../support/poll.ts';

const root = mkdtempSync(join(tmpdir(), 'dram-s3rver-process-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function storeFor(server: S3rverProcess): S3ObjectStore {
  return s3rverStore(server, { attemptsMax: 1 });
}

describe('s3rver process', () => {
  it('runs two servers at once, keeps objects across a restart, and stops', async () => {
    const directory = join(root, 'one');
    const [first, second] = await Promise.all([
      startS3rver({ directory }),
      startS3rver({ directory: join(root, 'two') }),
    ]);
    expect(first.port).not.toBe(second.port);
    expect(first.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const store = storeFor(first);
    await store.createBucket('kept');
    await store.put('kept', 'a/b', new TextEncoder().encode('survives'));
    store.close();
    await Promise.all([first.stop(), second.stop()]);
    await first.stop();
    expect([alive(first.pid), alive(second.pid)]).toEqual([false, false]);

    const again = await startS3rver({ directory });
    const reopened = storeFor(again);
    try {
      const got = await reopened.get('kept', 'a/b', { bytesMax: 100 });
      expect(new TextDecoder().decode(got.bytes)).toBe('survives');
    } finally {
      reopened.close();
      await again.stop();
    }
  });

  it('fails to start on a port already taken, leaving no process behind', async () => {
    const holder = await startS3rver({ directory: join(root, 'holder') });
    try {
      await expect(
        startS3rver({ directory: join(root, 'clash'), port: holder.port, stderr: 'ignore' }),
      ).rejects.toThrow(/exited before listening/);
    } finally {
      await holder.stop();
    }
  });

  it('stops by itself when its parent is killed', async () => {
    const parentScript = new URL('./orphan-parent.ts', import.meta.url).pathname;
    const parent = spawn(process.execPath, ['--import', 'tsx', parentScript, join(root, 'orphan')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      let text = '';
      parent.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('\n')) resolve(Number(text.trim()));
      });
      parent.once('exit', () => {
        reject(new Error('the parent exited before starting s3rver'));
      });
    });
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    const gone = await eventually('the server process gone', () => !alive(pid), { tries: 200, everyMs: 100 }).catch(
      () => false,
    );
    if (!gone) process.kill(pid, 'SIGKILL');
    expect(gone).toBe(true);
  });
});
