// The history a Jepsen-style run records, and its pairing into operations. One line of
// history.jsonl is one event in Jepsen's shape: a process invokes an operation, then the same
// process completes it with ok (it happened), fail (it definitely did not happen) or info (unknown).
// Invariants after pairing: every operation has call <= ret; a process has at most one operation
// in flight; an operation whose outcome is unknown (info, or no completion before the history
// ended) returns at +Infinity, because it may take effect at any later time or never.

export type EventType = 'invoke' | 'ok' | 'fail' | 'info';
export type OpFunction = 'read' | 'write' | 'cas' | 'add' | 'append' | 'schedule';

/** The key of ops that carry none. */
export const NO_KEY = '';

const EVENT_TYPES: readonly EventType[] = ['invoke', 'ok', 'fail', 'info'];
const OP_FUNCTIONS: readonly OpFunction[] = ['read', 'write', 'cas', 'add', 'append', 'schedule'];

/**
 * One line of history.jsonl. A read's ok carries the value read (null when the key is absent); a
 * cas carries [expected, new]; a write, add or append carries the value written; a schedule (the
 * actions workload) carries the action scheduled, `{id, kind, args}`.
 */
export interface HistoryEvent {
  process: number;
  type: EventType;
  f: OpFunction;
  key?: string;
  value: unknown;
  time: number; // ns since the start of the run
}

/** An invocation paired with its completion, fails included (liveness and the set checker want them). */
export interface RecordedOperation {
  /** Position in invocation order within the history; stable identity for reports. */
  index: number;
  process: number;
  f: OpFunction;
  key: string | undefined;
  /** The invocation's value. */
  input: unknown;
  /** The completion's value; undefined when the outcome is unknown. */
  output: unknown;
  call: number; // ns
  /** Return time in ns for linearization; Infinity when the outcome is unknown. */
  ret: number;
  /** When the completion event was recorded (ns), info included; Infinity if none was. */
  completionTime: number;
  status: 'ok' | 'info' | 'fail';
}

/** An operation that took effect (ok) or may have (info). Failed operations are not among them. */
export interface Operation extends RecordedOperation {
  status: 'ok' | 'info';
}

/** A line of history.jsonl that is not a valid event. */
export class HistoryFormatError extends Error {
  override readonly name = 'HistoryFormatError';
  readonly lineNumber: number;
  constructor(lineNumber: number, reason: string) {
    super(`history line ${lineNumber}: ${reason}`);
    this.lineNumber = lineNumber;
  }
}

/** Parses history.jsonl text. Blank lines are skipped; line numbers in errors count from 1. */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    const event = parseEventLine(line, i + 1);
    if (event !== null) events.push(event);
  }
  return events;
}

/**
 * Parses one line of history.jsonl: null for a blank line, else the event (extra fields such as
 * `node` and `error` are kept on the object). Throws HistoryFormatError naming the line.
 */
export function parseEventLine(line: string, lineNumber: number): HistoryEvent | null {
  if (line.trim() === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new HistoryFormatError(lineNumber, `not JSON (${(error as Error).message})`);
  }
  const problem = eventProblem(parsed);
  if (problem !== null) throw new HistoryFormatError(lineNumber, problem);
  return parsed as HistoryEvent;
}

/** What is wrong with a parsed line, or null if it is a valid event. */
function eventProblem(parsed: unknown): string | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'an event must be a JSON object';
  const event = parsed as Record<string, unknown>;
  const { process, type, f, key, time } = event;
  if (typeof process !== 'number' || !Number.isSafeInteger(process) || process < 0) {
    return `"process" must be a non-negative integer, got ${JSON.stringify(process)}`;
  }
  if (!EVENT_TYPES.includes(type as EventType)) {
    return `"type" must be one of ${EVENT_TYPES.join(', ')}, got ${JSON.stringify(type)}`;
  }
  if (!OP_FUNCTIONS.includes(f as OpFunction)) {
    return `"f" must be one of ${OP_FUNCTIONS.join(', ')}, got ${JSON.stringify(f)}`;
  }
  if (key !== undefined && typeof key !== 'string')
    return `"key" must be a string when present, got ${JSON.stringify(key)}`;
  if (!('value' in event)) return '"value" is missing (use null for none)';
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) {
    return `"time" must be a finite non-negative number of ns, got ${JSON.stringify(time)}`;
  }
  if (f === 'cas' && type === 'invoke' && !(Array.isArray(event.value) && event.value.length === 2)) {
    return `a cas invocation's "value" must be [expected, new], got ${JSON.stringify(event.value)}`;
  }
  return null;
}

/**
 * Pairs events one at a time, so a history can be paired as it streams from a file: push each
 * event in order; an invocation answers its new operation (still pending), a completion answers
 * the operation it completed. Memory is one entry per process with an operation in flight.
 * `index` counts every invocation pushed, whatever the caller keeps.
 */
export class OperationPairer {
  private readonly pending = new Map<number, { op: RecordedOperation; eventNumber: number }>();
  private invocations = 0;
  private events = 0;

  push(event: HistoryEvent): RecordedOperation {
    const eventNumber = ++this.events;
    const inFlight = this.pending.get(event.process);
    if (event.type === 'invoke') {
      if (inFlight !== undefined) {
        throw new Error(
          `event ${eventNumber}: process ${event.process} invokes ${event.f} while its ${inFlight.op.f} ` +
            `from event ${inFlight.eventNumber} is still pending`,
        );
      }
      const op: RecordedOperation = {
        index: this.invocations++,
        process: event.process,
        f: event.f,
        key: event.key,
        input: event.value,
        output: undefined,
        call: event.time,
        ret: Infinity,
        completionTime: Infinity,
        status: 'info',
      };
      this.pending.set(event.process, { op, eventNumber });
      return op;
    }
    if (inFlight === undefined) {
      throw new Error(
        `event ${eventNumber}: process ${event.process} completes ${event.f} (${event.type}) with nothing pending`,
      );
    }
    completeOperation(inFlight.op, event, eventNumber);
    this.pending.delete(event.process);
    return inFlight.op;
  }

  /** Operations never completed: the run ended before we learnt their fate (info, ret = Infinity). */
  unfinished(): RecordedOperation[] {
    return Array.from(this.pending.values(), (entry) => entry.op);
  }
}

/** Pairs every invocation with its process's next completion; fails are kept. */
export function pairEvents(events: readonly HistoryEvent[]): RecordedOperation[] {
  const pairer = new OperationPairer();
  const operations: RecordedOperation[] = [];
  for (const event of events) {
    const op = pairer.push(event);
    if (event.type === 'invoke') operations.push(op);
  }
  return operations;
}

function completeOperation(op: RecordedOperation, event: HistoryEvent, eventNumber: number): void {
  const mismatch =
    event.f !== op.f
      ? `f ${event.f} does not match the invoked ${op.f}`
      : event.key !== op.key
        ? `key ${JSON.stringify(event.key)} does not match the invoked ${JSON.stringify(op.key)}`
        : event.time < op.call
          ? `completes at ${event.time} ns, before its invocation at ${op.call} ns`
          : null;
  if (mismatch !== null) throw new Error(`event ${eventNumber}: process ${event.process}'s completion: ${mismatch}`);
  op.completionTime = event.time;
  if (event.type === 'info') return; // outcome unknown: keep ret = Infinity, output undefined
  op.status = event.type === 'ok' ? 'ok' : 'fail';
  op.output = event.value;
  op.ret = event.time;
}

/** Pairs events into operations and drops the failed ones: they did not happen. */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  return pairEvents(events).filter((op): op is Operation => op.status !== 'fail');
}

/** Parses history.jsonl text straight into operations, failed ones dropped. */
export function loadOperations(text: string): Operation[] {
  return pairOperations(parseHistory(text));
}

/** Groups ops by key (ops without one under NO_KEY), keys sorted, each group in the given order. */
export function groupByKey<T extends { key: string | undefined }>(ops: readonly T[]): Map<string, T[]> {
  const byKey = new Map<string, T[]>();
  for (const op of ops) {
    const key = op.key ?? NO_KEY;
    const group = byKey.get(key);
    if (group === undefined) byKey.set(key, [op]);
    else group.push(op);
  }
  return new Map([...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
