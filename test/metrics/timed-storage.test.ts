// The timing wrapper the node puts around its store passes every HostStorage member through
// unchanged: it once listed the members by hand and dropped compact's `replace` argument and
// snapshotDamage, so in production a damaged stored snapshot was never replaced.

import { describe, expect, it } from 'vitest';
import type { GroupId, LogIndex } from '../../src/base/ids.ts';
import { timedHostStorage } from '../../src/metrics/timed-storage.ts';
import { MemoryHostStorage } from '../support/memory-host.ts';
import type { HostStorage } from '../../src/multiraft/ports.ts';

const group = 3 as GroupId;

/** A MemoryHostStorage that records the arguments of the members the wrapper must pass through. */
class RecordingStorage extends MemoryHostStorage {
  readonly calls: unknown[][] = [];
  override compact(...args: Parameters<HostStorage['compact']>): Promise<void> {
    this.calls.push(['compact', ...args]);
    return Promise.resolve();
  }
  snapshotDamage(id: GroupId): string | undefined {
    this.calls.push(['snapshotDamage', id]);
    return 'checksum mismatch';
  }
}

describe('timedHostStorage', () => {
  it("passes compact's replace flag and snapshotDamage through, and times writes", async () => {
    const inner = new RecordingStorage();
    const observed: [number, boolean][] = [];
    const storage = timedHostStorage(inner, { observeStorageWrite: (seconds, sync) => observed.push([seconds, sync]) });
    const conf = { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
    await storage.compact(group, 5 as LogIndex, conf, new Uint8Array([1]), 4 as LogIndex, true);
    expect(inner.calls[0]).toEqual(['compact', group, 5, conf, new Uint8Array([1]), 4, true]);
    expect(storage.snapshotDamage?.(group)).toBe('checksum mismatch');
    expect(inner.calls[1]).toEqual(['snapshotDamage', group]);
    await storage.write([], { sync: true });
    expect(observed).toHaveLength(1);
    expect(observed[0]?.[1]).toBe(true);
    expect(storage.group(group)).toBe(inner.group(group));
  });

  it('leaves an optional member absent when the wrapped store has none', () => {
    const bare: HostStorage = {
      group: (id) => new MemoryHostStorage().group(id),
      write: () => Promise.resolve(),
      compact: () => Promise.resolve(),
    };
    const storage = timedHostStorage(bare, { observeStorageWrite: () => undefined });
    expect('stageSnapshot' in storage).toBe(false);
    expect(storage.snapshotDamage?.(group)).toBeUndefined();
    expect(typeof Reflect.get(storage, 'deleteGroup')).toBe('undefined');
    expect(typeof Reflect.get(storage, 'stageSnapshot')).toBe('undefined');
  });
});
