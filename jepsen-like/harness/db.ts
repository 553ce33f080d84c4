// What the harness needs from a database under test, whatever it is (dram processes, or the etcd
// anchor): clients pinned to one node that read and compare-and-set versioned values, and the
// controls the nemeses use. Results are classified here, at the edge, into Jepsen's outcomes:
// ok, a definite failure, or unknown (info). A client never throws for an operating error.

/** A value and its version (dram: the key's modify index; etcd: mod_revision). version 0: absent. */
export type ReadResult =
  | { readonly kind: 'ok'; readonly value: Uint8Array | null; readonly version: number }
  | { readonly kind: 'fail' | 'info'; readonly error: string };

/** mismatch: a compare-and-set that definitely did not apply because the version moved on. */
export type WriteResult =
  | { readonly kind: 'ok'; readonly version: number }
  | { readonly kind: 'mismatch' | 'fail' | 'info'; readonly error: string };

/** An answer of the node's HTTP API, or why there was none (refused: nothing was sent). */
export type HttpAnswer =
  | { readonly kind: 'answer'; readonly status: number; readonly text: string }
  | { readonly kind: 'error'; readonly error: string; readonly refused: boolean; readonly timeout: boolean };

export interface KvClient {
  readonly node: number;
  /** dram only: a JSON request to the node's HTTP API (the actions workload); etcd has none. */
  request?(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<HttpAnswer>;
  read(key: string, timeoutMs: number): Promise<ReadResult>;
  /** casVersion undefined: a blind write; 0: create only; n: only if the version is n. */
  write(key: string, value: Uint8Array, casVersion: number | undefined, timeoutMs: number): Promise<WriteResult>;
  close(): Promise<void>;
}

export interface NodeExit {
  readonly node: number;
  readonly code: number | null;
  readonly signal: string | null;
  /** ns on the history clock. */
  readonly time: number;
}

/** One replica of a group as its node reports it (dram: /v1/status). */
export interface ReplicaState {
  readonly role: string;
  readonly term: number;
  readonly leader: number;
  readonly applied: number;
  /** The first entry of the replica's log: it moves past a snapshot, taken there or installed. */
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly voters: readonly number[];
}

/** A group's replicas as the placement status shows them (dram: GET /v1/placement). */
export interface PlacedGroup {
  readonly group: number;
  readonly desired: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  readonly state: string;
}

export interface PlacementView {
  readonly groups: readonly PlacedGroup[];
  /** Moves in progress. */
  readonly moves: number;
  /** The nodes that answered the meta leader's last planning round. */
  readonly live: readonly number[];
}

/** What happened to an agent action the harness scheduled (or why it could not tell). */
export type ActionOutcome =
  | { readonly phase: 'DONE' | 'FAILED'; readonly detail: string }
  | { readonly phase: 'unknown'; readonly detail: string };

/**
 * dram's admin surface, for the nemeses that need more than processes and packets (snapshot,
 * membership). Every call is bounded in time and never throws for an operating error.
 */
export interface AdminControl {
  /** Nodes started beyond the first `nodeIds` (spares, in the cluster or not), retired ones excepted. */
  readonly spareIds: readonly number[];
  /**
   * Starts a fresh node with a new id, empty (not in a cluster), for cluster.add; undefined when
   * the run's spares are used up. dram never takes a removed node id back, so each add needs one.
   */
  startSpare(): number | undefined;
  /**
   * Stops a node removed from the cluster for good (never restarted); with `successor`, the
   * clients pinned to it talk to that node from now on.
   */
  retire(node: number, successor?: number): Promise<void>;
  replica(node: number, group: number): Promise<ReplicaState | undefined>;
  /** The groups a node hosts (its /v1/status), or undefined when it does not answer. */
  hostedGroups(node: number): Promise<readonly number[] | undefined>;
  /** Asks the node to snapshot its replica of the group now; the answer's state and index, or why not. */
  compact(node: number, group: number): Promise<{ readonly state: string; readonly index: number } | string>;
  /** Writes `count` values to harness-owned keys of the group (never the workload's); answers how many were acknowledged. */
  fill(group: number, count: number, deadlineMs: number): Promise<number>;
  /** Schedules an action through the node and waits (until deadlineMs) for it to finish. */
  runAction(via: number, kind: string, args: unknown, deadlineMs: number): Promise<ActionOutcome>;
  placement(via: number): Promise<PlacementView | string>;
  setNodeGoneGrace(via: number, ms: number): Promise<string | undefined>;
  /** The node's HTTP URL (what cluster.add takes). */
  url(node: number): string;
}

export interface Database {
  readonly name: string;
  readonly nodeIds: readonly number[];
  /** Replication groups whose leaders the nemeses target (dram: KV groups; etcd: one). */
  readonly groupIds: readonly number[];
  /** Whether packet faults (iptables partitions, the peer proxy) can target this database. */
  readonly supportsNetworkFaults: boolean;
  start(): Promise<void>;
  /** True once every running node reports a leader for every group, within timeoutMs. */
  waitReady(timeoutMs: number): Promise<boolean>;
  client(node: number): KvClient;
  /** The address a node's peer traffic comes from, for partition rules. */
  nodeAddress(node: number): string;
  kill(node: number): Promise<void>;
  restart(node: number): Promise<void>;
  pause(node: number): void;
  resume(node: number): void;
  isRunning(node: number): boolean;
  isPaused(node: number): boolean;
  /** The group's leader as the running nodes report it (highest term wins), if any. */
  leaderOf(group: number): Promise<number | undefined>;
  /** Asks for a leadership transfer; answers a one-line description of what happened. */
  transferLeadership(group: number, to: number): Promise<string>;
  /** dram only: the admin surface the snapshot and membership nemeses use. */
  readonly admin?: AdminControl;
  /** Node exits the harness did not cause (crashes). */
  unexpectedExits(): readonly NodeExit[];
  /** Stops everything started; safe to call twice and after a failed start. */
  stop(): Promise<void>;
}

/** Reads an error code out of a JSON error body, if it has one. */
export function errorCodeOf(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && 'code' in parsed) {
      const code = parsed.code;
      return typeof code === 'string' ? code : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Short text for an unknown thrown value, with a fetch failure's cause code when there is one. */
export function describeThrown(error: unknown): { text: string; code: string | undefined; timeout: boolean } {
  if (error instanceof Error) {
    const cause = error.cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
    const timeout = error.name === 'TimeoutError' || error.name === 'AbortError';
    return {
      text: code === undefined ? `${error.name}: ${error.message}` : `${error.message} (${code})`,
      code,
      timeout,
    };
  }
  return { text: String(error), code: undefined, timeout: false };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
