// This node's address book: every node it knows, with the raft address its peer transport dials
// and the HTTP address requests are forwarded to. It is what lets a cluster grow past the --peers
// it was started with: a node added through the admin API, or announced by its own authenticated
// handshake, is recorded here and in <data dir>/peers.json, so every member keeps dialing and
// forwarding to it after a restart even when its flags never named it.
//
// Sources, merged at open (later wins per node id): the file, then --peers / --peer-http (what
// the operator typed), then this node's own --raft / --http. At run time `record` adds or updates
// an entry (the admin routes check for conflicts first; a handshake is the node speaking for
// itself) and rewrites the file atomically when something changed. What the operator configured
// is pinned: a node named in --peers keeps that raft address (and in --peer-http that HTTP
// address) whatever it advertises, because the address to dial may rightly differ from the one a
// node listens on (jepsen-like's proxies, NAT). Learned addresses follow the node.
//
// Removed nodes (`forget`, once a node is out of every group's configuration) leave the book and
// are remembered in the file's `removed` list, so that a restart does not take them back from
// --peers (a removed node's flags entry stays where the operator typed it, but it is not dialed)
// or from the removed node's own handshake (the transport refuses it). Recording the node again
// (the admin API adding it) takes it off the list.
//
// Invariants: at most `membersMax` entries and `removedMax` removed ids; this node's own entry is always its configured
// addresses (and is not stored: the flags are its source); the file is written only through
// writeJsonAtomic, and a file that does not parse is a fatal error at open (it is never half-used
// or silently replaced).
//
// Called by: src/node/node.ts (wiring), src/node/membership.ts (members learned when joining).

import { join } from 'node:path';
import { asNodeId, type NodeId } from '../base/ids.ts';
import {
  formatAddress,
  membersMax,
  mergeMember,
  parseAddress,
  sameMember,
  type MemberAddresses,
  type MemberDirectory,
} from '../control/member-directory.ts';
import type { NetAddress } from '../codec/wire.ts';
import { readJson, writeJsonAtomic } from './atomic-file.ts';

export const addressBookFile = 'peers.json';
// Version 1 files without `removed` read as before; a node of the previous version ignores the field.
const fileVersion = 1;
/** Removed node ids the file remembers at most; beyond it the oldest is dropped (and could be relearned). */
export const removedMax = membersMax;

export class AddressBookError extends Error {
  override readonly name = 'AddressBookError';
  readonly code = 'DRAM_ERR_ADDRESS_BOOK';
}

export class AddressBook implements MemberDirectory {
  private readonly path: string;
  private readonly self: MemberAddresses;
  private readonly members = new Map<NodeId, MemberAddresses>();
  /** Nodes whose raft (resp. HTTP) address comes from the flags and is never replaced at run time. */
  private readonly pinnedRaft = new Set<NodeId>();
  private readonly pinnedHttp = new Set<NodeId>();
  /** Nodes removed from the cluster, oldest first. */
  private readonly removed: NodeId[] = [];

  private constructor(path: string, self: MemberAddresses) {
    this.path = path;
    this.self = self;
  }

  /** Loads `<dataDir>/peers.json` (if any) and merges the configured addresses over it. */
  static open(dataDir: string, self: MemberAddresses, configured: readonly MemberAddresses[]): AddressBook {
    const book = new AddressBook(join(dataDir, addressBookFile), self);
    const file = parseBook(readBookFile(book.path), book.path);
    book.removed.push(...file.removed.filter((id) => id !== self.nodeId));
    const stored = file.members.filter((member) => member.nodeId !== self.nodeId);
    // A removed node named in --peers stays out: the flags outlive the cluster's membership.
    const current = configured.filter((member) => !book.removed.includes(member.nodeId));
    for (const member of [...stored, ...current, self])
      book.members.set(member.nodeId, mergeMember(book.members.get(member.nodeId), member));
    for (const member of [...current, self]) {
      book.pinnedRaft.add(member.nodeId);
      if (member.http !== undefined) book.pinnedHttp.add(member.nodeId);
    }
    if (book.members.size > membersMax)
      throw new AddressBookError(`${book.path}: ${book.members.size} nodes exceed membersMax ${membersMax}`);
    book.saveIfChanged(stored, file.removed);
    return book;
  }

  list(): readonly MemberAddresses[] {
    return [...this.members.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /**
   * Adds or updates a node, except what is pinned (an unknown HTTP address keeps the one known);
   * writes the file when something changed. Answers the raft address to dial the node at now.
   */
  record(member: MemberAddresses): NetAddress | undefined {
    const known = this.members.get(member.nodeId);
    if (known === undefined && this.members.size >= membersMax) return undefined;
    const merged = mergeMember(known, member, {
      raft: this.pinnedRaft.has(member.nodeId),
      http: this.pinnedHttp.has(member.nodeId),
    });
    const wasRemoved = this.removed.indexOf(member.nodeId);
    if (wasRemoved >= 0) this.removed.splice(wasRemoved, 1);
    if (known === undefined || !sameMember(known, merged) || wasRemoved >= 0) {
      this.members.set(member.nodeId, merged);
      this.save();
    }
    return merged.raft;
  }

  /**
   * Drops a node removed from the cluster and remembers it as removed (see the file header);
   * writes the file. This node itself is never forgotten. Answers whether the book changed.
   */
  forget(node: NodeId): boolean {
    if (node === this.self.nodeId) return false;
    const known = this.members.delete(node);
    this.pinnedRaft.delete(node);
    this.pinnedHttp.delete(node);
    const wasRemoved = this.removed.includes(node);
    if (!known && wasRemoved) return false;
    if (!wasRemoved) this.removed.push(node);
    if (this.removed.length > removedMax) this.removed.splice(0, this.removed.length - removedMax);
    this.save();
    return true;
  }

  /** Nodes removed from the cluster (not dialed, their handshakes refused), oldest first. */
  removedNodes(): readonly NodeId[] {
    return [...this.removed];
  }

  httpAddress(node: NodeId): NetAddress | undefined {
    return this.members.get(node)?.http;
  }

  /** Raft addresses of every node, this one included (the transport skips its own). */
  raftAddresses(): Map<NodeId, NetAddress> {
    return new Map(this.list().map((member) => [member.nodeId, member.raft]));
  }

  private saveIfChanged(stored: readonly MemberAddresses[], removed: readonly NodeId[]): void {
    const current = this.stored();
    const sameRemoved = removed.length === this.removed.length && removed.every((id, k) => this.removed[k] === id);
    if (
      sameRemoved &&
      current.length === stored.length &&
      current.every((member, k) => stored[k] !== undefined && sameMember(member, stored[k]))
    )
      return;
    this.save();
  }

  /** Every entry but this node's own. */
  private stored(): MemberAddresses[] {
    return this.list().filter((member) => member.nodeId !== this.self.nodeId);
  }

  private save(): void {
    const members = this.stored().map((member) => ({
      nodeId: member.nodeId,
      raft: formatAddress(member.raft),
      ...(member.http === undefined ? {} : { http: formatAddress(member.http) }),
    }));
    writeJsonAtomic(this.path, {
      version: fileVersion,
      members,
      ...(this.removed.length === 0 ? {} : { removed: this.removed }),
    });
  }
}

function readBookFile(path: string): unknown {
  try {
    return readJson(path);
  } catch (error) {
    throw new AddressBookError(
      `${path} is unreadable (${error instanceof Error ? error.message : String(error)}); fix it or delete it (it is rebuilt from --peers and the peers' handshakes)`,
    );
  }
}

interface BookFile {
  readonly members: MemberAddresses[];
  readonly removed: NodeId[];
}

/** The file's members and removed ids; throws AddressBookError naming the bad field. */
function parseBook(value: unknown, path: string): BookFile {
  if (value === undefined) return { members: [], removed: [] };
  const bad = (why: string): never => {
    throw new AddressBookError(
      `${path}: ${why}; fix it or delete it (it is rebuilt from --peers and the peers' handshakes)`,
    );
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('expected a JSON object');
  const raw = value as Record<string, unknown>;
  if (raw['version'] !== fileVersion) return bad(`version ${JSON.stringify(raw['version'])}, expected ${fileVersion}`);
  const members = raw['members'];
  if (!Array.isArray(members) || members.length > membersMax)
    return bad(`members: expected an array of at most ${membersMax}`);
  const removed = raw['removed'] ?? [];
  if (
    !Array.isArray(removed) ||
    removed.length > removedMax ||
    !removed.every((id: unknown) => typeof id === 'number' && Number.isSafeInteger(id) && id >= 1)
  ) {
    return bad(`removed: expected an array of at most ${removedMax} positive integers`);
  }
  const parsed = members.map((item: unknown, k): MemberAddresses => {
    if (typeof item !== 'object' || item === null) return bad(`members[${k}]: expected an object`);
    const entry = item as Record<string, unknown>;
    const nodeId = entry['nodeId'];
    if (typeof nodeId !== 'number' || !Number.isSafeInteger(nodeId) || nodeId < 1)
      return bad(`members[${k}].nodeId: expected a positive integer`);
    const address = (name: string, text: unknown): NetAddress => {
      const parsed = typeof text === 'string' ? parseAddress(text, 'any') : 'expected "host:port"';
      return typeof parsed === 'string' ? bad(`members[${k}].${name}: ${parsed}`) : parsed;
    };
    return {
      nodeId: asNodeId(nodeId),
      raft: address('raft', entry['raft']),
      http: entry['http'] === undefined ? undefined : address('http', entry['http']),
    };
  });
  const removedIds = (removed as number[]).map(asNodeId);
  // The file is ours: a node both listed and removed means it was hand-edited; the member wins.
  return { members: parsed, removed: removedIds.filter((id) => !parsed.some((member) => member.nodeId === id)) };
}
