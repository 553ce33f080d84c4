// What stops a host, and what its callers hear (issues 10 and 19): a model that throws, a storage
// write that fails or an assertion all stop the host, every waiting caller is answered at once
// (not at its deadline), later ones are refused as `stopped`, and the node's fatal log line names
// the cause instead of calling everything a storage failure.

import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/base/assert.ts';
import { asGroupId, asNodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { MultiRaftHost, type ProposalOutcome } from '../../src/multiraft/host.ts';
import type { GroupWrite, ReplicatedModel } from '../../src/multiraft/ports.ts';
import { fatalCause } from '../../src/node/node.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { storageFailure } from '../../src/storage/errors.ts';
import { MemoryHostStorage } from '../support/memory-host.ts';

const self = asNodeId(1);
const group = asGroupId(1);
const encoder = new TextEncoder();
let running: MultiRaftHost[] = [];

afterEach(async () => {
  await Promise.all(running.map((host) => host.stop()));
  running = [];
});

/** Applies anything but "boom", which it throws on (a bug in a model). */
function touchyModel(): ReplicatedModel {
  return {
    type: 'touchy',
    version: 1,
    applyEntry: (_index, data) => {
      if (new TextDecoder().decode(data) === 'boom') throw new Error('the model cannot take this');
      return 'ok';
    },
    snapshot: () => new Uint8Array(0),
    restore: () => undefined,
  };
}

/** One voter, so it leads at once; `failWrite` decides whether (and how) a storage write fails. */
function singleHost(failWrite: () => Error | undefined = () => undefined): MultiRaftHost {
  const storage = new MemoryHostStorage();
  storage.bootstrap(group, confStateOf([self]));
  const write = storage.write.bind(storage);
  storage.write = (batch: readonly GroupWrite[]) => {
    const error = failWrite();
    return error === undefined ? write(batch) : Promise.reject(error);
  };
  const host = new MultiRaftHost({
    nodeId: self,
    storage,
    transport: { send: () => undefined },
    rng: createRng(7),
    raft: { electionTimeoutTicks: 10, heartbeatTicks: 1, quiesceAfterTicks: 0 },
    tickMs: 5,
    proposalQueueMax: 100,
    // Far beyond the test's own timeout: an answer can only come from the failure itself.
    requestTimeoutMs: 600_000,
    commitFlushMs: 50,
    pingMs: 5,
    peerSilenceMs: 50,
  });
  host.addGroup(group, touchyModel());
  running.push(host);
  host.start();
  return host;
}

async function proposeUntilApplied(host: MultiRaftHost, data: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const outcome = await host.propose(group, encoder.encode(data));
    if (outcome.kind === 'applied') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no leader within 200 attempts');
}

describe('a fatal error in the host', () => {
  it('a model that throws: the host stops, says it was the model, and answers every caller at once', async () => {
    const host = singleHost();
    await proposeUntilApplied(host, 'fine');
    const outcomes = await Promise.all([
      host.propose(group, encoder.encode('boom')),
      host.propose(group, encoder.encode('after')),
      host.read(group, 'linearizable'),
    ]);
    const failure = host.failure();
    expect(failure?.name).toBe('ModelError');
    expect(failure?.message).toContain('the model cannot take this');
    expect(fatalCause(failure ?? new Error('none'))).toBe('model error');
    // The write that broke the model and the one batched with it may or may not be applied.
    expect(outcomes[0]).toEqual({ kind: 'indeterminate' });
    expect(['indeterminate', 'refused']).toContain(outcomes[1].kind);
    // Later callers are refused as `stopped` (503 DRAM_ERR_NODE_STOPPED), not `unknown_group` (404).
    expect(await host.propose(group, encoder.encode('later'))).toEqual<ProposalOutcome>({
      kind: 'refused',
      reason: { kind: 'stopped' },
    });
    expect(await host.read(group, 'linearizable')).toMatchObject({ kind: 'refused', reason: 'stopped' });
  });

  it('a storage write that fails: a storage failure, and the write waiting on it is answered', async () => {
    let failing = false;
    const host = singleHost(() => (failing ? storageFailure('write', new Error('EIO: disk gone')) : undefined));
    await proposeUntilApplied(host, 'fine');
    failing = true;
    const outcome = await host.propose(group, encoder.encode('lost'));
    expect(outcome).toEqual({ kind: 'indeterminate' });
    expect(fatalCause(host.failure() ?? new Error('none'))).toBe('storage failure');
  });

  it('an assertion is an assertion failure, anything else an internal error', () => {
    expect(fatalCause(new AssertionError('raft: commit went back'))).toBe('assertion failure');
    expect(fatalCause(new TypeError('x is undefined'))).toBe('internal error');
  });
});
