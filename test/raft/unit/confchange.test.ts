// confchange.ts: single-step vs joint changes, learner promotion/demotion, leaving joint, rejected changes, enter+leave property.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../../src/base/ids.ts';
import {
  applyConfChange,
  confStateOf,
  emptyConfState,
  isJoint,
  members,
  type ConfChangeOutcome,
} from '../../../src/raft/confchange.ts';
import type { ConfChange, ConfChangeItem, ConfChangeType, ConfState } from '../../../src/raft/types.ts';
import { nid, nids } from './helpers.ts';

const item = (type: ConfChangeType, node: number): ConfChangeItem => ({ type, node: nid(node) });
const auto = (...changes: ConfChangeItem[]): ConfChange => ({ changes, transition: 'auto' });
const joint = (...changes: ConfChangeItem[]): ConfChange => ({ changes, transition: 'joint' });
const leave: ConfChange = { changes: [], transition: 'auto' };

function ok(outcome: ConfChangeOutcome): ConfState {
  if (!outcome.ok) throw new Error(`expected ok, got: ${outcome.reason}`);
  return outcome.confState;
}

function rejected(outcome: ConfChangeOutcome): string {
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.confState)}`);
  return outcome.reason;
}

describe('confStateOf / isJoint / members', () => {
  it('builds a sorted, non-joint config', () => {
    const cs = confStateOf(nids(3, 1, 2, 1), nids(5, 4));
    expect(cs).toEqual({ voters: [1, 2, 3], votersOutgoing: [], learners: [4, 5], learnersNext: [], autoLeave: false });
    expect(isJoint(cs)).toBe(false);
    expect(members(cs)).toEqual([1, 2, 3, 4, 5]);
  });

  it('members covers both voter halves, learners and learnersNext once each', () => {
    const cs: ConfState = {
      voters: nids(1, 2, 4),
      votersOutgoing: nids(1, 2, 3),
      learners: nids(6),
      learnersNext: nids(3),
      autoLeave: true,
    };
    expect(isJoint(cs)).toBe(true);
    expect(members(cs)).toEqual([1, 2, 3, 4, 6]);
    expect(members(emptyConfState)).toEqual([]);
  });
});

describe('applyConfChange: single step', () => {
  const base = confStateOf(nids(1, 2, 3));

  it('adds one voter in one step', () => {
    expect(ok(applyConfChange(base, auto(item('add_voter', 4))))).toEqual(confStateOf(nids(1, 2, 3, 4)));
  });

  it('removes one voter in one step', () => {
    expect(ok(applyConfChange(base, auto(item('remove_node', 2))))).toEqual(confStateOf(nids(1, 3)));
  });

  it('adds a learner in one step', () => {
    expect(ok(applyConfChange(base, auto(item('add_learner', 7))))).toEqual(confStateOf(nids(1, 2, 3), nids(7)));
  });

  it('promotes a learner to voter in one step', () => {
    const cs = ok(applyConfChange(confStateOf(nids(1, 2, 3), nids(4)), auto(item('add_voter', 4))));
    expect(cs).toEqual(confStateOf(nids(1, 2, 3, 4)));
  });

  it('demotes a voter to learner in one step (one voter changes)', () => {
    const cs = ok(applyConfChange(base, auto(item('add_learner', 3))));
    expect(cs).toEqual(confStateOf(nids(1, 2), nids(3)));
  });

  it('removes a learner in one step', () => {
    expect(ok(applyConfChange(confStateOf(nids(1), nids(2)), auto(item('remove_node', 2))))).toEqual(
      confStateOf(nids(1)),
    );
  });

  it('removing a node that is not a member is a no-op change', () => {
    expect(ok(applyConfChange(base, auto(item('remove_node', 9))))).toEqual(base);
  });

  it('several items that together change at most one voter still go in one step', () => {
    // confchange.ts: "single-step changes (at most one voter added or removed)".
    const cs = ok(applyConfChange(base, auto(item('add_learner', 5), item('add_learner', 6), item('add_voter', 4))));
    expect(cs).toEqual(confStateOf(nids(1, 2, 3, 4), nids(5, 6)));
    expect(isJoint(cs)).toBe(false);
  });

  it('does not modify its input', () => {
    const before = JSON.stringify(base);
    applyConfChange(base, auto(item('add_voter', 4), item('remove_node', 1)));
    expect(JSON.stringify(base)).toBe(before);
  });
});

describe('applyConfChange: joint', () => {
  const base = confStateOf(nids(1, 2, 3), nids(4));

  it('changing two voters enters a joint config with the old voters outgoing', () => {
    const cs = ok(applyConfChange(base, auto(item('add_voter', 5), item('remove_node', 1))));
    expect(cs).toEqual({
      voters: [2, 3, 5],
      votersOutgoing: [1, 2, 3],
      learners: [4],
      learnersNext: [],
      autoLeave: true,
    });
    expect(isJoint(cs)).toBe(true);
  });

  it("transition 'joint' goes through joint consensus even for one voter", () => {
    const cs = ok(applyConfChange(base, joint(item('add_voter', 5))));
    expect(cs).toEqual({
      voters: [1, 2, 3, 5],
      votersOutgoing: [1, 2, 3],
      learners: [4],
      learnersNext: [],
      autoLeave: true,
    });
  });

  it('promoting a learner inside a joint change makes it an incoming voter only', () => {
    const cs = ok(applyConfChange(base, joint(item('add_voter', 4), item('remove_node', 1))));
    expect(cs).toEqual({
      voters: [2, 3, 4],
      votersOutgoing: [1, 2, 3],
      learners: [],
      learnersNext: [],
      autoLeave: true,
    });
  });

  it('demoting an outgoing voter puts it in learnersNext, not learners', () => {
    const cs = ok(applyConfChange(base, joint(item('add_learner', 3), item('add_voter', 5))));
    expect(cs).toEqual({
      voters: [1, 2, 5],
      votersOutgoing: [1, 2, 3],
      learners: [4],
      learnersNext: [3],
      autoLeave: true,
    });
    expect(members(cs)).toEqual([1, 2, 3, 4, 5]);
    // After leaving, the demoted voter is a learner.
    expect(ok(applyConfChange(cs, leave))).toEqual(confStateOf(nids(1, 2, 5), nids(3, 4)));
  });

  it('leaving a joint config keeps the incoming voters and clears the outgoing half', () => {
    const entered = ok(applyConfChange(base, auto(item('add_voter', 5), item('add_voter', 6), item('remove_node', 1))));
    const left = ok(applyConfChange(entered, leave));
    expect(left).toEqual({
      voters: [2, 3, 5, 6],
      votersOutgoing: [],
      learners: [4],
      learnersNext: [],
      autoLeave: false,
    });
    expect(isJoint(left)).toBe(false);
  });

  it('an empty change list leaves joint whatever the transition says', () => {
    const entered = ok(applyConfChange(base, joint(item('add_voter', 5))));
    expect(ok(applyConfChange(entered, { changes: [], transition: 'joint' }))).toEqual(
      confStateOf(nids(1, 2, 3, 5), nids(4)),
    );
  });
});

describe('applyConfChange: rejected changes', () => {
  const base = confStateOf(nids(1, 2));

  it('refuses to remove every voter', () => {
    expect(rejected(applyConfChange(base, auto(item('remove_node', 1), item('remove_node', 2))))).toMatch(
      /every voter/,
    );
    expect(rejected(applyConfChange(confStateOf(nids(1)), auto(item('remove_node', 1))))).toMatch(/every voter/);
    expect(rejected(applyConfChange(confStateOf(nids(1)), auto(item('add_learner', 1))))).toMatch(/every voter/);
  });

  it('refuses to enter a joint config twice', () => {
    const entered = ok(applyConfChange(base, joint(item('add_voter', 3))));
    expect(rejected(applyConfChange(entered, auto(item('add_voter', 4))))).toMatch(/already in a joint/);
    expect(rejected(applyConfChange(entered, joint(item('add_learner', 4))))).toMatch(/already in a joint/);
  });

  it('refuses to leave when not joint', () => {
    expect(rejected(applyConfChange(base, leave))).toMatch(/not in a joint/);
  });

  it.each([0, -1, 1.5, Number.NaN, 2 ** 53])('refuses node id %s', (bad) => {
    expect(rejected(applyConfChange(base, auto(item('add_voter', bad))))).toMatch(/invalid node id/);
    expect(rejected(applyConfChange(base, auto(item('add_learner', 3), item('remove_node', bad))))).toMatch(
      /invalid node id/,
    );
  });
});

describe('applyConfChange: properties', () => {
  const idArb = fc.integer({ min: 1, max: 8 });
  const itemArb = fc.record({
    type: fc.constantFrom<ConfChangeType>('add_voter', 'add_learner', 'remove_node'),
    node: idArb.map(nid),
  });
  const startArb = fc
    .tuple(fc.uniqueArray(idArb, { minLength: 1, maxLength: 5 }), fc.uniqueArray(idArb, { maxLength: 4 }))
    .map(([voters, learners]) => confStateOf(nids(...voters), nids(...learners.filter((id) => !voters.includes(id)))));
  const changeArb = fc.record({
    changes: fc.array(itemArb, { minLength: 1, maxLength: 5 }),
    transition: fc.constantFrom<'auto' | 'joint'>('auto', 'joint'),
  });

  /** What the change asks for, applied item by item in order. */
  function requested(start: ConfState, change: ConfChange): { voters: NodeId[]; learners: NodeId[] } {
    const voters = new Set(start.voters);
    const learners = new Set(start.learners);
    for (const { type, node } of change.changes) {
      voters.delete(node);
      learners.delete(node);
      if (type === 'add_voter') voters.add(node);
      if (type === 'add_learner') learners.add(node);
    }
    const sort = (set: Set<NodeId>) => [...set].sort((a, b) => a - b);
    return { voters: sort(voters), learners: sort(learners) };
  }

  function checkValid(cs: ConfState): void {
    expect(cs.voters.length).toBeGreaterThan(0);
    for (const id of cs.learners) expect(cs.voters.includes(id) || cs.votersOutgoing.includes(id)).toBe(false);
    for (const id of cs.learnersNext) {
      expect(cs.votersOutgoing).toContain(id);
      expect(cs.voters).not.toContain(id);
    }
    if (!isJoint(cs)) expect(cs.learnersNext).toEqual([]);
  }

  it('after enter (+ leave if joint) the voters and learners are exactly what was requested', () => {
    fc.assert(
      fc.property(startArb, changeArb, (start, change) => {
        const want = requested(start, change);
        const outcome = applyConfChange(start, change);
        if (want.voters.length === 0) {
          expect(outcome.ok).toBe(false);
          return;
        }
        let cs = ok(outcome);
        checkValid(cs);
        const changedVoters =
          want.voters.filter((id) => !start.voters.includes(id)).length +
          start.voters.filter((id) => !want.voters.includes(id)).length;
        const expectJoint = change.transition === 'joint' || changedVoters > 1;
        expect(isJoint(cs)).toBe(expectJoint);
        if (expectJoint) {
          expect(cs.votersOutgoing).toEqual(start.voters);
          expect(cs.autoLeave).toBe(true);
          expect(rejected(applyConfChange(cs, change))).toMatch(/already in a joint/);
          cs = ok(applyConfChange(cs, leave));
          checkValid(cs);
        }
        expect(isJoint(cs)).toBe(false);
        expect(cs.voters).toEqual(want.voters);
        expect(cs.learners).toEqual(want.learners);
        expect(cs.learnersNext).toEqual([]);
        expect(cs.autoLeave).toBe(false);
        expect(rejected(applyConfChange(cs, leave))).toMatch(/not in a joint/);
      }),
      { numRuns: 500 },
    );
  });

  it('while joint, members() includes everyone of the old and the new config', () => {
    fc.assert(
      fc.property(startArb, changeArb, (start, change) => {
        const outcome = applyConfChange(start, { ...change, transition: 'joint' });
        if (!outcome.ok) return;
        const want = requested(start, change);
        const everyone = new Set([...start.voters, ...want.voters, ...want.learners]);
        expect(members(outcome.confState)).toEqual([...everyone].sort((a, b) => a - b));
      }),
      { numRuns: 500 },
    );
  });
});
