// The ports the HTTP API needs, declared here by their user (docs/CONTRIBUTING.md, "Ports and
// adapters": adapters implement ports and never import each other; only src/node/ wires concrete
// ones together). src/node/ and src/metrics/ import this file to implement them, which the layer
// rules in eslint.config.js allow for ports files only.
// The address book the membership routes use (MemberDirectory) is declared in
// src/control/member-directory.ts, beside the membership rules it serves.
//  - ApiHost: the part of the multi-Raft host the routes call (propose, read, transfer, membership
//    changes, status, the local models). MultiRaftHost satisfies it as is.
//  - Forward: carries one HTTP request to another node and brings its answer back. The node's
//    HTTP client implements it; tests implement it by inject()-ing into the leader's app. A
//    rejected promise means "no answer": for a write that is indeterminate, for a read a failure,
//    unless its `code` says the request never left (ECONNREFUSED, or `forwardNoAddressCode` when
//    no address is known for the node): then it is a definite failure.
//  - ApiMetrics: what the routes report, and the /metrics text. src/metrics/registry.ts implements
//    it; the API never imports prom-client.

import type { NodeId } from '../base/ids.ts';
import type { MultiRaftHost } from '../multiraft/host.ts';
import type { FanOutMetrics } from '../query/fan-out.ts';

export type ApiHost = Pick<
  MultiRaftHost,
  | 'propose'
  | 'read'
  | 'transferLeadership'
  | 'compactNow'
  | 'proposeConfChange'
  | 'status'
  | 'groupStatus'
  | 'groupLeader'
  | 'model'
  | 'backupSnapshot'
>;

export type ForwardMethod = 'GET' | 'PUT' | 'DELETE' | 'POST';

export interface ForwardRequest {
  readonly method: ForwardMethod;
  /** Path and query, as received (e.g. `/v1/kv/a%20b?cas=3`). */
  readonly url: string;
  /** Lower-case names; only the headers the leader needs (content type, client stamp, hop mark). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  /** Aborting it gives up the call (the connection is closed; the receiver sees its caller gone). */
  readonly signal?: AbortSignal | undefined;
  /** How long the connection may stay silent (default: the node's request timeout plus a second). */
  readonly timeoutMs?: number | undefined;
}

export interface ForwardResponse {
  readonly status: number;
  /** Lower-case names. Hop-by-hop headers are dropped by the API before relaying. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export type Forward = (leader: NodeId, request: ForwardRequest) => Promise<ForwardResponse>;

/** The code a Forward rejects with when it knows no address for the node: nothing was sent. */
export const forwardNoAddressCode = 'DRAM_FORWARD_NO_ADDRESS';

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
  /** What the query fan-out reports (src/query/fan-out.ts); without it, nothing is counted. */
  readonly queryFanOut?: FanOutMetrics | undefined;
}
