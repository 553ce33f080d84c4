// The removal watch on applied configurations: a node that was a member and is now in no hosted
// group's configuration is forgotten once, when its last group drops it; a node recorded but not
// yet in any configuration (a join under way) is not; this node's own removal is logged, as a
// warning once it is out of every group, and never forgotten.

import { describe, expect, it } from 'vitest';
import { asGroupId, asNodeId, type NodeId } from '../../src/base/ids.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { RemovalWatch } from '../../src/node/removal-watch.ts';

const [g1, g2] = [asGroupId(1), asGroupId(2)];
const ids = (...values: number[]): NodeId[] => values.map(asNodeId);

function watch(self: number, initial: readonly NodeId[]) {
  const forgotten: number[] = [];
  const logged: { level: string; message: string }[] = [];
  const removals = new RemovalWatch(
    {
      self: asNodeId(self),
      forget: (node) => forgotten.push(node),
      log: (level, message) => logged.push({ level, message }),
    },
    new Map([
      [g1, confStateOf(initial)],
      [g2, confStateOf(initial)],
    ]),
  );
  return { removals, forgotten, logged };
}

describe('removal watch', () => {
  it('forgets a node once its last group drops it, and not while it is still in another', () => {
    const { removals, forgotten } = watch(1, ids(1, 2, 3));
    removals.confApplied(g1, confStateOf(ids(1, 2)));
    expect(forgotten).toEqual([]);
    removals.confApplied(g2, confStateOf(ids(1, 2)));
    expect(forgotten).toEqual([3]);
    // Applied again (a replay): no edge, nothing more.
    removals.confApplied(g2, confStateOf(ids(1, 2)));
    expect(forgotten).toEqual([3]);
  });

  it('does not forget a node that is being added (recorded, then a learner) or one that never was a member', () => {
    const { removals, forgotten } = watch(1, ids(1, 2, 3));
    removals.confApplied(g1, confStateOf(ids(1, 2, 3), ids(4)));
    removals.confApplied(g1, confStateOf(ids(1, 2, 3, 4)));
    expect(forgotten).toEqual([]);
  });

  it('logs this node leaving a group, warns once it is out of every group, and never forgets itself', () => {
    const { removals, forgotten, logged } = watch(3, ids(1, 2, 3));
    expect(removals.removed()).toBe(false);
    removals.confApplied(g1, confStateOf(ids(1, 2)));
    expect(logged).toEqual([{ level: 'info', message: 'this node was removed from a group' }]);
    removals.confApplied(g2, confStateOf(ids(1, 2)));
    expect(logged[1]?.level).toBe('warn');
    expect(logged[1]?.message).toMatch(/removed from every group/);
    expect(forgotten).toEqual([]);
    expect(removals.removed()).toBe(true);
  });

  it('a joining node with empty configurations is not "removed"', () => {
    expect(watch(4, []).removals.removed()).toBe(false);
  });
});
