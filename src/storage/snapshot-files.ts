// Snapshot bytes as files beside the node's LevelDB, outside its one writer queue: a snapshot of a
// large shard (130 MiB for a million keys) written through LevelDB held every turn's synced write
// behind its chunks, and one written here goes through the thread pool while the turns' writes
// go on. Layout: `<store dir>/snapshots/<group>/<index>-<term>-<nonce>.snap`, the envelope's bytes
// as they are, nothing around them; the nonce keeps two snapshots at one index (a replaced damaged
// one, a leader's at the stored index) from sharing a name.
//
// Invariants (the caller, disk-store.ts, keeps the pointer side):
//  - a file is complete before any record names it: written under `<name>.tmp`, fsynced, renamed,
//    and its directory fsynced; only then does LevelDB's snap-meta record name it (with its size
//    and CRC-32), in a synced batch;
//  - a file no record names is garbage: an unfinished write, a snapshot whose pointer batch never
//    ran, or the previous snapshot once the pointer moved. removeUnreferenced() deletes them at
//    open, so a crash at any point leaves the old or the new snapshot whole and nothing else
//    that matters;
//  - bytes are read back only through read(), which checks the size and checksum the pointer
//    recorded and reports damage instead of returning bad bytes.
// `fault` is a test hook run before each step (throwing there is a crash at that step).

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { GroupId, LogIndex, Term } from '../base/ids.ts';
import { snapshotPieces } from './snapshot-pieces.ts';

/** What a snap-meta record says of the file holding the snapshot's bytes. */
export interface SnapshotFileRef {
  readonly name: string;
  readonly bytes: number;
  /** zlib's CRC-32 of the whole file. */
  readonly checksum: number;
}

/** The steps of a snapshot file's life a test can crash at (see `fault`). */
export type SnapshotFileStep = 'write' | 'sync' | 'rename' | 'pointer' | 'unlink';

/** A test hook run before each step: throwing is a crash there; a promise holds the step until it settles. */
export type SnapshotFileFault = (step: SnapshotFileStep) => void | Promise<void>;

/** Bytes per write call (and per checksum step on the main thread). */
export const snapshotFilePieceBytes = 1 << 20;

/** A file name this module wrote: index, term and nonce; nothing that could leave the directory. */
const namePattern = /^[0-9]{1,16}-[0-9]{1,16}-[0-9a-f]{8}\.snap$/;

export function isSnapshotFileName(name: string): boolean {
  return namePattern.test(name);
}

export class SnapshotFiles {
  readonly dir: string;
  private readonly fault: SnapshotFileFault | undefined;

  constructor(dir: string, fault?: SnapshotFileFault) {
    this.dir = dir;
    this.fault = fault;
  }

  /** The readable path of a group's file, for messages. */
  describe(group: GroupId, name: string): string {
    return `snapshots/${group}/${name}`;
  }

  async step(step: SnapshotFileStep): Promise<void> {
    await this.fault?.(step);
  }

  /**
   * Writes the snapshot's bytes (`slices`, in order) to a new file of the group, durable and
   * complete under its final name when this resolves. Pieces of snapshotFilePieceBytes at a time,
   * so the checksum never holds the main thread for long and the writes run on the thread pool.
   */
  async write(group: GroupId, index: LogIndex, term: Term, slices: readonly Uint8Array[]): Promise<SnapshotFileRef> {
    const groupDir = join(this.dir, String(group));
    const created = await mkdir(groupDir, { recursive: true });
    if (created !== undefined) {
      // New directories must survive a power loss too: fsync each parent of one created.
      await syncDirectory(this.dir);
      await syncDirectory(join(this.dir, '..'));
    }
    const name = `${index}-${term}-${randomBytes(4).toString('hex')}.snap`;
    const temporary = join(groupDir, `${name}.tmp`);
    const handle = await open(temporary, 'w');
    let checksum = 0;
    let bytes = 0;
    try {
      for (const piece of snapshotPieces(slices, snapshotFilePieceBytes)) {
        checksum = crc32(piece, checksum);
        bytes += piece.length;
        await handle.write(piece);
        await this.step('write');
      }
      await this.step('sync');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.step('rename');
    await rename(temporary, join(groupDir, name));
    await syncDirectory(groupDir);
    return { name, bytes, checksum };
  }

  /** The file's bytes, or why they cannot be used (missing, another size, another checksum). */
  async read(
    group: GroupId,
    ref: SnapshotFileRef,
  ): Promise<{ readonly data: Uint8Array } | { readonly damage: string }> {
    let data: Uint8Array;
    try {
      const file = await readFile(join(this.dir, String(group), ref.name));
      // A plain Uint8Array, as every other snapshot's bytes (not a Buffer: they compare, encode and log alike).
      data = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { damage: 'the snapshot file is missing' };
      throw error;
    }
    if (data.length !== ref.bytes)
      return { damage: `the snapshot file holds ${data.length} bytes, its metadata says ${ref.bytes}` };
    const checksum = crc32(data);
    if (checksum !== ref.checksum)
      return { damage: `checksum mismatch: stored ${hex32(ref.checksum)}, computed ${hex32(checksum)}` };
    return { data };
  }

  /** Deletes one file of the group (gone already is fine). */
  async remove(group: GroupId, name: string): Promise<void> {
    await rm(join(this.dir, String(group), name), { force: true });
  }

  /** Deletes the group's directory and every file in it. */
  async removeGroup(group: GroupId): Promise<void> {
    await rm(join(this.dir, String(group)), { recursive: true, force: true });
  }

  /**
   * Deletes every file no snap-meta record names (`referenced`: the file in use per group), and
   * the directories of groups with none: what a crash or a skipped compaction left.
   */
  async removeUnreferenced(referenced: ReadonlyMap<GroupId, string>): Promise<void> {
    let groups: string[];
    try {
      groups = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of groups) {
      const kept = /^[0-9]{1,10}$/.test(entry) ? referenced.get(Number(entry) as GroupId) : undefined;
      if (kept === undefined) {
        await rm(join(this.dir, entry), { recursive: true, force: true });
        continue;
      }
      for (const file of await readdir(join(this.dir, entry)))
        if (file !== kept) await unlink(join(this.dir, entry, file));
    }
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
