// A child process for crash.test.ts: `node --import tsx test/storage/crash-writer.ts <dir> <seed>`.
// Opens the DiskStore at <dir> and, like a leader of several groups, writes turn after turn: each
// turn appends 1..4 entries to every group in ONE synced batch, and prints an `ack` line per group
// only after the write resolved. Every 20 turns one group compacts behind a snapshot. Each life of
// the process starts a new term and overwrites the last two entries of every group (a new leader
// replacing an uncommitted suffix). The parent SIGKILLs it at a random moment; bounded in turns
// and time so an orphan cannot run on.

import { createRng } from '../../src/base/rng.ts';
import type { LogIndex, Term } from '../../src/base/ids.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Entry } from '../../src/raft/types.ts';
import type { GroupWrite } from '../../src/multiraft/ports.ts';
import { DiskStore } from '../../src/storage/disk-store.ts';
import {
  compactEveryTurns,
  crashGroups,
  entriesPerTurnMax,
  entryPayload,
  formatAck,
  readPayload,
  snapshotPayload,
  type Acknowledgement,
} from './crash-load.ts';
import { nid, nids } from '../raft/unit/helpers.ts';
import { testStoreOptions } from './support.ts';

const turnsMax = 100_000;
const lifetimeMsMax = 15_000;

const [directory, seedText] = process.argv.slice(2);
if (directory === undefined || seedText === undefined) throw new Error('usage: crash-writer.ts <dir> <seed>');
const rng = createRng(Number(seedText));
const store = await DiskStore.open(directory, testStoreOptions);

// Resume where the last life stopped: a higher term, and the turn after the last one on disk.
let term = 1 as Term;
let turn = 1;
for (const group of crashGroups) {
  const log = store.group(group);
  term = Math.max(term, log.hardState().term + 1) as Term;
  const last =
    log.lastIndex() >= log.firstIndex()
      ? log.entries(log.lastIndex(), (log.lastIndex() + 1) as LogIndex, Infinity)[0]
      : undefined;
  if (last?.kind === 'normal') turn = Math.max(turn, (readPayload(last.data)?.turn ?? 0) + 1);
}

const startedMs = Date.now();
for (let turnsDone = 0; turnsDone < turnsMax && Date.now() - startedMs < lifetimeMsMax; turnsDone++, turn++) {
  const acks: Acknowledgement[] = [];
  const writes = crashGroups.map((group): GroupWrite => {
    const log = store.group(group);
    // The first turn of a life replaces the last two entries (never compacted ones).
    const first = (turnsDone === 0 ? Math.max(log.firstIndex(), log.lastIndex() - 1) : log.lastIndex() + 1) as LogIndex;
    const last = (first + rng.int(entriesPerTurnMax)) as LogIndex;
    const entries: Entry[] = [];
    for (let index = first; index <= last; index++) {
      entries.push({ kind: 'normal', index, term, data: entryPayload({ group, index, term, turn }) });
    }
    acks.push({ turn, group, first, last, term });
    return { group, entries, hardState: { term, vote: nid(1), commit: last }, applied: last };
  });
  await store.write(writes, { sync: true });
  process.stdout.write(acks.map(formatAck).join(''));
  if (turn % compactEveryTurns === 0) {
    const group = crashGroups[(turn / compactEveryTurns) % crashGroups.length];
    if (group !== undefined) {
      const index = (store.group(group).lastIndex() - 1) as LogIndex;
      await store.compact(group, index, confStateOf(nids(1)), snapshotPayload(group, index));
    }
  }
}
await store.close();
