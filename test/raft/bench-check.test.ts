// The raft-core benchmark's own correctness check, run in the suite so the benchmark cannot rot
// unnoticed (its timing runs only under npm run bench).

import { describe, expect, it } from 'vitest';
import { verifyRaftCore } from '../../bench/raft-core.bench.ts';

describe('raft-core benchmark harness', () => {
  it.each([64, 1])('commits 10,000 entries identically on every node with batch %i', (batch) => {
    expect(() => {
      verifyRaftCore(batch);
    }).not.toThrow();
  });
});
