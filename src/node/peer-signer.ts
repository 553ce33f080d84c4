// How this node proves, on its HTTP calls to other members, that it holds the cluster secret
// (src/api/auth.ts checks it): forwarding to a leader, membership fan-out, the meta controller's
// in-process effects and a joining node's calls all carry this header, never a user's token.
//
// Called by: src/node/node.ts, src/node/membership.ts.

import { peerAuthHeaders } from '../api/auth.ts';
import type { NodeConfig } from './config.ts';

/** The headers to add to the call `method url` (url: path and query, as the receiver sees it). */
export type PeerSigner = (method: string, url: string) => Record<string, string>;

export function peerSigner(config: Pick<NodeConfig, 'secret' | 'clusterId' | 'nodeId'>): PeerSigner {
  return (method, url) => peerAuthHeaders(config, config.nodeId, method, url, Date.now());
}
