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
//
// Storage of the records, for restarts and snapshots without a pause (docs/models.md): the
// records live in an image (kv-image.ts: the sorted bytes of the last snapshot, indexed, no
// object per key) under layers of changes since (maps of key -> record, or null when deleted;
// writes go to the top layer, reads look top-down). A snapshot freezes the layers there are and
// starts a new top layer, so what it writes (the image merged with the frozen layers, in slices,
// while entries keep being applied) is exactly the state at the entry it was taken after; once
// written out, its segments become the image and the frozen layers go.

import { assert } from '../base/assert.ts';
import { concatBytes } from '../base/bytes.ts';
import {
  decodeKvCommand,
  decodeKvSession,
  decodeKvSnapshot,
  kvRequestKeyOf,
  type KvCommand,
  type KvSnapshotSession,
} from '../codec/kv.ts';
import type { LogIndex } from '../base/ids.ts';
import { list } from '../codec/validate.ts';
import {
  compareBytes,
  emptyImage,
  findInImage,
  imageCount,
  mergeImage,
  readBody,
  segmentBytes,
  sessionsSlice,
  type Change,
  type Segment,
} from './kv-image.ts';
import type { SnapshotSlices } from './model.ts';

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
  /** Bytes of records per snapshot slice, and so per image segment (default segmentBytes, 1 MiB). */
  readonly sliceBytes?: number;
}

interface Session {
  seq: number;
  lastIndex: number;
  outcome: KvOutcome;
}

/** Version 1 wrote one msgpack map of every record; version 2 writes the image (kv-image.ts). */
export const kvModelVersion = 2;
const utf8 = new TextEncoder();

export class KvModel {
  readonly type = 'kv';
  readonly version = kvModelVersion;
  private image: readonly Segment[] = emptyImage;
  /** Changes since the image and the frozen layers: writes go here. */
  private top = new Map<string, KvRecord | null>();
  /** Frozen by snapshots not yet written out, oldest first (below `top`). */
  private frozen: readonly Map<string, KvRecord | null>[] = [];
  private recordCount = 0;
  /** Raised by every restore: a snapshot being written from before it must not become the image. */
  private generation = 0;
  /** Insertion order is recency order: a touched session is re-inserted at the end. */
  private readonly sessions = new Map<string, Session>();
  private readonly sessionsMax: number;
  private readonly sliceBytes: number;

  constructor(options: KvModelOptions = { sessionsMax: 10_000 }) {
    assert(options.sessionsMax >= 1, 'kv: sessionsMax must be positive');
    this.sessionsMax = options.sessionsMax;
    this.sliceBytes = options.sliceBytes ?? segmentBytes;
    assert(this.sliceBytes >= 1, 'kv: sliceBytes must be positive');
  }

  get size(): number {
    return this.recordCount;
  }

  get(key: string): KvRecord | undefined {
    const record = this.top.get(key);
    if (record !== undefined) return record ?? undefined;
    for (let k = this.frozen.length - 1; k >= 0; k--) {
      const older = this.frozen[k]?.get(key);
      if (older !== undefined) return older ?? undefined;
    }
    return this.image.length === 0 ? undefined : findInImage(this.image, utf8.encode(key));
  }

  private set(key: string, record: KvRecord | null): void {
    this.top.set(key, record);
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
    const current = this.get(command.key);
    if (command.cas !== undefined && (current?.modifyIndex ?? 0) !== command.cas) {
      return { ok: false, code: 'cas_mismatch', currentIndex: current?.modifyIndex ?? 0 };
    }
    if (command.op === 'delete') {
      if (current === undefined) return { ok: false, code: 'key_not_found' };
      this.set(command.key, null);
      this.recordCount--;
      return { ok: true, modifyIndex: index };
    }
    if (current === undefined) this.recordCount++;
    this.set(command.key, {
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

  /** The whole snapshot at once (tests, tools); the host uses snapshotSlices(). */
  snapshot(): Uint8Array {
    const slices: Uint8Array[] = [];
    const source = this.snapshotSlices();
    for (let slice = source.next(); slice.done !== true; slice = source.next()) slices.push(slice.value);
    return concatBytes(slices);
  }

  /**
   * The state now, in slices of about a megabyte, while later entries keep being applied: the
   * layers there are freeze (writes go to a new one), the sessions are copied (at most
   * sessionsMax). When the last slice is taken and nothing replaced the image since, the
   * written segments become the image and the frozen layers go.
   */
  snapshotSlices(): SnapshotSlices {
    const image = this.image;
    const frozen = [...this.frozen, this.top];
    this.frozen = frozen;
    this.top = new Map<string, KvRecord | null>();
    const sessions: KvSnapshotSession[] = [...this.sessions].map(([id, session]) => ({ id, ...session }));
    const generation = this.generation;
    const sliceBytes = this.sliceBytes;
    const adopt = (segments: Segment[]): void => {
      if (this.generation !== generation || this.image !== image) return;
      this.image = segments;
      this.frozen = this.frozen.filter((layer) => !frozen.includes(layer));
    };
    function* slices(): Generator<Uint8Array, void> {
      yield sessionsSlice(sessions);
      const written: Segment[] = [];
      for (const segment of mergeImage(image, sortedChanges(frozen), sliceBytes)) {
        written.push(segment);
        yield segment.data;
      }
      adopt(written);
    }
    return slices();
  }

  /** Replaces the state with a snapshot's (`version` wrote it; 1 is migrated); empty data: no state. */
  restore(data: Uint8Array, version: number = kvModelVersion): void {
    assert(version >= 1 && version <= kvModelVersion, `kv: cannot restore a version ${version} snapshot`);
    let image: readonly Segment[] = emptyImage;
    const layer = new Map<string, KvRecord | null>();
    let sessions: readonly KvSnapshotSession[] = [];
    if (data.length > 0 && version === 1) {
      // Version 1: one msgpack map of every record and session. Loaded as changes over no image;
      // the next snapshot writes them as an image.
      const snapshot = decodeKvSnapshot(data);
      for (const { key, ...record } of snapshot.records) layer.set(key, record);
      sessions = snapshot.sessions;
    } else if (data.length > 0) {
      const body = readBody(data);
      image = body.image;
      sessions = list(body.sessions, 'kvsnap.sessions', Number.MAX_SAFE_INTEGER).map((item, k) =>
        decodeKvSession(item, `kvsnap.sessions[${k}]`),
      );
    }
    this.generation++;
    this.image = image;
    this.top = layer;
    this.frozen = [];
    this.recordCount = imageCount(image) + layer.size;
    this.sessions.clear();
    for (const { id, seq, lastIndex, outcome } of sessions)
      this.sessions.set(id, { seq, lastIndex, outcome: outcome as KvOutcome });
  }
}

/** The latest change of every key in `layers` (oldest first), ascending by key bytes. */
function sortedChanges(layers: readonly Map<string, KvRecord | null>[]): Change[] {
  const latest = new Map<string, KvRecord | null>();
  for (const layer of layers) for (const [key, record] of layer) latest.set(key, record);
  const changes = [...latest].map(([key, record]) => ({ key: utf8.encode(key), record }));
  return changes.sort((a, b) => compareBytes(a.key, b.key));
}
