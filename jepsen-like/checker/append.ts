// A list-append checker in the style of Elle, for single-key operations: appends of values unique
// per key, and reads that return the whole list. The longest ok read is taken as the key's version
// order; every other read must be a prefix of it, which is the same as all reads being consistent
// with one total order. On top of that, real time (strict: a precedes b only if a returned
// strictly before b was called): a read must contain every append acknowledged before it began
// and everything an earlier-finished read saw; a read must not contain an append invoked after the
// read returned; appends must sit in the order real time forces. Elements from failed appends or
// from nowhere are aborted and garbage reads. Every anomaly reported here is a proof of
// non-linearizability, never a heuristic.

import { groupByKey, type RecordedOperation } from './history.ts';
import { canonicalJson } from './values.ts';
import { overallVerdict, type Verdict } from './linearizability.ts';

export type AppendAnomalyKind =
  | 'duplicate-element'
  | 'garbage-read'
  | 'aborted-read'
  | 'incompatible-order'
  | 'lost-append'
  | 'stale-read'
  | 'future-read'
  | 'realtime-order';

export interface AppendAnomaly {
  kind: AppendAnomalyKind;
  message: string;
  /** The ops that witness the anomaly. */
  ops: RecordedOperation[];
}

export interface AppendKeyResult {
  key: string;
  /** 'unknown' when appends were attempted but no read succeeded. */
  verdict: Verdict;
  appendCount: number;
  acknowledgedCount: number;
  readCount: number;
  /** Length of the longest read: the version order. */
  finalLength: number;
  anomalies: AppendAnomaly[];
}

export interface AppendResult {
  verdict: Verdict;
  keys: AppendKeyResult[];
}

/** Checks append and read ops (fails included, if the caller has them), key by key. */
export function checkAppend(ops: readonly RecordedOperation[]): AppendResult {
  const keys = [...groupByKey(ops)].map(([key, group]) => checkOneList(key, group));
  return { verdict: overallVerdict(keys), keys };
}

/** An ok read with its elements in canonical text. */
interface ListRead {
  op: RecordedOperation;
  texts: string[];
  /** Whether it is a prefix of the version order. */
  compatible: boolean;
}

interface ListFacts {
  appends: Map<string, RecordedOperation>;
  reads: ListRead[];
  order: string[];
  position: Map<string, number>;
  longest: ListRead | undefined;
}

function checkOneList(key: string, ops: readonly RecordedOperation[]): AppendKeyResult {
  const facts = gatherFacts(key, ops);
  const anomalies = [
    ...elementAnomalies(facts),
    ...orderAnomalies(facts),
    ...lostAppends(facts),
    ...staleReads(facts),
    ...futureReads(facts),
    ...realtimeOrder(facts),
  ];
  const acknowledgedCount = [...facts.appends.values()].filter((op) => op.status === 'ok').length;
  const verdict: Verdict =
    anomalies.length > 0 ? 'invalid' : facts.reads.length === 0 && facts.appends.size > 0 ? 'unknown' : 'valid';
  return {
    key,
    verdict,
    appendCount: facts.appends.size,
    acknowledgedCount,
    readCount: facts.reads.length,
    finalLength: facts.order.length,
    anomalies,
  };
}

function gatherFacts(key: string, ops: readonly RecordedOperation[]): ListFacts {
  const appends = new Map<string, RecordedOperation>();
  const reads: ListRead[] = [];
  for (const op of ops) {
    if (op.f === 'read') {
      if (op.status !== 'ok') continue;
      if (!Array.isArray(op.output)) {
        throw new Error(`append checker: read op ${op.index} returned ${canonicalJson(op.output)}, not a list`);
      }
      reads.push({ op, texts: (op.output as unknown[]).map(canonicalJson), compatible: true });
    } else if (op.f === 'append') {
      const text = canonicalJson(op.input);
      const earlier = appends.get(text);
      if (earlier !== undefined) {
        throw new Error(
          `append checker: ops ${earlier.index} and ${op.index} both append ${text} to key ${JSON.stringify(key)}`,
        );
      }
      appends.set(text, op);
    } else {
      throw new Error(`append checker: op ${op.index} on key ${JSON.stringify(key)} has f ${op.f}`);
    }
  }
  const longest = reads.reduce<ListRead | undefined>(
    (best, read) => (best === undefined || read.texts.length > best.texts.length ? read : best),
    undefined,
  );
  const order = longest?.texts ?? [];
  const position = new Map<string, number>();
  for (const [i, text] of order.entries()) if (!position.has(text)) position.set(text, i);
  for (const read of reads) read.compatible = read.texts.every((text, i) => order[i] === text);
  return { appends, reads, order, position, longest };
}

/** Duplicates, garbage (never appended) and aborted (append failed) elements, once per read. */
function elementAnomalies(facts: ListFacts): AppendAnomaly[] {
  const anomalies: AppendAnomaly[] = [];
  for (const read of facts.reads) {
    const duplicate = firstDuplicate(read.texts);
    if (duplicate !== undefined) {
      anomalies.push({
        kind: 'duplicate-element',
        message: `read op ${read.op.index} contains ${duplicate} twice`,
        ops: [read.op],
      });
    }
    const garbage = read.texts.find((text) => !facts.appends.has(text));
    if (garbage !== undefined) {
      anomalies.push({
        kind: 'garbage-read',
        message: `read op ${read.op.index} contains ${garbage}, never appended`,
        ops: [read.op],
      });
    }
    const aborted = read.texts.find((text) => facts.appends.get(text)?.status === 'fail');
    const abortedAppend = aborted === undefined ? undefined : facts.appends.get(aborted);
    if (aborted !== undefined && abortedAppend !== undefined) {
      anomalies.push({
        kind: 'aborted-read',
        message: `read op ${read.op.index} contains ${aborted}, whose append (op ${abortedAppend.index}) failed`,
        ops: [read.op, abortedAppend],
      });
    }
  }
  return anomalies;
}

function firstDuplicate(texts: readonly string[]): string | undefined {
  const counted = new Set<string>();
  for (const text of texts) {
    if (counted.has(text)) return text;
    counted.add(text);
  }
  return undefined;
}

function orderAnomalies(facts: ListFacts): AppendAnomaly[] {
  const longest = facts.longest;
  if (longest === undefined) return [];
  return facts.reads
    .filter((read) => !read.compatible)
    .map((read) => ({
      kind: 'incompatible-order' as const,
      message:
        `read op ${read.op.index} [${read.texts.join(',')}] is not a prefix of ` +
        `read op ${longest.op.index} [${longest.texts.join(',')}]`,
      ops: [read.op, longest.op],
    }));
}

/** An acknowledged append in no read at all, though a read began after it was acknowledged. */
function lostAppends(facts: ListFacts): AppendAnomaly[] {
  const anomalies: AppendAnomaly[] = [];
  for (const [text, append] of facts.appends) {
    if (append.status !== 'ok' || facts.position.has(text)) continue;
    const witness = facts.reads
      .filter((read) => read.op.call > append.ret && !read.texts.includes(text))
      .reduce<
        ListRead | undefined
      >((latest, read) => (latest === undefined || read.op.call > latest.op.call ? read : latest), undefined);
    if (witness === undefined) continue;
    anomalies.push({
      kind: 'lost-append',
      message:
        `append ${text} (op ${append.index}) was acknowledged at ${append.ret} ns, yet read op ` +
        `${witness.op.index}, begun later at ${witness.op.call} ns, lacks it, and so does the longest read`,
      ops: [append, witness.op],
    });
  }
  return anomalies;
}

/**
 * A compatible read shorter than what had to be visible when it began: an append acknowledged
 * earlier sits at a later position, or an earlier-finished read was longer. Sweeps both kinds of
 * knowledge in completion order against reads in call order.
 */
function staleReads(facts: ListFacts): AppendAnomaly[] {
  const knowledge: { time: number; length: number; op: RecordedOperation }[] = [];
  for (const [text, append] of facts.appends) {
    const at = facts.position.get(text);
    if (append.status === 'ok' && at !== undefined) knowledge.push({ time: append.ret, length: at + 1, op: append });
  }
  const compatibleReads = facts.reads.filter((read) => read.compatible);
  for (const read of compatibleReads) knowledge.push({ time: read.op.ret, length: read.texts.length, op: read.op });
  knowledge.sort((a, b) => a.time - b.time);
  const byCall = [...compatibleReads].sort((a, b) => a.op.call - b.op.call);
  const anomalies: AppendAnomaly[] = [];
  let next = 0;
  let strongest: (typeof knowledge)[number] | undefined;
  for (const read of byCall) {
    let known = knowledge[next];
    while (known !== undefined && known.time < read.op.call) {
      if (strongest === undefined || known.length > strongest.length) strongest = known;
      next++;
      known = knowledge[next];
    }
    if (strongest === undefined || read.texts.length >= strongest.length) continue;
    anomalies.push({
      kind: 'stale-read',
      message:
        `read op ${read.op.index} saw ${read.texts.length} elements, but op ${strongest.op.index}, done at ` +
        `${strongest.time} ns before the read began at ${read.op.call} ns, implies at least ${strongest.length}`,
      ops: [read.op, strongest.op],
    });
  }
  return anomalies;
}

/** A read containing an element whose append was invoked only after the read returned. */
function futureReads(facts: ListFacts): AppendAnomaly[] {
  const anomalies: AppendAnomaly[] = [];
  for (const read of facts.reads) {
    const future = read.texts
      .map((text) => facts.appends.get(text))
      .find((append) => append !== undefined && append.call > read.op.ret);
    if (future === undefined) continue;
    anomalies.push({
      kind: 'future-read',
      message:
        `read op ${read.op.index} returned at ${read.op.ret} ns containing ${canonicalJson(future.input)}, ` +
        `appended by op ${future.index} invoked later at ${future.call} ns`,
      ops: [read.op, future],
    });
  }
  return anomalies;
}

/** Appends i before j in the version order although j was acknowledged before i was invoked. */
function realtimeOrder(facts: ListFacts): AppendAnomaly[] {
  const anomalies: AppendAnomaly[] = [];
  let earliestLater: RecordedOperation | undefined; // the append later in the order that returned first
  for (let i = facts.order.length - 1; i >= 0; i--) {
    const text = facts.order[i];
    const append = text === undefined ? undefined : facts.appends.get(text);
    if (append === undefined || append.status === 'fail') continue;
    if (earliestLater !== undefined && earliestLater.ret < append.call) {
      anomalies.push({
        kind: 'realtime-order',
        message:
          `op ${append.index} is ordered before op ${earliestLater.index}, which was acknowledged at ` +
          `${earliestLater.ret} ns, before op ${append.index} was invoked at ${append.call} ns`,
        ops: [append, earliestLater],
      });
    }
    if (earliestLater === undefined || append.ret < earliestLater.ret) earliestLater = append;
  }
  return anomalies;
}
