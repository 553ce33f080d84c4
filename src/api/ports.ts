// The ports the HTTP API needs, declared here by their user (docs/CONTRIBUTING.md, "Ports and
// adapters": adapters implement ports and never import each other; only src/node/ wires concrete ones
// together):
//  - ApiHost: the part of the multi-Raft host the routes call (propose, read, transfer, membership
//    changes, status, the local models). MultiRaftHost satisfies it as is.
//  - MemberDirectory: this node's address book (every node's raft and HTTP address). src/node/
//    implements it on a file in the data dir plus the peer transport; tests keep it in memory.
//  - Forward: carries one HTTP request to another node and brings its answer back. The node's
//    HTTP client implements it; tests implement it by inject()-ing into the leader's app. A
//    rejected promise means "no answer": for a write that is indeterminate, for a read a failure,
//    unless its `code` says the request never left (ECONNREFUSED, or `forwardNoAddressCode` when
//    no address is known for the node): then it is a definite failure.
//  - ApiMetrics: what the routes report, and the /metrics text. src/metrics/registry.ts implements
//    it; the API never imports prom-client.

import type { NodeId } from '../base/ids.ts';
import type { MultiRaftHost } from '../multiraft/host.ts';

export type ApiHost = Pick<
  MultiRaftHost,
  'propose' | 'read' | 'transferLeadership' | 'proposeConfChange' | 'status' | 'groupStatus' | 'groupLeader' | 'model'
>;

export interface NetAddress {
  readonly host: string;
  readonly port: number;
}

/** Where a node can be reached: its peer (raft) listener and its HTTP API (unknown for a node started without --peer-http). */
export interface MemberAddresses {
  readonly nodeId: NodeId;
  readonly raft: NetAddress;
  readonly http: NetAddress | undefined;
}

export interface MemberDirectory {
  /** Every node this one knows, itself included, by ascending id. */
  list(): readonly MemberAddresses[];
  /**
   * Remembers a node's addresses (adds it, or fills in / replaces what was known): the peer
   * transport dials it there and forwarding reaches it there, from now on and after a restart.
   * The routes check for conflicts first; this records unconditionally.
   */
  record(member: MemberAddresses): void;
  /**
   * Forgets a node removed from every group: no longer dialed, forwarded to or listed, and its
   * peer handshakes refused, until it is recorded again. This node itself is never forgotten.
   */
  forget(node: NodeId): void;
}

export type ForwardMethod = 'GET' | 'PUT' | 'DELETE' | 'POST';

export interface ForwardRequest {
  readonly method: ForwardMethod;
  /** Path and query, as received (e.g. `/v1/kv/a%20b?cas=3`). */
  readonly url: string;
  /** Lower-case names; only the headers the leader needs (content type, client stamp, hop mark). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
}

export interface ForwardResponse {
  readonly status: number;
  /** Lower-case names. Hop-by-hop headers are dropped by the API before relaying. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export type Forward = (leader: NodeId, request: ForwardRequest) => Promise<ForwardResponse>;

export type ProposalOutcomeLabel =
  | 'applied'
  | 'not_leader'
  | 'no_leader'
  | 'transferring'
  | 'superseded'
  | 'overloaded'
  | 'too_large'
  | 'unknown_group'
  | 'stopped'
  | 'indeterminate'
  | 'rejected';

export type ReadOutcomeLabel =
  | 'served'
  | 'not_leader'
  | 'no_leader'
  | 'leader_changed'
  | 'overloaded'
  | 'timeout'
  | 'stopped'
  | 'unknown_group';

export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

export interface ApiMetrics {
  /** A proposal this node made, by how it ended. */
  proposal(outcome: ProposalOutcomeLabel): void;
  /** A read this node served or refused, by consistency asked for and outcome. */
  read(consistency: ReadConsistency, outcome: ReadOutcomeLabel): void;
  /** One answered HTTP request; `route` is the route pattern (bounded), never the raw URL. */
  httpRequest(method: string, route: string, status: number): void;
  /** Refreshes the gauges and renders the Prometheus text exposition. */
  render(): Promise<{ readonly contentType: string; readonly body: string }>;
}
