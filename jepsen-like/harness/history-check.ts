// Checks a run from its history.jsonl, streamed, so the harness's memory stays flat however long
// the run: nothing keeps the whole history. Two kinds of pass over the file:
//   overview  one pass, every event: pairs invocations with completions, folds the op counts, the
//             plots' data (overview.ts) and liveness, and counts each key's events;
//   keys      the keys in sorted order, cut into batches of at most checkEventsMax events; one pass
//             per batch collects that batch's ops and runs the workload's checker on them, then
//             drops them. A key's ops never straddle two batches (the checkers are per key), so the
//             verdicts are those of one check over the whole history.
// Op indexes are positions in the whole history's invocation order in every pass (the pairer
// counts every invocation), so reports and results name the same op whatever the batch.
// Called by run.ts at the end of a run and by --recheck.

import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { NO_KEY, OperationPairer, parseEventLine, type RecordedOperation } from '../checker/history.ts';
import { overallVerdict } from '../checker/linearizability.ts';
import { LivenessFold, type LivenessOptions, type LivenessResult } from '../checker/liveness.ts';
import type { EventNote } from './history-recorder.ts';
import { RunOverview } from './overview.ts';
import { PRECONDITION, type Workload, type WorkloadCheck } from './workloads.ts';

/** Events one key-checking pass holds at most (a single key larger than this is checked alone). */
export const checkEventsMax = 200_000;
/** Keys whose ops are kept for the report's failure view. */
const failureKeysMax = 5;
const readChunkBytes = 1 << 20;
/** A history line longer than this is corrupt (an append read of a full list is a few kB). */
const lineCharsMax = 16 << 20;

/**
 * Calls visit for every non-blank line of the file, with its 1-based line number; reads in
 * fixed-size chunks, so memory is one chunk and one line whatever the file's size.
 */
export function forEachLine(path: string, visit: (line: string, lineNumber: number) => void): void {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(readChunkBytes);
    const decoder = new StringDecoder('utf8');
    let tail = '';
    let lineNumber = 0;
    for (let bytes = readSync(fd, buffer); bytes > 0; bytes = readSync(fd, buffer)) {
      const text = tail + decoder.write(buffer.subarray(0, bytes));
      let start = 0;
      for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
        lineNumber++;
        const line = text.slice(start, end);
        if (line.trim() !== '') visit(line, lineNumber);
        start = end + 1;
      }
      tail = text.slice(start);
      if (tail.length > lineCharsMax) throw new Error(`${path}: line ${lineNumber + 1} is over ${lineCharsMax} chars`);
    }
    tail += decoder.end();
    if (tail.trim() !== '') visit(tail, lineNumber + 1);
  } finally {
    closeSync(fd);
  }
}

/**
 * The recorder writes every line with the same leading fields, in order: process, type, f, then key
 * when there is one, then value. Matching that prefix gives a line's type and key without parsing
 * it, which lets a key pass skip the lines of other keys cheaply. Only trusted once the overview
 * pass has parsed every line and found the prefix to agree with the parse wherever it matched (a
 * hand-edited history might repeat a field further on).
 */
const recorderPrefix = /^\{"process":\d+,"type":"(invoke|ok|fail|info)","f":"[a-z]+",(?:"key":"([^"\\]*)",)?"value":/u;

/** The type and key the recorder's prefix gives, or undefined when the line does not have it. */
function prefixOf(line: string): { invoke: boolean; key: string } | undefined {
  const match = recorderPrefix.exec(line);
  if (match === null) return undefined;
  return { invoke: match[1] === 'invoke', key: match[2] ?? NO_KEY };
}

/** Every event of history.jsonl, in order, as an op paired so far plus the completion's note. */
function forEachPairedEvent(
  path: string,
  visit: (op: RecordedOperation, completed: boolean, note: EventNote, line: string) => void,
): OperationPairer {
  const pairer = new OperationPairer();
  forEachLine(path, (line, lineNumber) => {
    const event = parseEventLine(line, lineNumber);
    if (event === null) return;
    const op = pairer.push(event);
    const extra = event as { node?: unknown; error?: unknown };
    const note: EventNote = {
      ...(typeof extra.node === 'number' ? { node: extra.node } : {}),
      ...(typeof extra.error === 'string' ? { error: extra.error } : {}),
    };
    visit(op, event.type !== 'invoke', note, line);
  });
  return pairer;
}

/**
 * Every op of the wanted keys, paired, in invocation order with the whole history's indexes.
 * Pairing the wanted keys' events alone is sound because an op's invocation and completion carry
 * the same key (the overview pass has paired the whole history already); the invocations skipped
 * are counted for the indexes. With trustPrefix, other keys' lines are skipped unparsed.
 */
function opsOfKeys(path: string, wanted: ReadonlySet<string>, trustPrefix: boolean): RecordedOperation[] {
  const ops: RecordedOperation[] = [];
  const pairer = new OperationPairer();
  let skippedInvocations = 0;
  forEachLine(path, (line, lineNumber) => {
    const prefix = trustPrefix ? prefixOf(line) : undefined;
    if (prefix !== undefined && !wanted.has(prefix.key)) {
      if (prefix.invoke) skippedInvocations++;
      return;
    }
    const event = parseEventLine(line, lineNumber);
    if (event === null) return;
    if (!wanted.has(event.key ?? NO_KEY)) {
      if (event.type === 'invoke') skippedInvocations++;
      return;
    }
    const op = pairer.push(event);
    if (event.type !== 'invoke') return;
    op.index += skippedInvocations;
    ops.push(op);
  });
  return ops;
}

export interface OverviewPass {
  readonly overview: RunOverview;
  /** Undefined when liveness is not judged (the run never finished its recovery phase). */
  readonly liveness: LivenessResult | undefined;
  /** Events per key (ops without a key under NO_KEY). */
  readonly keyEvents: ReadonlyMap<string, number>;
  readonly events: number;
  /** Whether every line with the recorder's prefix agreed with its parse (see recorderPrefix). */
  readonly prefixTrusted: boolean;
}

/** The overview pass: counts, plots, liveness and each key's size, in one read of the file. */
export function overviewPass(path: string, liveness: LivenessOptions | undefined): OverviewPass {
  const overview = new RunOverview();
  const livenessFold = liveness === undefined ? undefined : new LivenessFold(liveness);
  const keyEvents = new Map<string, number>();
  let events = 0;
  let prefixTrusted = true;
  const finish = (op: RecordedOperation, error: string | undefined): void => {
    overview.add(op, error);
    // A cas whose comparison did not hold was answered: for liveness it is as good as ok.
    const answered = op.status === 'fail' && error?.startsWith(PRECONDITION) === true;
    livenessFold?.add(answered ? { ...op, status: 'ok' } : op);
  };
  const pairer = forEachPairedEvent(path, (op, completed, note, line) => {
    events++;
    const key = op.key ?? NO_KEY;
    const prefix = prefixOf(line);
    if (prefix !== undefined && (prefix.key !== key || prefix.invoke === completed)) prefixTrusted = false;
    keyEvents.set(key, (keyEvents.get(key) ?? 0) + 1);
    if (completed) finish(op, note.error);
  });
  for (const op of pairer.unfinished()) finish(op, undefined);
  return { overview, liveness: livenessFold?.result(), keyEvents, events, prefixTrusted };
}

/** Sorted keys cut into batches of at most eventsMax events (a bigger key alone). */
export function keyBatches(keyEvents: ReadonlyMap<string, number>, eventsMax: number): string[][] {
  const keys = Array.from(keyEvents.keys()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const batches: string[][] = [];
  let batch: string[] = [];
  let size = 0;
  for (const key of keys) {
    const events = keyEvents.get(key) ?? 0;
    if (batch.length > 0 && size + events > eventsMax) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(key);
    size += events;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Two checks of disjoint key sets as one check (batches come in key order, so keys stay sorted). */
export function mergeChecks(a: WorkloadCheck, b: WorkloadCheck): WorkloadCheck {
  const verdict = overallVerdict([a, b]);
  if (a.workload === 'register' && b.workload === 'register') {
    const partitions = a.result.partitions.concat(b.result.partitions);
    return { workload: 'register', verdict, result: { verdict, steps: a.result.steps + b.result.steps, partitions } };
  }
  if (a.workload === 'set' && b.workload === 'set')
    return { workload: 'set', verdict, result: { verdict, keys: a.result.keys.concat(b.result.keys) } };
  if (a.workload === 'append' && b.workload === 'append')
    return { workload: 'append', verdict, result: { verdict, keys: a.result.keys.concat(b.result.keys) } };
  // The actions workload has one key, so its check is never split into batches.
  throw new Error(`internal: cannot merge a ${a.workload} check with a ${b.workload} check`);
}

export interface KeyCheck {
  readonly check: WorkloadCheck;
  /** The ops of the first few keys found not linearizable, for the report's failure view. */
  readonly invalidKeyOps: ReadonlyMap<string, readonly RecordedOperation[]>;
  readonly passes: number;
}

/** The key passes: the workload's checker on each batch of keys, merged. */
export function checkByKey(
  path: string,
  workload: Workload,
  pass: Pick<OverviewPass, 'keyEvents' | 'prefixTrusted'>,
  stepsMax: number,
  eventsMax = checkEventsMax,
): KeyCheck {
  let check: WorkloadCheck | undefined;
  const invalidKeyOps = new Map<string, RecordedOperation[]>();
  const batches = keyBatches(pass.keyEvents, eventsMax);
  for (const batch of batches) {
    const ops = opsOfKeys(path, new Set(batch), pass.prefixTrusted);
    const stepsUsed = check?.workload === 'register' ? check.result.steps : 0;
    const batchCheck = workload.check(ops, Math.max(0, stepsMax - stepsUsed));
    if (batchCheck.workload === 'register') {
      for (const partition of batchCheck.result.partitions) {
        if (partition.failure === undefined || invalidKeyOps.size >= failureKeysMax) continue;
        invalidKeyOps.set(
          partition.key,
          ops.filter((op) => (op.key ?? NO_KEY) === partition.key),
        );
      }
    }
    check = check === undefined ? batchCheck : mergeChecks(check, batchCheck);
  }
  return { check: check ?? workload.check([], stepsMax), invalidKeyOps, passes: batches.length };
}
