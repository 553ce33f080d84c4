// The bounded local cache of a node's lazy databases (docs/databases.md, "Lazy databases"): which of
// their data files are on disk, in least-recently-used order, with pins and counters. Pure
// bookkeeping: the download controller (src/data/database-downloads.ts) fetches the files and calls
// `admit`; the cache tells it, through `remove`, which files to delete to stay under its bound.
//
// Invariants:
//  - `bytes` is the sum of the entries' sizes; outside a call it is at most `bytesMax` unless
//    pinned entries alone are over it (a query's working set is never taken away while it runs;
//    the bound is restored as those pins are released);
//  - a pinned entry (a query reads it now) is never evicted; eviction takes the least recently used
//    unpinned entry first;
//  - a file evicted and not fetched again since is listed in its version's `evicted` set (the
//    replica's `evicted` state); fetching it again takes it out.
//
// Also here: which files of a lazy database are its metadata (fetched at load): files of at most
// `smallFileBytesMax` bytes and files matching the database's `metadataPattern` glob.
//
// Called by: src/data/database-downloads.ts.

import { assert } from '../base/assert.ts';
import type { ManifestFile } from '../codec/meta-databases.ts';

export interface LazyLimits {
  /** Bytes of lazily fetched data files a node keeps on disk, across every lazy database. */
  readonly cacheBytesMax: number;
  /** A lazy database's files of at most this size are metadata: fetched whole at load. */
  readonly smallFileBytesMax: number;
  /** A Parquet footer larger than this fails the replica (it is not a footer worth caching). */
  readonly footerBytesMax: number;
}

export const lazyLimitsDefault: LazyLimits = {
  cacheBytesMax: 1024 * 1024 * 1024,
  smallFileBytesMax: 64 * 1024,
  footerBytesMax: 16 * 1024 * 1024,
};

/** One lazy database version's cache figures on this node. */
export interface CacheFigures {
  /** Data files on disk now, and their bytes. */
  readonly files: number;
  readonly bytes: number;
  /** Files a query needed that were on disk / had to be fetched; files evicted. Since this process started. */
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Files evicted and not fetched again since. */
  readonly evictedFiles: number;
}

interface Entry {
  readonly key: string;
  readonly bytes: number;
  usedAt: number;
  pins: number;
}

interface VersionCounters {
  hits: number;
  misses: number;
  evictions: number;
  readonly evicted: Set<string>;
}

const versionCountersEmpty = (): VersionCounters => ({ hits: 0, misses: 0, evictions: 0, evicted: new Set() });

export class LazyCache {
  private readonly bytesMax: number;
  private readonly remove: (path: string, key: string) => void;
  /** By absolute path; Map order is not used: `usedAt` orders eviction. */
  private readonly entries = new Map<string, Entry>();
  private readonly counters = new Map<string, VersionCounters>();
  private clock = 0;
  private bytesHeld = 0;

  /** `key` names a database version (`<name>/<version>`); `remove` deletes an evicted file. */
  constructor(bytesMax: number, remove: (path: string, key: string) => void) {
    assert(Number.isSafeInteger(bytesMax) && bytesMax > 0, 'lazy cache: bytesMax must be a positive integer');
    this.bytesMax = bytesMax;
    this.remove = remove;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** Whether the file is cached; when it is, counts a hit and pins it (release with `unpin`). */
  pinIfCached(key: string, path: string): boolean {
    const entry = this.entries.get(path);
    if (entry === undefined) return false;
    entry.usedAt = ++this.clock;
    entry.pins++;
    this.version(key).hits++;
    return true;
  }

  /** Counts a file a query needed that was not on disk. */
  miss(key: string): void {
    this.version(key).misses++;
  }

  /**
   * Takes a file that is now complete on disk, evicting least recently used unpinned files until it
   * fits; pinned when `pinned` (a query is about to read it). A file found on disk at start is
   * admitted unpinned with `usedAt` in the order given.
   */
  admit(key: string, path: string, bytes: number, pinned: boolean): void {
    const known = this.entries.get(path);
    if (known !== undefined) {
      known.usedAt = ++this.clock;
      if (pinned) known.pins++;
      return;
    }
    this.entries.set(path, { key, bytes, usedAt: ++this.clock, pins: pinned ? 1 : 0 });
    this.bytesHeld += bytes;
    this.version(key).evicted.delete(path);
    this.evictOver();
  }

  unpin(path: string): void {
    const entry = this.entries.get(path);
    assert(entry !== undefined && entry.pins > 0, `lazy cache: ${path} unpinned but not pinned`);
    entry.pins--;
    if (entry.pins === 0) this.evictOver();
  }

  /** Forgets a version's files (its directory is being deleted) and its counters. */
  dropVersion(key: string): void {
    for (const [path, entry] of this.entries)
      if (entry.key === key) {
        this.entries.delete(path);
        this.bytesHeld -= entry.bytes;
      }
    this.counters.delete(key);
  }

  figures(key: string): CacheFigures {
    let files = 0;
    let bytes = 0;
    for (const entry of this.entries.values())
      if (entry.key === key) {
        files++;
        bytes += entry.bytes;
      }
    const counters = this.counters.get(key) ?? versionCountersEmpty();
    return {
      files,
      bytes,
      hits: counters.hits,
      misses: counters.misses,
      evictions: counters.evictions,
      evictedFiles: counters.evicted.size,
    };
  }

  private version(key: string): VersionCounters {
    let counters = this.counters.get(key);
    if (counters === undefined) {
      counters = versionCountersEmpty();
      this.counters.set(key, counters);
    }
    return counters;
  }

  private evictOver(): void {
    while (this.bytesHeld > this.bytesMax) {
      let oldest: [string, Entry] | undefined;
      for (const candidate of this.entries)
        if (candidate[1].pins === 0 && (oldest === undefined || candidate[1].usedAt < oldest[1].usedAt))
          oldest = candidate;
      if (oldest === undefined) return; // everything left is pinned: see the header
      const [path, entry] = oldest;
      this.entries.delete(path);
      this.bytesHeld -= entry.bytes;
      const counters = this.version(entry.key);
      counters.evictions++;
      counters.evicted.add(path);
      this.remove(path, entry.key);
    }
  }
}

/** A glob over a file's path relative to the database prefix: `*` within a folder, `**` across, `?` one character. */
export function globPattern(glob: string): RegExp {
  let source = '';
  for (let at = 0; at < glob.length; at++) {
    const char = glob.charAt(at);
    if (char === '*' && glob.charAt(at + 1) === '*') {
      source += '.*';
      at++;
      if (glob.charAt(at + 1) === '/') at++;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/gu, '\\$&');
  }
  return new RegExp(`^${source}$`, 'u');
}

/** A lazy database's files split: metadata (fetched whole at load) and data (fetched on first use). */
export function lazySplit(
  files: readonly ManifestFile[],
  metadataPattern: string | null,
  limits: LazyLimits,
): { metadata: ManifestFile[]; data: ManifestFile[] } {
  const pattern = metadataPattern === null ? undefined : globPattern(metadataPattern);
  const metadata: ManifestFile[] = [];
  const data: ManifestFile[] = [];
  for (const file of files)
    (file.bytes <= limits.smallFileBytesMax || pattern?.test(file.path) === true ? metadata : data).push(file);
  return { metadata, data };
}

/** Whether a data file gets its Parquet footer fetched at load. */
export function isParquet(file: ManifestFile): boolean {
  return file.path.endsWith('.parquet') && file.bytes >= 12;
}
