// Which `kv/<n>` group holds a key (docs/ARCHITECTURE.md, key decision 6: keys placed by hash). Pure and
// deterministic, so every node, client and tool computes the same answer from the same group list:
// FNV-1a (32-bit) of the key's UTF-8 bytes, modulo the number of KV groups, over the group ids
// sorted ascending (the order a caller lists them in does not matter).
//
// Invariant: the answer depends only on the key and the SET of KV groups. Changing the number of
// groups moves most keys; resharding is a meta-group operation that does not exist yet, and when it
// comes it will replace this modulo with a placement table, not patch it.
//
// Called by: src/api/app.ts and binary-server.ts (the KV routes and binary requests), src/client/client.ts
// (the typed client routes each key itself), src/node/node.ts.

import { assert } from '../base/assert.ts';
import type { GroupId } from '../base/ids.ts';

const fnvOffsetBasis32 = 0x811c9dc5;
const fnvPrime32 = 0x01000193;
const utf8 = new TextEncoder();

/** FNV-1a over the UTF-8 bytes of `key`, as an unsigned 32-bit integer. */
export function fnv1a32(key: string): number {
  let hash = fnvOffsetBasis32;
  // An ASCII key's UTF-16 units are its UTF-8 bytes: hash them without encoding (no copy per request).
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    if (unit >= 0x80) return fnvOfBytes(utf8.encode(key));
    hash = Math.imul(hash ^ unit, fnvPrime32) >>> 0;
  }
  return hash;
}

function fnvOfBytes(bytes: Uint8Array): number {
  let hash = fnvOffsetBasis32;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, fnvPrime32) >>> 0;
  return hash;
}

export interface KvPlacement {
  /** The KV groups, ascending. */
  readonly groups: readonly GroupId[];
  groupOf(key: string): GroupId;
}

export function createKvPlacement(groups: readonly GroupId[]): KvPlacement {
  assert(groups.length >= 1, 'kv placement: at least one KV group');
  const sorted = [...groups].sort((a, b) => a - b);
  assert(new Set(sorted).size === sorted.length, 'kv placement: group ids must be distinct');
  return {
    groups: sorted,
    groupOf(key: string): GroupId {
      const group = sorted[fnv1a32(key) % sorted.length];
      assert(group !== undefined, 'kv placement: index in range');
      return group;
    },
  };
}
