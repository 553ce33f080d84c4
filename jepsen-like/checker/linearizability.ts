// Linearizability checking by the Wing–Gong/Lowe search with P-compositionality, as porcupine does
// it: the model splits the history into independent partitions (keys); each partition becomes a
// doubly linked list of call and return entries sorted by time, and a depth-first search picks the
// next linearization point among the calls that precede the first remaining return. A return whose
// call is not yet linearized is a missed deadline, so the search backtracks. A cache of
// (linearized set, model state) configurations prunes repeats.
//
// Tie rule: intervals are closed. An op precedes another in real time only when its return is
// strictly earlier than the other's call; at equal timestamps calls sort before returns, so ops that
// touch at an instant are concurrent. Ops with an unknown outcome return at +Infinity: they may be
// linearized anywhere after their call or never, and the search succeeds as soon as every ok op is
// linearized. Partitions are searched round-robin under one total step budget; one step is one
// entry examined (a model step tried, or a backtrack). Invariant: unlift exactly reverses lift,
// in LIFO order, so the list is restored when the stack unwinds.

import type { Operation } from './history.ts';
import type { Model } from './model.ts';

export type Verdict = 'valid' | 'invalid' | 'unknown';

export interface CheckOptions {
  /** Total search steps over all partitions before the undecided ones are 'unknown'. */
  stepsMax?: number;
}

export interface LinearizedStep {
  op: Operation;
  stateAfter: string;
}

/** Where the search for an invalid partition got furthest, for reports. */
export interface LinearizationFailure {
  /** The longest linearization of a prefix of the history the search found, in order. */
  prefix: LinearizedStep[];
  /** The model state after that prefix. */
  stateAtBlock: string;
  /** The ok op whose return passed with no way to linearize it after the prefix. */
  blockedOp: Operation;
  /** Ops called but not linearized at that point: the candidates, none of which led on. */
  pendingOps: Operation[];
  message: string;
}

export interface PartitionResult {
  key: string;
  verdict: Verdict;
  /** Ops searched: the key's ops left after the model dropped those that cannot matter. */
  opCount: number;
  steps: number;
  failure?: LinearizationFailure;
}

export interface LinearizabilityResult {
  verdict: Verdict;
  steps: number;
  partitions: PartitionResult[];
}

export const DEFAULT_STEPS_MAX = 10_000_000;
/** Steps a partition gets per turn; small enough that one hard key cannot starve the rest. */
const QUANTUM_STEPS = 10_000;

/** Checks ops against model, partition by partition. */
export function checkLinearizable<S>(
  ops: readonly Operation[],
  model: Model<S>,
  options: CheckOptions = {},
): LinearizabilityResult {
  const stepsMax = options.stepsMax ?? DEFAULT_STEPS_MAX;
  if (!(Number.isSafeInteger(stepsMax) || stepsMax === Infinity) || stepsMax < 0) {
    throw new RangeError(`stepsMax must be a non-negative integer or Infinity, got ${stepsMax}`);
  }
  const partitions = model.partition(ops);
  const searches = partitions.map((partition) => startSearch(partition.ops, model));
  let usedSteps = 0;
  let running = searches.filter((search) => search.outcome === 'running');
  while (running.length > 0 && usedSteps < stepsMax) {
    for (const search of running) {
      if (usedSteps >= stepsMax) break;
      usedSteps += advanceSearch(search, Math.min(QUANTUM_STEPS, stepsMax - usedSteps));
    }
    running = running.filter((search) => search.outcome === 'running');
  }
  const results = partitions.map((partition, i): PartitionResult => {
    const search = searches[i];
    if (search === undefined) throw new Error('internal: a partition lost its search');
    return partitionResult(partition.key, search, model);
  });
  return { verdict: overallVerdict(results), steps: usedSteps, partitions: results };
}

/** The overall verdict of several parts: invalid if any is, else unknown if any is, else valid. */
export function overallVerdict(results: readonly { verdict: Verdict }[]): Verdict {
  if (results.some((result) => result.verdict === 'invalid')) return 'invalid';
  if (results.some((result) => result.verdict === 'unknown')) return 'unknown';
  return 'valid';
}

// ---- The entry list -------------------------------------------------------------------------

interface ListNode {
  next: Entry | null;
}

interface CallEntry extends ListNode {
  readonly kind: 'call';
  /** The op's bit in the linearized set: its position in the partition. */
  readonly id: number;
  readonly op: Operation;
  readonly returnEntry: ReturnEntry;
  prev: ListNode;
}

interface ReturnEntry extends ListNode {
  readonly kind: 'return';
  readonly op: Operation;
  prev: ListNode;
}

type Entry = CallEntry | ReturnEntry;

/** Builds the time-sorted entry list behind a fresh head node. */
function buildEntryList(ops: readonly Operation[]): ListNode {
  const head: ListNode = { next: null };
  const entries: Entry[] = [];
  for (const [id, op] of ops.entries()) {
    const returnEntry: ReturnEntry = { kind: 'return', op, prev: head, next: null };
    entries.push({ kind: 'call', id, op, returnEntry, prev: head, next: null }, returnEntry);
  }
  entries.sort(compareEntries);
  let previous: ListNode = head;
  for (const entry of entries) {
    entry.prev = previous;
    previous.next = entry;
    previous = entry;
  }
  return head;
}

function entryTime(entry: Entry): number {
  return entry.kind === 'call' ? entry.op.call : entry.op.ret;
}

/** Time order; at equal times calls first (closed intervals), then op order for determinism. */
function compareEntries(a: Entry, b: Entry): number {
  const timeA = entryTime(a);
  const timeB = entryTime(b);
  if (timeA !== timeB) return timeA < timeB ? -1 : 1;
  if (a.kind !== b.kind) return a.kind === 'call' ? -1 : 1;
  return a.op.index - b.op.index;
}

/** Unlinks a call and its return. A call's next is never null: its return comes after it. */
function lift(call: CallEntry): void {
  call.prev.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.returnEntry;
  ret.prev.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Relinks what lift unlinked, in reverse order; valid only in LIFO order of lifts. */
function unlift(call: CallEntry): void {
  const ret = call.returnEntry;
  ret.prev.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev.next = call;
  if (call.next !== null) call.next.prev = call;
}

// ---- The linearized set and the configuration cache -------------------------------------------

/** A per-op random word; XOR of the words of the set bits is the set's hash, updated in O(1). */
function opHashWord(id: number): number {
  let z = Math.imul(id + 1, 0x9e3779b9);
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function flipBit(bits: Uint32Array, id: number): void {
  const word = id >>> 5;
  bits[word] = (bits[word] ?? 0) ^ (1 << (id & 31));
}

function bitsEqual(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface CachedConfig<S> {
  bits: Uint32Array;
  state: S;
}

// ---- One partition's search ---------------------------------------------------------------

interface Search<S> {
  readonly ops: readonly Operation[];
  readonly model: Model<S>;
  readonly head: ListNode;
  readonly okCount: number;
  readonly cache: Map<number, CachedConfig<S>[]>;
  readonly bits: Uint32Array;
  bitsHash: number;
  state: S;
  cursor: Entry | null;
  readonly stack: { call: CallEntry; stateBefore: S }[];
  okLinearized: number;
  steps: number;
  outcome: 'running' | 'valid' | 'invalid';
  deepest: DeepestBlock<S> | undefined;
}

/** The configuration with the longest linearized prefix at which a return deadline was missed. */
interface DeepestBlock<S> {
  prefix: { op: Operation; stateAfter: S }[];
  state: S;
  blockedOp: Operation;
  pendingOps: Operation[];
}

function startSearch<S>(ops: readonly Operation[], model: Model<S>): Search<S> {
  const head = buildEntryList(ops);
  const okCount = ops.filter((op) => op.status === 'ok').length;
  return {
    ops,
    model,
    head,
    okCount,
    cache: new Map(),
    bits: new Uint32Array(Math.ceil(ops.length / 32)),
    bitsHash: 0,
    state: model.init(),
    cursor: head.next,
    stack: [],
    okLinearized: 0,
    steps: 0,
    outcome: okCount === 0 ? 'valid' : 'running',
    deepest: undefined,
  };
}

/** Runs at most budgetSteps steps; returns the steps used. */
function advanceSearch<S>(search: Search<S>, budgetSteps: number): number {
  let used = 0;
  while (search.outcome === 'running' && used < budgetSteps) {
    if (search.okLinearized === search.okCount) {
      search.outcome = 'valid';
      break;
    }
    const entry = search.cursor;
    // With ok ops left, the walk meets their finite returns before reaching the end of the list.
    if (entry === null) throw new Error('internal: linearizability search ran off the entry list');
    used++;
    if (entry.kind === 'call') tryLinearize(search, entry);
    else backtrack(search, entry);
  }
  search.steps += used;
  return used;
}

/** Tries call as the next linearization point; descends if that reaches a new configuration. */
function tryLinearize<S>(search: Search<S>, call: CallEntry): void {
  const { ok, next } = search.model.step(search.state, call.op);
  if (ok) {
    flipBit(search.bits, call.id);
    search.bitsHash ^= opHashWord(call.id);
    if (rememberConfig(search, next)) {
      search.stack.push({ call, stateBefore: search.state });
      search.state = next;
      lift(call);
      if (call.op.status === 'ok') search.okLinearized++;
      search.cursor = search.head.next;
      return;
    }
    flipBit(search.bits, call.id);
    search.bitsHash ^= opHashWord(call.id);
  }
  search.cursor = call.next;
}

/** Adds the current linearized set with state to the cache; false if it was already there. */
function rememberConfig<S>(search: Search<S>, state: S): boolean {
  const key = (search.bitsHash ^ Math.imul(search.model.hash(state), 0x9e3779b1)) >>> 0;
  const bucket = search.cache.get(key);
  if (bucket === undefined) {
    search.cache.set(key, [{ bits: search.bits.slice(), state }]);
    return true;
  }
  for (const seen of bucket) {
    if (bitsEqual(seen.bits, search.bits) && search.model.equal(seen.state, state)) return false;
  }
  bucket.push({ bits: search.bits.slice(), state });
  return true;
}

/** A return whose call is not linearized: undo the last linearization point, or give up. */
function backtrack<S>(search: Search<S>, ret: ReturnEntry): void {
  if (ret.op.ret === Infinity) {
    // Only unknown-outcome returns remain, so every ok op is linearized; the loop checks that first.
    throw new Error('internal: reached an unknown-outcome return with ok ops unlinearized');
  }
  noteBlock(search, ret);
  const top = search.stack.pop();
  if (top === undefined) {
    search.outcome = 'invalid';
    return;
  }
  const { call, stateBefore } = top;
  search.state = stateBefore;
  flipBit(search.bits, call.id);
  search.bitsHash ^= opHashWord(call.id);
  unlift(call);
  if (call.op.status === 'ok') search.okLinearized--;
  search.cursor = call.next;
}

/** Remembers the configuration if its linearized prefix is the longest seen so far. */
function noteBlock<S>(search: Search<S>, ret: ReturnEntry): void {
  const depth = search.stack.length;
  if (search.deepest !== undefined && search.deepest.prefix.length >= depth) return;
  const prefix = search.stack.map((frame, i) => ({
    op: frame.call.op,
    stateAfter: search.stack[i + 1]?.stateBefore ?? search.state,
  }));
  const pendingOps: Operation[] = [];
  for (let entry = search.head.next; entry !== null && entry !== ret; entry = entry.next) {
    if (entry.kind === 'call') pendingOps.push(entry.op);
  }
  search.deepest = { prefix, state: search.state, blockedOp: ret.op, pendingOps };
}

function partitionResult<S>(key: string, search: Search<S>, model: Model<S>): PartitionResult {
  const verdict: Verdict = search.outcome === 'running' ? 'unknown' : search.outcome;
  const result: PartitionResult = { key, verdict, opCount: search.ops.length, steps: search.steps };
  if (verdict === 'invalid' && search.deepest !== undefined) result.failure = describeFailure(search.deepest, model);
  return result;
}

function describeFailure<S>(deepest: DeepestBlock<S>, model: Model<S>): LinearizationFailure {
  const blocked = deepest.blockedOp;
  const stateAtBlock = model.describeState(deepest.state);
  return {
    prefix: deepest.prefix.map((step) => ({ op: step.op, stateAfter: model.describeState(step.stateAfter) })),
    stateAtBlock,
    blockedOp: blocked,
    pendingOps: deepest.pendingOps,
    message:
      `process ${blocked.process}'s ${model.describeOperation(blocked)} (op ${blocked.index}, ` +
      `${blocked.call}–${blocked.ret} ns) cannot be linearized: the longest linearizable prefix has ` +
      `${deepest.prefix.length} ops and leaves state ${stateAtBlock}, and none of the ` +
      `${deepest.pendingOps.length} pending ops leads to a state where it can take effect in time`,
  };
}
