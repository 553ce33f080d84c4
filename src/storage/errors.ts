// The two operating errors of the storage adapter. Both are fatal for the node: the host must stop
// serving and exit, because a node that lost track of what it promised to keep durable can break
// Raft's safety (a vote given twice, an acknowledged entry forgotten). They are never retried.
//  - StorageError (DRAM_ERR_STORAGE): LevelDB itself failed (I/O error, lock held, disk full).
//  - StorageCorruptionError (DRAM_ERR_STORAGE_CORRUPT): a stored record failed its checksum, did not
//    decode, sat under a key it does not belong to, or the log had a hole. The message names the
//    key, the group and (for log records) the index, so an operator can find it.
// Codes are plain strings on the instance, so they survive duplicate copies of this module.

import type { GroupId, LogIndex } from '../base/ids.ts';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code = 'DRAM_ERR_STORAGE';
}

export class StorageCorruptionError extends Error {
  override readonly name = 'StorageCorruptionError';
  readonly code = 'DRAM_ERR_STORAGE_CORRUPT';
  /** The group the bad record was found under, when its key names one. */
  readonly group: GroupId | undefined;
  /** The log index the bad record was found at (or the missing index of a hole), for log records. */
  readonly index: LogIndex | undefined;
  /** The key in its readable form, e.g. `g/3/log/17`. */
  readonly key: string;

  constructor(where: { readonly key: string; readonly group?: GroupId; readonly index?: LogIndex }, why: string) {
    const group =
      where.group === undefined
        ? ''
        : ` (group ${where.group}${where.index === undefined ? '' : `, index ${where.index}`})`;
    super(`storage corrupt at ${where.key}${group}: ${why}`);
    this.key = where.key;
    this.group = where.group;
    this.index = where.index;
  }
}

/** Wraps whatever LevelDB threw; the original stays reachable as `cause`. */
export function storageFailure(operation: string, error: unknown): StorageError {
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageError(`storage: ${operation} failed: ${detail}`, { cause: error });
}
