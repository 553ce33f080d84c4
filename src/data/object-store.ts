// The object store port: what the data plane needs from S3, declared here by its user. The S3 adapter
// (src/s3/s3-object-store.ts, the only importer of the AWS SDK) implements it against AWS S3 or an
// S3-compatible server; the in-memory fake (src/data/memory-object-store.ts) implements it for the
// simulator and unit tests. test/data/object-store-conformance.ts is the one suite both must pass.
//
// Semantics every implementation keeps:
//  - keys are listed in ascending UTF-8 byte order (S3's order), one page at a time, each page at
//    most `listPageKeysMax` keys; the pages together list every key under the prefix exactly once.
//  - a byte range is explicit, `{ offset, length }`, never a suffix (`bytes=-N`: some S3-compatible
//    servers answer those wrongly); it is clipped at the object's end, and one that starts at or
//    after the end (any range of an empty object) is refused with DRAM_ERR_S3_INVALID_RANGE.
//  - an ETag is the server's opaque string, quotes removed; equal bytes put the same way give equal
//    ETags, so a replica can verify what it downloaded against a manifest.
//  - every failure is an ObjectStoreError with one of the codes below; nothing else escapes.
//
// Who calls it: the sample database upload in `dram dev`, and (planned) database downloads, lazy
// reads and configuration backup in src/data/.

/** One object as a listing or a head reports it. */
export interface ObjectInfo {
  readonly key: string;
  readonly bytes: number;
  /** Without the surrounding quotes S3 puts on it. */
  readonly etag: string;
}

/** An explicit byte range: `length` bytes from `offset` (clipped at the object's end). */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface ObjectBody {
  readonly info: ObjectInfo;
  /** Where `bytes` start in the object (0 for a whole object). */
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export interface ObjectStream {
  readonly info: ObjectInfo;
  readonly offset: number;
  /** How many bytes `chunks` will yield. */
  readonly length: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

export interface ListOptions {
  /** Keys per page, at most `listPageKeysMax` (S3's own limit). */
  readonly pageKeys?: number;
}

export interface ObjectStore {
  /** Creates the bucket; succeeds when it exists already (owned by the caller). */
  createBucket(bucket: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in pages, in key order. */
  list(bucket: string, prefix: string, options?: ListOptions): AsyncIterable<readonly ObjectInfo[]>;
  head(bucket: string, key: string): Promise<ObjectInfo>;
  /** The object (or the range) in memory; refused with DRAM_ERR_S3_TOO_LARGE over `bytesMax`. */
  get(
    bucket: string,
    key: string,
    options: { readonly range?: ByteRange; readonly bytesMax: number },
  ): Promise<ObjectBody>;
  /** The object (or the range) as a stream of chunks, for downloads to disk. */
  stream(bucket: string, key: string, options?: { readonly range?: ByteRange }): Promise<ObjectStream>;
  /** Stores the bytes under the key (replacing any object there); large bodies go up in parts. */
  put(bucket: string, key: string, bytes: Uint8Array): Promise<ObjectInfo>;
  /** Removes the object; succeeds when it is absent already (S3's semantics). */
  delete(bucket: string, key: string): Promise<void>;
}

/** S3's limit on the keys of one ListObjectsV2 page. */
export const listPageKeysMax = 1000;

/** The operating errors of an object store, by code (docs/errors.md, "Object store errors"). */
export const objectStoreErrorCodes = [
  /** The object does not exist. */
  'DRAM_ERR_S3_NOT_FOUND',
  /** The bucket does not exist. */
  'DRAM_ERR_S3_NO_BUCKET',
  /** The credentials are missing, unknown or not allowed this operation. */
  'DRAM_ERR_S3_ACCESS_DENIED',
  /** A range starts at or after the object's end. */
  'DRAM_ERR_S3_INVALID_RANGE',
  /** An object (or range) is larger than the caller's `bytesMax`. */
  'DRAM_ERR_S3_TOO_LARGE',
  /** The server could not be reached, timed out, throttled or failed (5xx): worth retrying later. */
  'DRAM_ERR_S3_UNAVAILABLE',
  /** Any other refusal by the server (a bad bucket name, an unsupported request). */
  'DRAM_ERR_S3_FAILED',
] as const;

export type ObjectStoreErrorCode = (typeof objectStoreErrorCodes)[number];

const objectStoreErrorBrand: unique symbol = Symbol.for('dram.data.ObjectStoreError');

/** Recognised by a Symbol.for brand and its code, so duplicate copies of this module agree. */
export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  readonly [objectStoreErrorBrand] = true;
  readonly code: ObjectStoreErrorCode;
  /** Whether the same request may succeed later unchanged (the server was unavailable). */
  readonly retryable: boolean;

  constructor(code: ObjectStoreErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retryable = code === 'DRAM_ERR_S3_UNAVAILABLE';
  }
}

export function isObjectStoreError(value: unknown): value is ObjectStoreError {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<PropertyKey, unknown>;
  return (
    candidate[objectStoreErrorBrand] === true &&
    objectStoreErrorCodes.includes(candidate['code'] as ObjectStoreErrorCode)
  );
}

/** Where a range falls in an object of `size` bytes: `[start, end)` clipped at the end; one past it is refused. */
export function resolveRange(range: ByteRange, size: number, where: string): { start: number; end: number } {
  if (
    !Number.isSafeInteger(range.offset) ||
    range.offset < 0 ||
    !Number.isSafeInteger(range.length) ||
    range.length < 1
  )
    throw new ObjectStoreError('DRAM_ERR_S3_INVALID_RANGE', `${where}: a range needs offset >= 0 and length >= 1`);
  if (range.offset >= size)
    throw new ObjectStoreError(
      'DRAM_ERR_S3_INVALID_RANGE',
      `${where}: range starts at ${range.offset}, the object has ${size} bytes`,
    );
  return { start: range.offset, end: Math.min(size, range.offset + range.length) };
}

/** Checks a range's shape before a request is sent (where the object's size is not known yet). */
export function checkRange(range: ByteRange, where: string): void {
  resolveRange(range, Number.MAX_SAFE_INTEGER, where);
}

/** Every object under the prefix, refused with DRAM_ERR_S3_TOO_LARGE past `objectsMax`. */
export async function listAll(
  store: ObjectStore,
  bucket: string,
  prefix: string,
  objectsMax: number,
): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const page of store.list(bucket, prefix)) {
    objects.push(...page);
    if (objects.length > objectsMax)
      throw new ObjectStoreError(
        'DRAM_ERR_S3_TOO_LARGE',
        `s3://${bucket}/${prefix} holds more than ${objectsMax} objects`,
      );
  }
  return objects;
}
