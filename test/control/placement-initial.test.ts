import { describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../src/base/ids.ts';
import { initialPlacement } from '../../src/control/placement-initial.ts';

const nodes = (...ids: number[]): NodeId[] => ids.map((id) => id as NodeId);
const groups = (n: number): GroupId[] => Array.from({ length: n }, (_, i) => (i + 1) as GroupId);

describe('initialPlacement', () => {
  it('is the same whatever order the peers are listed in', () => {
    expect(initialPlacement(nodes(5, 1, 3, 2, 4), groups(8), 3)).toEqual(
      initialPlacement(nodes(1, 2, 3, 4, 5), groups(8), 3),
    );
  });

  it('spreads replicas and first voters evenly: 8 groups x 3 over 5 nodes', () => {
    const placement = initialPlacement(nodes(1, 2, 3, 4, 5), groups(8), 3);
    const replicas = new Map<number, number>();
    const firsts = new Map<number, number>();
    for (const { voters } of placement) {
      expect(new Set(voters).size).toBe(3);
      for (const v of voters) replicas.set(v, (replicas.get(v) ?? 0) + 1);
      const first = voters[0] ?? 0;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    expect([...replicas.values()].sort()).toEqual([4, 5, 5, 5, 5]);
    expect(Math.max(...firsts.values()) - Math.min(...firsts.values())).toBeLessThanOrEqual(1);
  });

  it('places every node when the factor exceeds the nodes, and refuses nonsense', () => {
    expect(initialPlacement(nodes(2, 1), groups(1), 3)).toEqual([{ group: 1, voters: [1, 2] }]);
    expect(() => initialPlacement([], groups(1), 3)).toThrow(/at least one node/);
    expect(() => initialPlacement(nodes(1), groups(1), 0)).toThrow(/factor/);
  });
});
