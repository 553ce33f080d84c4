// What a meta replica of the previous release (the newest in releases.json, its tree extracted by
// test/support/previous-release.ts) makes of the placement settings this checkout writes, during a
// rolling upgrade (docs/deploy.md, "Upgrading"): a settings command or snapshot without
// `moveStalledMs` reads as it always did; one with it stops the old replica (a command of a newer
// command version; a snapshot it refuses to read) instead of being skipped or half-read. Without
// the command version, the old replica would have skipped the whole command as malformed.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogIndex } from '../../src/base/ids.ts';
import { encodeMetaCommand, type MetaCommand } from '../../src/codec/meta.ts';
import { encode } from '../../src/codec/msgpack.ts';
import { MetaModel } from '../../src/models/meta.ts';
import { extractPreviousRelease, type ExtractedRelease } from '../support/previous-release.ts';

/** The part of the previous release's meta model used here. */
interface OldMetaModel {
  applyEntry(index: LogIndex, data: Uint8Array): unknown;
  restore(data: Uint8Array): void;
  placementSettings(): unknown;
}

let release: ExtractedRelease;
let OldModel: new () => OldMetaModel;

beforeAll(async () => {
  release = extractPreviousRelease();
  const module = (await import(join(release.root, 'src', 'models', 'meta.ts'))) as {
    MetaModel: new () => OldMetaModel;
  };
  OldModel = module.MetaModel;
}, 60_000);

afterAll(() => {
  release.remove();
});

const index = 1 as LogIndex;

describe('placement settings read by a replica of the previous release', () => {
  it('reads a settings command without moveStalledMs as before', () => {
    const old = new OldModel();
    const command: MetaCommand = {
      type: 'placement.settings',
      settings: { nodeGoneGraceMs: 2000, movesPerNodeMax: 3 },
    };
    expect(old.applyEntry(index, encodeMetaCommand(command))).toEqual({ ok: true });
    expect(old.placementSettings()).toEqual({ nodeGoneGraceMs: 2000, movesPerNodeMax: 3 });
  });

  it('stops on a settings command with moveStalledMs (a newer command version), rather than skip it', () => {
    const command: MetaCommand = {
      type: 'placement.settings',
      settings: { nodeGoneGraceMs: 2000, moveStalledMs: 9000 },
    };
    expect(() => new OldModel().applyEntry(index, encodeMetaCommand(command))).toThrow(
      /command version 2.*upgrade this node/u,
    );
    // Written at version 1 it would be skipped whole (nodeGoneGraceMs too): a silent divergence.
    const old = new OldModel();
    expect(old.applyEntry(index, encode({ v: 1, ...command }))).toMatchObject({ ok: false, code: 'malformed' });
    expect(old.placementSettings()).toEqual({});
  });

  it('reads a snapshot without moveStalledMs, and refuses one with it', () => {
    const model = new MetaModel();
    model.apply({ type: 'placement.settings', settings: { nodeGoneGraceMs: 2000 } });
    const old = new OldModel();
    old.restore(model.snapshot());
    expect(old.placementSettings()).toEqual({ nodeGoneGraceMs: 2000 });
    model.apply({ type: 'placement.settings', settings: { moveStalledMs: 9000 } });
    expect(() => {
      new OldModel().restore(model.snapshot());
    }).toThrow(/moveStalledMs: unknown setting/u);
  });
});
