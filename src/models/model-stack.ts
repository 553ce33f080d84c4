// The stack around one group's model (src/models/model.ts): what makes every model's state a
// Raft snapshot and back, whether or not the model supports snapshots itself.
//
//  - `capture(timeframe)` is called between two entries, at exactly the applied index the
//    timeframe names, and returns the snapshot envelope (src/codec/snapshot.ts) in slices: the
//    model's own snapshot, or, for a model without one, its mutations since creation (an array
//    that only grows, so a prefix of it is a stable view). The caller drains the slices while
//    later entries are applied; a capture made stale by a restore ends at its next slice.
//  - `restore(data, timeframe)` verifies the envelope (checksum, format, model type and version,
//    and that its timeframe is the one the snapshot is stored under) and loads it: the model's
//    `restore(body, version)`, or a replay of the mutations into a fresh model. A snapshot that
//    fails any check throws SnapshotRefusedError naming the group and the index, and nothing of it
//    is loaded.
//
// Owned by the multi-Raft host, one per hosted group. Pure: the checksum function comes in.

import { assert } from '../base/assert.ts';
import type { LogIndex } from '../base/ids.ts';
import {
  decodeMutations,
  encodeMutations,
  openSnapshot,
  snapshotHead,
  snapshotTrailer,
  SnapshotFormatError,
  type Checksum,
  type GroupTimeframe,
  type Mutation,
  type OpenedSnapshot,
} from '../codec/snapshot.ts';
import type { Model, SnapshotSlices } from './model.ts';

/** Bytes of mutations per slice of a mutation-array snapshot. */
const mutationSliceBytes = 1 << 20;

/**
 * A snapshot that must not be loaded; the message names the group and the index. `unreadable`:
 * the snapshot is whole, but this model cannot read it (written by a newer version of it), so the
 * state can be rebuilt from the log instead where the log still holds it.
 */
export class SnapshotRefusedError extends Error {
  override readonly name = 'SnapshotRefusedError';
  readonly unreadable: boolean;
  /** What is wrong with the snapshot, without the group and index (the message has both). */
  readonly reason: string;

  constructor(message: string, unreadable = false, reason = message) {
    super(message);
    this.unreadable = unreadable;
    this.reason = reason;
  }
}

export class ModelStack<M extends Model = Model> {
  private current: M;
  private readonly create: (() => M) | undefined;
  private readonly checksum: Checksum;
  /** A model without snapshot support: every mutation since its creation (undefined otherwise). */
  private mutations: Mutation[] | undefined;
  private appliedAny = false;
  /** Raised by every restore: a capture taken before it is stale. */
  private generation = 0;

  /**
   * `create` makes a fresh model of the same kind: needed to restore a mutation-array snapshot
   * into a model that has applied entries already (a snapshot installed from the leader).
   */
  constructor(model: M, checksum: Checksum, create?: () => M) {
    assert(
      (model.snapshot === undefined) === (model.restore === undefined),
      `model ${model.type}: snapshot and restore come together, or neither`,
    );
    assert(Number.isSafeInteger(model.version) && model.version >= 1, `model ${model.type}: version must be >= 1`);
    this.current = model;
    this.create = create;
    this.checksum = checksum;
    this.mutations = model.snapshot === undefined ? [] : undefined;
  }

  get model(): M {
    return this.current;
  }

  applyEntry(index: LogIndex, data: Uint8Array): unknown {
    const result = this.current.applyEntry(index, data);
    this.appliedAny = true;
    if (this.mutations !== undefined) this.mutations.push({ index, data });
    return result;
  }

  /** The envelope of the state now (the timeframe's index must be the applied index), in slices. */
  capture(timeframe: readonly GroupTimeframe[]): SnapshotSlices {
    const model = this.current;
    const mutations = this.mutations;
    // Taken now, between entries; only the drain is deferred.
    const body =
      mutations !== undefined
        ? undefined
        : model.snapshotSlices !== undefined
          ? model.snapshotSlices()
          : model.snapshot?.();
    const count = mutations?.length ?? 0;
    const head = snapshotHead({
      timeframe,
      model: { type: model.type, version: model.version, body: mutations === undefined ? 'model' : 'mutations' },
    });
    const generation = this.generation;
    const isStale = (): boolean => generation !== this.generation;
    const checksum = this.checksum;
    const parts: Iterator<Uint8Array, void> =
      mutations !== undefined
        ? mutationSlices(mutations, count)
        : body instanceof Uint8Array || body === undefined
          ? [body ?? new Uint8Array(0)][Symbol.iterator]()
          : body;
    function* slices(): Generator<Uint8Array, void> {
      let crc = checksum(head, 0);
      yield head;
      for (let part = parts.next(); part.done !== true; part = parts.next()) {
        if (isStale()) {
          parts.return?.();
          return;
        }
        crc = checksum(part.value, crc);
        yield part.value;
      }
      yield snapshotTrailer(crc);
    }
    return slices();
  }

  /** Raised by every restore: a capture whose generation differs ended early and must not be stored. */
  get restoreGeneration(): number {
    return this.generation;
  }

  /**
   * Replaces the model's state with a stored or received snapshot stored under `frame`; empty data
   * (no snapshot yet) leaves a fresh model. Throws SnapshotRefusedError before changing anything
   * when the bytes fail a check.
   */
  restore(data: Uint8Array, frame: GroupTimeframe): void {
    const where = `group ${frame.group}: the snapshot at index ${frame.index}`;
    this.generation++;
    if (data.length === 0) {
      if (this.appliedAny) this.reset(where);
      return;
    }
    const opened = this.check(data, frame);
    if (opened.format === 0) {
      // Written before the envelope existed: the model's bare bytes, version 1.
      this.restoreModel(where, opened.body, 1);
      return;
    }
    const { header, body } = opened;
    const model = this.current;
    if (header.model.body === 'model') {
      this.restoreModel(where, body, header.model.version);
      return;
    }
    let mutations: Mutation[];
    try {
      mutations = decodeMutations(body);
    } catch (error) {
      if (error instanceof SnapshotFormatError) throw new SnapshotRefusedError(`${where} is refused: ${error.message}`);
      throw error;
    }
    if (this.current.snapshot !== undefined)
      throw new SnapshotRefusedError(
        `${where} is refused: it holds mutations, but the ${model.type} model restores its own`,
      );
    this.reset(where);
    // Replayed through the stack, so they are recorded again for the next snapshot.
    for (const mutation of mutations) this.applyEntry(mutation.index, mutation.data.slice());
  }

  /**
   * Every check restore() makes before loading anything (checksum, format, timeframe, model type
   * and version): throws SnapshotRefusedError naming the group and index, or returns the opened
   * envelope. Also how a follower checks a snapshot from its leader before installing it.
   */
  check(data: Uint8Array, frame: GroupTimeframe): OpenedSnapshot {
    const where = `group ${frame.group}: the snapshot at index ${frame.index}`;
    const refused = (reason: string, unreadable = false): SnapshotRefusedError =>
      new SnapshotRefusedError(`${where} is refused: ${reason}`, unreadable, reason);
    let opened;
    try {
      opened = openSnapshot(data, this.checksum);
    } catch (error) {
      if (error instanceof SnapshotFormatError) throw refused(error.message);
      throw error;
    }
    if (opened.format === 0) return opened;
    const { header } = opened;
    const own = header.timeframe.find((item) => item.group === frame.group);
    if (own?.index !== frame.index || own.term !== frame.term)
      throw refused(
        `it says it includes ${own === undefined ? 'nothing of the group' : `index ${own.index} term ${own.term}`}, but is stored as index ${frame.index} term ${frame.term}`,
      );
    const model = this.current;
    if (header.model.type !== model.type) throw refused(`it holds a ${header.model.type} model, not ${model.type}`);
    if (header.model.version > model.version)
      throw refused(
        `written by version ${header.model.version} of the ${model.type} model, this one is version ${model.version}`,
        true,
      );
    return opened;
  }

  private restoreModel(where: string, body: Uint8Array, version: number): void {
    if (this.current.restore === undefined)
      throw new SnapshotRefusedError(
        `${where} is refused: it holds model bytes, but the ${this.current.type} model keeps mutations`,
      );
    this.current.restore(body, version);
    this.appliedAny = true;
  }

  /** A fresh model: the model's own restore of nothing, or a new one from `create`. */
  private reset(where: string): void {
    if (this.mutations === undefined) {
      this.current.restore?.(new Uint8Array(0), this.current.version);
    } else if (this.appliedAny) {
      if (this.create === undefined)
        throw new SnapshotRefusedError(`${where} cannot be loaded: the model has state and no way to start afresh`);
      this.current = this.create();
      this.mutations = [];
    }
    this.appliedAny = false;
  }
}

/** The first `count` mutations in slices of about mutationSliceBytes (the array only grows). */
function* mutationSlices(mutations: readonly Mutation[], count: number): Generator<Uint8Array, void> {
  let from = 0;
  while (from < count) {
    let to = from;
    let bytes = 0;
    while (to < count && (to === from || bytes < mutationSliceBytes)) bytes += mutations[to++]?.data.length ?? 0;
    yield encodeMutations(mutations.slice(from, to));
    from = to;
  }
}
