// The address book of the cluster's members: the MemberDirectory port (declared here, beside the
// rules it serves: the membership routes use it, src/node/address-book.ts implements it on a file),
// members' addresses as `host:port` text (the form the API, the CLI and the node's address-book file
// use), the conflict rule for adding a member, and an in-memory MemberDirectory (which never forgets
// `self`) for an app built without one (tests).
//
// Conflict rule: a node id names one node. Adding an id that is already known at the same
// addresses is a no-op (a retried request); at other addresses it is a conflict (probably an id
// reused by mistake: moving a node is a restart at the new address, which its own handshake
// announces). Another node's raft or HTTP address is a conflict too. An HTTP address that was
// unknown (a node started without --peer-http) may be filled in.
//
// Called by: src/api/member-routes.ts, member-remove-routes.ts, app.ts; src/node/address-book.ts,
// join-client.ts, membership.ts, node.ts.

import type { NodeId } from '../base/ids.ts';
import { hostValid, type NetAddress } from '../codec/wire.ts';

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

/** Nodes one address book holds at most (this node included); the peer transport learns no more than this either. */
export const membersMax = 1024;

/** Hosts that mean "every interface": a listener may use them, but no other node can dial them. */
const unspecifiedHosts: ReadonlySet<string> = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

/**
 * `host:port` (the port after the last colon, so an IPv6 literal works unbracketed), or why not.
 * `any` also takes 0.0.0.0 / :: (what an operator may have typed in --peers); addresses a node
 * announces for others to dial are `dialable`.
 */
export function parseAddress(text: string, accept: 'dialable' | 'any' = 'dialable'): NetAddress | string {
  const match = /^(.+):(\d{1,5})$/u.exec(text);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 0xffff)
    return `expected host:port, got "${text}"`;
  if (!hostValid(host)) return `"${host}" is not a host name or IP address`;
  if (accept === 'dialable' && unspecifiedHosts.has(host))
    return `"${host}" means every interface; give an address other nodes can reach`;
  return { host, port };
}

export function formatAddress(address: NetAddress): string {
  return `${address.host}:${address.port}`;
}

export function sameAddress(a: NetAddress | undefined, b: NetAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.host === b.host && a.port === b.port;
}

/** Why `candidate` cannot be recorded next to `known`, or undefined when it can (new, or already there). */
export function memberConflict(known: readonly MemberAddresses[], candidate: MemberAddresses): string | undefined {
  if (known.length >= membersMax && !known.some((member) => member.nodeId === candidate.nodeId))
    return `the address book already holds membersMax ${membersMax} nodes`;
  for (const member of known) {
    if (member.nodeId === candidate.nodeId) {
      if (!sameAddress(member.raft, candidate.raft))
        return `node ${member.nodeId} is known at raft address ${formatAddress(member.raft)}, not ${formatAddress(candidate.raft)}`;
      if (member.http !== undefined && candidate.http !== undefined && !sameAddress(member.http, candidate.http)) {
        return `node ${member.nodeId} is known at HTTP address ${formatAddress(member.http)}, not ${formatAddress(candidate.http)}`;
      }
      continue;
    }
    if (sameAddress(member.raft, candidate.raft))
      return `raft address ${formatAddress(candidate.raft)} belongs to node ${member.nodeId}`;
    if (sameAddress(member.http, candidate.http))
      return `HTTP address ${formatAddress(candidate.http ?? member.raft)} belongs to node ${member.nodeId}`;
  }
  return undefined;
}

/**
 * What the address book holds for a node after `update` (address rules, pure): an address the
 * operator pinned (--peers, --peer-http) is kept whatever the update says, and an update without
 * an HTTP address keeps the one known.
 */
export function mergeMember(
  known: MemberAddresses | undefined,
  update: MemberAddresses,
  pinned: { readonly raft: boolean; readonly http: boolean } = { raft: false, http: false },
): MemberAddresses {
  return {
    nodeId: update.nodeId,
    raft: known !== undefined && pinned.raft ? known.raft : update.raft,
    http: (known !== undefined && pinned.http ? known.http : update.http) ?? known?.http,
  };
}

export function sameMember(a: MemberAddresses, b: MemberAddresses): boolean {
  return (
    a.nodeId === b.nodeId &&
    sameAddress(a.raft, b.raft) &&
    (a.http === undefined ? b.http === undefined : sameAddress(a.http, b.http))
  );
}

/** The members as JSON: `{ nodeId, raft: "host:port", http?: "host:port" }`. */
export function membersJson(members: readonly MemberAddresses[]): { nodeId: NodeId; raft: string; http?: string }[] {
  return members.map((member) => ({
    nodeId: member.nodeId,
    raft: formatAddress(member.raft),
    ...(member.http === undefined ? {} : { http: formatAddress(member.http) }),
  }));
}

/** A directory kept in memory only (an app built without the node's address book, e.g. in tests). */
export function memoryDirectory(initial: readonly MemberAddresses[] = [], self?: NodeId): MemberDirectory {
  const members = new Map<NodeId, MemberAddresses>(initial.map((member) => [member.nodeId, member]));
  return {
    list: () => [...members.values()].sort((a, b) => a.nodeId - b.nodeId),
    record: (member) => {
      members.set(member.nodeId, mergeMember(members.get(member.nodeId), member));
    },
    forget: (node) => {
      if (node !== self) members.delete(node);
    },
  };
}
