// The interaction environment behind the golden transcripts (like etcd-io/raft's rafttest
// InteractionEnv): N MemoryNodes with ids 1..N, a network that is one FIFO queue of messages per
// recipient, optional partitions, and one handler per datadriven command. Every Ready a node
// handles and every message delivered or dropped is printed with src/raft/describe.ts, so a
// transcript shows the whole protocol exchange, deterministically (each node's election jitter
// comes from createRng(id), or is switched off with jitter=false). A partition loses every
// message sent across it, and those still in flight across it when it began.
//
// Commands (ids are node ids; "ids..." means one or more, none meaning every node):
//   add-nodes N [voters=(1,2,3)] [learners=(4)] [index=10] [prevote=true] [checkquorum=true]
//       [lease=false] [lease-ticks=8] [election-timeout=10] [heartbeat-timeout=1] [jitter=true]
//       [snapshot-chunk-bytes=N] [snapshot-chunks-inflight=N] [max-inflight=N] [read-queue-max=N]
//       [committed-bytes-max=N] (1: one committed entry per Ready, like a host that applies slowly)
//       [quiesce-after=N] (an idle group goes quiet after N ticks) [message-bytes-max=N]
//       Adds N nodes with the next free ids. Voters default to the new nodes themselves; index=K
//       starts every new node from a snapshot at 1/K (an empty state machine); voters=() makes
//       nodes with empty storage, outside any membership, that a leader can add later.
//   campaign id | propose id data | propose-any id data... (from any member: a follower forwards
//   them to its leader in Propose messages) | propose-conf-change id v1 l2 r3 [transition=joint]
//   (an empty propose-conf-change leaves a joint configuration)
//   process-ready ids... | deliver-msgs ids... [drop=true] [type=AppendEntries] | stabilize [ids...]
//   tick id n | tick-election ids... | tick-heartbeat ids...
//   read-index id requestId | lease-read id requestId | transfer-leadership from=1 to=2
//   compact id | restart id | partition (1) (2,3) | heal | wake ids... (what a host does for a
//   quiet follower whose leader's node went silent) | leader-unreachable ids... lost=1 (the host
//   lost its connection to node 1)
//   raft-log id | raft-state | status id | applied ids...

import { asNodeId, type LogIndex, type NodeId, type Term } from '../../src/base/ids.ts';
import { createRng, type Rng } from '../../src/base/rng.ts';
import type { RaftConfigInput } from '../../src/raft/config.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import {
  describeConfState,
  describeEntry,
  describeMessage,
  describeProposeResult,
  describeReadResult,
  describeReady,
  describeStatus,
  describeTransferResult,
} from '../../src/raft/describe.ts';
import type { ConfChangeItem, Message, MessageType } from '../../src/raft/types.ts';
import { MemoryNode } from '../support/memory-node.ts';
import type { CmdArg, TestBlock } from './datadriven.ts';

type NodeOptions = Omit<RaftConfigInput, 'id' | 'rng'>;

const messageTypes: readonly MessageType[] = [
  'RequestVote',
  'RequestVoteResponse',
  'AppendEntries',
  'AppendEntriesResponse',
  'Heartbeat',
  'HeartbeatResponse',
  'InstallSnapshot',
  'InstallSnapshotResponse',
  'TimeoutNow',
  'ReadIndex',
  'ReadIndexResponse',
  'Propose',
];

/** An Rng whose election jitter is always 0: the randomized election timeout is exactly the timeout. */
function noJitter(): Rng {
  return { next: () => 0, int: () => 0, chance: () => false, fork: noJitter };
}

export class InteractionEnv {
  private readonly nodes: MemoryNode[] = [];
  private readonly jitter = new Map<NodeId, boolean>();
  /** In-flight messages per recipient; `lost` when the link was cut as it was sent. */
  private readonly queues = new Map<NodeId, InFlight[]>();
  /** Unordered pairs `a-b` (a < b) whose messages are dropped. */
  private readonly cut = new Set<string>();

  handle(block: TestBlock): string {
    try {
      return this.dispatch(block);
    } catch (error) {
      if (error instanceof UsageError)
        throw new Error(`${block.pos}: ${block.cmdLine}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private dispatch(block: TestBlock): string {
    const { args } = block;
    switch (block.cmd) {
      case 'add-nodes':
        return this.addNodes(args);
      case 'campaign':
        this.node(intArg(args, 0)).raft.campaign();
        return 'ok';
      case 'propose': {
        const data = args[1]?.key;
        if (data === undefined) throw new UsageError('propose id data');
        return describeProposeResult(this.node(intArg(args, 0)).raft.propose(new TextEncoder().encode(data)));
      }
      case 'propose-any': {
        // proposeOrForward: the leader appends, a follower sends a Propose to its leader.
        const payloads = args.slice(1).map((arg) => new TextEncoder().encode(arg.key));
        if (payloads.length === 0) throw new UsageError('propose-any id data...');
        return describeProposeResult(this.node(intArg(args, 0)).raft.proposeOrForward(payloads));
      }
      case 'propose-conf-change':
        return this.proposeConfChange(args);
      case 'process-ready':
        return this.processReady(this.ids(args)).join('\n');
      case 'deliver-msgs':
        return this.deliverMsgs(args);
      case 'stabilize':
        return this.stabilize(this.ids(args));
      case 'tick': {
        const node = this.node(intArg(args, 0));
        const count = intArg(args, 1);
        for (let i = 0; i < count; i++) node.raft.tick();
        return 'ok';
      }
      case 'tick-election':
      case 'tick-heartbeat':
        for (const id of this.ids(args)) {
          const node = this.node(id);
          const count =
            block.cmd === 'tick-election' ? node.raft.config.electionTimeoutTicks : node.raft.config.heartbeatTicks;
          for (let i = 0; i < count; i++) node.raft.tick();
        }
        return 'ok';
      case 'read-index':
        return describeReadResult(this.node(intArg(args, 0)).raft.readIndex(intArg(args, 1)));
      case 'lease-read':
        return describeReadResult(this.node(intArg(args, 0)).raft.leaseRead(intArg(args, 1)));
      case 'transfer-leadership': {
        const from = asNodeId(Number(keyArg(args, 'from')));
        const to = asNodeId(Number(keyArg(args, 'to')));
        return describeTransferResult(this.node(from).raft.transferLeadership(to));
      }
      case 'compact': {
        const node = this.node(intArg(args, 0));
        node.compact();
        const snapshot = node.storage.snapshot();
        return `${node.id}: snapshot ${snapshot.meta.term}/${snapshot.meta.index} bytes:${snapshot.data.length} log:${node.raft.log.firstIndex()}..${node.raft.log.lastIndex()}`;
      }
      case 'restart': {
        const node = this.node(intArg(args, 0));
        node.restart(this.rngFor(node.id));
        return this.stateLine(node);
      }
      case 'partition':
        return this.partition(args);
      case 'heal':
        this.cut.clear();
        return 'ok';
      case 'wake':
        for (const id of this.ids(args)) this.node(id).raft.wake();
        return 'ok';
      case 'leader-unreachable': {
        const lost = asNodeId(Number(keyArg(args, 'lost')));
        for (const id of this.ids(args.filter((arg) => arg.key !== 'lost'))) this.node(id).raft.leaderUnreachable(lost);
        return 'ok';
      }
      case 'raft-log':
        return this.raftLog(this.node(intArg(args, 0)));
      case 'raft-state':
        return this.nodes.map((node) => this.stateLine(node)).join('\n');
      case 'status':
        return describeStatus(this.node(intArg(args, 0)).raft.status());
      case 'applied':
        return this.ids(args)
          .map((id) => {
            const node = this.node(id);
            return `${id}: applied:${node.appliedIndex} ${node.applied.map(describeEntry).join(', ')}`.trimEnd();
          })
          .join('\n');
      default:
        throw new UsageError(`unknown command ${block.cmd}`);
    }
  }

  // -------------------------------------------------------------------------------------------

  private addNodes(args: readonly CmdArg[]): string {
    const count = intArg(args, 0);
    const first = this.nodes.length + 1;
    const newIds = Array.from({ length: count }, (_, i) => asNodeId(first + i));
    let voters: NodeId[] = newIds;
    let learners: NodeId[] = [];
    let index = 0;
    let jitter = true;
    const options: { -readonly [K in keyof NodeOptions]: NodeOptions[K] } = {};
    for (const arg of args.slice(1)) {
      const value = arg.vals[0] ?? '';
      switch (arg.key) {
        case 'voters':
          voters = arg.vals.map((v) => asNodeId(Number(v)));
          break;
        case 'learners':
          learners = arg.vals.map((v) => asNodeId(Number(v)));
          break;
        case 'index':
          index = Number(value);
          break;
        case 'jitter':
          jitter = bool(value);
          break;
        case 'prevote':
          options.preVote = bool(value);
          break;
        case 'checkquorum':
          options.checkQuorum = bool(value);
          break;
        case 'lease':
          options.leaseReads = bool(value);
          break;
        case 'lease-ticks':
          options.leaseTicks = Number(value);
          break;
        case 'election-timeout':
          options.electionTimeoutTicks = Number(value);
          break;
        case 'heartbeat-timeout':
          options.heartbeatTicks = Number(value);
          break;
        case 'snapshot-chunk-bytes':
          options.snapshotChunkBytesMax = Number(value);
          break;
        case 'snapshot-chunks-inflight':
          options.snapshotChunksInflightMax = Number(value);
          break;
        case 'max-inflight':
          options.inflightMessagesMax = Number(value);
          break;
        case 'read-queue-max':
          options.readQueueMax = Number(value);
          break;
        case 'committed-bytes-max':
          options.committedBytesMax = Number(value);
          break;
        case 'quiesce-after':
          options.quiesceAfterTicks = Number(value);
          break;
        case 'message-bytes-max':
          options.messageBytesMax = Number(value);
          break;
        default:
          throw new UsageError(`unknown add-nodes option ${arg.key}`);
      }
    }
    const confState = confStateOf(voters, learners);
    const lines: string[] = [];
    for (const id of newIds) {
      this.jitter.set(id, jitter);
      const node = new MemoryNode(id, confState, this.rngFor(id), options);
      if (index > 0) {
        node.storage.applySnapshot({
          meta: { index: index as LogIndex, term: 1 as Term, confState },
          data: new TextEncoder().encode('[]'),
        });
        node.storage.hardState = { term: 1 as Term, vote: 0 as NodeId, commit: index as LogIndex };
        node.restart(this.rngFor(id));
      }
      // A bootstrapped member applies its initial configuration (entry 1/1) before the script
      // starts, so transcripts begin from a group whose membership is in force.
      while (node.handleReady() !== undefined);
      this.nodes.push(node);
      lines.push(this.stateLine(node));
    }
    return lines.join('\n');
  }

  private proposeConfChange(args: readonly CmdArg[]): string {
    const node = this.node(intArg(args, 0));
    const changes: ConfChangeItem[] = [];
    let transition: 'auto' | 'joint' = 'auto';
    for (const arg of args.slice(1)) {
      if (arg.key === 'transition') {
        const value = arg.vals[0];
        if (value !== 'auto' && value !== 'joint') throw new UsageError(`transition must be auto or joint`);
        transition = value;
        continue;
      }
      const match = /^([vlr])(\d+)$/u.exec(arg.key);
      if (match === null) throw new UsageError(`bad change ${arg.key}: want v<id>, l<id> or r<id>`);
      const type = match[1] === 'v' ? 'add_voter' : match[1] === 'l' ? 'add_learner' : 'remove_node';
      changes.push({ type, node: asNodeId(Number(match[2])) });
    }
    return describeProposeResult(node.raft.proposeConfChange({ changes, transition }));
  }

  /** Handles one Ready on each node that has one; returns the printed lines. */
  private processReady(ids: readonly NodeId[]): string[] {
    const lines: string[] = [];
    for (const id of ids) {
      const handled = this.node(id).handleReady();
      if (handled === undefined) {
        lines.push(`> ${id} no Ready`);
        continue;
      }
      lines.push(`> ${id} handling Ready`, describeReady(handled.ready, '  '));
      for (const message of handled.messages)
        this.queue(message.to).push({ message, lost: this.isCut(message.from, message.to) });
    }
    return lines;
  }

  private deliverMsgs(args: readonly CmdArg[]): string {
    const drop = args.some((arg) => arg.key === 'drop' && bool(arg.vals[0] ?? ''));
    const typeArg = args.find((arg) => arg.key === 'type')?.vals[0];
    if (typeArg !== undefined && !messageTypes.includes(typeArg as MessageType))
      throw new UsageError(`unknown message type ${typeArg}`);
    const ids = this.ids(args);
    const lines: string[] = [];
    for (const id of ids) lines.push(...this.deliver(id, drop, typeArg as MessageType | undefined, ''));
    return lines.length === 0 ? 'no messages' : lines.join('\n');
  }

  /** Delivers (or drops) the messages queued for `id`; returns one line per message. */
  private deliver(id: NodeId, drop: boolean, type: MessageType | undefined, indent: string): string[] {
    const queue = this.queue(id);
    const taken = type === undefined ? queue.splice(0) : queue.filter((m) => m.message.type === type);
    if (type !== undefined)
      this.queues.set(
        id,
        queue.filter((m) => m.message.type !== type),
      );
    const lines: string[] = [];
    for (const { message, lost } of taken) {
      // A partition loses what was sent across it and what was still in flight when it began.
      if (drop || lost || this.isCut(message.from, message.to)) {
        lines.push(`${indent}dropped: ${describeMessage(message)}`);
        continue;
      }
      lines.push(`${indent}${describeMessage(message)}`);
      this.node(id).raft.step(message);
    }
    return lines;
  }

  private stabilize(ids: readonly NodeId[]): string {
    const lines: string[] = [];
    for (let round = 0; round < 1000; round++) {
      let done = true;
      for (const id of ids) {
        if (!this.node(id).raft.hasReady()) continue;
        done = false;
        lines.push(...this.processReady([id]));
      }
      for (const id of ids) {
        if (this.queue(id).length === 0) continue;
        done = false;
        lines.push(`> ${id} receiving messages`, ...this.deliver(id, false, undefined, '  '));
      }
      if (done) return lines.length === 0 ? 'ok' : lines.join('\n');
    }
    throw new Error('stabilize: no quiescence after 1000 rounds');
  }

  private partition(args: readonly CmdArg[]): string {
    const groupOf = new Map<NodeId, number>();
    args.forEach((arg, group) => {
      for (const v of arg.vals) groupOf.set(asNodeId(Number(v)), group);
    });
    this.cut.clear();
    const lines: string[] = [];
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a.id >= b.id) continue;
        const ga = groupOf.get(a.id) ?? -Number(a.id);
        const gb = groupOf.get(b.id) ?? -Number(b.id);
        if (ga === gb) continue;
        this.cut.add(`${a.id}-${b.id}`);
        lines.push(`${a.id}-${b.id}`);
      }
    }
    return `cut: ${lines.join(' ')}`;
  }

  private isCut(a: NodeId, b: NodeId): boolean {
    return this.cut.has(a < b ? `${a}-${b}` : `${b}-${a}`);
  }

  private raftLog(node: MemoryNode): string {
    const log = node.raft.log;
    const first = log.firstIndex();
    const last = log.lastIndex();
    const lines: string[] = [];
    const snapshot = log.storage.snapshot().meta;
    if (snapshot.index > 0) lines.push(`snapshot: ${snapshot.term}/${snapshot.index}`);
    const entries = log.slice(first, (last + 1) as LogIndex, Number.MAX_SAFE_INTEGER) ?? [];
    if (entries.length === 0) lines.push(`log is empty: first index=${first}, last index=${last}`);
    for (const entry of entries) lines.push(describeEntry(entry));
    return lines.join('\n');
  }

  private stateLine(node: MemoryNode): string {
    const s = node.raft.status();
    return `${s.id}: ${s.role} term:${s.term} vote:${s.vote} leader:${s.leader} commit:${s.commit} applied:${s.applied} last:${s.lastIndex} ${describeConfState(s.confState)}`;
  }

  // -------------------------------------------------------------------------------------------

  private rngFor(id: NodeId): Rng {
    return this.jitter.get(id) === false ? noJitter() : createRng(id);
  }

  private node(id: number): MemoryNode {
    const node = this.nodes[id - 1];
    if (node === undefined) throw new UsageError(`no node ${id}`);
    return node;
  }

  private queue(id: NodeId): InFlight[] {
    let queue = this.queues.get(id);
    if (queue === undefined) {
      queue = [];
      this.queues.set(id, queue);
    }
    return queue;
  }

  /** The bare numeric arguments as node ids; every node when there are none. */
  private ids(args: readonly CmdArg[]): NodeId[] {
    const ids = args
      .filter((arg) => arg.vals.length === 0 && /^\d+$/u.test(arg.key))
      .map((arg) => asNodeId(Number(arg.key)));
    return ids.length > 0 ? ids : this.nodes.map((node) => node.id);
  }
}

interface InFlight {
  readonly message: Message;
  readonly lost: boolean;
}

class UsageError extends Error {}

function intArg(args: readonly CmdArg[], position: number): number {
  const arg = args[position];
  if (arg === undefined || arg.vals.length > 0 || !/^\d+$/u.test(arg.key))
    throw new UsageError(`argument ${position + 1} must be a number`);
  return Number(arg.key);
}

function keyArg(args: readonly CmdArg[], key: string): string {
  const value = args.find((arg) => arg.key === key)?.vals[0];
  if (value === undefined) throw new UsageError(`missing ${key}=`);
  return value;
}

function bool(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`want true or false, got ${value}`);
}
