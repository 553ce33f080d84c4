// The formatters of src/raft/describe.ts on the cases the golden transcripts do not reach:
// binary and long data, and the refusal outcomes of propose, reads and transfers.

import { describe, expect, it } from 'vitest';
import type { LogIndex, NodeId, Term } from '../../src/base/ids.ts';
import {
  describeConfState,
  describeData,
  describeEntry,
  describeMessage,
  describeProposeResult,
  describeReadResult,
  describeTransferResult,
} from '../../src/raft/describe.ts';

const n = (id: number) => id as NodeId;

describe('describe', () => {
  it('prints printable UTF-8 quoted and anything else as hex, truncating long data', () => {
    expect(describeData(new Uint8Array([0, 255]))).toBe('0x00ff');
    expect(describeData(new TextEncoder().encode('héllo "q"'))).toBe('"héllo \\"q\\""');
    expect(describeData(new TextEncoder().encode('x'.repeat(70)))).toBe(`"${'x'.repeat(64)}"...(70 bytes)`);
    expect(describeData(new Uint8Array(40))).toBe(`0x${'00'.repeat(32)}...(40 bytes)`);
  });

  it('prints entries, configurations and messages on one line', () => {
    const change = {
      changes: [
        { type: 'remove_node' as const, node: n(3) },
        { type: 'add_learner' as const, node: n(5) },
      ],
      transition: 'joint' as const,
    };
    expect(describeEntry({ kind: 'conf', term: 2 as Term, index: 7 as LogIndex, change })).toBe(
      '2/7 conf(r3 l5 joint)',
    );
    expect(
      describeConfState({
        voters: [n(1), n(2)],
        votersOutgoing: [n(1), n(2), n(3)],
        learners: [n(5)],
        learnersNext: [n(3)],
        autoLeave: true,
      }),
    ).toBe('voters=(1 2)&&(1 2 3) learners=(5) learners_next=(3) autoleave');
    expect(
      describeMessage({
        type: 'ReadIndexResponse',
        from: n(1),
        to: n(2),
        term: 3 as Term,
        requestId: 9,
        index: 0 as LogIndex,
      }),
    ).toBe('1->2 ReadIndexResponse term:3 req:9 index:0');
  });

  it('prints every refusal', () => {
    expect(describeProposeResult({ kind: 'entry_too_large', bytes: 10, bytesMax: 5 })).toBe(
      'entry_too_large bytes:10 max:5',
    );
    expect(describeProposeResult({ kind: 'conf_change_invalid', reason: 'no' })).toBe('conf_change_invalid: no');
    expect(describeProposeResult({ kind: 'not_leader', leaderHint: n(2) })).toBe('not_leader hint:2');
    expect(describeReadResult({ kind: 'read_queue_full', queued: 4, queuedMax: 4 })).toBe(
      'read_queue_full queued:4 max:4',
    );
    expect(describeReadResult({ kind: 'not_leader', leaderHint: n(0) })).toBe('not_leader hint:0');
    expect(describeTransferResult({ kind: 'already_leader' })).toBe('already_leader');
    expect(describeTransferResult({ kind: 'not_leader', leaderHint: n(1) })).toBe('not_leader hint:1');
    expect(describeTransferResult({ kind: 'invalid_target', reason: 'node 9 is not a voter' })).toBe(
      'invalid_target: node 9 is not a voter',
    );
    expect(describeTransferResult({ kind: 'in_progress', target: n(2) })).toBe('in_progress target:2');
  });
});
