// The mixed-release guard of placement (src/control/release-guard.ts): which registered nodes run a
// release before shard groups were placed, and the reason it gives for holding their moves.

import { describe, expect, it } from 'vitest';
import {
  heldByNamedMax,
  nodesOlderThan,
  shardGroupPlacementVersion,
  shardPlacementHold,
} from '../../src/control/release-guard.ts';
import { dramVersion } from '../../src/node/meta-group.ts';
import { nodeRecord } from '../support/node-record.ts';

describe('release guard', () => {
  it('this checkout places shard groups: its version is at or after the first that does', () => {
    expect(shardPlacementHold([nodeRecord(1, 'ACTIVE', dramVersion())])).toBeUndefined();
  });

  it('names the registered nodes older than the first version that places shard groups, or of no readable version', () => {
    const nodes = [
      nodeRecord(1, 'ACTIVE', '0.1.0'),
      nodeRecord(2),
      nodeRecord(3, 'JOINING', ''),
      nodeRecord(4, 'LEAVING', '0.11.9'),
      nodeRecord(5, 'ACTIVE', shardGroupPlacementVersion),
      nodeRecord(6, 'ACTIVE', '0.12.0'),
      nodeRecord(7, 'ACTIVE', 'sim'),
    ];
    expect(nodesOlderThan(nodes, shardGroupPlacementVersion)).toEqual([
      { node: 1, version: '0.1.0' },
      { node: 3, version: '' },
      { node: 4, version: '0.11.9' },
      { node: 7, version: 'sim' },
    ]);
    expect(shardPlacementHold(nodes)).toBe(
      `shard group moves held: node 1 runs 0.1.0, node 3 (version not reported yet), node 4 runs 0.11.9, node 7 runs sim, older than ${shardGroupPlacementVersion} (the first release that places shard groups); upgrade every node`,
    );
    expect(shardPlacementHold(nodes.filter((node) => ![1, 3, 4, 7].includes(node.id)))).toBeUndefined();
    expect(shardPlacementHold([])).toBeUndefined();
  });

  it('names at most heldByNamedMax nodes and counts the others', () => {
    const nodes = Array.from({ length: heldByNamedMax + 3 }, (_, k) => nodeRecord(k + 1, 'ACTIVE', '0.1.0'));
    const hold = shardPlacementHold(nodes) ?? '';
    expect(hold.match(/runs 0\.1\.0/gu)).toHaveLength(heldByNamedMax);
    expect(hold).toContain(`node ${heldByNamedMax} runs 0.1.0, 3 more, older than`);
  });
});
