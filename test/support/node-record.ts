// A registry record with no addresses, for tests of the meta model's users (controllers, views).
// Its version is this checkout's (package.json), as a node of this release registers itself.

import type { NodeId } from '../../src/base/ids.ts';
import type { NodeRecord } from '../../src/codec/meta.ts';
import { dramVersion } from '../../src/node/meta-group.ts';

export function nodeRecord(id: number, status: NodeRecord['status'] = 'ACTIVE', version = dramVersion()): NodeRecord {
  return {
    id: id as NodeId,
    address: { member: null, client: null, raft: null },
    agentVersion: version,
    storeVersion: version,
    attributes: {},
    status,
  };
}
