// The meta model's placement state (src/models/meta.ts, src/codec/meta-placement.ts): one move per
// group, finished moves kept as history, settings merged (moveStalledMs at command version 2), group
// records never going back to an older configuration, and all of it through a snapshot.

import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import { decodeMetaCommand, encodeMetaCommand, type MetaCommand } from '../../src/codec/meta.ts';
import { moveHistoryMax, moveStalledMsMax, moveStalledMsMin } from '../../src/codec/meta-placement.ts';
import { decode } from '../../src/codec/msgpack.ts';
import { MetaModel } from '../../src/models/meta.ts';

const g = (id: number): GroupId => id as GroupId;
const n = (id: number): NodeId => id as NodeId;
const move = (group: number, add: number, remove: number) => ({
  group: g(group),
  add: n(add),
  remove: n(remove),
  reason: `move ${group}`,
  startedMs: 100,
});

function apply(model: MetaModel, command: MetaCommand) {
  // Through the codec, as a replica applies it.
  return model.applyEntry(1 as never, encodeMetaCommand(command));
}

describe('meta model placement', () => {
  it('records one move per group and finishes it into the history, newest last', () => {
    const model = new MetaModel();
    expect(apply(model, { type: 'placement.move.start', move: move(1, 4, 3) })).toEqual({ ok: true });
    expect(apply(model, { type: 'placement.move.start', move: move(1, 5, 2) })).toMatchObject({
      ok: false,
      code: 'move_in_progress',
    });
    expect(model.moves()).toEqual([move(1, 4, 3)]);
    const finish: MetaCommand = {
      type: 'placement.move.finish',
      group: g(1),
      outcome: 'finished',
      detail: '',
      atMs: 900,
    };
    expect(apply(model, finish)).toEqual({ ok: true });
    expect(apply(model, finish)).toEqual({ ok: false, code: 'no_move' });
    expect(model.moves()).toEqual([]);
    expect(model.moveHistory()).toEqual([{ ...move(1, 4, 3), outcome: 'finished', detail: '', finishedMs: 900 }]);
  });

  it('keeps at most moveHistoryMax finished moves', () => {
    const model = new MetaModel();
    for (let k = 0; k < moveHistoryMax + 5; k++) {
      apply(model, { type: 'placement.move.start', move: { ...move(1, 4, 3), startedMs: k } });
      apply(model, { type: 'placement.move.finish', group: g(1), outcome: 'cancelled', detail: 'x', atMs: k });
    }
    expect(model.moveHistory()).toHaveLength(moveHistoryMax);
    expect(model.moveHistory()[0]?.startedMs).toBe(5);
  });

  it('merges settings and refuses ones out of bounds or unknown', () => {
    const model = new MetaModel();
    apply(model, { type: 'placement.settings', settings: { nodeGoneGraceMs: 2000 } });
    apply(model, { type: 'placement.settings', settings: { movesPerNodeMax: 3 } });
    expect(model.placementSettings()).toEqual({ nodeGoneGraceMs: 2000, movesPerNodeMax: 3 });
    const bad = (settings: unknown) => () =>
      decodeMetaCommand(encodeMetaCommand({ type: 'placement.settings', settings } as MetaCommand));
    expect(bad({ movesPerNodeMax: 0 })).toThrow(/movesPerNodeMax/);
    expect(bad({ grace: 1 })).toThrow(/unknown setting/);
    for (const moveStalledMs of [moveStalledMsMin - 1, moveStalledMsMax + 1, 7000.5, -7000, '7000', null])
      expect(bad({ moveStalledMs }), String(moveStalledMs)).toThrow(/moveStalledMs/);
    expect(() => decodeMetaCommand(encodeMetaCommand({ type: 'placement.move.start', move: move(1, 0, 0) }))).toThrow(
      /adds or removes/,
    );
  });

  it('records moveStalledMs within its bounds; a command carrying it is command version 2, one without it version 1', () => {
    const model = new MetaModel();
    apply(model, { type: 'placement.settings', settings: { nodeGoneGraceMs: 2000 } });
    for (const moveStalledMs of [moveStalledMsMin, 12_000, moveStalledMsMax]) {
      const command: MetaCommand = { type: 'placement.settings', settings: { moveStalledMs } };
      const bytes = encodeMetaCommand(command);
      expect(decode(bytes)).toMatchObject({ v: 2 });
      expect(decodeMetaCommand(bytes)).toEqual(command);
      expect(apply(model, command)).toEqual({ ok: true });
      expect(model.placementSettings()).toEqual({ nodeGoneGraceMs: 2000, moveStalledMs });
    }
    // Without it, a settings command is written as before (an older dram reads it).
    const older: MetaCommand = { type: 'placement.settings', settings: { nodeGoneGraceMs: 1, movesPerNodeMax: 4 } };
    expect(decode(encodeMetaCommand(older))).toMatchObject({ v: 1 });
    expect(decodeMetaCommand(encodeMetaCommand(older))).toEqual(older);
    const copy = new MetaModel();
    copy.restore(model.snapshot());
    expect(copy.placementSettings()).toEqual({ nodeGoneGraceMs: 2000, moveStalledMs: moveStalledMsMax });
  });

  it('ignores a group record from an older configuration than the one recorded', () => {
    const model = new MetaModel();
    apply(model, { type: 'group.set', group: { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(4)], confIndex: 9 } });
    apply(model, { type: 'group.set', group: { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(3)], confIndex: 5 } });
    expect(model.groups()).toEqual([{ id: 1, kind: 'kv', replicas: [1, 2, 4] }]);
    expect(model.groupConfIndex(g(1))).toBe(9);
  });

  it('restores moves, history, settings and configuration indexes from a snapshot', () => {
    const model = new MetaModel();
    apply(model, { type: 'group.set', group: { id: g(1), kind: 'kv', replicas: [n(1), n(2), n(3)], confIndex: 7 } });
    apply(model, { type: 'placement.move.start', move: move(2, 4, 3) });
    apply(model, { type: 'placement.move.start', move: move(1, 5, 1) });
    apply(model, { type: 'placement.move.finish', group: g(1), outcome: 'finished', detail: '', atMs: 5 });
    apply(model, { type: 'placement.settings', settings: { nodeGoneGraceMs: 1 } });
    const copy = new MetaModel();
    copy.restore(model.snapshot());
    expect(copy.moves()).toEqual(model.moves());
    expect(copy.moveHistory()).toEqual(model.moveHistory());
    expect(copy.placementSettings()).toEqual({ nodeGoneGraceMs: 1 });
    expect(copy.groupConfIndex(g(1))).toBe(7);
  });
});
