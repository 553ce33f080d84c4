// The sharded KV model: the replicated state machine of one `kv/<n>` group. Pure and
// deterministic: the same entries applied in the same order give the same state on every replica.
// Each key carries the log index that created it and the one that last modified it (its
// "modify index", exposed as X-Dram-Index and used for compare-and-set). Client sessions make
// retries exactly-once: a command stamped with (client id, seq) that was already applied returns
// the recorded outcome instead of applying again. Sessions are bounded (least recently used go),
// and, as in the Raft thesis (section 6.3), a request from a session that is gone is refused rather
// than applied again: a client id's first request (seq 1) opens its session, so a request with a
// later seq from a client id without one comes from an expired session. Only a retry of seq 1
// itself cannot be told from a new session (docs/errors.md, DRAM_ERR_STALE_REQUEST).

import { assert } from '../base/assert.ts';
import {
  decodeKvCommand,
  decodeKvSnapshot,
  encodeKvSnapshot,
  kvRequestKeyOf,
  type KvCommand,
  type KvSnapshotSession,
} from '../codec/kv.ts';
import type { LogIndex } from '../base/ids.ts';

export interface KvRecord {
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export type KvOutcome =
  | { readonly ok: true; readonly modifyIndex: number }
  | { readonly ok: false; readonly code: 'cas_mismatch'; readonly currentIndex: number }
  | { readonly ok: false; readonly code: 'key_not_found' }
  | { readonly ok: false; readonly code: 'stale_request'; readonly lastSeq: number }
  /** No session for the client id and seq > 1: it expired (or never opened); not applied. */
  | { readonly ok: false; readonly code: 'session_expired' };

/** The seq of a client id's first request, which opens its session (0 is accepted too). */
export const sessionOpeningSeq = 1;

export interface KvModelOptions {
  /** Client sessions remembered for exactly-once retries; the least recently used are forgotten. */
  readonly sessionsMax: number;
}

interface Session {
  seq: number;
  lastIndex: number;
  outcome: KvOutcome;
}

export class KvModel {
  readonly type = 'kv';
  readonly version = 1;
  private readonly records = new Map<string, KvRecord>();
  /** Insertion order is recency order: a touched session is re-inserted at the end. */
  private readonly sessions = new Map<string, Session>();
  private readonly sessionsMax: number;

  constructor(options: KvModelOptions = { sessionsMax: 10_000 }) {
    assert(options.sessionsMax >= 1, 'kv: sessionsMax must be positive');
    this.sessionsMax = options.sessionsMax;
  }

  get size(): number {
    return this.records.size;
  }

  get(key: string): KvRecord | undefined {
    return this.records.get(key);
  }

  /** The request key of the command in an entry (its client stamp), for the host's forwarded proposals. */
  requestKey(data: Uint8Array): string | undefined {
    return kvRequestKeyOf(data);
  }

  /** Applies the command in a committed entry's data; a malformed command changes nothing. */
  applyEntry(index: LogIndex, data: Uint8Array): KvOutcome | undefined {
    if (data.length === 0) return undefined; // a leader's empty entry
    let command: KvCommand;
    try {
      command = decodeKvCommand(data);
    } catch {
      return undefined; // validated at the edge before proposing; never fatal for replicas
    }
    return this.apply(index, command);
  }

  apply(index: LogIndex, command: KvCommand): KvOutcome {
    const client = command.client;
    if (client !== undefined) {
      const session = this.sessions.get(client.id);
      if (session === undefined && client.seq > sessionOpeningSeq) return { ok: false, code: 'session_expired' };
      if (session !== undefined && client.seq <= session.seq) {
        return client.seq === session.seq
          ? session.outcome
          : { ok: false, code: 'stale_request', lastSeq: session.seq };
      }
    }
    const outcome = this.execute(index, command);
    if (client !== undefined) this.remember(client.id, { seq: client.seq, lastIndex: index, outcome });
    return outcome;
  }

  private execute(index: LogIndex, command: KvCommand): KvOutcome {
    const current = this.records.get(command.key);
    if (command.cas !== undefined && (current?.modifyIndex ?? 0) !== command.cas) {
      return { ok: false, code: 'cas_mismatch', currentIndex: current?.modifyIndex ?? 0 };
    }
    if (command.op === 'delete') {
      if (current === undefined) return { ok: false, code: 'key_not_found' };
      this.records.delete(command.key);
      return { ok: true, modifyIndex: index };
    }
    this.records.set(command.key, {
      value: command.value,
      createIndex: current?.createIndex ?? index,
      modifyIndex: index,
    });
    return { ok: true, modifyIndex: index };
  }

  private remember(id: string, session: Session): void {
    this.sessions.delete(id);
    this.sessions.set(id, session);
    if (this.sessions.size > this.sessionsMax) {
      const oldest = this.sessions.keys().next();
      if (oldest.done !== true) this.sessions.delete(oldest.value);
    }
  }

  snapshot(): Uint8Array {
    const records = [...this.records].map(([key, record]) => ({ key, ...record }));
    const sessions: KvSnapshotSession[] = [...this.sessions].map(([id, session]) => ({ id, ...session }));
    return encodeKvSnapshot({ version: 1, records, sessions });
  }

  restore(data: Uint8Array): void {
    this.records.clear();
    this.sessions.clear();
    if (data.length === 0) return;
    const snapshot = decodeKvSnapshot(data);
    for (const { key, ...record } of snapshot.records) this.records.set(key, record);
    for (const { id, seq, lastIndex, outcome } of snapshot.sessions)
      this.sessions.set(id, { seq, lastIndex, outcome: outcome as KvOutcome });
  }
}
