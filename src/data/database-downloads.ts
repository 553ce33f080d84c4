// The download controller: on every node, outside the action queue, it looks at the catalog (the
// meta model's database part) every `pollMs`, and downloads the files of the replicas assigned to
// this node that have no recorded state yet, from S3 through the ObjectStore port. Once every file
// of a job (one database version: the node's shards plus the global files) is on disk and verified,
// it records `loaded` for those shards through the meta log; a file that cannot be had records
// `failed` with the error. Byte progress stays here (`progress()`), read by the API.
//
// On disk, under `<root>/<name>/<version>/`, each file at its key relative to the database's
// prefix: the layout src/query/local-layout.ts reads (`shard=<id>/...`, `global/...`). A file is
// written to `<root>/<name>/<version>.partial/<path>` first, synced, checked (size; the ETag the
// GET answered equals the manifest's; the MD5 of the bytes when the ETag is a plain MD5) and only
// then renamed into place: a file at its final path is complete and verified, so a restart fetches
// it again never; a partial file is continued with a range request from where it stopped.
//
// Failures: an S3 error marked retryable (unavailable, throttled), a broken stream or a checksum
// mismatch is retried with exponential backoff, at most `attemptsMax` times per file; anything
// else (the object is gone, its ETag changed, access denied, a full disk) fails the file at once.
// One failed file fails its job (the other files of that job stop) and nothing else: other jobs
// and databases go on. A failed replica stays failed until a reload stages a new version, so its
// files (complete and partial) are deleted at once: a full disk gets its space back. A job started
// again because a move added shards to a version this node serves fails for the added shards
// only: the shards it had loaded stay loaded, and their files (global ones included) stay.
//
// Lazy databases: a lazy job downloads only the metadata (files of at most `smallFileBytesMax`,
// files matching the database's `metadataPattern`) and the Parquet data files' footers (into
// `<version>.meta/`, parsed by src/data/parquet-footer.ts), then records `loaded`. Its other data
// files are fetched whole on first use (`ensureLazy`, called by the query route before a shard's
// map runs) with the same verified download, into the node's LazyCache (src/data/lazy-cache.ts):
// bounded, least recently used evicted, files pinned while a query reads them. Recording stays
// in one place (`recordOutcome`): a lazy job records `loaded`/`failed` like any other, and the
// cache's `evicted` is shown through `progress()`, never recorded.
//
// Clean-up: version directories this node no longer needs (a dropped database, a version replaced
// by a reload, every shard moved away) are deleted on the next pass; their jobs stop first. When
// a placement move adds a shard to a version this node holds, or takes one of several away, the
// version's job starts again over its new shards (files on disk count as done) and the files of
// the shards taken away are deleted.
//
// Called by: src/node/ (start/stop, wiring), src/api/ (progress, through the node's wiring).

import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NodeId } from '../base/ids.ts';
import type { DatabaseRecord, DatabasesCommand, DatabaseVersion, ManifestFile } from '../codec/meta-databases.ts';
import { assignedNodes, replicaView } from '../models/meta-databases.ts';
import {
  isParquet,
  LazyCache,
  lazyLimitsDefault,
  lazySplit,
  type CacheFigures,
  type LazyLimits,
} from './lazy-cache.ts';
import { isObjectStoreError, ObjectStoreError, type ObjectStore } from './object-store.ts';
import { footerLength, footerRows } from './parquet-footer.ts';

export interface DownloadLimits {
  /** Files downloading at once on this node, across every job. */
  readonly filesInFlightMax: number;
  /** Attempts per file before its replica fails. */
  readonly attemptsMax: number;
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** How often the catalog is looked at. */
  readonly pollMs: number;
}

export const downloadLimitsDefault: DownloadLimits = {
  filesInFlightMax: 8,
  attemptsMax: 5,
  backoffMsMin: 200,
  backoffMsMax: 5000,
  pollMs: 500,
};

export interface CatalogView {
  readonly databases: readonly DatabaseRecord[];
  /** The registered ACTIVE nodes (what `replicas: "all"` means now). */
  readonly active: readonly NodeId[];
}

export interface DownloadsOptions {
  readonly nodeId: NodeId;
  /** `<data dir>/databases`. */
  readonly root: string;
  readonly store: ObjectStore;
  readonly catalog: () => CatalogView;
  /**
   * Whether this node's catalog is current (its meta model has applied what the meta group has
   * committed, as far as it knows): before that, a restarting node would see an old catalog and
   * remove files it still needs. No pass runs until then.
   */
  readonly catalogCurrent: () => boolean;
  /** Proposes a replica state through the meta log (forwarded to its leader); true when applied. */
  readonly record: (command: DatabasesCommand) => Promise<boolean>;
  readonly nowMs: () => number;
  readonly limits?: DownloadLimits;
  readonly log?: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
  /** Told of every byte written (for the metrics). */
  readonly onBytes?: (database: string, bytes: number) => void;
  /** The lazy databases' cache bound and what counts as their metadata. */
  readonly lazy?: LazyLimits;
  /** Told of every S3 request and every cache hit, miss and eviction (for the metrics). */
  readonly onEvent?: (database: string, event: DownloadEvent) => void;
}

export type DownloadEvent = 's3_request' | 'cache_hit' | 'cache_miss' | 'cache_eviction';

/** One job's progress on this node (what GET /v1/databases/:name shows per replica). */
export interface JobProgress {
  readonly database: string;
  readonly version: number;
  readonly shards: readonly string[];
  /** `evicted`: a lazy replica, loaded, some of whose fetched files the cache has evicted since. */
  readonly state: 'loading' | 'loaded' | 'failed' | 'evicted';
  readonly lazy: boolean;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly filesDone: number;
  readonly filesTotal: number;
  /** Bytes this process fetched from S3 for the job (what a restart did not fetch again is not in it). */
  readonly bytesFetched: number;
  /** S3 requests this process sent for the job (what S3 bills per request). */
  readonly s3Requests: number;
  /** A lazy job's cache on this node (null for a full download). */
  readonly cache: CacheFigures | null;
  /** A lazy job's rows, from its Parquet footers (null for a full download or before they are read). */
  readonly footerRows: number | null;
  /** Bytes per second since the job started (over the bytes this run fetched). */
  readonly bytesPerSecond: number;
  /** Seconds to go at that rate; null when unknown. */
  readonly etaSeconds: number | null;
  readonly error: string | null;
}

/** The files one node downloads for one version: its shards' and the global files. */
export function jobFiles(
  record: DatabaseRecord,
  version: DatabaseVersion,
  node: NodeId,
  active: readonly NodeId[],
): { shards: string[]; files: ManifestFile[] } {
  const shards = version.shards.filter((shard) =>
    assignedNodes(version, shard.shard, record.replicas, active).includes(node),
  );
  if (shards.length === 0) return { shards: [], files: [] };
  return { shards: shards.map((shard) => shard.shard), files: [...version.global, ...shards.flatMap((s) => s.files)] };
}

/** Deletes a failed job's files (complete, partial, footers) that the shards it loaded before do not need. */
function removeFilesNotNeeded(job: Job, dir: string): void {
  for (const file of [...job.files, ...(job.lazyData ?? [])])
    if (!job.neededBefore.has(file.path)) removeFile(dir, file);
}

/** Deletes every copy of a file: complete, partial, and its Parquet footer. */
function removeFile(dir: string, file: ManifestFile): void {
  for (const path of [
    join(dir, file.path),
    join(`${dir}.partial`, file.path),
    join(`${dir}.meta`, `${file.path}.footer`),
  ])
    rmSync(path, { force: true });
}

export function versionDir(root: string, name: string, version: number): string {
  return join(root, name, String(version));
}

/** Whether the file is at its final path with its size: complete and verified (see the header). */
export function isComplete(dir: string, file: ManifestFile): boolean {
  try {
    const stat = statSync(join(dir, file.path));
    return stat.isFile() && stat.size === file.bytes;
  } catch {
    return false;
  }
}

class DownloadError extends Error {
  override readonly name = 'DownloadError';
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean) {
    super(message);
    this.retryable = retryable;
  }
}

interface Job {
  readonly key: string;
  readonly database: string;
  readonly version: number;
  readonly bucket: string;
  readonly prefix: string;
  readonly shards: readonly string[];
  /**
   * The shards of `shards` recorded loaded when the job started (a move added the others to a
   * version this node holds): a failure is recorded for the others only, and only the files
   * these do not need are deleted, for they go on serving.
   */
  readonly loadedBefore: ReadonlySet<string>;
  /** The paths of the files the shards of `loadedBefore` need (global files included). */
  readonly neededBefore: ReadonlySet<string>;
  /** The files fetched whole at load: every file, or a lazy job's metadata files. */
  readonly files: readonly ManifestFile[];
  /** A lazy job's data files (fetched on first use); their Parquet footers are fetched at load. */
  readonly lazyData: readonly ManifestFile[] | null;
  readonly startedMs: number;
  bytesDone: number;
  bytesFetched: number;
  s3Requests: number;
  filesDone: number;
  footerRows: number;
  state: 'loading' | 'loaded' | 'failed';
  error: string | null;
  /** Set when the job is no longer wanted, or one file failed: the others stop. */
  stopped: boolean;
  /** The outcome is recorded in the log (or was not needed). */
  recorded: boolean;
}

const plainMd5 = /^[0-9a-f]{32}$/u;

export class DatabaseDownloads {
  private readonly options: DownloadsOptions;
  private readonly limits: DownloadLimits;
  private readonly jobs = new Map<string, Job>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private passing = false;
  private readonly lazyLimits: LazyLimits;
  private readonly cache: LazyCache;
  /** Lazy fetches under way, by absolute path: queries wanting the same file share one. */
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(options: DownloadsOptions) {
    this.options = options;
    this.limits = options.limits ?? downloadLimitsDefault;
    this.lazyLimits = options.lazy ?? lazyLimitsDefault;
    for (const [name, value] of Object.entries({ ...this.limits, ...this.lazyLimits }))
      if (!Number.isSafeInteger(value) || value < 1) throw new Error(`downloads: ${name} must be a positive integer`);
    this.cache = new LazyCache(this.lazyLimits.cacheBytesMax, (path, key) => {
      rmSync(path, { force: true });
      this.options.onEvent?.(key.slice(0, key.lastIndexOf('/')), 'cache_eviction');
    });
    mkdirSync(options.root, { recursive: true });
  }

  start(): void {
    this.timer = setInterval(() => {
      void this.pass();
    }, this.limits.pollMs);
    void this.pass();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const job of this.jobs.values()) job.stopped = true;
  }

  /** Every job of this node (each database version it holds shards of). */
  allProgress(): JobProgress[] {
    return [...this.jobs.values()].map((job) => this.describe(job));
  }

  /** This node's jobs of the database, one per version it holds shards of. */
  progress(database: string): JobProgress[] {
    return [...this.jobs.values()].filter((job) => job.database === database).map((job) => this.describe(job));
  }

  /**
   * Makes the named files (paths relative to the prefix) of a lazy database version local on this
   * node and pins them in the cache until the returned release is called: a cached file is a hit,
   * another is fetched whole (verified like any download; queries wanting the same file share one
   * fetch), then admitted, evicting the least recently used unpinned files over the bound. Files
   * fetched at load (metadata) and files of a database that is not lazy need nothing. Rejects with
   * an ObjectStoreError when a file cannot be had.
   */
  async ensureLazy(database: string, version: number, paths: readonly string[]): Promise<() => void> {
    const job = this.jobs.get(`${database}/${version}`);
    const nothing = (): void => undefined;
    if (job === undefined || job.lazyData === null) return nothing;
    if (job.state !== 'loaded')
      throw new ObjectStoreError('DRAM_ERR_S3_UNAVAILABLE', `${database} version ${version} is not loaded here`);
    const wanted = new Set(paths);
    const dir = versionDir(this.options.root, database, version);
    const pinned: string[] = [];
    const release = (): void => {
      for (const path of pinned.splice(0)) this.cache.unpin(path);
    };
    try {
      await Promise.all(
        job.lazyData
          .filter((file) => wanted.has(file.path))
          .map(async (file) => {
            const path = join(dir, file.path);
            if (this.cache.pinIfCached(job.key, path)) {
              pinned.push(path);
              this.options.onEvent?.(database, 'cache_hit');
              return;
            }
            this.cache.miss(job.key);
            this.options.onEvent?.(database, 'cache_miss');
            await this.fetchShared(job, dir, file, path);
            this.cache.admit(job.key, path, file.bytes, true);
            pinned.push(path);
          }),
      );
    } catch (error) {
      release();
      throw asStoreError(error);
    }
    return release;
  }

  /** One fetch per file at a time (within the node's files-in-flight bound). */
  private async fetchShared(job: Job, dir: string, file: ManifestFile, path: string): Promise<void> {
    let fetching = this.fetching.get(path);
    if (fetching === undefined) {
      fetching = (async () => {
        await this.slot();
        try {
          await this.fetchFile(job, dir, file, true);
        } finally {
          this.release();
        }
      })().finally(() => this.fetching.delete(path));
      this.fetching.set(path, fetching);
    }
    await fetching;
  }

  /**
   * A lazy job loaded before (a restart): its data files on disk go into the cache, oldest first,
   * and its footers (checked when it loaded) are counted again.
   */
  private adoptLazy(job: Job, dir: string): void {
    for (const file of footersOf(job)) {
      const path = join(`${dir}.meta`, `${file.path}.footer`);
      const rows = existsSync(path) ? footerRows(readFileSync(path)) : 0;
      if (typeof rows === 'number') job.footerRows += rows;
    }
    this.admitLazyFiles(job, dir);
  }

  /**
   * A placement move gave this node a shard of a version it holds, or took one away: the job
   * for the version is started again over its new shards (the files on disk count as done), and
   * the files only the old shards had are deleted (complete, partial and footers).
   */
  private replaceJob(known: Job, files: readonly ManifestFile[], dir: string): void {
    known.stopped = true;
    this.jobs.delete(known.key);
    this.cache.dropVersion(known.key);
    const kept = new Set(files.map((file) => file.path));
    for (const file of [...known.files, ...(known.lazyData ?? [])]) if (!kept.has(file.path)) removeFile(dir, file);
    this.options.log?.('info', 'database shards changed', { database: known.database, version: known.version });
  }

  /** Admits a lazy job's data files already on disk into the cache, least recently used first. */
  private admitLazyFiles(job: Job, dir: string): void {
    const found = (job.lazyData ?? [])
      .filter((file) => isComplete(dir, file))
      .map((file) => ({ file, path: join(dir, file.path) }))
      .map((entry) => ({ ...entry, usedMs: statSync(entry.path).mtimeMs }))
      .sort((a, b) => a.usedMs - b.usedMs);
    for (const { file, path } of found) this.cache.admit(job.key, path, file.bytes, false);
  }

  private describe(job: Job): JobProgress {
    const bytesTotal = job.files.reduce((sum, file) => sum + file.bytes, 0);
    const seconds = Math.max(0.001, (this.options.nowMs() - job.startedMs) / 1000);
    const rate = job.bytesFetched / seconds;
    const left = bytesTotal - job.bytesDone;
    const lazy = job.lazyData !== null;
    const cache = lazy ? this.cache.figures(job.key) : null;
    return {
      database: job.database,
      version: job.version,
      shards: job.shards,
      state: job.state === 'loaded' && cache !== null && cache.evictedFiles > 0 ? 'evicted' : job.state,
      lazy,
      bytesDone: job.bytesDone,
      bytesTotal,
      filesDone: job.filesDone,
      filesTotal: job.files.length + footersOf(job).length,
      bytesFetched: job.bytesFetched,
      s3Requests: job.s3Requests,
      cache,
      footerRows: lazy && job.state !== 'loading' ? job.footerRows : null,
      bytesPerSecond: Math.round(rate),
      etaSeconds: job.state !== 'loading' ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
      error: job.error,
    };
  }

  /** One look at the catalog: start what is wanted, record what finished, remove what is not wanted. */
  async pass(): Promise<void> {
    if (this.passing || !this.options.catalogCurrent()) return;
    this.passing = true;
    try {
      const { databases, active } = this.options.catalog();
      const wanted = new Set<string>();
      for (const record of databases)
        for (const version of [record.current, record.next]) {
          if (version === null) continue;
          const { shards, files } = jobFiles(record, version, this.options.nodeId, active);
          if (shards.length === 0) continue;
          const key = `${record.name}/${version.version}`;
          wanted.add(key);
          this.keep(record, version, shards, files, key);
        }
      for (const [key, job] of this.jobs)
        if (!wanted.has(key)) {
          job.stopped = true;
          this.jobs.delete(key);
          this.cache.dropVersion(key);
        }
      this.removeUnwanted(wanted);
      for (const job of this.jobs.values()) if (!job.recorded && job.state !== 'loading') await this.recordOutcome(job);
    } catch (error) {
      this.options.log?.('warn', 'database downloads: pass failed', { err: error });
    } finally {
      this.passing = false;
    }
  }

  private keep(
    record: DatabaseRecord,
    version: DatabaseVersion,
    shards: string[],
    files: ManifestFile[],
    key: string,
  ): void {
    const recorded = shards.map((shard) => replicaView(record, version.version, shard, this.options.nodeId));
    const known = this.jobs.get(key);
    const dir = versionDir(this.options.root, record.name, version.version);
    if (known !== undefined && (sameShards(known.shards, shards) || known.state === 'loading')) {
      // Recorded by the log (perhaps by this node before a restart): nothing more to do. A job
      // whose shards changed while it loads finishes first (its files are needed either way).
      if (known.state !== 'loading' && recorded.every((view) => view.state === known.state)) known.recorded = true;
      return;
    }
    if (known !== undefined) this.replaceJob(known, files, dir);
    const split = record.lazy ? lazySplit(files, record.metadataPattern, this.lazyLimits) : undefined;
    const loadedBefore = new Set(shards.filter((_, at) => recorded[at]?.state === 'loaded'));
    const neededBefore = new Set(
      loadedBefore.size === 0
        ? []
        : [
            ...version.global,
            ...version.shards.filter((shard) => loadedBefore.has(shard.shard)).flatMap((shard) => shard.files),
          ].map((file) => file.path),
    );
    const job: Job = {
      key,
      database: record.name,
      version: version.version,
      bucket: record.bucket,
      prefix: record.prefix,
      shards,
      loadedBefore,
      neededBefore,
      files: split?.metadata ?? files,
      lazyData: split?.data ?? null,
      startedMs: this.options.nowMs(),
      bytesDone: 0,
      bytesFetched: 0,
      s3Requests: 0,
      filesDone: 0,
      footerRows: 0,
      state: 'loading',
      error: null,
      stopped: false,
      recorded: false,
    };
    this.jobs.set(key, job);
    if (recorded.every((view) => view.state === 'loaded')) {
      // Loaded before (this run or an earlier one): report what is on disk, fetch nothing.
      job.state = 'loaded';
      job.recorded = true;
      for (const file of job.files)
        if (isComplete(dir, file)) {
          job.filesDone++;
          job.bytesDone += file.bytes;
        }
      this.adoptLazy(job, dir);
      return;
    }
    const failed = recorded.find((view) => view.state === 'failed');
    if (failed !== undefined) {
      job.state = 'failed';
      job.error = failed.error;
      job.recorded = true;
      return;
    }
    // A job started again over new shards keeps the data files its old shards fetched on first use.
    if (known !== undefined) this.admitLazyFiles(job, dir);
    void this.run(job, dir);
  }

  private async run(job: Job, dir: string): Promise<void> {
    this.options.log?.('info', 'database download started', {
      database: job.database,
      version: job.version,
      shards: job.shards,
      files: job.files.length,
      lazy: job.lazyData !== null,
    });
    // A lazy job fetches its metadata files whole and its Parquet data files' footers.
    const items = [
      ...job.files.map((file) => ({ file, footer: false })),
      ...footersOf(job).map((file) => ({ file, footer: true })),
    ];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length && !job.stopped) {
        const item = items[next++];
        if (item === undefined) return;
        await this.slot();
        try {
          // Checked again: the job may have been stopped while this worker waited for a slot.
          if (!isStopped(job))
            await (item.footer ? this.fetchFooter(job, dir, item.file) : this.fetchFile(job, dir, item.file, false));
        } finally {
          this.release();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.limits.filesInFlightMax, items.length) }, worker));
      if (job.stopped) return;
      job.state = 'loaded';
      rmSync(`${dir}.partial`, { recursive: true, force: true });
      this.options.log?.('info', 'database downloaded', { database: job.database, version: job.version });
    } catch (error) {
      job.stopped = true;
      job.state = 'failed';
      job.error = error instanceof Error ? error.message : String(error);
      // A failed version is never served nor resumed (a reload stages a new one): give its space
      // back, but for the files of the shards it still serves (loaded before a move added more).
      if (job.loadedBefore.size === 0)
        for (const path of [dir, `${dir}.partial`]) rmSync(path, { recursive: true, force: true });
      else removeFilesNotNeeded(job, dir);
      this.options.log?.('warn', 'database download failed', {
        database: job.database,
        version: job.version,
        error: job.error,
      });
    }
    if (this.jobs.get(job.key) === job) await this.recordOutcome(job);
  }

  private async recordOutcome(job: Job): Promise<void> {
    if (job.recorded || job.state === 'loading') return;
    const recorded = await this.options
      .record({
        type: 'db.replica',
        name: job.database,
        version: job.version,
        node: this.options.nodeId,
        // A failure is the new shards' alone: those loaded before go on serving.
        shards: job.state === 'failed' ? job.shards.filter((shard) => !job.loadedBefore.has(shard)) : job.shards,
        state: job.state,
        error: job.error?.slice(0, 1000) ?? null,
        atMs: this.options.nowMs(),
      })
      .catch(() => false);
    // Not applied: the next pass tries again (a state already recorded marks the job recorded there).
    if (recorded) job.recorded = true;
    else
      this.options.log?.('warn', 'database replica state not recorded yet', {
        database: job.database,
        state: job.state,
      });
  }

  /**
   * Downloads one file with retries; throws the reason when it cannot be had. `onDemand`: a lazy
   * job's data file fetched for a query, which the job's load progress does not count.
   */
  private async fetchFile(job: Job, dir: string, file: ManifestFile, onDemand: boolean): Promise<void> {
    if (isComplete(dir, file)) {
      if (onDemand) return;
      job.filesDone++;
      job.bytesDone += file.bytes;
      return;
    }
    await this.retrying(job, file, (counted) => this.fetchOnce(job, dir, file, counted, onDemand));
    if (!onDemand) job.filesDone++;
  }

  /** Fetches a Parquet file's footer (with retries) into `<version>.meta/`, and checks that it parses. */
  private async fetchFooter(job: Job, dir: string, file: ManifestFile): Promise<void> {
    const path = join(`${dir}.meta`, `${file.path}.footer`);
    let footer: Uint8Array | undefined = existsSync(path) ? readFileSync(path) : undefined;
    if (footer === undefined) {
      footer = await this.retrying(job, file, () => this.getFooter(job, file));
      mkdirSync(dirname(path), { recursive: true });
      const partial = `${path}.partial`;
      writeFileSync(partial, footer, { flush: true });
      await rename(partial, path);
    }
    const rows = footerRows(footer);
    if (typeof rows === 'string') throw new Error(`s3://${job.bucket}/${job.prefix}${file.path}: ${rows}`);
    job.footerRows += rows;
    job.filesDone++;
  }

  private async getFooter(job: Job, file: ManifestFile): Promise<Uint8Array> {
    const tail = await this.getRange(job, file, file.bytes - 8, 8);
    const length = footerLength(tail, file.bytes);
    if (typeof length === 'string') throw new DownloadError(length, false);
    if (length + 8 > this.lazyLimits.footerBytesMax)
      throw new DownloadError(`its footer has ${length} bytes, over footerBytesMax`, false);
    return this.getRange(job, file, file.bytes - 8 - length, length + 8);
  }

  private async getRange(job: Job, file: ManifestFile, offset: number, length: number): Promise<Uint8Array> {
    job.s3Requests++;
    this.options.onEvent?.(job.database, 's3_request');
    const body = await this.options.store.get(job.bucket, `${job.prefix}${file.path}`, {
      range: { offset, length },
      bytesMax: length,
    });
    const changed = changedReason(body.info, file);
    if (changed !== undefined) throw new DownloadError(changed, false);
    job.bytesFetched += body.bytes.length;
    this.options.onBytes?.(job.database, body.bytes.length);
    return body.bytes;
  }

  /** Runs `once` until it succeeds, retrying what is worth it with backoff; throws the reason naming the object. */
  private async retrying<T>(
    job: Job,
    file: ManifestFile,
    once: (counted: { bytes: number }) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const counted = { bytes: 0 };
      try {
        return await once(counted);
      } catch (error) {
        job.bytesDone -= counted.bytes;
        const failure = asDownloadError(error);
        const where = `s3://${job.bucket}/${job.prefix}${file.path}`;
        if (!failure.retryable || attempt >= this.limits.attemptsMax || job.stopped)
          throw new Error(
            `${where}: ${failure.message}${failure.retryable ? ` (gave up after ${attempt} attempts)` : ''}`,
            { cause: error },
          );
        const backoff = Math.min(this.limits.backoffMsMax, this.limits.backoffMsMin * 2 ** (attempt - 1));
        this.options.log?.('warn', 'database download retrying', {
          file: where,
          attempt,
          backoffMs: backoff,
          error: failure.message,
        });
        await delay(backoff);
      }
    }
  }

  private async fetchOnce(
    job: Job,
    dir: string,
    file: ManifestFile,
    counted: { bytes: number },
    onDemand: boolean,
  ): Promise<void> {
    const partial = join(`${dir}.partial`, file.path);
    mkdirSync(dirname(partial), { recursive: true });
    let offset = existsSync(partial) ? statSync(partial).size : 0;
    if (offset >= file.bytes) {
      rmSync(partial, { force: true });
      offset = 0;
    }
    const hash = createHash('md5');
    if (offset > 0) await hashFile(partial, hash);
    const key = `${job.prefix}${file.path}`;
    job.s3Requests++;
    this.options.onEvent?.(job.database, 's3_request');
    const stream = await this.options.store.stream(
      job.bucket,
      key,
      file.bytes === 0 ? undefined : { range: { offset, length: file.bytes - offset } },
    );
    const changed = changedReason(stream.info, file);
    if (changed !== undefined) {
      await stream.chunks[Symbol.asyncIterator]().return?.(); // the body is not wanted: free the connection
      throw new DownloadError(changed, false);
    }
    // A lazy job's on-demand fetch is not load progress: `counted` is then never subtracted from it.
    const done = onDemand ? { bytes: 0 } : counted;
    done.bytes += offset;
    if (!onDemand) job.bytesDone += offset;
    const handle = await open(partial, offset === 0 ? 'w' : 'a');
    try {
      for await (const chunk of stream.chunks) {
        if (job.stopped) throw new DownloadError('stopped', false);
        await handle.write(chunk);
        hash.update(chunk);
        done.bytes += chunk.length;
        if (!onDemand) job.bytesDone += chunk.length;
        job.bytesFetched += chunk.length;
        this.options.onBytes?.(job.database, chunk.length);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    const size = statSync(partial).size;
    if (size !== file.bytes) throw new DownloadError(`got ${size} bytes of ${file.bytes}`, true);
    if (plainMd5.test(file.etag)) {
      const md5 = hash.digest('hex');
      if (md5 !== file.etag) {
        rmSync(partial, { force: true });
        throw new DownloadError(`the bytes' MD5 ${md5} is not the ETag ${file.etag}`, true);
      }
    }
    const final = join(dir, file.path);
    mkdirSync(dirname(final), { recursive: true });
    await rename(partial, final);
    syncDirectory(dirname(final));
  }

  private removeUnwanted(wanted: ReadonlySet<string>): void {
    const root = this.options.root;
    for (const name of readdirSync(root)) {
      const base = join(root, name);
      for (const entry of readdirSync(base)) {
        const version = entry.replace(/\.(partial|meta)$/u, '');
        if (wanted.has(`${name}/${version}`)) continue;
        rmSync(join(base, entry), { recursive: true, force: true });
        this.options.log?.('info', 'database files removed', { database: name, version: entry });
      }
      if (readdirSync(base).length === 0) rmSync(base, { recursive: true, force: true });
    }
  }

  private slot(): Promise<void> {
    if (this.inFlight < this.limits.filesInFlightMax) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.inFlight++;
        resolve();
      });
    });
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }
}

/** Why a fetched object is not the manifest's (its ETag or size changed since the listing), or undefined. */
function changedReason(
  info: { readonly etag: string; readonly bytes: number },
  file: ManifestFile,
): string | undefined {
  if (info.etag !== file.etag)
    return `the object changed since it was listed (ETag ${info.etag}, manifest ${file.etag}): reload the database`;
  if (info.bytes !== file.bytes)
    return `the object has ${info.bytes} bytes, the manifest ${file.bytes}: reload the database`;
  return undefined;
}

/** A lazy job's data files whose Parquet footers it fetches at load. */
function footersOf(job: Job): readonly ManifestFile[] {
  return job.lazyData?.filter(isParquet) ?? [];
}

/** A lazy fetch's failure as the query answers it: an object store error with the cause's code. */
function asStoreError(error: unknown): ObjectStoreError {
  if (isObjectStoreError(error)) return error;
  const cause = error instanceof Error ? error.cause : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new ObjectStoreError(isObjectStoreError(cause) ? cause.code : 'DRAM_ERR_S3_FAILED', message, { cause: error });
}

function sameShards(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((shard, k) => shard === b[k]);
}

function isStopped(job: Job): boolean {
  return job.stopped;
}

function asDownloadError(error: unknown): DownloadError {
  if (error instanceof DownloadError) return error;
  if (isObjectStoreError(error)) return new DownloadError(`${error.code}: ${error.message}`, error.retryable);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new DownloadError(`disk full: ${error instanceof Error ? error.message : String(error)}`, false);
  // A stream cut half way, a socket reset: worth another attempt.
  return new DownloadError(error instanceof Error ? error.message : String(error), true);
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      // A directory's entry (the rename) survives a crash once its directory is synced.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every file system lets a directory be opened for sync; the file itself is synced.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
