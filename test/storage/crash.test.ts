// Crash safety with real processes: crash-writer.ts runs a synced multi-group write load in a
// child process, printing each acknowledged write; we SIGKILL it at a random moment, reopen the
// store and check that (1) every acknowledged entry is there and intact (or was compacted into a
// snapshot the writer acknowledged), never older than acknowledged, (2) every stored entry is one
// the writer wrote, at its own group and index, (3) each turn's batch is all-or-nothing across
// groups, (4) hard state and snapshots are not behind what was acknowledged. Contiguity is
// checked by DiskStore.open itself. The store survives several lives: each round reopens what the
// previous kill left. Bounded: rounds, time per round and the whole test.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GroupId, LogIndex } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { DiskStore } from '../../src/storage/disk-store.ts';
import { crashGroups, parseAck, readPayload, snapshotPayload, type Acknowledgement } from './crash-load.ts';
import { temporaryDirectory, testStoreOptions } from './support.ts';

const roundsMax = 6;
/** The kill lands this long (at most) after the first acknowledgement. */
const killDelayMsMax = 400;
/** A child that acknowledges nothing in this long has failed. */
const firstAckWaitMsMax = 8_000;
const testTimeoutMs = 20_000;

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const writerPath = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));

interface Life {
  readonly acks: Acknowledgement[];
  readonly killed: boolean;
  readonly stderr: string;
}

/** Runs the writer until `killDelayMs` after its first acknowledgement, then SIGKILLs it. */
function liveAndDie(path: string, seed: number, killDelayMs: number): Promise<Life> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerPath, path, String(seed)], {
    cwd: repositoryRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let killTimer: NodeJS.Timeout | undefined;
  const giveUp = setTimeout(() => child.kill('SIGKILL'), firstAckWaitMsMax);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (killTimer === undefined && stdout.includes('\n')) {
      clearTimeout(giveUp);
      killTimer = setTimeout(() => child.kill('SIGKILL'), killDelayMs);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(giveUp);
      clearTimeout(killTimer);
      // Only complete lines count: a line cut by the kill was never fully acknowledged.
      const lines = stdout
        .slice(0, stdout.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((line) => line !== '');
      const acks = lines.map((line) => parseAck(line) ?? fail(`unexpected writer output: ${line}`));
      resolve({ acks, killed: signal === 'SIGKILL', stderr });
    });
  });
}

function fail(message: string): never {
  throw new Error(message);
}

/** The newest acknowledged state: per group and index, the term and turn last acknowledged. */
class Acknowledged {
  readonly entries = new Map<GroupId, Map<number, { term: number; turn: number }>>(
    crashGroups.map((group) => [group, new Map()]),
  );
  readonly lastTerm = new Map<GroupId, number>();
  readonly lastIndex = new Map<GroupId, number>();

  add(ack: Acknowledgement): void {
    const entries = this.entries.get(ack.group) ?? fail(`ack for unknown group ${ack.group}`);
    for (let index = ack.first; index <= ack.last; index++) entries.set(index, { term: ack.term, turn: ack.turn });
    this.lastTerm.set(ack.group, ack.term);
    this.lastIndex.set(ack.group, ack.last);
  }
}

async function verify(path: string, acknowledged: Acknowledged, context: string): Promise<number> {
  const store = await DiskStore.open(path, testStoreOptions); // throws on corruption or a hole
  const lastTurns = new Set<number>();
  let checked = 0;
  try {
    for (const group of crashGroups) {
      const log = store.group(group);
      const snapshotIndex = log.snapshot().meta.index;
      if (snapshotIndex > 0)
        expect(Array.from(log.snapshot().data), `${context}: snapshot bytes of group ${group}`).toEqual(
          Array.from(snapshotPayload(group, snapshotIndex)),
        );
      const stored = log.entries(log.firstIndex(), (log.lastIndex() + 1) as LogIndex, Infinity);
      for (const entry of stored) {
        const stamp = entry.kind === 'normal' ? readPayload(entry.data) : undefined;
        expect(stamp, `${context}: group ${group} index ${entry.index} is damaged`).toEqual({
          group,
          index: entry.index,
          term: entry.term,
          turn: stamp?.turn,
        });
      }
      const last = stored.at(-1);
      if (last?.kind === 'normal') lastTurns.add(readPayload(last.data)?.turn ?? -1);
      for (const [index, ack] of acknowledged.entries.get(group) ?? []) {
        if (index <= snapshotIndex) continue;
        const entry =
          log.term(index as LogIndex) === undefined
            ? undefined
            : log.entries(index as LogIndex, (index + 1) as LogIndex, Infinity)[0];
        expect(entry, `${context}: acknowledged entry ${group}/${index} is missing`).toBeDefined();
        const term = entry?.term ?? 0;
        // A later write (started, never acknowledged) may have replaced it with a higher term only.
        expect(term, `${context}: entry ${group}/${index} went back in term`).toBeGreaterThanOrEqual(ack.term);
        if (term === ack.term && entry?.kind === 'normal')
          expect(readPayload(entry.data)?.turn, `${context}: entry ${group}/${index}`).toBe(ack.turn);
        checked += 1;
      }
      expect(log.hardState().term, `${context}: hard state term of group ${group}`).toBeGreaterThanOrEqual(
        acknowledged.lastTerm.get(group) ?? 0,
      );
      expect(log.hardState().commit, `${context}: commit of group ${group}`).toBeGreaterThanOrEqual(
        acknowledged.lastIndex.get(group) ?? 0,
      );
    }
    // Every turn writes every group in one batch: after a crash all groups end in the same turn.
    expect(
      lastTurns.size,
      `${context}: groups end in different turns ${[...lastTurns].join(', ')}`,
    ).toBeLessThanOrEqual(1);
  } finally {
    await store.close();
  }
  return checked;
}

describe('DiskStore under SIGKILL', () => {
  let directory: Awaited<ReturnType<typeof temporaryDirectory>>;
  beforeEach(async () => {
    directory = await temporaryDirectory('crash');
  });
  afterEach(async () => {
    await directory.cleanup();
  });

  it(
    'keeps every acknowledged entry, intact and contiguous, across kills at random moments',
    async () => {
      const seed = Number(process.env['STORAGE_CRASH_SEED'] ?? Date.now() % 0x7fff_ffff);
      const rng = createRng(seed);
      const path = join(directory.path, 'db');
      const acknowledged = new Acknowledged();
      const startedMs = Date.now();
      for (let round = 1; round <= roundsMax && Date.now() - startedMs < testTimeoutMs / 2; round++) {
        const context = `seed ${seed} round ${round} (STORAGE_CRASH_SEED=${seed} replays the kill delays)`;
        const life = await liveAndDie(path, rng.int(0x7fff_ffff), rng.int(killDelayMsMax + 1));
        expect(life.killed, `${context}: the writer was not killed but exited; stderr:\n${life.stderr}`).toBe(true);
        expect(life.acks.length, `${context}: no acknowledgement; stderr:\n${life.stderr}`).toBeGreaterThan(0);
        for (const ack of life.acks) acknowledged.add(ack);
        const checked = await verify(path, acknowledged, context);
        expect(checked).toBeGreaterThan(0);
      }
    },
    testTimeoutMs,
  );
});
