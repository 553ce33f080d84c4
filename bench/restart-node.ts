// The child process of the restart benchmark (bench/restart.bench.ts): one fresh Node.js heap per
// measured restart, so neither variant inherits the other's memory. Two commands:
//
//   build <dir> <keys> <valueBytes> <snapshot|log>
//       writes a one-voter KV group (group 1, node 1) holding `keys` puts of `valueBytes` each, as
//       committed log entries; with `snapshot`, the group is then compacted at its last index
//       (the model's snapshot in its envelope, a tail of snapshotTailEntries kept), as a running
//       node would have.
//   restart <dir> <keys> <snapshots on|off>
//       opens the store and hosts the group as a node does at start (storage load, model restore,
//       replay of the committed entries after the snapshot), and counts the time until the node
//       serves: a new write is applied, which needs every earlier entry applied and the leader
//       elected. Checks the model holds every key with its value before it reports.
//   load <dir> <keys> <valueBytes> <snapshot|none>
//       restarts on a data dir built with a snapshot, then 16 writers overwrite random keys
//       (closed loop) until loadWritesMin writes are done and, with `snapshot`, a snapshot of
//       the whole shard was taken (asked for after snapshotAfterEntries writes) and stored; with
//       `none` no snapshot is taken. Reports the write latencies, the longest turn, the longest
//       event-loop delay and how long the compaction's storage write took.
//
// Prints one JSON line on stdout. The host's transport goes nowhere (one voter needs no peer).

import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { concatBytes } from '../src/base/bytes.ts';
import { asGroupId, asNodeId, type LogIndex, type Term } from '../src/base/ids.ts';
import { createRng } from '../src/base/rng.ts';
import { encodeKvCommand } from '../src/codec/kv.ts';
import { KvModel } from '../src/models/kv.ts';
import { ModelStack } from '../src/models/model-stack.ts';
import { MultiRaftHost } from '../src/multiraft/host.ts';
import { confStateOf } from '../src/raft/confchange.ts';
import { raftConfigDefaults } from '../src/raft/config.ts';
import { bootstrapEntry } from '../src/raft/storage.ts';
import type { Entry } from '../src/raft/types.ts';
import { DiskStore } from '../src/storage/disk-store.ts';
import { valueOf } from './cluster-load.ts';

const group = asGroupId(1);
const node = asNodeId(1);
const limits = { entryDataBytesMax: 2 << 20, snapshotDataBytesMax: 1 << 30 };
const buildEntriesPerWrite = 1024;
const servingTimeoutMs = 600_000;
const loadWriters = 16;
const loadWritesMin = 4000;
const loadWritesMax = 200_000;
const snapshotAfterEntries = 1000;

export function keyOf(k: number): string {
  return `key-${k.toString().padStart(7, '0')}`;
}

async function build(dir: string, keys: number, valueBytes: number, withSnapshot: boolean): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  const store = await DiskStore.open(dir, limits);
  const confState = confStateOf([node]);
  const last = (keys + 1) as LogIndex;
  const hardState = { term: 1 as Term, vote: node, commit: last };
  await store.write([{ group, entries: [bootstrapEntry(confState)] }], { sync: false });
  const stack = new ModelStack(new KvModel(), (bytes, previous) => crc32(bytes, previous));
  for (let first = 2; first <= last; first += buildEntriesPerWrite) {
    const entries: Entry[] = [];
    for (let index = first; index <= Math.min(last, first + buildEntriesPerWrite - 1); index++) {
      const k = index - 2;
      const data = encodeKvCommand({ op: 'put', key: keyOf(k), value: valueOf(k, valueBytes) });
      entries.push({ kind: 'normal', term: 1 as Term, index: index as LogIndex, data });
      if (withSnapshot) stack.applyEntry(index as LogIndex, data);
    }
    await store.write([{ group, entries, hardState }], { sync: false });
  }
  await store.write([{ group, entries: [], hardState }], { sync: true });
  if (withSnapshot) {
    const tail = raftConfigDefaults.snapshotTailEntries;
    // The snapshot as the host writes it: the model's slices in the envelope.
    const slices: Uint8Array[] = [];
    const capture = stack.capture([{ group, index: last, term: 1 as Term, confState }]);
    for (let next = capture.next(); next.done !== true; next = capture.next()) slices.push(next.value);
    await store.compact(group, last, confState, concatBytes(slices), Math.max(1, last + 1 - tail) as LogIndex);
  }
  await store.close();
  // Opened once more, as a node that ran a while would find it: LevelDB turns its write-ahead log
  // into tables on open, so the measured opens read tables, not a log of the whole build.
  await (await DiskStore.open(dir, limits)).close();
}

function startHost(
  store: DiskStore,
  snapshotIntervalEntries: number,
  snapshotLogBytes: number,
  observeTurn?: (seconds: number) => void,
): MultiRaftHost {
  return new MultiRaftHost({
    nodeId: node,
    storage: store,
    transport: { send: () => undefined },
    // A fixed seed: the same election timeout in every run and both variants.
    rng: createRng(7),
    raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, snapshotIntervalEntries, snapshotLogBytes },
    tickMs: 10,
    proposalQueueMax: 1000,
    requestTimeoutMs: servingTimeoutMs,
    commitFlushMs: 1000,
    pingMs: 10,
    peerSilenceMs: 100,
    ...(observeTurn === undefined ? {} : { observeTurn }),
  });
}

async function restart(dir: string, keys: number, valueBytes: number, snapshots: boolean): Promise<void> {
  const startedMs = performance.now();
  const store = await DiskStore.open(dir, limits);
  const openedMs = performance.now();
  const model = new KvModel();
  // Snapshots off for the replay variant, so the restart does not turn its log into a snapshot.
  const host = snapshots
    ? startHost(store, raftConfigDefaults.snapshotIntervalEntries, raftConfigDefaults.snapshotLogBytes)
    : startHost(store, 0, 0);
  host.addGroup(group, model);
  const hostedMs = performance.now();
  host.start();
  const probe = encodeKvCommand({ op: 'put', key: 'restart-probe', value: new Uint8Array([1]) });
  let outcome = await host.propose(group, probe);
  for (let attempt = 0; outcome.kind === 'refused' && attempt < 10_000; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    outcome = await host.propose(group, probe);
  }
  const servingMs = performance.now();
  if (outcome.kind !== 'applied')
    throw new Error(`restart: the probe write was not applied: ${JSON.stringify(outcome)}`);
  // Check the result before reporting it: every key, and every value.
  if (model.size !== keys + 1) throw new Error(`restart: the model holds ${model.size} keys, expected ${keys + 1}`);
  for (let k = 0; k < keys; k++) {
    const value = model.get(keyOf(k))?.value;
    const expected = valueOf(k, valueBytes);
    if (value === undefined || Buffer.compare(value, expected) !== 0) throw new Error(`restart: key ${k} is wrong`);
  }
  await host.stop();
  await store.close();
  process.stdout.write(
    `${JSON.stringify({
      openMs: openedMs - startedMs,
      restoreMs: hostedMs - openedMs,
      servingMs: servingMs - startedMs,
      heapMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    })}\n`,
  );
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

async function load(dir: string, keys: number, valueBytes: number, withSnapshot: boolean): Promise<void> {
  const store = await DiskStore.open(dir, limits);
  let turnSecondsMax = 0;
  const host = startHost(store, withSnapshot ? snapshotAfterEntries : 0, 0, (seconds) => {
    turnSecondsMax = Math.max(turnSecondsMax, seconds);
  });
  const model = new KvModel();
  host.addGroup(group, model);
  host.start();
  const snapshotBefore = store.group(group).snapshot().meta.index;
  let compactMs = 0;
  const compact = store.compact.bind(store);
  store.compact = async (...args) => {
    const startedMs = performance.now();
    await compact(...args);
    compactMs += performance.now() - startedMs;
  };
  // Serving first (the restart is not measured here).
  const probe = encodeKvCommand({ op: 'put', key: 'load-probe', value: new Uint8Array([1]) });
  while ((await host.propose(group, probe)).kind !== 'applied') await new Promise((resolve) => setTimeout(resolve, 5));
  turnSecondsMax = 0;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const latenciesMs: number[] = [];
  let seed = 12345;
  const done = (): boolean =>
    latenciesMs.length >= loadWritesMax ||
    (latenciesMs.length >= loadWritesMin &&
      (!withSnapshot || store.group(group).snapshot().meta.index > snapshotBefore));
  const writer = async (): Promise<void> => {
    while (!done()) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const k = seed % keys;
      const data = encodeKvCommand({ op: 'put', key: keyOf(k), value: valueOf(k + 1, valueBytes) });
      const startedMs = performance.now();
      const outcome = await host.propose(group, data);
      if (outcome.kind !== 'applied') throw new Error(`load: a write was not applied: ${JSON.stringify(outcome)}`);
      latenciesMs.push(performance.now() - startedMs);
    }
  };
  const startedMs = performance.now();
  await Promise.all(Array.from({ length: loadWriters }, writer));
  const seconds = (performance.now() - startedMs) / 1000;
  delay.disable();
  const snapshotAfter = store.group(group).snapshot().meta.index;
  if (withSnapshot !== snapshotAfter > snapshotBefore) throw new Error('load: the snapshot was (not) taken');
  // The shard's keys, this probe, and the restart benchmark's probe when a restart ran on the dir.
  const expected = keys + 1 + (model.get('restart-probe') === undefined ? 0 : 1);
  if (model.size !== expected) throw new Error(`load: the model holds ${model.size} keys, expected ${expected}`);
  await host.stop();
  await store.close();
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      writes: sorted.length,
      writesPerSecond: Math.round(sorted.length / seconds),
      p50Ms: round2(percentile(sorted, 0.5)),
      p99Ms: round2(percentile(sorted, 0.99)),
      maxMs: round2(sorted.at(-1) ?? 0),
      turnMsMax: round2(turnSecondsMax * 1000),
      eventLoopDelayMsMax: round2(delay.max / 1e6),
      compactMs: round2(compactMs),
    })}\n`,
  );
}

const [command, dir, keysText, valueBytesText, variant] = process.argv.slice(2);
if (dir === undefined || keysText === undefined || valueBytesText === undefined || variant === undefined)
  throw new Error('usage: restart-node.ts build|restart <dir> <keys> <valueBytes> snapshot|log');
const keys = Number(keysText);
const valueBytes = Number(valueBytesText);
if (command === 'build') await build(dir, keys, valueBytes, variant === 'snapshot');
else if (command === 'restart') await restart(dir, keys, valueBytes, variant === 'snapshot');
else if (command === 'load') await load(dir, keys, valueBytes, variant === 'snapshot');
else throw new Error(`restart-node: unknown command ${command}`);
