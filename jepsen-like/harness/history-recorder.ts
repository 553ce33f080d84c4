// Records the run's history as it happens, in the line format of the external contract
// (docs/ARCHITECTURE.md, "The external contract today") that checker/history.ts reads: `{process, type,
// f, key, value, time}` with time in ns since the run began, plus `node` (the node the client asked)
// and `error` (why an op failed or is unknown) where known. Lines are streamed to history.jsonl (so a
// crashed harness still leaves what it saw) and nothing else is kept: the checkers read the file back
// (history-check.ts), so memory does not grow with the run (only the per-process open-op map, bounded
// by the workers). Nemesis events go to nemesis.jsonl instead: the history's contract allows only
// integer processes and the client functions.
//
// Invariants: times never go backwards (one monotonic clock, one recorder); a process has at most
// one invocation open, enforced here so a harness bug fails loudly instead of producing a history
// the checker rejects later.

import { createWriteStream, type WriteStream } from 'node:fs';
import type { EventType, HistoryEvent, OpFunction } from '../checker/history.ts';

/** Extra fields kept beside an event for the report only; not part of the history contract. */
export interface EventNote {
  /** The node the client talked to. */
  node?: number;
  /** The error that made the op fail or info. */
  error?: string;
}

export interface RecordedEvent extends HistoryEvent {
  note: EventNote;
}

export class HistoryRecorder {
  /** Events recorded so far. */
  eventCount = 0;
  private readonly stream: WriteStream;
  private readonly startNs: bigint;
  private readonly open = new Map<number, OpFunction>();

  constructor(path: string, startNs: bigint) {
    this.stream = createWriteStream(path, { flags: 'w' });
    this.startNs = startNs;
  }

  /** ns since the run started. */
  now(): number {
    return Number(process.hrtime.bigint() - this.startNs);
  }

  invoke(process: number, f: OpFunction, key: string | undefined, value: unknown, note: EventNote = {}): void {
    if (this.open.has(process)) throw new Error(`harness bug: process ${process} invokes ${f} with an op still open`);
    this.open.set(process, f);
    this.record({ process, type: 'invoke', f, ...(key === undefined ? {} : { key }), value, time: this.now(), note });
  }

  complete(
    process: number,
    type: Exclude<EventType, 'invoke'>,
    f: OpFunction,
    key: string | undefined,
    value: unknown,
    note: EventNote = {},
  ): void {
    if (this.open.get(process) !== f)
      throw new Error(`harness bug: process ${process} completes ${f} without a matching invocation`);
    this.open.delete(process);
    this.record({ process, type, f, ...(key === undefined ? {} : { key }), value, time: this.now(), note });
  }

  private record(event: RecordedEvent): void {
    this.eventCount++;
    // The contract's fields, plus the node and error (as in research A6); the parser ignores extras.
    const { note } = event;
    const line = {
      process: event.process,
      type: event.type,
      f: event.f,
      ...(event.key === undefined ? {} : { key: event.key }),
      value: event.value,
      time: event.time,
      ...(note.node === undefined ? {} : { node: note.node }),
      ...(note.error === undefined ? {} : { error: note.error }),
    };
    this.stream.write(`${JSON.stringify(line)}\n`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.stream.end((error?: Error | null) => {
        if (error) reject(error);
        else resolve();
      });
    });
  }
}

/** The nemesis log: one JSON object per line, time in ns on the history's clock. */
export class NemesisLog {
  readonly entries: NemesisEntry[] = [];
  private readonly stream: WriteStream;

  constructor(path: string) {
    this.stream = createWriteStream(path, { flags: 'w' });
  }

  record(entry: NemesisEntry): void {
    this.entries.push(entry);
    this.stream.write(`${JSON.stringify(entry)}\n`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.stream.end(() => {
        resolve();
      });
    });
  }
}

export interface NemesisEntry {
  time: number;
  /**
   * start and stop bracket a fault; heal is the final heal; skip and error explain what did not
   * happen; check is the harness's verdict on whether a fault had its effect (nemesis-checks.ts).
   */
  type: 'start' | 'stop' | 'heal' | 'skip' | 'error' | 'event' | 'check';
  /** The schedule's fault index, when the entry belongs to one. */
  fault?: number;
  kind: string;
  detail: string;
  /** A check's verdict. */
  verdict?: 'valid' | 'invalid' | 'unknown';
}
