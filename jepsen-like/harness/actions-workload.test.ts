// The actions workload's client side against a scripted node: how a schedule's answers (and lost
// answers) become ok / fail / info, that retries reuse the id, and how a read becomes a snapshot.

import { describe, expect, it } from 'vitest';
import { actionsWorkload } from './actions-workload.ts';
import type { HttpAnswer, KvClient } from './db.ts';
import type { PlannedOp } from './workloads.ts';

const id = '3d0c5a3e-4b7f-4a52-9a43-3c1f1f0b4e21';
const op: PlannedOp = {
  f: 'schedule',
  key: 'actions',
  value: { id, kind: 'agent.replicante.io/test.loop', args: { target: 2 } },
};

const answer = (status: number, body: unknown): HttpAnswer => ({ kind: 'answer', status, text: JSON.stringify(body) });
const lost: HttpAnswer = { kind: 'error', error: 'timeout', refused: false, timeout: true };
const refused: HttpAnswer = { kind: 'error', error: 'ECONNREFUSED', refused: true, timeout: false };
const code = (status: number, name: string): HttpAnswer => answer(status, { error: true, code: name, message: '' });

/** A client answering each request with the next scripted answer (the last one again when they run out). */
function scripted(...answers: HttpAnswer[]): { client: KvClient; bodies: unknown[] } {
  const bodies: unknown[] = [];
  const client: KvClient = {
    node: 1,
    read: () => Promise.reject(new Error('unused')),
    write: () => Promise.reject(new Error('unused')),
    close: () => Promise.resolve(),
    request: (_method, _path, body) => {
      bodies.push(body);
      return Promise.resolve(answers[Math.min(bodies.length, answers.length) - 1] ?? refused);
    },
  };
  return { client, bodies };
}

describe('actions workload', () => {
  it('is ok on 200, and on 409 after an attempt whose answer was lost, every attempt with the same id', async () => {
    expect((await actionsWorkload().invoke(op, scripted(answer(200, { id })).client, 2000)).type).toBe('ok');
    const { client, bodies } = scripted(lost, code(503, 'DRAM_ERR_NO_LEADER'), code(409, 'DRAM_ERR_ACTION_EXISTS'));
    expect((await actionsWorkload().invoke(op, client, 5000)).type).toBe('ok');
    expect(bodies).toHaveLength(3);
    for (const body of bodies) expect(body).toMatchObject({ id });
  });

  it('is info when an attempt may have scheduled it and none said so, fail when every attempt was refused', async () => {
    expect((await actionsWorkload().invoke(op, scripted(lost, refused).client, 1000)).type).toBe('info');
    expect((await actionsWorkload().invoke(op, scripted(code(503, 'DRAM_ERR_NO_LEADER')).client, 1000)).type).toBe(
      'info',
    );
    expect((await actionsWorkload().invoke(op, scripted(refused).client, 1000)).type).toBe('fail');
    expect((await actionsWorkload().invoke(op, scripted(code(400, 'DRAM_ERR_BAD_REQUEST')).client, 1000)).type).toBe(
      'fail',
    );
    // A 409 on the very first attempt is not ours to claim.
    expect((await actionsWorkload().invoke(op, scripted(code(409, 'DRAM_ERR_ACTION_EXISTS')).client, 1000)).type).toBe(
      'info',
    );
  });

  it('reads the records into the checker form, and the final read settles once the queue has drained', async () => {
    const workload = actionsWorkload();
    await workload.invoke(op, scripted(answer(200, { id })).client, 1000);
    const execution = {
      args: { target: 2 },
      created_time: '2026-12-05T07:00:00.000Z',
      finished_time: '2026-12-05T07:00:01.000Z',
      id,
      kind: 'agent.replicante.io/test.loop',
      metadata: {},
      scheduled_time: '2026-12-05T07:00:00.500Z',
      state: { error: null, payload: { count: 2, target: 2 }, phase: 'DONE' },
    };
    const read = await workload.invoke(
      { f: 'read', key: 'actions', value: null },
      scripted(answer(200, { queue: [], finished: [execution] })).client,
      1000,
    );
    expect(read).toEqual({
      type: 'ok',
      value: {
        queue: [],
        finished: [
          {
            id,
            kind: 'agent.replicante.io/test.loop',
            args: { target: 2 },
            phase: 'DONE',
            payload: { count: 2, target: 2 },
            error: null,
            scheduledMs: Date.parse('2026-12-05T07:00:00.500Z'),
            finishedMs: Date.parse('2026-12-05T07:00:01.000Z'),
          },
        ],
      },
    });
    expect(workload.finalRead?.settled(read.value)).toBe(true);
    expect(workload.finalRead?.settled({ queue: [], finished: [] })).toBe(false);
  });
});
