// The workloads: what the clients do, how each operation maps onto the database's read and
// compare-and-set, and which checker judges the history.
//
// register: read, write and cas on a small pool of independent keys (Jepsen's independent
//   register), values drawn from 0..4 as in Jepsen's etcd test; a key is retired after opsPerKey
//   invocations so each key's history stays small enough to search. Mapping of cas [expected, new]
//   onto the database, which compares versions rather than values: one client op reads the key
//   (value v, version i); if v is not `expected` the op completes as fail (nothing was written);
//   otherwise it writes `new` with ?cas=i. 200 is ok, 412 is fail (the version moved on: nothing
//   written), an unknown outcome is info. Sound because a version names exactly one write: a cas
//   at version i that applied found the key still holding v, which is `expected`, at the moment it
//   took effect, and that moment lies inside the op's interval.
// set: unique integer elements added to a few keys, each holding a JSON list; add is the same
//   read-then-cas, retried (bounded) while the cas loses races, since each lost race definitely
//   wrote nothing. Occasional reads; final reads of every key. Checked by checker/set.ts.
// append: Elle-style single-key list append, the same read-then-cas, reads return the whole list;
//   checked by checker/append.ts. Keys are retired after addsPerKey appends (or adds, for set).
// actions: agent actions scheduled through every node and the action records read back
//   (actions-workload.ts, checked by checker/actions.ts).
//
// Values are JSON text on the wire. A value that does not parse is kept as its raw text so the
// checkers see it as garbage instead of the harness crashing.

import type { OpFunction, RecordedOperation } from '../checker/history.ts';
import type { Operation } from '../checker/history.ts';
import { checkLinearizable, type LinearizabilityResult, type Verdict } from '../checker/linearizability.ts';
import { checkSet, type SetResult } from '../checker/set.ts';
import { checkAppend, type AppendResult } from '../checker/append.ts';
import { registerModel } from '../checker/model.ts';
import type { ActionsResult } from '../checker/actions.ts';
import { actionsWorkload } from './actions-workload.ts';
import type { KvClient, ReadResult } from './db.ts';
import type { WorkloadName } from './options.ts';
import type { Rng } from './rng.ts';

export interface PlannedOp {
  readonly f: OpFunction;
  readonly key: string;
  readonly value: unknown;
}

export interface Completion {
  readonly type: 'ok' | 'fail' | 'info';
  readonly value: unknown;
  readonly error?: string;
}

export type WorkloadCheck =
  | { readonly workload: 'register'; readonly verdict: Verdict; readonly result: LinearizabilityResult }
  | { readonly workload: 'set'; readonly verdict: Verdict; readonly result: SetResult }
  | { readonly workload: 'append'; readonly verdict: Verdict; readonly result: AppendResult }
  | { readonly workload: 'actions'; readonly verdict: Verdict; readonly result: ActionsResult };

export interface Workload {
  readonly name: WorkloadName;
  /** Ops per second over all workers at most, whatever --rate says (undefined: no cap). */
  readonly rateMax?: number;
  /** A bound on one op at least this long, whatever --op-timeout-ms says (undefined: the option's). */
  readonly opTimeoutMs?: number;
  /**
   * How the final reads end (undefined: at the first ok read of each key). With it, a key is read
   * with this input until a read is ok and settled, every gapMs for at most timeMs.
   */
  readonly finalRead?: {
    readonly value: unknown;
    readonly timeMs: number;
    readonly gapMs: number;
    settled(value: unknown): boolean;
  };
  nextOp(rng: Rng): PlannedOp;
  invoke(op: PlannedOp, client: KvClient, timeoutMs: number): Promise<Completion>;
  /** Every key touched, for the final reads. */
  keys(): string[];
  check(ops: readonly RecordedOperation[], stepsMax: number): WorkloadCheck;
}

export interface WorkloadOptions {
  readonly keyCount: number;
  readonly opsPerKey: number;
  readonly addsPerKey: number;
}

const registerValuesMax = 5;
/**
 * Marks a fail that is the operation's modelled answer (a cas whose comparison did not hold), not
 * the database refusing service; liveness counts these as answered.
 */
export const PRECONDITION = 'precondition:';
/** Read-then-cas attempts of one add or append before it gives up (each lost attempt wrote nothing). */
const rmwAttemptsMax = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function decode(bytes: Uint8Array | null): unknown {
  if (bytes === null) return null;
  const text = decoder.decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return `garbage:${text.slice(0, 200)}`;
  }
}

function decodeList(bytes: Uint8Array | null): unknown[] {
  const value = decode(bytes);
  if (value === null) return [];
  return Array.isArray(value) ? (value as unknown[]) : [`garbage:${JSON.stringify(value).slice(0, 200)}`];
}

/** A pool of keys in use; a key is retired after `uses` picks and replaced by a fresh one. */
class KeyPool {
  private readonly slots: { key: string; uses: number }[] = [];
  private readonly all: string[] = [];
  private nextId = 0;
  private readonly prefix: string;
  private readonly usesMax: number;

  constructor(prefix: string, size: number, usesMax: number) {
    this.prefix = prefix;
    this.usesMax = usesMax;
    for (let i = 0; i < size; i++) this.slots.push({ key: this.fresh(), uses: 0 });
  }

  private fresh(): string {
    const key = `${this.prefix}${this.nextId++}`;
    this.all.push(key);
    return key;
  }

  /** A key for an op that counts against the key's budget. */
  take(rng: Rng): string {
    const slot = rng.pick(this.slots);
    if (slot.uses >= this.usesMax) {
      slot.key = this.fresh();
      slot.uses = 0;
    }
    slot.uses++;
    return slot.key;
  }

  /** A key in use, without counting (reads of a set or list). */
  peek(rng: Rng): string {
    return rng.pick(this.slots).key;
  }

  keys(): string[] {
    return [...this.all];
  }
}

async function readOp(client: KvClient, key: string, timeoutMs: number, asList: boolean): Promise<Completion> {
  const read = await client.read(key, timeoutMs);
  if (read.kind !== 'ok') return { type: read.kind, value: null, error: read.error };
  return { type: 'ok', value: asList ? decodeList(read.value) : decode(read.value) };
}

function registerWorkload(options: WorkloadOptions): Workload {
  const pool = new KeyPool('r', options.keyCount, options.opsPerKey);
  return {
    name: 'register',
    nextOp(rng) {
      const key = pool.take(rng);
      const roll = rng.int(3);
      if (roll === 0) return { f: 'read', key, value: null };
      if (roll === 1) return { f: 'write', key, value: rng.int(registerValuesMax) };
      return { f: 'cas', key, value: [rng.int(registerValuesMax), rng.int(registerValuesMax)] };
    },
    async invoke(op, client, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      switch (op.f) {
        case 'read':
          return readOp(client, op.key, timeoutMs, false);
        case 'write': {
          const result = await client.write(op.key, encode(op.value), undefined, timeoutMs);
          if (result.kind === 'ok') return { type: 'ok', value: op.value };
          // A blind write has no version to mismatch; treat one as the definite failure it reports.
          return { type: result.kind === 'mismatch' ? 'fail' : result.kind, value: op.value, error: result.error };
        }
        case 'cas': {
          const [expected, replacement] = op.value as [unknown, unknown];
          const read: ReadResult = await client.read(op.key, timeoutMs);
          // Nothing was written yet: whatever the read's trouble, the cas definitely did not happen.
          if (read.kind !== 'ok') return { type: 'fail', value: op.value, error: `read before cas: ${read.error}` };
          if (JSON.stringify(decode(read.value)) !== JSON.stringify(expected))
            return { type: 'fail', value: op.value, error: `${PRECONDITION} the value read differs from expected` };
          const result = await client.write(
            op.key,
            encode(replacement),
            read.version,
            Math.max(1, deadline - Date.now()),
          );
          if (result.kind === 'ok') return { type: 'ok', value: op.value };
          if (result.kind === 'mismatch')
            return { type: 'fail', value: op.value, error: `${PRECONDITION} ${result.error}` };
          return { type: result.kind, value: op.value, error: result.error };
        }
        case 'add':
        case 'append':
        case 'schedule':
          throw new Error(`register workload cannot invoke ${op.f}`);
      }
    },
    keys: () => pool.keys(),
    check(ops, stepsMax) {
      const linearizable = ops.filter((op): op is Operation => op.status !== 'fail');
      const result = checkLinearizable(linearizable, registerModel, { stepsMax });
      return { workload: 'register', verdict: result.verdict, result };
    },
  };
}

/**
 * Reads the list at key and writes `[...list, element]` with a cas on the version read, retrying
 * lost races. ok: written; fail: every attempt definitely wrote nothing; info: the last write's
 * outcome is unknown.
 */
async function appendToList(client: KvClient, key: string, element: unknown, timeoutMs: number): Promise<Completion> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt';
  for (let attempt = 0; attempt < rmwAttemptsMax; attempt++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const read = await client.read(key, remaining);
    if (read.kind !== 'ok') {
      lastError = `read: ${read.error}`;
      continue;
    }
    const list = decodeList(read.value);
    const result = await client.write(
      key,
      encode([...list, element]),
      read.version,
      Math.max(1, deadline - Date.now()),
    );
    if (result.kind === 'ok') return { type: 'ok', value: element };
    if (result.kind === 'info') return { type: 'info', value: element, error: result.error };
    lastError = `cas: ${result.error}`;
    if (result.kind === 'fail') await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { type: 'fail', value: element, error: `gave up: ${lastError}` };
}

function listWorkload(name: 'set' | 'append', options: WorkloadOptions): Workload {
  const pool = new KeyPool(name === 'set' ? 's' : 'a', options.keyCount, options.addsPerKey);
  let nextElement = 0;
  const f: OpFunction = name === 'set' ? 'add' : 'append';
  return {
    name,
    nextOp(rng) {
      if (rng.next() < 0.1) return { f: 'read', key: pool.peek(rng), value: null };
      return { f, key: pool.take(rng), value: nextElement++ };
    },
    async invoke(op, client, timeoutMs) {
      if (op.f === 'read') return readOp(client, op.key, timeoutMs, true);
      return appendToList(client, op.key, op.value, timeoutMs);
    },
    keys: () => pool.keys(),
    check(ops) {
      if (name === 'set') {
        const result = checkSet(ops);
        return { workload: 'set', verdict: result.verdict, result };
      }
      const result = checkAppend(ops);
      return { workload: 'append', verdict: result.verdict, result };
    },
  };
}

export function createWorkload(name: WorkloadName, options: WorkloadOptions): Workload {
  switch (name) {
    case 'register':
      return registerWorkload(options);
    case 'set':
    case 'append':
      return listWorkload(name, options);
    case 'actions':
      return actionsWorkload();
  }
}
