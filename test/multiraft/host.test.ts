// The multi-Raft host in one process: three hosts over in-memory storage and network, several KV
// groups. Proposals go through the turn loop and resolve when applied; reads wait for their read
// index; a stopped leader's groups fail over and writes resume; one frame per peer per turn.

import { afterEach, describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { encodeKvCommand } from '../../src/codec/kv.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MultiRaftHost, type ProposalOutcome } from '../../src/multiraft/host.ts';
import type { RaftConfigInput } from '../../src/raft/config.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { MemoryHostStorage, MemoryNetwork } from '../support/memory-host.ts';
import { eventually } from '../support/poll.ts';

const ids = [1, 2, 3].map(asNodeId);
const groupIds = [1, 2, 3, 4].map(asGroupId);
let running: MultiRaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((host) => host.stop()));
  running = [];
});

function cluster(commitFlushMs = 50, quiesceAfterTicks = 0, raft: Partial<RaftConfigInput> = {}) {
  const network = new MemoryNetwork();
  const storages = new Map<NodeId, MemoryHostStorage>();
  const rng = createRng(11);
  for (const id of ids) {
    const storage = new MemoryHostStorage();
    for (const group of groupIds) storage.bootstrap(group, confStateOf(ids));
    const host = new MultiRaftHost({
      nodeId: id,
      storage,
      transport: network.transport(id),
      rng: rng.fork(),
      raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, quiesceAfterTicks, ...raft },
      tickMs: 5,
      proposalQueueMax: 1000,
      requestTimeoutMs: 2000,
      commitFlushMs,
      pingMs: 5,
      peerSilenceMs: 50,
    });
    for (const group of groupIds) host.addGroup(group, new KvModel());
    network.hosts.set(id, host);
    storages.set(id, storage);
    running.push(host);
    host.start();
  }
  return Object.assign(network, { storages });
}

async function leaderOf(network: MemoryNetwork, group: GroupId, exclude: NodeId[] = []): Promise<MultiRaftHost> {
  for (let attempt = 0; attempt < 400; attempt++) {
    for (const [id, host] of network.hosts) {
      if (exclude.includes(id)) continue;
      const status = host.status().find((s) => s.group === group)?.status;
      if (status?.role === 'leader') return host;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no leader for group ${group}`);
}

const put = (key: string, value: string) => encodeKvCommand({ op: 'put', key, value: new TextEncoder().encode(value) });

describe('MultiRaftHost', () => {
  it('asks the leader for one read index for all the linearizable reads a follower gets in a turn', async () => {
    const network = cluster();
    const group = groupIds[0] ?? asGroupId(1);
    const leader = await leaderOf(network, group);
    expect((await leader.propose(group, put('r', 'before'))).kind).toBe('applied');
    const follower = [...network.hosts.values()].find((host) => host !== leader);
    if (follower === undefined) throw new Error('no follower');
    // Count the ReadIndex messages the leader receives.
    let readIndexMessages = 0;
    const receive = leader.receive.bind(leader);
    leader.receive = (batch, from) => {
      readIndexMessages += batch.filter(({ message }) => message.type === 'ReadIndex').length;
      receive(batch, from);
    };
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => follower.read(group, 'linearizable')));
    expect(outcomes.every((outcome) => outcome.kind === 'ready')).toBe(true);
    expect(readIndexMessages).toBe(1);
    const model = follower.model(group);
    expect(model instanceof KvModel && new TextDecoder().decode(model.get('r')?.value)).toBe('before');
  });

  it('sends one frame per peer in a turn that writes nothing (what waits for the write goes with the rest)', async () => {
    // Every host's sends, storage writes and turn ends, in order, from one shared log.
    const events: string[] = [];
    const network = new MemoryNetwork();
    const rng = createRng(17);
    for (const id of ids) {
      const storage = new MemoryHostStorage();
      for (const group of groupIds) storage.bootstrap(group, confStateOf(ids));
      const write = storage.write.bind(storage);
      storage.write = (batch) => {
        events.push(`${id} write`);
        return write(batch);
      };
      const transport = network.transport(id);
      const host = new MultiRaftHost({
        nodeId: id,
        storage,
        transport: {
          send: (peer, batch) => {
            if (batch.length > 0) events.push(`${id} send ${peer}`);
            transport.send(peer, batch);
          },
        },
        rng: rng.fork(),
        raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, quiesceAfterTicks: 0 },
        tickMs: 5,
        proposalQueueMax: 1000,
        requestTimeoutMs: 2000,
        commitFlushMs: 50,
        pingMs: 5,
        peerSilenceMs: 50,
        observeTurn: () => events.push(`${id} turn`),
      });
      for (const group of groupIds) host.addGroup(group, new KvModel());
      network.hosts.set(id, host);
      running.push(host);
      host.start();
    }
    const group = groupIds[0] ?? asGroupId(1);
    const leader = await leaderOf(network, group);
    const followers = [...network.hosts.values()].filter((host) => host !== leader);
    // Reads on the followers (ReadIndex goes early) while heartbeats come and are answered (after the write).
    for (let round = 0; round < 40; round++)
      await Promise.all(
        followers.flatMap((follower) => [follower.read(group, 'linearizable'), follower.read(group, 'linearizable')]),
      );
    let turnsChecked = 0;
    for (const id of ids) {
      const own = events
        .filter((event) => event.startsWith(`${id} `))
        .map((event) => event.slice(String(id).length + 1));
      let sentTo = new Set<string>();
      for (const event of own) {
        if (event === 'turn' || event === 'write') {
          if (event === 'turn') turnsChecked++;
          sentTo = new Set();
          continue;
        }
        expect(sentTo.has(event), `node ${id}: two frames to one peer in a turn with no write between`).toBe(false);
        sentTo.add(event);
      }
    }
    expect(turnsChecked).toBeGreaterThan(0);
  });

  it('elects leaders, applies proposals on every replica, and serves linearizable reads', async () => {
    const network = cluster();
    for (const group of groupIds) {
      const leader = await leaderOf(network, group);
      const outcomes = await Promise.all([1, 2, 3].map((k) => leader.propose(group, put(`k${k}`, `v${group}-${k}`))));
      expect(outcomes.map((o) => o.kind)).toEqual(['applied', 'applied', 'applied']);
    }
    for (const host of network.hosts.values()) {
      for (const group of groupIds) {
        expect(host.groupLeader(group)).toBe(host.groupStatus(group)?.status.leader);
        const read = await host.read(group, 'linearizable');
        expect(read.kind).toBe('ready');
        const model = host.model(group) as KvModel;
        expect(new TextDecoder().decode(model.get('k2')?.value)).toBe(`v${group}-2`);
      }
    }
  });

  /** A warmed-up leader of `group` whose storage holds its writes (stored, not reported durable) while `work` runs. */
  async function withLeaderWritesHeld(
    group: GroupId,
    work: (
      leader: MultiRaftHost,
      storage: MemoryHostStorage,
      storages: ReadonlyMap<NodeId, MemoryHostStorage>,
    ) => Promise<void>,
  ): Promise<void> {
    const network = cluster();
    const leader = await leaderOf(network, group);
    expect((await leader.propose(group, put('warm', 'up'))).kind).toBe('applied');
    const leaderId = [...network.hosts].find(([, host]) => host === leader)?.[0] ?? asNodeId(0);
    const storage = network.storages.get(leaderId);
    if (storage === undefined) throw new Error('no storage for the leader');
    storage.holdWrites = true;
    try {
      await work(leader, storage, network.storages);
    } finally {
      storage.holdWrites = false;
      storage.release();
    }
  }

  /** Waits until every replica's storage holds what the leader's (`storage`) does. */
  async function everyReplicaStored(
    storage: MemoryHostStorage,
    storages: ReadonlyMap<NodeId, MemoryHostStorage>,
    group: GroupId,
  ): Promise<void> {
    const lastIndex = () => Math.min(...[...storages.values()].map((s) => s.group(group).lastIndex()));
    await until(() => lastIndex() === storage.group(group).lastIndex());
  }

  it("answers a committed write while the leader's next batch is still being written", async () => {
    const group = groupIds[0] ?? asGroupId(1);
    await withLeaderWritesHeld(group, (leader, storage, storages) => writeWhileHeld(leader, storage, storages, group));
  });

  async function writeWhileHeld(
    leader: MultiRaftHost,
    storage: MemoryHostStorage,
    storages: ReadonlyMap<NodeId, MemoryHostStorage>,
    group: GroupId,
  ): Promise<void> {
    let first: string | undefined;
    const firstDone = leader.propose(group, put('a', '1')).then((outcome) => (first = outcome.kind));
    await until(() => storage.heldWrites() === 1);
    // The followers store and acknowledge 'a'; 'b' waits in the queue for the leader's next turn.
    await everyReplicaStored(storage, storages, group);
    const secondDone = leader.propose(group, put('b', '2'));
    storage.release();
    // The next turn commits 'a' and writes 'b'; 'b's write is held, 'a' must be answered anyway.
    await until(() => storage.heldWrites() === 1 && first !== undefined);
    expect(first).toBe('applied');
    storage.holdWrites = false;
    storage.release();
    expect((await secondDone).kind).toBe('applied');
    await firstDone;
  }

  it("answers a write its followers stored while the leader's own write of it is still held", async () => {
    const group = groupIds[1] ?? asGroupId(2);
    await withLeaderWritesHeld(group, async (leader, storage) => {
      let outcome: string | undefined;
      const done = leader.propose(group, put('early', 'yes')).then((result) => (outcome = result.kind));
      // Both followers' acknowledgements make a quorum without the leader's own disk.
      await until(() => outcome !== undefined);
      expect(outcome).toBe('applied');
      expect(storage.heldWrites()).toBeGreaterThan(0);
      await done;
    });
  });

  it("reports a group's configuration index with the configuration it names, while the turn's write is held", async () => {
    // The host applies a turn's committed entries before its write and the core takes their
    // configuration changes after it: an index taken at apply named a configuration that
    // status() did not show yet, and the meta model recorded the old replicas under the new index.
    // The change's caller is answered once the core has taken it.
    const group = groupIds[2] ?? asGroupId(3);
    await withLeaderWritesHeld(group, async (leader, storage, storages) => {
      const learner = asNodeId(9);
      const confAt = storage.group(group).lastIndex() + 1;
      let outcome: ProposalOutcome | undefined;
      void leader
        .proposeConfChange(group, { changes: [{ type: 'add_learner', node: learner }], transition: 'auto' })
        .then((result) => (outcome = result));
      await until(() => storage.heldWrites() === 1);
      // The followers store the change; the next turn commits and applies it, and its write (of 'b') is held.
      await everyReplicaStored(storage, storages, group);
      const later = leader.propose(group, put('b', '2'));
      storage.release();
      const status = () => leader.status().find((s) => s.group === group);
      await until(() => storage.heldWrites() === 1 && (status()?.appliedIndex ?? 0) >= confAt);
      // Applied by the host, not taken by the core yet: neither the change nor its index shows, and
      // its caller waits.
      expect(status()?.status.confState.learners).not.toContain(learner);
      expect(status()?.confIndex).toBeLessThan(confAt);
      expect(outcome).toBeUndefined();
      storage.holdWrites = false;
      storage.release();
      await later;
      await until(() => outcome !== undefined);
      expect(outcome).toMatchObject({ kind: 'applied', index: confAt });
      expect(status()?.status.confState.learners).toContain(learner);
      expect(status()?.confIndex).toBe(confAt);
    });
  });

  it('fails over when a leader stops, and writes resume on the new leader', async () => {
    const network = cluster();
    const group = groupIds[0] ?? asGroupId(1);
    const first = await leaderOf(network, group);
    expect((await first.propose(group, put('a', '1'))).kind).toBe('applied');
    const firstId = [...network.hosts].find(([, host]) => host === first)?.[0] ?? asNodeId(0);
    network.cut.add(firstId);
    await first.stop();
    const second = await leaderOf(network, group, [firstId]);
    expect(second).not.toBe(first);
    const outcome = await second.propose(group, put('a', '2'));
    expect(outcome.kind).toBe('applied');
    const read = await second.read(group, 'linearizable');
    expect(read.kind).toBe('ready');
    expect(new TextDecoder().decode((second.model(group) as KvModel).get('a')?.value)).toBe('2');
  });

  it('records each leader change with its cause: a transfer everywhere, a failover counted by its winner', async () => {
    const network = cluster();
    const group = groupIds[0] ?? asGroupId(1);
    const change = (host: MultiRaftHost) => host.status().find((s) => s.group === group)?.lastLeaderChange;
    const won = (host: MultiRaftHost) => host.status().find((s) => s.group === group)?.failoversWon;
    const first = await leaderOf(network, group);
    const firstId = first.status()[0]?.status.id ?? asNodeId(0);
    // The first leader each node sees comes from no known leader: not a failover.
    await until(() => [...network.hosts.values()].every((host) => change(host)?.to === firstId));
    expect(change(first)).toMatchObject({ from: 0, to: firstId, cause: 'automatic' });
    expect([...network.hosts.values()].map(won)).toEqual([0, 0, 0]);

    const targetId = ids.find((id) => id !== firstId) ?? asNodeId(0);
    expect(first.transferLeadership(group, targetId).kind).toBe('started');
    // Every voter saw the transfer: the old leader, the candidate, and the third voter.
    await until(() =>
      [...network.hosts.values()].every((host) => change(host)?.to === targetId && change(host)?.cause === 'transfer'),
    );
    const transfer = change(first);
    expect(transfer).toMatchObject({ from: firstId, to: targetId, cause: 'transfer' });
    expect(transfer?.atMs).toBeGreaterThan(Date.parse('2020-01-01'));
    expect([...network.hosts.values()].map(won)).toEqual([0, 0, 0]);

    // The transfer's winner stops: the next leader is an automatic failover, counted once, by itself.
    const target = network.hosts.get(targetId) ?? first;
    const transferTerm = change(target)?.term ?? 0;
    network.cut.add(targetId);
    await target.stop();
    const third = await leaderOf(network, group, [targetId]);
    const thirdId = third.status()[0]?.status.id ?? asNodeId(0);
    const survivors = [...network.hosts].filter(([id]) => id !== targetId).map(([, host]) => host);
    await until(() => survivors.every((host) => change(host)?.to === thirdId));
    for (const host of survivors) {
      expect(change(host)).toMatchObject({ from: targetId, to: thirdId, cause: 'automatic' });
      expect(change(host)?.term).toBeGreaterThan(transferTerm);
      expect(won(host)).toBe(host === third ? 1 : 0);
    }
  });

  it('keeps a tail of entries behind its snapshots: a follower a little behind catches up from the log', async () => {
    const network = cluster(50, 0, { snapshotIntervalEntries: 4, snapshotTailEntries: 50 });
    const group = groupIds[2] ?? asGroupId(3);
    const leader = await leaderOf(network, group);
    const leaderId = [...network.hosts].find(([, host]) => host === leader)?.[0] ?? asNodeId(0);
    const behindId = ids.find((id) => id !== leaderId) ?? asNodeId(0);
    const behind = network.hosts.get(behindId);
    if (behind === undefined) throw new Error('no follower');
    let snapshotMessages = 0;
    const receive = behind.receive.bind(behind);
    behind.receive = (batch, from) => {
      snapshotMessages += batch.filter(({ message }) => message.type === 'InstallSnapshot').length;
      receive(batch, from);
    };
    network.cut.add(behindId);
    for (let k = 0; k < 12; k++) expect((await leader.propose(group, put(`t${k}`, 'v'))).kind).toBe('applied');
    const leaderLog = network.storages.get(leaderId)?.group(group);
    const behindApplied = behind.groupStatus(group)?.appliedIndex ?? 0;
    // The leader compacted past what the follower has: without a tail it would need the snapshot.
    await until(() => (leaderLog?.snapshot().meta.index ?? 0) > behindApplied + 1);
    network.cut.delete(behindId);
    const leaderApplied = leader.groupStatus(group)?.appliedIndex ?? 0;
    await until(() => (behind.groupStatus(group)?.appliedIndex ?? 0) >= leaderApplied);
    expect(snapshotMessages).toBe(0);
  });

  it('refuses a proposal at once when the queue is full, and on a follower with a leader hint', async () => {
    const network = cluster();
    const group = groupIds[1] ?? asGroupId(2);
    const leader = await leaderOf(network, group);
    const follower = [...network.hosts.values()].find((host) => host !== leader);
    const outcome = await follower?.propose(group, put('x', '1'));
    expect(outcome?.kind).toBe('refused');
    expect(outcome?.kind === 'refused' ? outcome.reason.kind : '').toBe('not_leader');
    // 1,000 queued before the next turn fill the queue; the next is refused without waiting.
    const accepted = Array.from({ length: 1000 }, (_, k) => leader.propose(group, put(`q${k}`, 'v')));
    const overflow = await leader.propose(group, put('q-over', 'v'));
    expect(overflow.kind === 'refused' ? overflow.reason.kind : overflow.kind).toBe('overloaded');
    expect((await Promise.all(accepted)).every((o) => o.kind === 'applied')).toBe(true);
  });

  it('keeps a commit index that changed alone in memory, and saves it on stop', async () => {
    // A flush interval longer than the test: only stop() may save those commit indexes.
    const network = cluster(600_000);
    const group = groupIds[2] ?? asGroupId(3);
    const leader = await leaderOf(network, group);
    const outcome = await leader.propose(group, put('c', '1'));
    expect(outcome.kind).toBe('applied');
    const index = outcome.kind === 'applied' ? outcome.index : 0;
    const leaderId = [...network.hosts].find(([, host]) => host === leader)?.[0] ?? asNodeId(0);
    const stored = () => network.storages.get(leaderId)?.groups.get(group)?.hardState.commit ?? -1;
    // The entry was written (with the old commit) before it committed; the commit came alone.
    expect(stored()).toBeLessThan(index);
    await Promise.all(running.map((host) => host.stop()));
    running = [];
    expect(stored()).toBeGreaterThanOrEqual(index);
  });

  it('lets idle groups go quiet: only pings pass between nodes until a proposal wakes a group', async () => {
    const network = cluster(50, 4);
    await Promise.all(groupIds.map((group) => leaderOf(network, group)));
    const allQuiet = () => [...network.hosts.values()].every((host) => host.status().every((s) => s.status.quiesced));
    await until(allQuiet, 'every group on every node quiet');
    // While everything is quiet, frames are pings only: count 20 more and check no message went.
    const messageFrames = () => network.frames - network.pings;
    const before = messageFrames();
    const pingsBefore = network.pings;
    await until(() => network.pings >= pingsBefore + 20, '20 more pings');
    expect(messageFrames()).toBe(before);
    expect(allQuiet()).toBe(true);
    const group = groupIds[0] ?? asGroupId(1);
    const leader = await leaderOf(network, group);
    expect((await leader.propose(group, put('w', '1'))).kind).toBe('applied');
    for (const host of network.hosts.values()) {
      expect((await host.read(group, 'linearizable')).kind).toBe('ready');
      expect(new TextDecoder().decode((host.model(group) as KvModel).get('w')?.value)).toBe('1');
    }
  });

  it("wakes quiet followers when their leader's node goes silent, and they elect a new leader", async () => {
    const network = cluster(50, 4);
    const group = groupIds[3] ?? asGroupId(4);
    const first = await leaderOf(network, group);
    await until(
      () => [...network.hosts.values()].every((host) => host.groupStatus(group)?.status.quiesced === true),
      'the group quiet on every node',
    );
    const firstId = [...network.hosts].find(([, host]) => host === first)?.[0] ?? asNodeId(0);
    network.cut.add(firstId);
    const second = await leaderOf(network, group, [firstId]);
    expect(second).not.toBe(first);
    expect((await second.propose(group, put('after', '1'))).kind).toBe('applied');
  });
});

function until(condition: () => boolean, what = 'the condition'): Promise<boolean> {
  return eventually(what, condition, { tries: 500, everyMs: 10 });
}
