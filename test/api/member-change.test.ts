// The membership-change loop every join and removal shares (src/control/member-change.ts), over the
// stub host with a scripted proposeConfChange: a refusal that asks to wait (a change still
// pending, as a newly elected leader answers until it has applied its term's first entry) is
// waited out until the deadline, not counted as a spent proposal.

import { describe, expect, it } from 'vitest';
import type { ApiHost } from '../../src/api/ports.ts';
import { ensureAbsent } from '../../src/control/member-removal.ts';
import { asGroupId, asNodeId, type LogIndex } from '../../src/base/ids.ts';
import { stubHost } from './stub-host.ts';

const group = asGroupId(1);
const leaving = asNodeId(3);

/** A leader of `group` with voters 1-3 whose conf changes are refused as pending `refusals` times. */
function pendingThenApplied(refusals: number): { host: ApiHost; proposals: () => number } {
  const stub = stubHost();
  const base = stub.host.groupStatus(group);
  if (base === undefined) throw new Error('the stub hosts no group 1');
  let voters = [1, 2, 3].map(asNodeId);
  let proposals = 0;
  const host: ApiHost = {
    ...stub.host,
    groupStatus: (asked) =>
      asked === group
        ? { ...base, status: { ...base.status, confState: { ...base.status.confState, voters } } }
        : undefined,
    proposeConfChange: () => {
      proposals++;
      if (proposals <= refusals)
        return Promise.resolve({
          kind: 'refused',
          reason: { kind: 'conf_change_pending', pendingIndex: 7 as LogIndex },
        });
      voters = voters.filter((voter) => voter !== leaving);
      return Promise.resolve({ kind: 'applied', index: 8 as LogIndex, result: undefined });
    },
  };
  return { host, proposals: () => proposals };
}

describe('a membership change refused while another is pending', () => {
  it('waits the refusals out until its deadline, however many polls that takes', async () => {
    const { host, proposals } = pendingThenApplied(30);
    const result = await ensureAbsent(host, group, leaving, performance.now() + 10_000, {
      pollMs: 1,
      learnerLagEntriesMax: 0,
    });
    expect(result.kind).toBe('absent');
    expect(proposals()).toBe(31);
  });

  it('still answers pending once the deadline passes', async () => {
    const { host } = pendingThenApplied(Number.MAX_SAFE_INTEGER);
    const result = await ensureAbsent(host, group, leaving, performance.now() + 100, {
      pollMs: 5,
      learnerLagEntriesMax: 0,
    });
    expect(result).toMatchObject({ kind: 'pending', progress: { pending: /pending at index 7/ } });
  });
});
