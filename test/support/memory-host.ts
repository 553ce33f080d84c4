// In-memory adapters for the multi-Raft host's ports, for fast in-process cluster tests: storage
// backed by one MemoryStorage per group (writes applied at once, "durable" when the promise
// resolves), and a transport that delivers each batch on a later macrotask unless the link is cut.

import { concatBytes } from '../../src/base/bytes.ts';
import type { GroupId, LogIndex, NodeId } from '../../src/base/ids.ts';
import type { MultiRaftHost } from '../../src/multiraft/host.ts';
import type { GroupMessage, GroupWrite, HostStorage, HostTransport } from '../../src/multiraft/ports.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';
import type { ConfState, Snapshot } from '../../src/raft/types.ts';

/** Empties `held`, resolving each; answers how many there were. */
function resolveAll(held: (() => void)[]): number {
  const taken = held.splice(0, held.length);
  for (const resolve of taken) resolve();
  return taken.length;
}

export class MemoryHostStorage implements HostStorage {
  readonly groups = new Map<GroupId, MemoryStorage>();
  writes = 0;
  /** While set, each write is stored at once but reported durable only by release(). */
  holdWrites = false;
  private readonly held: (() => void)[] = [];
  /**
   * While set, a snapshot from a leader is reported durable only by releaseSnapshots(): its
   * stageSnapshot, or a write that stores one not staged before (a host that does not stage).
   */
  holdSnapshots = false;
  private readonly heldSnapshots: (() => void)[] = [];
  private readonly staged = new Set<Snapshot>();

  /** Reports every held snapshot durable; answers how many there were. */
  releaseSnapshots(): number {
    return resolveAll(this.heldSnapshots);
  }

  heldSnapshotCount(): number {
    return this.heldSnapshots.length;
  }

  stageSnapshot(_group: GroupId, snapshot: Snapshot): Promise<void> {
    this.staged.add(snapshot);
    if (this.holdSnapshots) return new Promise((resolve) => this.heldSnapshots.push(resolve));
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Reports every held write durable; answers how many there were. */
  release(): number {
    return resolveAll(this.held);
  }

  heldWrites(): number {
    return this.held.length;
  }

  bootstrap(group: GroupId, confState: ConfState): void {
    this.groups.set(group, MemoryStorage.bootstrap(confState));
  }

  group(id: GroupId): MemoryStorage {
    let storage = this.groups.get(id);
    if (storage === undefined) this.groups.set(id, (storage = new MemoryStorage()));
    return storage;
  }

  write(batch: readonly GroupWrite[]): Promise<void> {
    this.writes++;
    let unstaged = false;
    for (const write of batch) {
      const storage = this.group(write.group);
      if (write.snapshot !== undefined) {
        unstaged ||= !this.staged.delete(write.snapshot);
        storage.applySnapshot(write.snapshot);
      }
      storage.append(write.entries);
      if (write.hardState !== undefined) storage.hardState = write.hardState;
    }
    if (unstaged && this.holdSnapshots) return new Promise((resolve) => this.heldSnapshots.push(resolve));
    if (this.holdWrites) return new Promise((resolve) => this.held.push(resolve));
    return new Promise((resolve) => setImmediate(resolve));
  }

  compact(
    group: GroupId,
    index: LogIndex,
    confState: ConfState,
    data: Uint8Array | readonly Uint8Array[],
    logFrom?: LogIndex,
    replace = false,
  ): Promise<void> {
    const storage = this.group(group);
    const bytes = data instanceof Uint8Array ? data : concatBytes(data);
    const stored = storage.snapshot().meta.index;
    if ((index > stored || (replace && index === stored)) && storage.term(index) !== undefined)
      storage.createSnapshot(index, confState, bytes, logFrom);
    return Promise.resolve();
  }
}

export class MemoryNetwork {
  readonly hosts = new Map<NodeId, MultiRaftHost>();
  readonly cut = new Set<NodeId>();
  frames = 0;
  /** Frames with no message: the hosts' pings between quiet nodes. */
  pings = 0;

  transport(from: NodeId): HostTransport {
    return {
      send: (peer: NodeId, batch: readonly GroupMessage[]) => {
        this.frames++;
        if (batch.length === 0) this.pings++;
        if (this.cut.has(from) || this.cut.has(peer)) return;
        setImmediate(() => {
          if (this.cut.has(from) || this.cut.has(peer)) return;
          this.hosts.get(peer)?.receive(batch, from);
        });
      },
    };
  }
}
