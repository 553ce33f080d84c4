// A node's own exactly-once session per group (src/api/kv-outcomes.ts, NodeSession): the model
// opens a session only with seq 1, so the first write goes alone, a definite failure gives seq 1
// again, an unknown outcome or a forgotten session a new client id.

import { describe, expect, it } from 'vitest';
import { NodeSession } from '../../src/api/kv-outcomes.ts';
import { asGroupId, asNodeId } from '../../src/base/ids.ts';

const group = asGroupId(1);

describe('NodeSession', () => {
  it('lets the opening write go alone, then numbers the writes from 2', async () => {
    const session = new NodeSession(asNodeId(3));
    const first = await session.stamp(group);
    expect(first.client.seq).toBe(1);
    let secondDone = false;
    const second = session.stamp(group).then((stamp) => {
      secondDone = true;
      return stamp;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondDone).toBe(false); // waits for the opener's outcome
    first.settle('not_applied');
    const retry = await second;
    expect(retry.client).toEqual({ id: first.client.id, seq: 1 }); // not applied: seq 1 again
    retry.settle('applied');
    const third = await session.stamp(group);
    const fourth = await session.stamp(group);
    expect([third.client.seq, fourth.client.seq]).toEqual([2, 3]);
    expect(third.client.id).toBe(first.client.id);
    // Another group has its own session.
    expect((await session.stamp(asGroupId(2))).client.seq).toBe(1);
  });

  it('opens a new session after an unknown opening and after the model forgot the session', async () => {
    const session = new NodeSession(asNodeId(3));
    const first = await session.stamp(group);
    first.settle('unknown');
    const second = await session.stamp(group);
    expect(second.client.seq).toBe(1);
    expect(second.client.id).not.toBe(first.client.id);
    second.settle('applied');
    const third = await session.stamp(group);
    third.settle('session_expired');
    const fourth = await session.stamp(group);
    expect(fourth.client.seq).toBe(1);
    expect(fourth.client.id).not.toBe(second.client.id);
  });
});
