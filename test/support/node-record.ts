// A registry record with no addresses, for tests of the meta model's users (controllers, views).

import type { NodeId } from '../../src/base/ids.ts';
import type { NodeRecord } from '../../src/codec/meta.ts';

export function nodeRecord(id: number, status: NodeRecord['status'] = 'ACTIVE'): NodeRecord {
  return {
    id: id as NodeId,
    address: { member: null, client: null, raft: null },
    agentVersion: '0',
    storeVersion: '0',
    attributes: {},
    status,
  };
}
