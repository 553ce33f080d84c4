// The ports the multi-Raft host needs, declared here by their user (adapters implement them and
// never import each other): durable storage for every group's log, a peer transport that carries
// one batch of group messages per peer per turn, and the replicated models it applies entries to.

import type { GroupId, LogIndex, NodeId } from '../base/ids.ts';
import type { Model } from '../models/model.ts';
import type { LogStorage } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Message, Snapshot } from '../raft/types.ts';

/**
 * What one group persists in a turn (the storage half of one Ready), in the contract's order; a
 * turn writes every group's in one synced batch.
 */
export interface GroupWrite {
  readonly group: GroupId;
  /** Replaces the group's snapshot and its whole log. */
  readonly snapshot?: Snapshot;
  /** Replace every stored entry at or above the first one's index. */
  readonly entries: readonly Entry[];
  readonly hardState?: HardState;
  /** The applied index to record with the rest (a store keeps the last one written). */
  readonly applied?: LogIndex;
}

export interface HostStorage {
  /** The group's log as the core reads it (synchronous, from the store's memory). */
  group(id: GroupId): LogStorage;
  write(batch: readonly GroupWrite[], options: { readonly sync: boolean }): Promise<void>;
  /**
   * The host snapshotted a group's model at `index`: store it (`data`, whole or in slices) and
   * drop the log before `logFrom` (<= index + 1; entries from it on are kept as a tail behind the
   * snapshot). A store may drop more (all up to `index`) at the price of sending snapshots to
   * followers a little behind. Writes keep going while it runs (the host does not wait for it in
   * a turn); it is skipped when a snapshot at or after `index` was stored meanwhile, except one
   * at `index` itself that the store found damaged (snapshotDamage) or, with `replace`, that the
   * host could not load (it rebuilt the state from the log). One per group at a time.
   */
  compact(
    group: GroupId,
    index: LogIndex,
    confState: ConfState,
    data: Uint8Array | readonly Uint8Array[],
    logFrom: LogIndex,
    replace?: boolean,
  ): Promise<void>;
  /**
   * Makes a snapshot received from a leader durable ahead of the write that stores it (the same
   * Snapshot object in a later write()), so that write only points at it and a large snapshot
   * never holds up the node's other groups in a turn. Optional: without it, write() stores the
   * bytes itself. A staged snapshot no write stores is the store's to discard.
   */
  stageSnapshot?(group: GroupId, snapshot: Snapshot): Promise<void>;
  /**
   * Why the group's stored snapshot must not be loaded, when the store found its bytes damaged at
   * open (its metadata is still right; the bytes are empty); undefined when they are whole.
   * A compaction at the snapshot's own index then replaces it. Optional: a store without it never
   * finds damage.
   */
  snapshotDamage?(group: GroupId): string | undefined;
  /** Deletes every record of a group this node no longer hosts (optional: a store without it keeps them). */
  deleteGroup?(group: GroupId): Promise<void>;
}

export interface GroupMessage {
  readonly group: GroupId;
  readonly message: Message;
}

export interface HostTransport {
  /** Everything for one peer in one call (one frame). Delivery is best effort; Raft retries. */
  send(peer: NodeId, batch: readonly GroupMessage[]): void;
}

/** A replicated state machine: the model API (src/models/model.ts, docs/models.md). */
export type ReplicatedModel = Model;

/** An opaque timer handle, whatever the clock's timers are. */
export type TimerHandle = object;

/**
 * Time as the host sees it (docs/ARCHITECTURE.md, key decision 3): every reading of the clock and every timer
 * of the host goes through this port, so the seeded simulator can run the production host on
 * virtual time. The production clock is `systemClock` (system-clock.ts).
 */
export interface HostClock {
  /** Monotonic milliseconds (never goes back; not wall-clock time). */
  nowMs(): number;
  /** Runs `callback` once, `delayMs` from now. */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  /** Runs `callback` every `intervalMs` until cleared. */
  setRepeating(callback: () => void, intervalMs: number): TimerHandle;
  /** Cancels a timer of either kind; a timer that already ran or was cleared is ignored. */
  clearTimer(handle: TimerHandle): void;
  /** Runs `callback` after the current work and the I/O callbacks already due (setImmediate). */
  defer(callback: () => void): void;
}
