// The host's bookkeeping of requests (issue 10): one host of a three-member group whose peers are
// played by the test. A proposal whose index a later term reuses is settled as superseded; a read
// the host gave up on frees its place in the core's forwarded-read queue; ReadIndex request ids
// differ between runs, so a late answer from before a restart cannot answer a new read.

import { afterEach, describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type LogIndex, type Term } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { encodeKvCommand } from '../../src/codec/kv.ts';
import { KvModel } from '../../src/models/kv.ts';
import { MultiRaftHost, type ProposalOutcome } from '../../src/multiraft/host.ts';
import type { GroupMessage } from '../../src/multiraft/ports.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryHostStorage } from '../support/memory-host.ts';
import { eventually } from '../support/poll.ts';

const group = asGroupId(1);
const self = asNodeId(1);
let running: MultiRaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((host) => host.stop()));
  running = [];
});

/** Host 1 of group {1,2,3}; `peer` answers what node 1 sends (by default: nothing). */
function soloHost(seed: number, peer: (message: Message, host: MultiRaftHost) => void = () => {}, readQueueMax = 4096) {
  const storage = new MemoryHostStorage();
  storage.bootstrap(group, confStateOf([1, 2, 3].map(asNodeId)));
  const sent: Message[] = [];
  const host: MultiRaftHost = new MultiRaftHost({
    nodeId: self,
    storage,
    transport: {
      send: (_to, batch: readonly GroupMessage[]) => {
        for (const { message } of batch) {
          sent.push(message);
          setImmediate(() => {
            peer(message, host);
          });
        }
      },
    },
    rng: createRng(seed),
    raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, preVote: false, checkQuorum: false, readQueueMax },
    tickMs: 2,
    proposalQueueMax: 100,
    requestTimeoutMs: 200,
    commitFlushMs: 50,
    pingMs: 5,
    peerSilenceMs: 50,
  });
  host.addGroup(group, new KvModel());
  running.push(host);
  return { host, sent };
}

/** Peers 2 and 3 grant every vote and never acknowledge entries: nothing commits. */
function grantVotes(message: Message, host: MultiRaftHost): void {
  if (message.type !== 'RequestVote') return;
  host.receive(
    [
      {
        group,
        message: {
          type: 'RequestVoteResponse',
          from: message.to,
          to: self,
          term: message.term,
          preVote: false,
          granted: true,
        },
      },
    ],
    message.to,
  );
}

const until = (condition: () => boolean) => eventually('the condition', condition, { tries: 500, everyMs: 2 });

const role = (host: MultiRaftHost) => host.groupStatus(group)?.status;
const put = (key: string) => encodeKvCommand({ op: 'put', key, value: new Uint8Array([1]) });

function heartbeatFromTwo(term: number): GroupMessage {
  return {
    group,
    message: {
      type: 'Heartbeat',
      from: asNodeId(2),
      to: self,
      term: term as Term,
      commit: 1 as LogIndex,
      readRound: 0,
      sentTick: 0,
      quiesce: false,
    },
  };
}

describe('MultiRaftHost request bookkeeping', () => {
  it('settles a proposal as superseded when a later term proposes at its index', async () => {
    const { host } = soloHost(3, grantVotes);
    host.start();
    await until(() => role(host)?.role === 'leader');
    const firstTerm = role(host)?.term ?? 0;
    // Entries 3 and 4 of the first term never commit.
    void host.propose(group, put('a'));
    const second = host.propose(group, put('b'));
    await until(() => role(host)?.lastIndex === 4);
    // Node 2 leads a later term and replaces node 1's log after entry 1 with one entry of its own.
    host.receive(
      [
        {
          group,
          message: {
            type: 'AppendEntries',
            from: asNodeId(2),
            to: self,
            term: (firstTerm + 3) as Term,
            prevLogIndex: 1 as LogIndex,
            prevLogTerm: 1 as Term,
            entries: [{ kind: 'normal', term: (firstTerm + 3) as Term, index: 2 as LogIndex, data: new Uint8Array(0) }],
            commit: 1 as LogIndex,
          },
        },
      ],
      asNodeId(2),
    );
    // Node 1 leads again (empty entry at 3) and its next proposal takes index 4.
    await until(() => role(host)?.role === 'leader' && (role(host)?.term ?? 0) > firstTerm + 3);
    await until(() => role(host)?.lastIndex === 3);
    void host.propose(group, put('c'));
    const outcome = await Promise.race([
      second,
      new Promise<ProposalOutcome | 'unsettled'>((resolve) =>
        setTimeout(() => {
          resolve('unsettled');
        }, 150),
      ),
    ]);
    expect(outcome).toEqual({ kind: 'refused', reason: { kind: 'superseded' } });
  });

  it('frees a timed-out forwarded read in the core, so reads go on when the leader loses some', async () => {
    const { host, sent } = soloHost(4, () => {}, 1);
    host.receive([heartbeatFromTwo(2)], asNodeId(2));
    await until(() => role(host)?.leader === 2);
    // The leader never answers: the read times out.
    expect(await host.read(group, 'linearizable')).toMatchObject({ kind: 'refused', reason: 'timeout' });
    const forwarded = () => sent.filter((message) => message.type === 'ReadIndex').length;
    expect(forwarded()).toBe(1);
    void host.read(group, 'linearizable');
    await until(() => forwarded() === 2);
  });

  it('numbers ReadIndex requests differently in each run', async () => {
    const ids: number[] = [];
    for (const seed of [5, 6]) {
      const { host, sent } = soloHost(seed);
      host.receive([heartbeatFromTwo(2)], asNodeId(2));
      await until(() => role(host)?.leader === 2);
      void host.read(group, 'linearizable');
      await until(() => sent.some((message) => message.type === 'ReadIndex'));
      const request = sent.find((message) => message.type === 'ReadIndex');
      if (request?.type === 'ReadIndex') ids.push(request.requestId);
      await host.stop();
    }
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
  });
});
