// The node's address book (<data dir>/peers.json): flags are merged over the file and pinned (a
// configured address is never replaced at run time; a learned one follows the node), this node's
// own addresses always win and are not stored, a recorded node survives a reopen (a restart
// without it in the flags), an unknown HTTP address keeps the known one, nothing is written when
// nothing changed, and a damaged file is a clear error rather than a silently emptied book. A
// forgotten (removed) node leaves the book and stays out across a reopen even when --peers names
// it, until it is recorded again; this node never forgets itself.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberAddresses } from '../../src/control/member-directory.ts';
import { asNodeId } from '../../src/base/ids.ts';
import { AddressBook, AddressBookError, addressBookFile } from '../../src/node/address-book.ts';

const folders: string[] = [];

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function dataDir(): string {
  const folder = mkdtempSync(join(tmpdir(), 'dram-book-'));
  folders.push(folder);
  return folder;
}

function member(id: number, raftPort: number, httpPort?: number): MemberAddresses {
  return {
    nodeId: asNodeId(id),
    raft: { host: '127.0.0.1', port: raftPort },
    http: httpPort === undefined ? undefined : { host: '127.0.0.1', port: httpPort },
  };
}

const self = member(1, 9001, 8001);
const flags = [member(1, 9001, 8001), member(2, 9002, 8002), member(3, 9003)];

describe('address book', () => {
  it('remembers a recorded node across a reopen whose flags do not name it', () => {
    const dir = dataDir();
    const book = AddressBook.open(dir, self, flags);
    expect(book.list()).toEqual(flags);
    book.record(member(4, 9004, 8004));
    expect(book.httpAddress(asNodeId(4))).toEqual({ host: '127.0.0.1', port: 8004 });
    const reopened = AddressBook.open(dir, self, flags);
    expect(reopened.list()).toEqual([...flags, member(4, 9004, 8004)]);
    expect([...reopened.raftAddresses().keys()]).toEqual([1, 2, 3, 4]);
    // This node's own entry comes from its flags, never from the file.
    const stored = JSON.parse(readFileSync(join(dir, addressBookFile), 'utf8')) as { members: { nodeId: number }[] };
    expect(stored.members.map((entry) => entry.nodeId)).toEqual([2, 3, 4]);
  });

  it('pins what the flags say, lets learned addresses move, and keeps a known HTTP address when an update has none', () => {
    const dir = dataDir();
    const book = AddressBook.open(dir, self, flags);
    // Node 3 is in --peers without --peer-http: its raft address is pinned, its HTTP one may be learned.
    expect(book.record(member(3, 9033, 8003))).toEqual({ host: '127.0.0.1', port: 9003 });
    expect(book.list().find((entry) => entry.nodeId === 3)).toEqual(member(3, 9003, 8003));
    expect(book.record(member(2, 9022, 8022))).toEqual({ host: '127.0.0.1', port: 9002 });
    expect(book.list().find((entry) => entry.nodeId === 2)).toEqual(member(2, 9002, 8002));
    expect(book.record(member(1, 9999, 8999))).toEqual(self.raft);
    expect(book.list()[0]).toEqual(self);
    // Node 4 was learned: it moves with what it advertises, its HTTP address kept when not given.
    book.record(member(4, 9004, 8004));
    expect(book.record(member(4, 9044))).toEqual({ host: '127.0.0.1', port: 9044 });
    expect(book.list().find((entry) => entry.nodeId === 4)).toEqual(member(4, 9044, 8004));
    // The operator's --peers win over what the file says for the same node.
    const reopened = AddressBook.open(dir, self, [member(1, 9001, 8001), member(2, 9002, 8002), member(3, 9333)]);
    expect(reopened.list().find((entry) => entry.nodeId === 3)).toEqual(member(3, 9333, 8003));
    expect(reopened.list().find((entry) => entry.nodeId === 4)).toEqual(member(4, 9044, 8004));
  });

  it('writes the file only when something changed', () => {
    const dir = dataDir();
    const book = AddressBook.open(dir, self, flags);
    book.record(member(4, 9004, 8004));
    const path = join(dir, addressBookFile);
    // Every write replaces the file by a rename, so an unchanged inode means no write.
    const written = statSync(path).ino;
    book.record(member(4, 9004, 8004));
    book.record(member(4, 9004));
    AddressBook.open(dir, self, flags);
    expect(statSync(path).ino).toBe(written);
    book.record(member(4, 9044, 8004));
    expect(statSync(path).ino).not.toBe(written);
  });

  it('forgets a removed node, keeps it out across a reopen whatever --peers says, and takes it back once recorded', () => {
    const dir = dataDir();
    const book = AddressBook.open(dir, self, flags);
    book.record(member(4, 9004, 8004));
    expect(book.forget(asNodeId(1))).toBe(false);
    expect(book.forget(asNodeId(2))).toBe(true);
    expect(book.forget(asNodeId(4))).toBe(true);
    expect(book.forget(asNodeId(4))).toBe(false);
    expect(book.list().map((entry) => entry.nodeId)).toEqual([1, 3]);
    expect(book.httpAddress(asNodeId(2))).toBeUndefined();
    expect(book.removedNodes()).toEqual([2, 4]);
    const reopened = AddressBook.open(dir, self, flags);
    expect(reopened.list().map((entry) => entry.nodeId)).toEqual([1, 3]);
    expect([...reopened.raftAddresses().keys()]).toEqual([1, 3]);
    expect(reopened.removedNodes()).toEqual([2, 4]);
    // Added back through the admin API: listed (and stored) again, no longer removed.
    reopened.record(member(2, 9002, 8002));
    expect(reopened.removedNodes()).toEqual([4]);
    const again = AddressBook.open(dir, self, flags);
    expect(again.list().map((entry) => entry.nodeId)).toEqual([1, 2, 3]);
    expect(again.removedNodes()).toEqual([4]);
  });

  it('refuses a damaged file with a message naming it and what to do', () => {
    for (const contents of [
      '{"version": 1, "members": [], "removed": [0]}',
      '{"version": 1, "members": [], "removed": "2"}',
      '{"version": 1, "members": [',
      '[]',
      '{"version": 9, "members": []}',
      '{"version": 1, "members": [{"nodeId": 0, "raft": "127.0.0.1:9"}]}',
      '{"version": 1, "members": [{"nodeId": 2, "raft": "nowhere"}]}',
    ]) {
      const dir = dataDir();
      writeFileSync(join(dir, addressBookFile), contents);
      expect(() => AddressBook.open(dir, self, flags)).toThrow(AddressBookError);
      expect(() => AddressBook.open(dir, self, flags)).toThrow(/peers\.json.*delete it/);
    }
  });
});
