// quorum.ts: majorityValue / jointValue / majorityVote / jointVote against brute-force references, plus fixed cases.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../../src/base/ids.ts';
import {
  allVoters,
  isVoter,
  jointValue,
  jointVote,
  majorityValue,
  majorityVote,
  type VoteOutcome,
} from '../../../src/raft/quorum.ts';
import { nid, nids } from './helpers.ts';

/** Brute force: the largest v (among 0 and the values) such that more than half the voters have value >= v. */
function refMajorityValue(voters: readonly NodeId[], valueOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const values = voters.map(valueOf);
  let best = 0;
  for (const candidate of [0, ...values]) {
    const reached = values.filter((value) => value >= candidate).length;
    if (reached * 2 > voters.length && candidate > best) best = candidate;
  }
  return best;
}

/** Brute force over every way the missing votes could go. */
function refMajorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  if (voters.length === 0) return 'won';
  const granted = voters.filter((id) => votes.get(id) === true).length;
  const missing = voters.filter((id) => !votes.has(id)).length;
  const wins = (yes: number): boolean => yes * 2 > voters.length;
  if (wins(granted)) return 'won';
  if (wins(granted + missing)) return 'pending';
  return 'lost';
}

/** A set of distinct voter ids drawn from 1..9 (0 to 7 of them). */
const votersArb = fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 7 }).map((ids) => ids.map(nid));
const valuesArb = fc.array(fc.nat({ max: 20 }), { minLength: 10, maxLength: 10 });
const votesArb = fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), {
  minLength: 10,
  maxLength: 10,
});

function votesMap(choices: readonly (boolean | undefined)[]): Map<NodeId, boolean> {
  const votes = new Map<NodeId, boolean>();
  choices.forEach((choice, id) => {
    if (choice !== undefined) votes.set(nid(id), choice);
  });
  return votes;
}

describe('majorityValue', () => {
  const table =
    (values: Record<number, number>) =>
    (id: NodeId): number =>
      values[id] ?? 0;

  it('returns the value a majority has reached', () => {
    expect(majorityValue(nids(1), table({ 1: 7 }))).toBe(7);
    expect(majorityValue(nids(1, 2, 3), table({ 1: 5, 2: 3, 3: 9 }))).toBe(5);
    expect(majorityValue(nids(1, 2, 3), table({ 1: 5 }))).toBe(0);
    expect(majorityValue(nids(1, 2, 3), table({ 1: 5, 2: 4 }))).toBe(4);
    // Four voters need three: the third largest.
    expect(majorityValue(nids(1, 2, 3, 4), table({ 1: 10, 2: 8, 3: 6, 4: 4 }))).toBe(6);
    expect(majorityValue(nids(1, 2, 3, 4, 5), table({ 1: 10, 2: 8, 3: 6, 4: 4, 5: 2 }))).toBe(6);
  });

  it('is +Infinity for an empty voter set', () => {
    expect(majorityValue([], () => 3)).toBe(Infinity);
  });

  it('does not depend on the order of voters', () => {
    const valueOf = (id: NodeId): number => (id * 3) % 7;
    expect(majorityValue(nids(1, 2, 3, 4, 5), valueOf)).toBe(majorityValue(nids(5, 3, 1, 4, 2), valueOf));
  });

  it('matches the brute-force reference', () => {
    fc.assert(
      fc.property(votersArb, valuesArb, (voters, values) => {
        const valueOf = (id: NodeId): number => values[id] ?? 0;
        expect(majorityValue(voters, valueOf)).toBe(refMajorityValue(voters, valueOf));
      }),
      { numRuns: 500 },
    );
  });
});

describe('jointValue', () => {
  it('is the minimum of both halves', () => {
    const values = [0, 9, 8, 7, 2, 1];
    const valueOf = (id: NodeId): number => values[id] ?? 0;
    // incoming {1,2,3} -> 8; outgoing {3,4,5} -> 2
    expect(jointValue({ incoming: nids(1, 2, 3), outgoing: nids(3, 4, 5) }, valueOf)).toBe(2);
    expect(jointValue({ incoming: nids(3, 4, 5), outgoing: nids(1, 2, 3) }, valueOf)).toBe(2);
  });

  it('an empty outgoing half never holds the incoming half back', () => {
    const valueOf = (id: NodeId): number => id * 10;
    expect(jointValue({ incoming: nids(1, 2, 3), outgoing: [] }, valueOf)).toBe(20);
  });

  it('matches min(reference(incoming), reference(outgoing))', () => {
    fc.assert(
      fc.property(votersArb, votersArb, valuesArb, (incoming, outgoing, values) => {
        const valueOf = (id: NodeId): number => values[id] ?? 0;
        const expected = Math.min(refMajorityValue(incoming, valueOf), refMajorityValue(outgoing, valueOf));
        expect(jointValue({ incoming, outgoing }, valueOf)).toBe(expected);
        if (outgoing.length === 0)
          expect(jointValue({ incoming, outgoing }, valueOf)).toBe(majorityValue(incoming, valueOf));
      }),
      { numRuns: 500 },
    );
  });
});

describe('majorityVote', () => {
  it('decides as soon as the outcome is certain', () => {
    const votes = (entries: [number, boolean][]) => new Map(entries.map(([id, vote]) => [nid(id), vote]));
    expect(majorityVote(nids(1, 2, 3), votes([]))).toBe('pending');
    expect(majorityVote(nids(1, 2, 3), votes([[1, true]]))).toBe('pending');
    expect(
      majorityVote(
        nids(1, 2, 3),
        votes([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe('won');
    expect(
      majorityVote(
        nids(1, 2, 3),
        votes([
          [1, false],
          [2, false],
        ]),
      ),
    ).toBe('lost');
    expect(
      majorityVote(
        nids(1, 2, 3),
        votes([
          [1, true],
          [2, false],
        ]),
      ),
    ).toBe('pending');
    // Four voters: two yes is not enough, two no already loses.
    expect(
      majorityVote(
        nids(1, 2, 3, 4),
        votes([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe('pending');
    expect(
      majorityVote(
        nids(1, 2, 3, 4),
        votes([
          [1, false],
          [2, false],
        ]),
      ),
    ).toBe('lost');
    expect(
      majorityVote(
        nids(1, 2, 3, 4),
        votes([
          [1, true],
          [2, true],
          [3, true],
        ]),
      ),
    ).toBe('won');
    // Votes from non-voters do not count.
    expect(
      majorityVote(
        nids(1, 2, 3),
        votes([
          [4, true],
          [5, true],
          [1, true],
        ]),
      ),
    ).toBe('pending');
    expect(majorityVote([], votes([]))).toBe('won');
  });

  it('matches the brute-force reference', () => {
    fc.assert(
      fc.property(votersArb, votesArb, (voters, choices) => {
        const votes = votesMap(choices);
        expect(majorityVote(voters, votes)).toBe(refMajorityVote(voters, votes));
      }),
      { numRuns: 500 },
    );
  });
});

describe('jointVote', () => {
  it('needs both halves to win and loses if either loses', () => {
    const votes = new Map([
      [nid(1), true],
      [nid(2), true],
      [nid(4), false],
      [nid(5), false],
    ]);
    expect(jointVote({ incoming: nids(1, 2, 3), outgoing: nids(1, 2, 6) }, votes)).toBe('won');
    expect(jointVote({ incoming: nids(1, 2, 3), outgoing: nids(3, 4, 5) }, votes)).toBe('lost');
    expect(jointVote({ incoming: nids(1, 2, 3), outgoing: nids(3, 6, 7) }, votes)).toBe('pending');
    expect(jointVote({ incoming: nids(1, 2, 3), outgoing: [] }, votes)).toBe('won');
  });

  it('matches the combination of the reference on each half', () => {
    fc.assert(
      fc.property(votersArb, votersArb, votesArb, (incoming, outgoing, choices) => {
        const votes = votesMap(choices);
        const a = refMajorityVote(incoming, votes);
        const b = refMajorityVote(outgoing, votes);
        const expected: VoteOutcome =
          a === 'lost' || b === 'lost' ? 'lost' : a === 'won' && b === 'won' ? 'won' : 'pending';
        expect(jointVote({ incoming, outgoing }, votes)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe('isVoter / allVoters', () => {
  it('covers both halves, deduplicated and sorted', () => {
    const sets = { incoming: nids(3, 1), outgoing: nids(2, 3) };
    expect(allVoters(sets)).toEqual([1, 2, 3]);
    expect(isVoter(sets, nid(2))).toBe(true);
    expect(isVoter(sets, nid(1))).toBe(true);
    expect(isVoter(sets, nid(4))).toBe(false);
  });
});
