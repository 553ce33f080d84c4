// The snapshot nemeses against a fake cluster (an in-memory model of three replicas' logs, no
// processes), and the `nemesis` checker over what they record. The point: a nemesis that stops
// doing its job shows. A catch-up fault whose compaction never moves the other replicas' logs is
// unknown (the follower was never really behind a snapshot), one whose follower never catches up
// is invalid, and a fault that records nothing at all is unknown too; only a fault whose effect
// was seen is valid. Were applySnapshotFault a no-op, the valid cases below would fail.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminControl, Database, ReplicaState } from './db.ts';
import type { Drop } from './firewall.ts';
import { NemesisLog, type NemesisEntry } from './history-recorder.ts';
import { Nemesis } from './nemesis.ts';
import { checkNemesisEffects, finalPlacementCheck } from './nemesis-checks.ts';
import { parseRunOptions, type RunOptions } from './options.ts';
import { createRng } from './rng.ts';
import { planSchedule, type FaultSpec, type Schedule } from './schedule.ts';

const tail = 10;
const group = 1;

interface Log {
  applied: number;
  first: number;
}

/** Three replicas of group 1 (node 1 leads) whose logs grow, compact and catch up as dram's would. */
class FakeCluster {
  readonly logs = new Map<number, Log>([1, 2, 3].map((node) => [node, { applied: 20, first: 1 }]));
  readonly calls: string[] = [];
  cut: number | undefined;
  running = new Set([1, 2, 3]);
  readonly behaviour: { compacts: boolean; catchesUp: boolean; restarts: boolean };

  constructor(behaviour: { compacts: boolean; catchesUp: boolean; restarts: boolean }) {
    this.behaviour = behaviour;
  }

  private replica(node: number): ReplicaState | undefined {
    const log = this.logs.get(node);
    if (log === undefined || !this.running.has(node)) return undefined;
    // A healed follower behind every other log's start installs the leader's snapshot.
    const leader = this.logs.get(1) ?? log;
    if (this.cut === undefined && this.behaviour.catchesUp && log.applied < leader.applied) {
      log.applied = leader.applied;
      log.first = leader.applied + 1 - tail;
    }
    const voters = [1, 2, 3];
    return {
      role: node === 1 ? 'leader' : 'follower',
      term: 2,
      leader: 1,
      applied: log.applied,
      firstIndex: log.first,
      lastIndex: log.applied,
      voters,
    };
  }

  readonly firewall = {
    apply: (drops: readonly Drop[]): Promise<void> => {
      const counts = new Map<number, number>();
      for (const drop of drops) counts.set(drop.from, (counts.get(drop.from) ?? 0) + 1);
      this.cut = [...counts].find(([, count]) => count === 2)?.[0];
      this.calls.push(`cut ${this.cut ?? '?'}`);
      return Promise.resolve();
    },
    heal: (): Promise<void> => {
      this.cut = undefined;
      return Promise.resolve();
    },
  };

  readonly admin: AdminControl = {
    spareIds: [],
    startSpare: () => undefined,
    retire: () => Promise.resolve(),
    replica: (node) => Promise.resolve(this.replica(node)),
    hostedGroups: (node) => Promise.resolve(this.running.has(node) ? [0, group] : undefined),
    compact: (node) => {
      this.calls.push(`compact ${node}`);
      const log = this.logs.get(node);
      if (log === undefined) return Promise.resolve('no such node');
      if (this.behaviour.compacts) log.first = Math.max(log.first, log.applied + 1 - tail);
      return Promise.resolve({ state: 'started', index: log.applied });
    },
    fill: (_group, count) => {
      for (const [node, log] of this.logs) if (node !== this.cut) log.applied += count;
      return Promise.resolve(count);
    },
    runAction: () => Promise.resolve({ phase: 'unknown', detail: 'not in this fake' }),
    placement: () => Promise.resolve('not in this fake'),
    setNodeGoneGrace: () => Promise.resolve(undefined),
    url: (node) => `http://fake-${node}`,
  };

  readonly db: Database = {
    name: 'fake',
    nodeIds: [1, 2, 3],
    groupIds: [group],
    supportsNetworkFaults: true,
    admin: this.admin,
    start: () => Promise.resolve(),
    waitReady: () => Promise.resolve(true),
    client: () => {
      throw new Error('no clients in this fake');
    },
    nodeAddress: (node) => `fake-${node}`,
    kill: (node) => {
      this.calls.push(`kill ${node}`);
      this.running.delete(node);
      return Promise.resolve();
    },
    restart: (node) => {
      this.calls.push(`restart ${node}`);
      if (this.behaviour.restarts) this.running.add(node);
      return Promise.resolve();
    },
    pause: () => undefined,
    resume: () => undefined,
    isRunning: (node) => this.running.has(node),
    isPaused: () => false,
    leaderOf: () => Promise.resolve(1),
    transferLeadership: () => Promise.resolve('no transfers in this fake'),
    unexpectedExits: () => [],
    stop: () => Promise.resolve(),
  };
}

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Runs one fault of `spec` against the fake; answers the schedule and what the nemesis logged. */
async function runFault(fake: FakeCluster, spec: FaultSpec): Promise<{ schedule: Schedule; entries: NemesisEntry[] }> {
  const folder = mkdtempSync(join(tmpdir(), 'jepsen-nemesis-'));
  folders.push(folder);
  const log = new NemesisLog(join(folder, 'nemesis.jsonl'));
  const nemesis = new Nemesis({
    db: fake.db,
    firewall: fake.firewall,
    proxy: undefined,
    log,
    now: () => 0,
    signal: new AbortController().signal,
    snapshotTailEntries: tail,
    faultWaits: { catchUpMs: 300, compactPastMs: 300 },
  });
  const schedule: Schedule = {
    seed: 1,
    nemeses: [spec.kind === 'snapshot' ? 'snapshot' : 'membership'],
    skipped: [],
    faults: [{ index: 0, startMs: 0, endMs: 50, spec }],
  };
  await nemesis.run(schedule, Date.now());
  await log.close();
  return { schedule, entries: log.entries };
}

const catchUp: FaultSpec = { kind: 'snapshot', mode: 'catch-up', group, order: [3, 2, 1], killDelayMs: 0 };
const crash: FaultSpec = { kind: 'snapshot', mode: 'crash-mid-snapshot', group, order: [2, 3, 1], killDelayMs: 5 };

describe('snapshot nemesis: catch-up', () => {
  it('cuts a follower off, compacts the others past its log, and sees it catch up after the heal: valid', async () => {
    const fake = new FakeCluster({ compacts: true, catchesUp: true, restarts: true });
    const { schedule, entries } = await runFault(fake, catchUp);
    expect(fake.calls.slice(0, 3)).toEqual(['cut 3', 'compact 1', 'compact 2']);
    expect((fake.logs.get(1)?.first ?? 0) > 21).toBe(true);
    const verdict = checkNemesisEffects(schedule, entries);
    expect(verdict?.verdict, JSON.stringify(verdict)).toBe('valid');
    expect(verdict?.details.checks.join('\n')).toMatch(/caught up by snapshot/u);
  });

  it('is unknown when compaction never moves the other logs past the follower (the fault did not happen)', async () => {
    const fake = new FakeCluster({ compacts: false, catchesUp: true, restarts: true });
    const { schedule, entries } = await runFault(fake, catchUp);
    expect(checkNemesisEffects(schedule, entries)?.verdict).toBe('unknown');
    expect(fake.cut).toBeUndefined(); // healed all the same
  });

  it('is invalid when the follower never catches up after the heal', async () => {
    const fake = new FakeCluster({ compacts: true, catchesUp: false, restarts: true });
    const { schedule, entries } = await runFault(fake, catchUp);
    expect(checkNemesisEffects(schedule, entries)?.verdict).toBe('invalid');
  });
});

describe('snapshot nemesis: crash mid-snapshot', () => {
  it('asks a replica to snapshot, kills it, restarts it and sees it serve again: valid', async () => {
    const fake = new FakeCluster({ compacts: true, catchesUp: true, restarts: true });
    const { schedule, entries } = await runFault(fake, crash);
    expect(fake.calls).toEqual(['compact 2', 'compact 2', 'kill 2', 'restart 2']);
    expect(checkNemesisEffects(schedule, entries)?.verdict).toBe('valid');
  });

  it('is invalid when the node does not come back', async () => {
    const fake = new FakeCluster({ compacts: true, catchesUp: true, restarts: false });
    const { schedule, entries } = await runFault(fake, crash);
    expect(checkNemesisEffects(schedule, entries)?.verdict).toBe('invalid');
  });
});

describe('the nemesis checker', () => {
  const schedule: Schedule = {
    seed: 1,
    nemeses: ['snapshot', 'membership', 'kill'],
    skipped: [],
    faults: [
      { index: 0, startMs: 0, endMs: 10, spec: catchUp },
      { index: 1, startMs: 20, endMs: 30, spec: { kind: 'membership', mode: 'grow-shrink', order: [1, 2, 3, 4, 5] } },
      { index: 2, startMs: 40, endMs: 50, spec: { kind: 'kill', target: 'leader', group, order: [1, 2, 3] } },
    ],
  };
  const entry = (
    type: NemesisEntry['type'],
    fault: number | undefined,
    verdict?: NemesisEntry['verdict'],
  ): NemesisEntry => ({
    time: 0,
    type,
    ...(fault === undefined ? {} : { fault }),
    kind: fault === undefined ? finalPlacementCheck : 'x',
    detail: '',
    ...(verdict === undefined ? {} : { verdict }),
  });

  it('wants a check for every snapshot or membership fault that started, and the final placement check', () => {
    const started = [entry('start', 0), entry('start', 1), entry('start', 2)];
    expect(checkNemesisEffects(schedule, started)?.verdict).toBe('unknown');
    const checked = [...started, entry('check', 0, 'valid'), entry('check', 1, 'valid')];
    expect(checkNemesisEffects(schedule, checked)?.verdict).toBe('unknown'); // no final placement check
    expect(checkNemesisEffects(schedule, [...checked, entry('check', undefined, 'valid')])?.verdict).toBe('valid');
    expect(checkNemesisEffects(schedule, [...checked, entry('check', undefined, 'invalid')])?.verdict).toBe('invalid');
    // A fault that never started (a run cut short) needs nothing.
    expect(checkNemesisEffects(schedule, [entry('start', 0), entry('check', 0, 'valid')])?.verdict).toBe('valid');
  });

  it('has nothing to say about runs without those nemeses', () => {
    const kills: Schedule = { ...schedule, faults: schedule.faults.slice(2) };
    expect(checkNemesisEffects(kills, [entry('start', 2)])).toBeUndefined();
  });
});

describe('schedule', () => {
  function options(args: string[]): RunOptions {
    const parsed = parseRunOptions(args);
    if (parsed === 'help') throw new Error('unexpected help');
    return parsed;
  }

  it('runs snapshot faults on dram, membership faults on five nodes, and skips them elsewhere', () => {
    const five = planSchedule(
      options(['--nemesis', 'snapshot,membership', '--nodes', '5', '--time', '120', '--seed', '4']),
      [1, 2, 3, 4, 5],
      [1, 2],
      createRng(4),
    );
    expect(five.skipped).toEqual([]);
    expect(new Set(five.faults.map((fault) => fault.spec.kind))).toEqual(new Set(['snapshot', 'membership']));
    const three = planSchedule(options(['--nemesis', 'snapshot,membership']), [1, 2, 3], [1], createRng(4));
    expect(three.skipped.map((skip) => skip.kind)).toEqual(['membership']);
    const etcd = planSchedule(options(['--db', 'etcd', '--nemesis', 'snapshot,kill']), [1, 2, 3], [1], createRng(4));
    expect(etcd.skipped.map((skip) => skip.kind)).toEqual(['snapshot']);
  });
});
