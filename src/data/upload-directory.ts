// Lists a local directory and uploads it to an object store under a prefix, file by file (`a/b.parquet` becomes
// `<prefix>/a/b.parquet`), at most `uploadsInFlightMax` at once, and skips a file whose object
// already has its size and MD5 ETag (a re-run uploads only what changed). Used by `dram dev` to put
// the sample database into its S3 server; any failure rejects with the store's ObjectStoreError.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { isObjectStoreError, type ObjectStore } from './object-store.ts';

export interface UploadFile {
  /** Relative to the directory, `/`-separated: the key under the prefix. */
  readonly path: string;
  readonly bytes: number;
}

export interface UploadOutcome {
  readonly uploaded: number;
  readonly skipped: number;
  readonly bytes: number;
}

export const uploadsInFlightMax = 8;
/** A directory to upload holds at most this many files (a database's manifest has a limit too). */
export const uploadFilesMax = 100_000;

/** Every file under `dir` (hidden ones included), relative and `/`-separated, in key order. */
export function listDirectory(dir: string): UploadFile[] {
  const files: UploadFile[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else files.push({ path: relative(dir, path).split(sep).join('/'), bytes: stat.size });
      if (files.length > uploadFilesMax) throw new Error(`${dir} holds more than ${uploadFilesMax} files`);
    }
  };
  walk(dir);
  return files.sort((left, right) => Buffer.compare(Buffer.from(left.path), Buffer.from(right.path)));
}

export async function uploadDirectory(
  store: ObjectStore,
  dir: string,
  files: readonly UploadFile[],
  target: { readonly bucket: string; readonly prefix: string },
): Promise<UploadOutcome> {
  const prefix = target.prefix === '' || target.prefix.endsWith('/') ? target.prefix : `${target.prefix}/`;
  let next = 0;
  let uploaded = 0;
  let skipped = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++];
      if (file === undefined) return;
      const key = `${prefix}${file.path}`;
      const body = readFileSync(join(dir, file.path));
      if (await unchanged(store, target.bucket, key, body)) {
        skipped++;
        continue;
      }
      await store.put(target.bucket, key, body);
      uploaded++;
      bytes += body.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(uploadsInFlightMax, files.length) }, worker));
  return { uploaded, skipped, bytes };
}

/** Whether the object already holds these bytes (a single-part ETag is the MD5 of the bytes). */
async function unchanged(store: ObjectStore, bucket: string, key: string, body: Uint8Array): Promise<boolean> {
  try {
    const info = await store.head(bucket, key);
    return info.bytes === body.length && info.etag === createHash('md5').update(body).digest('hex');
  } catch (error) {
    if (isObjectStoreError(error) && error.code === 'DRAM_ERR_S3_NOT_FOUND') return false;
    throw error;
  }
}
