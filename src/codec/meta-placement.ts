// Wire formats of the meta model's placement state (docs/placement.md): the moves in progress
// (each recorded before its first membership change, so a new meta leader resumes it), the last
// finished moves with their reasons, the placement settings, and the load failures (a node that
// failed to load a shard's version, which the planner does not choose for that shard again while
// that version is the one to load). Validators turn a decoded
// (msgpack) or parsed (JSON) value into these types, or throw a CodecError naming the bad field.
//
// Called by: src/codec/meta.ts (commands and snapshot), src/models/meta.ts.

import type { GroupId, NodeId } from '../base/ids.ts';
import { counter, fail, nodeId, oneOf, record } from './validate.ts';
import { utf8Length } from '../base/bytes.ts';
import { boundedText, errorTextBytesMax, nameOf, positiveNode, shardId } from './meta-databases.ts';

export const moveReasonBytesMax = 512;
/** Finished moves the model keeps (the oldest go first). */
export const moveHistoryMax = 64;
/** A grace period longer than this is refused (a week). */
export const nodeGoneGraceMsMax = 7 * 24 * 3600 * 1000;
export const movesPerNodeMaxLimit = 64;
/**
 * Bounds of `moveStalledMs`: below a few planning rounds (one a second) a move would be cancelled
 * before its first catch-up could show progress; above a day a stuck move blocks its group too long.
 */
export const moveStalledMsMin = 5000;
export const moveStalledMsMax = 24 * 3600 * 1000;
/** Load failures the model remembers (the oldest go first). */
export const loadFailuresMax = 1024;

export interface MoveRecord {
  readonly group: GroupId;
  /** 0 when the move adds no node. */
  readonly add: NodeId;
  /** 0 when the move removes no node. */
  readonly remove: NodeId;
  readonly reason: string;
  readonly startedMs: number;
}

export type MoveOutcome = 'finished' | 'cancelled';
export const moveOutcomes: readonly MoveOutcome[] = ['finished', 'cancelled'];

export interface FinishedMove extends MoveRecord {
  readonly outcome: MoveOutcome;
  /** Why it was cancelled (empty when finished). */
  readonly detail: string;
  readonly finishedMs: number;
}

/**
 * A node whose copy of a shard failed to load (the download controller recorded it `failed`)
 * when it left the shard's placement: the planner does not add it to the shard's group again
 * while `version` is the version a new copy must load (a reload's new version clears it).
 */
export interface LoadFailure {
  readonly database: string;
  readonly shard: string;
  readonly node: NodeId;
  readonly version: number;
  readonly error: string;
  /** When the failure was recorded (the download controller's clock). */
  readonly atMs: number;
}

export interface PlacementSettingsRecord {
  readonly nodeGoneGraceMs: number;
  readonly movesPerNodeMax: number;
  /**
   * Added after v0.11.0, whose settings validator refuses a field it does not know: a command
   * carrying it is written at meta command version 2 (src/codec/meta.ts), which such a node stops
   * on rather than skip the whole command.
   */
  readonly moveStalledMs: number;
}

const settingNames: readonly string[] = ['nodeGoneGraceMs', 'movesPerNodeMax', 'moveStalledMs'];

export type PlacementCommand =
  | { readonly type: 'placement.move.start'; readonly move: MoveRecord }
  | {
      readonly type: 'placement.move.finish';
      readonly group: GroupId;
      readonly outcome: MoveOutcome;
      readonly detail: string;
      readonly atMs: number;
    }
  | { readonly type: 'placement.settings'; readonly settings: Partial<PlacementSettingsRecord> };

export const placementCommandTypes = ['placement.move.start', 'placement.move.finish', 'placement.settings'] as const;

function reasonText(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  if (utf8Length(value) > moveReasonBytesMax) fail(path, `longer than ${moveReasonBytesMax} bytes`);
  return value;
}

export function moveRecord(value: unknown, path: string): MoveRecord {
  const raw = record(value, path);
  const move = {
    group: counter(raw['group'], `${path}.group`) as GroupId,
    add: nodeId(raw['add'], `${path}.add`),
    remove: nodeId(raw['remove'], `${path}.remove`),
    reason: reasonText(raw['reason'], `${path}.reason`),
    startedMs: counter(raw['startedMs'], `${path}.startedMs`),
  };
  if (move.add === 0 && move.remove === 0) fail(path, 'a move adds or removes a node');
  if (move.add === move.remove) fail(path, 'a move cannot add and remove the same node');
  return move;
}

export function finishedMove(value: unknown, path: string): FinishedMove {
  const raw = record(value, path);
  return {
    ...moveRecord(raw, path),
    outcome: oneOf(raw['outcome'], `${path}.outcome`, moveOutcomes),
    detail: reasonText(raw['detail'], `${path}.detail`),
    finishedMs: counter(raw['finishedMs'], `${path}.finishedMs`),
  };
}

export function loadFailure(value: unknown, path: string): LoadFailure {
  const raw = record(value, path);
  return {
    database: nameOf(raw['database'], `${path}.database`),
    shard: shardId(raw['shard'], `${path}.shard`),
    node: positiveNode(raw['node'], `${path}.node`),
    version: counter(raw['version'], `${path}.version`),
    error: boundedText(raw['error'], `${path}.error`, errorTextBytesMax),
    atMs: counter(raw['atMs'], `${path}.atMs`),
  };
}

/** Settings as a command carries them: each field optional, each within its bounds. */
export function settingsPatch(value: unknown, path: string): Partial<PlacementSettingsRecord> {
  const raw = record(value, path);
  for (const name of Object.keys(raw)) if (!settingNames.includes(name)) fail(`${path}.${name}`, 'unknown setting');
  const out: { -readonly [K in keyof PlacementSettingsRecord]?: number } = {};
  if (raw['nodeGoneGraceMs'] !== undefined) {
    const grace = counter(raw['nodeGoneGraceMs'], `${path}.nodeGoneGraceMs`);
    if (grace > nodeGoneGraceMsMax) fail(`${path}.nodeGoneGraceMs`, `at most ${nodeGoneGraceMsMax}`);
    out.nodeGoneGraceMs = grace;
  }
  if (raw['movesPerNodeMax'] !== undefined) {
    const moves = counter(raw['movesPerNodeMax'], `${path}.movesPerNodeMax`);
    if (moves < 1 || moves > movesPerNodeMaxLimit)
      fail(`${path}.movesPerNodeMax`, `expected 1..${movesPerNodeMaxLimit}`);
    out.movesPerNodeMax = moves;
  }
  if (raw['moveStalledMs'] !== undefined) {
    const stalled = counter(raw['moveStalledMs'], `${path}.moveStalledMs`);
    if (stalled < moveStalledMsMin || stalled > moveStalledMsMax)
      fail(`${path}.moveStalledMs`, `expected ${moveStalledMsMin}..${moveStalledMsMax}`);
    out.moveStalledMs = stalled;
  }
  return out;
}

export function placementCommand(
  type: (typeof placementCommandTypes)[number],
  raw: Record<string, unknown>,
  path: string,
): PlacementCommand {
  switch (type) {
    case 'placement.move.start':
      return { type, move: moveRecord(raw['move'], `${path}.move`) };
    case 'placement.move.finish':
      return {
        type,
        group: counter(raw['group'], `${path}.group`) as GroupId,
        outcome: oneOf(raw['outcome'], `${path}.outcome`, moveOutcomes),
        detail: reasonText(raw['detail'], `${path}.detail`),
        atMs: counter(raw['atMs'], `${path}.atMs`),
      };
    case 'placement.settings':
      return { type, settings: settingsPatch(raw['settings'], `${path}.settings`) };
  }
}
