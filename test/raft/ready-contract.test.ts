// The Ready contract is the host's to keep: one Ready out at a time, and advance() is given the
// Ready it got. A host that breaks it is wrong code, so the core refuses with an AssertionError
// naming the group instead of silently marking the wrong writes durable.

import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/base/assert.ts';
import { asGroupId, asNodeId } from '../../src/base/ids.ts';
import { createRng } from '../../src/base/rng.ts';
import { confStateOf } from '../../src/raft/confchange.ts';
import { RaftNode } from '../../src/raft/raft.ts';
import { MemoryStorage } from '../../src/raft/storage.ts';

function singleNode(): RaftNode {
  const storage = MemoryStorage.bootstrap(confStateOf([asNodeId(1)]));
  return new RaftNode({ id: asNodeId(1), rng: createRng(1), group: asGroupId(7) }, storage);
}

describe('the Ready contract', () => {
  it('refuses a second ready() before advance() of the first', () => {
    const node = singleNode();
    node.ready();
    expect(() => node.ready()).toThrow(AssertionError);
    expect(() => node.ready()).toThrow(/group 7/);
  });

  it('refuses advance() of a Ready other than the one handed out', () => {
    const node = singleNode();
    const first = node.ready();
    const copy = { ...first };
    expect(() => {
      node.advance(copy);
    }).toThrow(AssertionError);
    expect(() => {
      node.advance(copy);
    }).toThrow(/group 7/);
    node.advance(first);
  });

  it('refuses advance() of a Ready already advanced', () => {
    const node = singleNode();
    const first = node.ready();
    node.advance(first);
    expect(() => {
      node.advance(first);
    }).toThrow(/group 7/);
  });

  it('accepts a ready() after advance() of the Ready handed out', () => {
    const node = singleNode();
    const first = node.ready();
    node.advance(first);
    node.campaign();
    expect(node.hasReady()).toBe(true);
    const second = node.ready();
    expect(second).not.toBe(first);
    node.advance(second);
  });
});
