// Snapshots through the multi-Raft host (issue 13): a node restarted from its snapshots applies
// every entry exactly once (the snapshot's, then the log after it), for a model without snapshot
// support (its mutations are kept) and for the KV model (written in slices while writes go on);
// a log of large entries is compacted by its bytes before it holds snapshotIntervalEntries; a
// snapshot chunk corrupted on its way to a follower is refused, named, and asked for again; a
// snapshot bad at the source fails its envelope checksum and is fetched again whole.

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type GroupId, type LogIndex, type NodeId, type Term } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { encodeKvCommand } from '../../src/codec/kv.ts';
import { KvModel } from '../../src/models/kv.ts';
import type { Model } from '../../src/models/model.ts';
import { MultiRaftHost, type HostOptions } from '../../src/multiraft/host.ts';
import type { HostStorage } from '../../src/multiraft/ports.ts';
import type { RaftConfigInput } from '../../src/raft/config.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { bootstrapEntry } from '../../src/raft/storage.ts';
import { openSnapshot } from '../../src/codec/snapshot.ts';
import { DiskStore, snapshotFilesDir } from '../../src/storage/disk-store.ts';
import { MemoryHostStorage, MemoryNetwork } from '../support/memory-host.ts';
import { eventually } from '../support/poll.ts';
import { temporaryDirectory, testStoreOptions } from '../storage/support.ts';

let running: MultiRaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((host) => host.stop()));
  running = [];
});

const counting = asGroupId(1);
const kv = asGroupId(2);
const put = (key: string, value: Uint8Array) => encodeKvCommand({ op: 'put', key, value });

/** A model without snapshot support that counts how often each index reached it. */
class CountingModel implements Model {
  readonly type = 'counting';
  readonly version = 1;
  readonly applied = new Map<number, number>();
  applyEntry(index: LogIndex): unknown {
    this.applied.set(index, (this.applied.get(index) ?? 0) + 1);
    return index;
  }
}

function startHost(
  id: NodeId,
  storage: HostStorage,
  network: MemoryNetwork,
  raft: Partial<RaftConfigInput>,
  extra: Partial<HostOptions> = {},
): MultiRaftHost {
  const host = new MultiRaftHost({
    nodeId: id,
    storage,
    transport: network.transport(id),
    rng: createRng(id * 7 + 1),
    raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, ...raft },
    tickMs: 5,
    proposalQueueMax: 1000,
    requestTimeoutMs: 5000,
    commitFlushMs: 50,
    pingMs: 5,
    peerSilenceMs: 50,
    ...extra,
  });
  network.hosts.set(id, host);
  running.push(host);
  return host;
}

const until = (condition: () => boolean, what: string) => eventually(what, condition, { tries: 1000, everyMs: 5 });

/** The host among `running` that leads the kv group, once one does. */
const kvLeader = (running: readonly MultiRaftHost[]): Promise<MultiRaftHost> =>
  eventually('a leader', () => running.find((host) => host.groupStatus(kv)?.status.role === 'leader'), {
    tries: 1000,
    everyMs: 5,
  });

async function proposeUntilApplied(host: MultiRaftHost, group: GroupId, data: Uint8Array): Promise<number> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const outcome = await host.propose(group, data);
    if (outcome.kind === 'applied') return outcome.index;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('never applied');
}

/**
 * Three KV replicas; one follower is cut off while the leader applies 20 writes (`c0`..`c19`) and
 * compacts past it. The follower is still cut off on return. `alsoHosted`: more KV groups on the
 * same three nodes.
 */
async function followerLeftBehind(
  raftExtra: Partial<RaftConfigInput>,
  extra: Partial<HostOptions>,
  alsoHosted: readonly GroupId[] = [],
) {
  const ids = [1, 2, 3].map(asNodeId);
  const network = new MemoryNetwork();
  const storages = new Map<NodeId, MemoryHostStorage>();
  const raft = { snapshotIntervalEntries: 4, snapshotTailEntries: 0, ...raftExtra };
  for (const id of ids) {
    const storage = new MemoryHostStorage();
    storage.bootstrap(kv, confStateOf(ids));
    for (const group of alsoHosted) storage.bootstrap(group, confStateOf(ids));
    storages.set(id, storage);
    const host = startHost(id, storage, network, raft, extra);
    host.addGroup(kv, new KvModel());
    for (const group of alsoHosted) host.addGroup(group, new KvModel());
    host.start();
  }
  const leader = await kvLeader(running);
  const leaderId = leader.groupStatus(kv)?.status.id ?? asNodeId(0);
  const behindId = ids.find((id) => id !== leaderId) ?? asNodeId(0);
  const behind = network.hosts.get(behindId);
  if (behind === undefined) throw new Error('no follower');
  network.cut.add(behindId);
  for (let k = 0; k < 20; k++) await proposeUntilApplied(leader, kv, put(`c${k}`, Uint8Array.of(k)));
  const behindApplied = behind.groupStatus(kv)?.appliedIndex ?? 0;
  await until(
    () => (storages.get(leaderId)?.group(kv).snapshot().meta.index ?? 0) > behindApplied + 1,
    'the leader compacted past the follower',
  );
  const caughtUp = async (): Promise<void> => {
    network.cut.delete(behindId);
    const leaderApplied = leader.groupStatus(kv)?.appliedIndex ?? 0;
    await until(() => (behind.groupStatus(kv)?.appliedIndex ?? 0) >= leaderApplied, 'the follower caught up');
    const model = behind.model(kv) as KvModel;
    for (let k = 0; k < 20; k++) expect(model.get(`c${k}`)?.value).toEqual(Uint8Array.of(k));
  };
  return { behind, caughtUp, behindStorage: storages.get(behindId) };
}

/** The KV model as a newer version of it would write its snapshots. */
function newerKv(): Model {
  const inner = new KvModel();
  return {
    type: inner.type,
    version: inner.version + 1,
    applyEntry: (index, data) => inner.applyEntry(index, data),
    snapshot: () => inner.snapshot(),
    restore: (data) => {
      inner.restore(data);
    },
  };
}

/** The model version a stored snapshot's envelope names. */
function storedVersion(storage: HostStorage, group: GroupId): number | undefined {
  const opened = openSnapshot(storage.group(group).snapshot().data, (bytes, previous) => crc32(bytes, previous));
  return opened.format === 0 ? undefined : opened.header.model.version;
}

describe('snapshots through the host', () => {
  it('restarts from snapshots and applies every entry exactly once, with or without model snapshots', async () => {
    const self = asNodeId(1);
    const storage = new MemoryHostStorage();
    for (const group of [counting, kv]) storage.bootstrap(group, confStateOf([self]));
    const raft = { snapshotIntervalEntries: 7, snapshotTailEntries: 2 };
    const first = startHost(self, storage, new MemoryNetwork(), raft);
    first.addGroup(counting, new CountingModel(), () => new CountingModel());
    // Tiny slices: a snapshot takes many turns to drain while the writes below go on.
    first.addGroup(kv, new KvModel({ sessionsMax: 100, sliceBytes: 64 }));
    first.start();
    let last = 0;
    for (let k = 0; k < 40; k++) {
      last = await proposeUntilApplied(first, counting, Uint8Array.of(k));
      await proposeUntilApplied(first, kv, put(`key${k % 13}`, Uint8Array.of(k, k)));
    }
    await until(
      () => storage.group(counting).snapshot().meta.index > 20 && storage.group(kv).snapshot().meta.index > 20,
      'both groups snapshotted past index 20',
    );
    await first.stop();
    running = [];
    const model = new CountingModel();
    const kvModel = new KvModel();
    const second = startHost(self, storage, new MemoryNetwork(), raft);
    second.addGroup(counting, model);
    second.addGroup(kv, kvModel);
    second.start();
    await until(() => (second.groupStatus(counting)?.appliedIndex ?? 0) >= last, 'the restart replayed the log');
    const indexes = [...model.applied.keys()];
    // Index 1 is the bootstrap configuration entry, never given to a model.
    expect(indexes).toEqual(Array.from({ length: indexes.length }, (_, k) => k + 2));
    expect(indexes.at(-1)).toBeGreaterThanOrEqual(last);
    expect([...model.applied.values()].every((count) => count === 1)).toBe(true);
    for (let k = 27; k < 40; k++) expect(kvModel.get(`key${k % 13}`)?.value).toEqual(Uint8Array.of(k, k));
    expect(kvModel.size).toBe(13);
  });

  it('rebuilds from the log a snapshot the model cannot read (a newer version), and refuses it when the log is compacted', async () => {
    const self = asNodeId(1);
    const written = async (tail: number): Promise<{ storage: MemoryHostStorage; snapshotIndex: number }> => {
      const storage = new MemoryHostStorage();
      storage.bootstrap(kv, confStateOf([self]));
      const raft = { snapshotIntervalEntries: 5, snapshotTailEntries: tail };
      const host = startHost(self, storage, new MemoryNetwork(), raft);
      host.addGroup(kv, newerKv());
      host.start();
      for (let k = 0; k < 12; k++) await proposeUntilApplied(host, kv, put(`key${k}`, Uint8Array.of(k)));
      await until(() => storage.group(kv).snapshot().meta.index > 5, 'a snapshot of the newer version');
      await host.stop();
      running = [];
      return { storage, snapshotIndex: storage.group(kv).snapshot().meta.index };
    };
    // The log kept whole behind the snapshot: the state is rebuilt from it, the snapshot not loaded.
    const kept = await written(1000);
    const model = new KvModel();
    const host = startHost(self, kept.storage, new MemoryNetwork(), {});
    host.addGroup(kv, model);
    host.start();
    await proposeUntilApplied(host, kv, put('after', Uint8Array.of(99)));
    for (let k = 0; k < 12; k++) expect(model.get(`key${k}`)?.value).toEqual(Uint8Array.of(k));
    expect(model.size).toBe(13);
    // The unreadable snapshot is replaced at once (not an interval later) by one of this version,
    // at its own index: only that compaction may drop the log the state was rebuilt from.
    await until(() => storedVersion(kept.storage, kv) === model.version, 'a snapshot of the current version');
    expect(kept.storage.group(kv).snapshot().meta.index).toBe(kept.snapshotIndex);
    await host.stop();
    running = [];
    // Compacted: nothing to rebuild from, so the refusal stands, naming the group and the index.
    const compacted = await written(0);
    const refusing = startHost(self, compacted.storage, new MemoryNetwork(), {});
    expect(() => {
      refusing.addGroup(kv, new KvModel());
    }).toThrow(
      new RegExp(
        `group 2: the snapshot at index ${compacted.snapshotIndex} is refused: written by version 3 .*cannot be rebuilt from the log`,
      ),
    );
  });

  it('asks for a snapshot once the applied entries hold snapshotLogBytes, with no entry count set', async () => {
    const self = asNodeId(1);
    const storage = new MemoryHostStorage();
    storage.bootstrap(kv, confStateOf([self]));
    const host = startHost(self, storage, new MemoryNetwork(), {
      snapshotIntervalEntries: 0,
      snapshotLogBytes: 4000,
    });
    host.addGroup(kv, new KvModel());
    host.start();
    for (let k = 0; k < 12; k++) await proposeUntilApplied(host, kv, put(`big${k}`, new Uint8Array(500)));
    await until(() => storage.group(kv).snapshot().meta.index >= 8, 'a snapshot by bytes');
  });

  /** Flips one bit of the first snapshot chunk `host` receives (its checksum recomputed when `atSource`). */
  function corruptFirstChunk(host: MultiRaftHost, atSource: boolean): { corrupted: () => boolean } {
    let corrupted = false;
    const receive = host.receive.bind(host);
    host.receive = (batch, from) => {
      const changed = batch.map((item) => {
        const message = item.message;
        if (corrupted || message.type !== 'InstallSnapshot' || message.chunk.length === 0) return item;
        corrupted = true;
        const chunk = new Uint8Array(message.chunk);
        chunk[chunk.length - 1] = (chunk[chunk.length - 1] ?? 0) ^ 1;
        const chunkChecksum = atSource ? crc32(chunk) : message.chunkChecksum;
        return { ...item, message: { ...message, chunk, chunkChecksum } };
      });
      receive(changed, from);
    };
    return { corrupted: () => corrupted };
  }

  // In transit, the chunk's own checksum catches it: that chunk alone is refused and asked for
  // again. Bad at the source (the chunk checksum computed over the bad bytes), the whole
  // snapshot fails its envelope checksum once assembled and is fetched again from its first byte.
  it.each([
    {
      where: 'in transit',
      atSource: false,
      refusal:
        /^group 2: the chunk at offset 0 of the snapshot at index \d+ received from the leader is refused: its checksum does not match$/,
    },
    {
      where: 'at the source',
      atSource: true,
      refusal: /^group 2: the snapshot at index \d+ received from the leader is refused: checksum mismatch/,
    },
  ])('refuses a snapshot corrupted $where, names it, and fetches it again', async ({ atSource, refusal }) => {
    const refusals: string[] = [];
    const { behind, caughtUp } = await followerLeftBehind(
      { snapshotChunkBytesMax: 64 },
      { onSnapshotRefused: (_group, reason) => refusals.push(reason) },
    );
    const { corrupted } = corruptFirstChunk(behind, atSource);
    await caughtUp();
    expect(corrupted()).toBe(true);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(refusal);
  });

  // About 600 bytes in 64-byte chunks at 256 bytes/s: most chunks are held back at first and go
  // out as the rate allows, offered again at each heartbeat.
  it('catches a follower up by snapshot within the node-wide send limits, in many chunks', async () => {
    const { behind, caughtUp } = await followerLeftBehind(
      { snapshotChunkBytesMax: 64 },
      { snapshotSend: { snapshotSendBytesPerSecMax: 256, snapshotSendsMax: 1 } },
    );
    let chunks = 0;
    const receive = behind.receive.bind(behind);
    behind.receive = (batch, from) => {
      chunks += batch.filter((item) => item.message.type === 'InstallSnapshot').length;
      receive(batch, from);
    };
    await caughtUp();
    expect(chunks).toBeGreaterThan(1);
  });

  // The follower's store holds the snapshot it receives open (as a slow disk writing a large one
  // would): the node's other group goes on persisting (acknowledging) and applying meanwhile, and the snapshot
  // is installed once released.
  it("installs a snapshot from the leader without holding up the node's other groups", async () => {
    const other = asGroupId(3);
    const { behind, caughtUp, behindStorage } = await followerLeftBehind({}, {}, [other]);
    if (behindStorage === undefined) throw new Error('no follower storage');
    behindStorage.holdSnapshots = true;
    const installed = caughtUp();
    await until(() => behindStorage.heldSnapshotCount() === 1, 'the snapshot held in the store');
    const otherLeader = running.find((host) => host.groupStatus(other)?.status.role === 'leader');
    if (otherLeader === undefined) throw new Error('no leader of the other group');
    for (let k = 0; k < 3; k++) {
      const index = await proposeUntilApplied(otherLeader, other, put(`o${k}`, Uint8Array.of(k)));
      // Persisted there (so acknowledged), not only applied: a follower applies what its leader
      // committed while its own write is in flight.
      await until(
        () =>
          behindStorage.group(other).lastIndex() >= index && (behind.groupStatus(other)?.appliedIndex ?? 0) >= index,
        'the other group persisted and applied',
      );
    }
    expect((behind.model(other) as KvModel).get('o2')?.value).toEqual(Uint8Array.of(2));
    expect(behindStorage.heldSnapshotCount()).toBe(1);
    behindStorage.releaseSnapshots();
    await installed;
  });
});

/** A DiskStore at `path` holding group `kv` bootstrapped with `voters` (entry 1/1). */
async function bootstrappedStore(path: string, voters: readonly NodeId[]): Promise<DiskStore> {
  const store = await DiskStore.open(path, testStoreOptions);
  await store.write(
    [
      {
        group: kv,
        entries: [bootstrapEntry(confStateOf(voters))],
        hardState: { term: 1 as Term, vote: asNodeId(0), commit: 1 as LogIndex },
      },
    ],
    { sync: true },
  );
  return store;
}

/** Flips the last byte of the stored snapshot file of group `kv` (its checksum then fails). */
async function corruptSnapshotFile(path: string): Promise<void> {
  const dir = join(snapshotFilesDir(path), String(kv));
  const names = await readdir(dir);
  expect(names).toHaveLength(1);
  const file = join(dir, names[0] ?? '');
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  await writeFile(file, bytes);
}

describe('a corrupt snapshot in a real store', () => {
  let directory: { readonly path: string; cleanup(): Promise<void> } | undefined;
  afterEach(async () => {
    await directory?.cleanup();
    directory = undefined;
  });

  it('is refused, named, never loaded; the state is rebuilt from the log and the snapshot replaced at its index', async () => {
    directory = await temporaryDirectory('corrupt-rebuild');
    const self = asNodeId(1);
    const raft = { snapshotIntervalEntries: 5, snapshotTailEntries: 1000 };
    const first = await bootstrappedStore(directory.path, [self]);
    const writer = startHost(self, first, new MemoryNetwork(), raft);
    writer.addGroup(kv, new KvModel());
    writer.start();
    for (let k = 0; k < 12; k++) await proposeUntilApplied(writer, kv, put(`key${k}`, Uint8Array.of(k)));
    await until(() => first.group(kv).snapshot().meta.index > 5, 'a snapshot');
    await writer.stop();
    running = [];
    const index = first.group(kv).snapshot().meta.index;
    await first.close();
    await corruptSnapshotFile(directory.path);

    const store = await DiskStore.open(directory.path, testStoreOptions);
    const refusals: string[] = [];
    const model = new KvModel();
    const host = startHost(self, store, new MemoryNetwork(), raft, {
      onSnapshotRefused: (_group, reason) => refusals.push(reason),
    });
    host.addGroup(kv, model);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(
      new RegExp(
        `^group 2: the snapshot at index ${index} is refused: .*snapshots/2/.*checksum mismatch.*; the state is rebuilt from the log$`,
      ),
    );
    host.start();
    await proposeUntilApplied(host, kv, put('after', Uint8Array.of(99)));
    for (let k = 0; k < 12; k++) expect(model.get(`key${k}`)?.value).toEqual(Uint8Array.of(k));
    await until(() => store.snapshotDamage(kv) === undefined, 'the damaged snapshot replaced');
    expect(store.group(kv).snapshot().meta.index).toBeGreaterThanOrEqual(index);
    expect(store.group(kv).snapshot().data.length).toBeGreaterThan(0);
  });

  it('is refused and its state fetched from the leader when the log is compacted', async () => {
    directory = await temporaryDirectory('corrupt-fetch');
    const ids = [1, 2, 3].map(asNodeId);
    const network = new MemoryNetwork();
    const raft = { snapshotIntervalEntries: 4, snapshotTailEntries: 0 };
    const diskId = asNodeId(3);
    const storages = new Map<NodeId, MemoryHostStorage>();
    const start = (id: NodeId, storage: MemoryHostStorage | DiskStore, extra: Partial<HostOptions> = {}) => {
      const host = startHost(id, storage, network, raft, extra);
      host.addGroup(kv, new KvModel());
      host.start();
      return host;
    };
    for (const id of ids.filter((id) => id !== diskId)) {
      const storage = new MemoryHostStorage();
      storage.bootstrap(kv, confStateOf(ids));
      storages.set(id, storage);
      start(id, storage);
    }
    const first = await bootstrappedStore(directory.path, ids);
    const disk = start(diskId, first);
    const leader = (): Promise<MultiRaftHost> => kvLeader(running);
    for (let k = 0; k < 12; k++) await proposeUntilApplied(await leader(), kv, put(`key${k}`, Uint8Array.of(k)));
    await until(() => first.group(kv).firstIndex() > 2, 'node 3 compacted its log');
    await disk.stop();
    running = running.filter((host) => host !== disk);
    network.hosts.delete(diskId);
    await first.close();
    await corruptSnapshotFile(directory.path);
    for (let k = 12; k < 20; k++) await proposeUntilApplied(await leader(), kv, put(`key${k}`, Uint8Array.of(k)));

    const store = await DiskStore.open(directory.path, testStoreOptions);
    const refusals: string[] = [];
    const restarted = start(diskId, store, { onSnapshotRefused: (_group, reason) => refusals.push(reason) });
    expect(refusals[0]).toMatch(
      /^group 2: the snapshot at index \d+ is refused: .*checksum mismatch.*is compacted, so it cannot be rebuilt from the log: the state is fetched from the leader$/,
    );
    const model = restarted.model(kv) as KvModel;
    expect(model.size).toBe(0);
    await proposeUntilApplied(await leader(), kv, put('after', Uint8Array.of(99)));
    const leaderApplied = (await leader()).groupStatus(kv)?.appliedIndex ?? 0;
    await until(() => (restarted.groupStatus(kv)?.appliedIndex ?? 0) >= leaderApplied, 'node 3 caught up');
    for (let k = 0; k < 20; k++) expect(model.get(`key${k}`)?.value).toEqual(Uint8Array.of(k));
    expect(store.snapshotDamage(kv)).toBeUndefined();
    expect(restarted.groupStatus(kv)?.status.role).not.toBe('leader');
  });
});

describe('a snapshot from a leader running a newer model version', () => {
  it('is refused before it is stored, naming the versions; the follower keeps running', async () => {
    const ids = [1, 2, 3].map(asNodeId);
    const network = new MemoryNetwork();
    const raft = { snapshotIntervalEntries: 4, snapshotTailEntries: 0 };
    const older = asNodeId(3);
    network.cut.add(older);
    const refusals: string[] = [];
    const storages = new Map<NodeId, MemoryHostStorage>();
    for (const id of ids) {
      const storage = new MemoryHostStorage();
      storage.bootstrap(kv, confStateOf(ids));
      storages.set(id, storage);
      const host = startHost(id, storage, network, raft, {
        onSnapshotRefused: (_group, reason) => refusals.push(reason),
      });
      host.addGroup(kv, id === older ? new KvModel() : newerKv());
      host.start();
    }
    const leader = await kvLeader(running);
    for (let k = 0; k < 12; k++) await proposeUntilApplied(leader, kv, put(`key${k}`, Uint8Array.of(k)));
    const leaderStorage = storages.get(leader.groupStatus(kv)?.status.id ?? asNodeId(0));
    await until(() => (leaderStorage?.group(kv).snapshot().meta.index ?? 0) > 2, 'the leader compacted');
    network.cut.delete(older);
    await until(() => refusals.length > 0, 'the snapshot refused');
    expect(refusals[0]).toMatch(
      /^group 2: the snapshot at index \d+ received from the leader is refused: written by version 3 of the kv model, this one is version 2$/,
    );
    const follower = network.hosts.get(older);
    expect(follower?.groupStatus(kv)).toBeDefined();
    expect(storages.get(older)?.group(kv).snapshot().meta.index).toBe(0);
  });
});
