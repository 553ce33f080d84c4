// When a placement move last made progress (src/control/placement-progress.ts): what counts as
// progress (a leader or configuration change, a learner not caught up yet catching up further) and
// what does not (a caught-up learner's match following the writes, the same report again).

import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import type { PlacementMove } from '../../src/control/placement-planner.ts';
import { trackMoveProgress, type MoveProgress } from '../../src/control/placement-progress.ts';
import type { GroupReport } from '../../src/control/placement-view.ts';

const n = (id: number): NodeId => id as NodeId;
const g = (id: number): GroupId => id as GroupId;

const move: PlacementMove = { group: g(1), add: n(4), remove: n(3), reason: 'test', startedMs: 1000 };

function report(learnerMatch: number, confIndex = 7, leader = 1): GroupReport {
  return {
    group: g(1),
    role: 'leader',
    term: 2,
    leader: n(leader),
    commit: 500,
    applied: 500,
    confIndex,
    voters: [1, 2, 3].map(n),
    learners: [n(4)],
    votersOutgoing: [],
    learnersNext: [],
    progress: [
      { id: n(1), match: 500 },
      { id: n(4), match: learnerMatch },
    ],
  };
}

/** Rounds at the given times with the given reports; the progressMs the planner gets after each. */
function rounds(steps: readonly { atMs: number; report?: GroupReport; caughtUp?: boolean; move?: PlacementMove }[]) {
  let entries: ReadonlyMap<GroupId, MoveProgress> = new Map();
  return steps.map(({ atMs, report: led, caughtUp = false, move: which = move }) => {
    const leaders = new Map(led === undefined ? [] : [[g(1), led]]);
    const out = trackMoveProgress(entries, [which], leaders, () => (caughtUp ? [n(4)] : []), atMs);
    entries = out.entries;
    return out.moves[0]?.progressMs;
  });
}

describe('trackMoveProgress', () => {
  it('starts at the first round that sees the move, and stays while nothing changes', () => {
    expect(
      rounds([
        { atMs: 5000, report: report(10) },
        { atMs: 9000, report: report(10) },
      ]),
    ).toEqual([5000, 5000]);
  });

  it('counts a learner catching up further, a configuration change and a leader change', () => {
    const seen = rounds([
      { atMs: 2000, report: report(10) },
      { atMs: 3000, report: report(90) },
      { atMs: 4000, report: report(90, 8) },
      { atMs: 5000, report: report(90, 8, 2) },
      { atMs: 6000 },
      { atMs: 7000, report: report(90, 8, 2) },
    ]);
    expect(seen).toEqual([2000, 3000, 4000, 5000, 6000, 7000]);
  });

  it("does not count a caught-up learner's match following the writes", () => {
    const seen = rounds([
      { atMs: 2000, report: report(480), caughtUp: true },
      { atMs: 3000, report: report(490), caughtUp: true },
      { atMs: 4000, report: report(499), caughtUp: true },
    ]);
    expect(seen).toEqual([2000, 2000, 2000]);
  });

  it('starts afresh for a new move of the group', () => {
    const next: PlacementMove = { ...move, add: n(5), startedMs: 2500 };
    expect(
      rounds([
        { atMs: 2000, report: report(10) },
        { atMs: 3000, report: report(10), move: next },
      ]),
    ).toEqual([2000, 3000]);
  });
});
