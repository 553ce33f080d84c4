// The set workload's checker, Jepsen's set checker in spirit: clients add unique elements to a set
// (one per key), then read it at the end. Every acknowledged add that completed before the final
// read began must be in it (else lost); no element may appear that was never attempted, or whose
// add failed (a fail means it definitely did not happen); info adds may or may not be present.
// The final read is the ok read invoked last. All ok reads are checked for unexpected and
// duplicated elements. Elements compare by canonical JSON.

import { groupByKey, type RecordedOperation } from './history.ts';
import { canonicalJson } from './values.ts';
import { overallVerdict, type Verdict } from './linearizability.ts';

export interface SetKeyResult {
  key: string;
  /** 'unknown' when adds were attempted but no read succeeded. */
  verdict: Verdict;
  attemptedCount: number;
  acknowledgedCount: number;
  indeterminateCount: number;
  failedCount: number;
  /** Size of the final read, or 0 without one. */
  finalReadSize: number;
  /** Info adds present in the final read: they did happen. */
  recoveredCount: number;
  /** Acknowledged adds absent from the final read but concurrent with it: not provably lost. */
  unresolvedCount: number;
  /** Acknowledged adds, completed before the final read began, absent from it. */
  lost: unknown[];
  /** Elements read that no add ever attempted. */
  unexpected: unknown[];
  /** Elements read whose add failed. */
  failedPresent: unknown[];
  /** Elements a single read returned more than once. */
  duplicated: unknown[];
}

export interface SetResult {
  verdict: Verdict;
  keys: SetKeyResult[];
}

/** Checks add and read ops (fails included, if the caller has them) of one or more sets. */
export function checkSet(ops: readonly RecordedOperation[]): SetResult {
  const keys = [...groupByKey(ops)].map(([key, group]) => checkOneSet(key, group));
  return { verdict: overallVerdict(keys), keys };
}

function checkOneSet(key: string, ops: readonly RecordedOperation[]): SetKeyResult {
  const adds = indexAdds(key, ops);
  const reads = ops.filter((op) => op.f === 'read' && op.status === 'ok');
  const finalRead = reads.reduce<RecordedOperation | undefined>(
    (latest, read) => (latest === undefined || read.call >= latest.call ? read : latest),
    undefined,
  );
  const seen = new Map<string, unknown>();
  const duplicated = new Map<string, unknown>();
  for (const read of reads) {
    const counted = new Set<string>();
    for (const element of readElements(read)) {
      const text = canonicalJson(element);
      if (counted.has(text)) duplicated.set(text, element);
      counted.add(text);
      seen.set(text, element);
    }
  }
  const present = new Set((finalRead === undefined ? [] : readElements(finalRead)).map(canonicalJson));
  const result: SetKeyResult = {
    key,
    verdict: 'valid',
    attemptedCount: adds.size,
    acknowledgedCount: 0,
    indeterminateCount: 0,
    failedCount: 0,
    finalReadSize: finalRead === undefined ? 0 : readElements(finalRead).length,
    recoveredCount: 0,
    unresolvedCount: 0,
    lost: [],
    unexpected: [...seen].filter(([text]) => !adds.has(text)).map(([, element]) => element),
    failedPresent: [...seen].filter(([text]) => adds.get(text)?.status === 'fail').map(([, element]) => element),
    duplicated: [...duplicated.values()],
  };
  for (const [text, add] of adds) tallyAdd(result, add, present.has(text), finalRead);
  const broken = result.lost.length + result.unexpected.length + result.failedPresent.length + result.duplicated.length;
  result.verdict = broken > 0 ? 'invalid' : finalRead === undefined && adds.size > 0 ? 'unknown' : 'valid';
  return result;
}

function tallyAdd(
  result: SetKeyResult,
  add: RecordedOperation,
  present: boolean,
  finalRead: RecordedOperation | undefined,
): void {
  if (add.status === 'fail') {
    result.failedCount++;
  } else if (add.status === 'info') {
    result.indeterminateCount++;
    if (present) result.recoveredCount++;
  } else {
    result.acknowledgedCount++;
    if (present || finalRead === undefined) return;
    // Strictly before: an add that returned at the read's very call instant is concurrent with it.
    if (add.ret < finalRead.call) result.lost.push(add.input);
    else result.unresolvedCount++;
  }
}

/** Adds by canonical element; the workload promises unique elements, so a repeat is a harness bug. */
function indexAdds(key: string, ops: readonly RecordedOperation[]): Map<string, RecordedOperation> {
  const adds = new Map<string, RecordedOperation>();
  for (const op of ops) {
    if (op.f === 'read') continue;
    if (op.f !== 'add') throw new Error(`set checker: op ${op.index} on key ${JSON.stringify(key)} has f ${op.f}`);
    const text = canonicalJson(op.input);
    const earlier = adds.get(text);
    if (earlier !== undefined) {
      throw new Error(
        `set checker: ops ${earlier.index} and ${op.index} both add ${text} to key ${JSON.stringify(key)}`,
      );
    }
    adds.set(text, op);
  }
  return adds;
}

function readElements(read: RecordedOperation): unknown[] {
  if (!Array.isArray(read.output)) {
    throw new Error(`set checker: read op ${read.index} returned ${canonicalJson(read.output)}, not a list`);
  }
  return read.output as unknown[];
}
