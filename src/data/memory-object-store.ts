// An in-memory object store: the ObjectStore port's fake, for the seeded simulator and unit tests.
// It keeps S3's semantics as src/data/object-store.ts states them (key order, paging, explicit
// ranges, ETags as the MD5 of the bytes, idempotent delete and bucket creation) and passes the same
// conformance suite as the S3 adapter (test/data/object-store-conformance.ts). No timers, no I/O:
// every call settles on the next microtask. `unavailable` makes every call fail as a stopped
// server would, for tests of retries.

import { createHash } from 'node:crypto';
import {
  listPageKeysMax,
  ObjectStoreError,
  resolveRange,
  type ByteRange,
  type ListOptions,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStream,
} from './object-store.ts';

/** The chunk size `stream` yields (S3 streams arrive in pieces too; readers must not assume one). */
const streamChunkBytes = 64 * 1024;

/** S3's bucket naming rules, reduced to what tells a valid name from an invalid one here. */
const bucketNamePattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/u;

interface StoredObject {
  readonly bytes: Uint8Array;
  readonly etag: string;
}

export class MemoryObjectStore implements ObjectStore {
  /** When true, every call fails with DRAM_ERR_S3_UNAVAILABLE (a stopped server). */
  unavailable = false;
  readonly #buckets = new Map<string, Map<string, StoredObject>>();

  createBucket(bucket: string): Promise<void> {
    return settle(() => {
      this.#checkAvailable();
      if (!bucketNamePattern.test(bucket))
        throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `invalid bucket name "${bucket}"`);
      if (!this.#buckets.has(bucket)) this.#buckets.set(bucket, new Map());
    });
  }

  async *list(bucket: string, prefix: string, options?: ListOptions): AsyncIterable<readonly ObjectInfo[]> {
    const pageKeys = Math.min(options?.pageKeys ?? listPageKeysMax, listPageKeysMax);
    let after: string | undefined;
    for (;;) {
      const page = await settle(() => {
        const objects = this.#bucket(bucket);
        const keys = [...objects.keys()]
          .filter((key) => key.startsWith(prefix) && (after === undefined || compareKeys(key, after) > 0))
          .sort(compareKeys)
          .slice(0, pageKeys);
        return keys.map((key) => describe(key, objects.get(key)));
      });
      const last = page.at(-1);
      if (last === undefined) return;
      yield page;
      after = last.key;
      if (page.length < pageKeys) return;
    }
  }

  head(bucket: string, key: string): Promise<ObjectInfo> {
    return settle(() => describe(key, this.#object(bucket, key)));
  }

  get(
    bucket: string,
    key: string,
    options: { readonly range?: ByteRange; readonly bytesMax: number },
  ): Promise<ObjectBody> {
    return settle(() => {
      const { info, start, end, bytes } = this.#slice(bucket, key, options.range);
      if (end - start > options.bytesMax)
        throw new ObjectStoreError(
          'DRAM_ERR_S3_TOO_LARGE',
          `s3://${bucket}/${key}: ${end - start} bytes, over the limit of ${options.bytesMax}`,
        );
      return { info, offset: start, bytes: bytes.slice(start, end) };
    });
  }

  stream(bucket: string, key: string, options?: { readonly range?: ByteRange }): Promise<ObjectStream> {
    return settle(() => {
      const { info, start, end, bytes } = this.#slice(bucket, key, options?.range);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (let at = start; at < end; at += streamChunkBytes) {
          await Promise.resolve();
          yield bytes.slice(at, Math.min(end, at + streamChunkBytes));
        }
      }
      return { info, offset: start, length: end - start, chunks: chunks() };
    });
  }

  put(bucket: string, key: string, bytes: Uint8Array): Promise<ObjectInfo> {
    return settle(() => {
      const objects = this.#bucket(bucket);
      checkKey(key);
      const stored = { bytes: bytes.slice(), etag: createHash('md5').update(bytes).digest('hex') };
      objects.set(key, stored);
      return describe(key, stored);
    });
  }

  delete(bucket: string, key: string): Promise<void> {
    return settle(() => {
      this.#bucket(bucket).delete(key);
    });
  }

  #checkAvailable(): void {
    if (this.unavailable) throw new ObjectStoreError('DRAM_ERR_S3_UNAVAILABLE', 'object store unavailable');
  }

  #bucket(bucket: string): Map<string, StoredObject> {
    this.#checkAvailable();
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) throw new ObjectStoreError('DRAM_ERR_S3_NO_BUCKET', `no bucket "${bucket}"`);
    return objects;
  }

  #object(bucket: string, key: string): StoredObject {
    const stored = this.#bucket(bucket).get(key);
    if (stored === undefined) throw new ObjectStoreError('DRAM_ERR_S3_NOT_FOUND', `no object s3://${bucket}/${key}`);
    return stored;
  }

  #slice(
    bucket: string,
    key: string,
    range: ByteRange | undefined,
  ): { info: ObjectInfo; start: number; end: number; bytes: Uint8Array } {
    const stored = this.#object(bucket, key);
    const { start, end } =
      range === undefined
        ? { start: 0, end: stored.bytes.length }
        : resolveRange(range, stored.bytes.length, `s3://${bucket}/${key}`);
    return { info: describe(key, stored), start, end, bytes: stored.bytes };
  }
}

/** S3's key rules: 1 to 1024 bytes of UTF-8. */
function checkKey(key: string): void {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes < 1 || bytes > 1024)
    throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `object key must be 1 to 1024 bytes, got ${bytes}`);
}

function describe(key: string, stored: StoredObject | undefined): ObjectInfo {
  if (stored === undefined) throw new ObjectStoreError('DRAM_ERR_S3_NOT_FOUND', `no object ${key}`);
  return { key, bytes: stored.bytes.length, etag: stored.etag };
}

/** S3 lists keys in ascending order of their UTF-8 bytes (not of UTF-16 code units). */
export function compareKeys(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/** Runs `action` on a later microtask, so a throw becomes a rejection, as it is over the network. */
function settle<T>(action: () => T): Promise<T> {
  return Promise.resolve().then(action);
}
