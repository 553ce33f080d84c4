// Scheduling through the meta proposer when an answer is lost: the proposal is retried with the
// same command, the model applies the schedule once and tells the retry it is the same request,
// and the caller gets its id (not a conflict); a different request with the id still conflicts.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseScheduleBody, scheduleAction, type ActionsContext } from '../../src/api/action-schedule.ts';
import type { ApiHost } from '../../src/api/ports.ts';
import type { LogIndex, NodeId } from '../../src/base/ids.ts';
import { MetaModel } from '../../src/models/meta.ts';
import type { ProposalOutcome } from '../../src/multiraft/host.ts';

function contextWithLostAnswers(model: MetaModel, lost: number): { context: ActionsContext; proposals: () => number } {
  let proposals = 0;
  const host = {
    propose: (_group: unknown, data: Uint8Array): Promise<ProposalOutcome> => {
      proposals++;
      const result = model.applyEntry(proposals as LogIndex, data);
      // Applied every time, but the first `lost` answers never reach the caller.
      return Promise.resolve(
        proposals <= lost ? { kind: 'indeterminate' } : { kind: 'applied', index: proposals as LogIndex, result },
      );
    },
  } as unknown as ApiHost;
  return {
    context: {
      nodeId: 1 as NodeId,
      host,
      forward: undefined,
      requestTimeoutMs: 100,
      log: pino({ level: 'silent' }),
      model,
      wallNowMs: () => 5000,
    },
    proposals: () => proposals,
  };
}

describe('scheduling with a lost answer', () => {
  it('retries the same command: one action, and the caller gets its id', async () => {
    const model = new MetaModel();
    const { context, proposals } = contextWithLostAnswers(model, 1);
    const request = parseScheduleBody({ kind: 'agent.replicante.io/test.success' }, 1 as NodeId, 4000);
    await expect(scheduleAction(context, request)).resolves.toBe(request.id);
    expect(proposals()).toBe(2);
    expect(model.queue().map((a) => a.id)).toEqual([request.id]);
  });

  it('still refuses another request that reuses the id', async () => {
    const model = new MetaModel();
    const { context } = contextWithLostAnswers(model, 0);
    const first = parseScheduleBody({ kind: 'agent.replicante.io/test.success' }, 1 as NodeId, 4000);
    await scheduleAction(context, first);
    const other = { ...first, kind: 'agent.replicante.io/test.fail' };
    // Skip the local pre-check to reach the model's answer: as if this node had not applied it yet.
    const blind = { ...context, model: new MetaModel() };
    await expect(scheduleAction(blind, other)).rejects.toMatchObject({ code: 'DRAM_ERR_ACTION_EXISTS' });
    expect(model.queue()).toHaveLength(1);
  });

  it('gives up as indeterminate after metaProposeAttemptsMax lost answers', async () => {
    const model = new MetaModel();
    const { context, proposals } = contextWithLostAnswers(model, 10);
    const request = parseScheduleBody({ kind: 'agent.replicante.io/test.success' }, 1 as NodeId, 4000);
    await expect(scheduleAction(context, request)).rejects.toMatchObject({ code: 'DRAM_ERR_INDETERMINATE' });
    expect(proposals()).toBe(3);
    expect(model.queue()).toHaveLength(1);
  });
});
