// The S3 adapter: the object store port (src/data/object-store.ts) over @aws-sdk/client-s3, the one
// place that imports the SDK. It works against AWS S3 and S3-compatible servers (s3rver in
// development and tests, MinIO, ...): an endpoint, a region and path-style addressing are settings;
// credentials come from the SDK's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE, instance roles) unless given explicitly. Request and response checksums are
// "when required", so a server that knows nothing of the SDK's newer CRC headers gets plain bodies.
//
// Invariants: ranges go out as `bytes=<first>-<last>`, never as suffixes; a body larger than
// `multipartThresholdBytes` goes up in parts of `partBytes` (at most `partsInFlightMax` at once),
// and a failed multipart upload is aborted so no parts are left behind; every failure leaves as an
// ObjectStoreError (src/s3/s3-errors.ts). Wired by src/node/ (and `dram dev` for the sample upload).

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type BucketLocationConstraint,
  type CompletedPart,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { assert } from '../base/assert.ts';
import {
  checkRange,
  isObjectStoreError,
  listPageKeysMax,
  ObjectStoreError,
  type ByteRange,
  type ListOptions,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStream,
} from '../data/object-store.ts';
import { objectStoreFailure } from './s3-errors.ts';

export interface S3Settings {
  /** An S3-compatible server's URL (`http://127.0.0.1:4568`); absent: AWS itself. */
  readonly endpoint?: string;
  readonly region: string;
  /** Address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`. */
  readonly pathStyle: boolean;
  /** Explicit credentials; absent: the SDK's standard chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Bodies over this many bytes are uploaded in parts. */
  readonly multipartThresholdBytes: number;
  readonly partBytes: number;
  readonly partsInFlightMax: number;
  /** Attempts per request, the SDK's own retries with backoff included. */
  readonly attemptsMax: number;
  readonly connectTimeoutMs: number;
  /** Time allowed without a byte moving on a request's socket. */
  readonly requestTimeoutMs: number;
}

/** S3's limits on multipart uploads: every part but the last at least 5 MiB, at most 10,000 parts. */
export const partBytesMin = 5 * 1024 * 1024;
export const partsMax = 10_000;

export const s3SettingsDefault = {
  region: 'us-east-1',
  pathStyle: false,
  multipartThresholdBytes: 16 * 1024 * 1024,
  partBytes: 8 * 1024 * 1024,
  partsInFlightMax: 4,
  attemptsMax: 3,
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
} as const satisfies Omit<S3Settings, 'endpoint' | 'credentials'>;

/** What this store asked of S3 (what S3 bills): operations by SDK command name, and body bytes. */
export interface S3Traffic {
  readonly operations: Readonly<Record<string, number>>;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export class S3ObjectStore implements ObjectStore {
  readonly #client: S3Client;
  readonly #settings: S3Settings;
  readonly #operations = new Map<string, number>();
  #bytesSent = 0;
  #bytesReceived = 0;

  constructor(settings: S3Settings) {
    assert(settings.partBytes >= partBytesMin, `partBytes must be at least ${partBytesMin} (S3's part minimum)`);
    assert(settings.multipartThresholdBytes >= settings.partBytes, 'multipartThresholdBytes must be >= partBytes');
    assert(settings.partsInFlightMax >= 1 && settings.attemptsMax >= 1, 'partsInFlightMax and attemptsMax >= 1');
    this.#settings = settings;
    this.#client = new S3Client({
      region: settings.region,
      forcePathStyle: settings.pathStyle,
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
      ...(settings.credentials === undefined ? {} : { credentials: { ...settings.credentials } }),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: settings.attemptsMax,
      requestHandler: { connectionTimeout: settings.connectTimeoutMs, requestTimeout: settings.requestTimeoutMs },
    });
    // Counted once per operation (the initialize step runs before the SDK's retries).
    this.#client.middlewareStack.add(
      (next, context) => (args) => {
        const name = context.commandName ?? 'unknown';
        this.#operations.set(name, (this.#operations.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'dramOperationCounter' },
    );
  }

  traffic(): S3Traffic {
    return {
      operations: Object.fromEntries(this.#operations),
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
    };
  }

  /** Closes the client's sockets; the store takes no request after. */
  close(): void {
    this.#client.destroy();
  }

  async createBucket(bucket: string): Promise<void> {
    const where = `create bucket ${bucket}`;
    try {
      await this.#client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // Outside us-east-1, S3 wants the region restated in the body.
          ...(this.#settings.region === 'us-east-1'
            ? {}
            : { CreateBucketConfiguration: { LocationConstraint: this.#settings.region as BucketLocationConstraint } }),
        }),
      );
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      if (name === 'BucketAlreadyOwnedByYou') return;
      // Some servers answer BucketAlreadyExists to the owner too: ours if we may read it.
      if (name !== 'BucketAlreadyExists') throw objectStoreFailure(where, error);
      await this.#send(where, () => this.#client.send(new HeadBucketCommand({ Bucket: bucket })));
    }
  }

  async *list(bucket: string, prefix: string, options?: ListOptions): AsyncIterable<readonly ObjectInfo[]> {
    const pageKeys = Math.min(options?.pageKeys ?? listPageKeysMax, listPageKeysMax);
    let token: string | undefined;
    do {
      const answer = await this.#send(`list s3://${bucket}/${prefix}`, () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            MaxKeys: pageKeys,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        ),
      );
      const page = (answer.Contents ?? []).map((item) => ({
        key: item.Key ?? '',
        bytes: item.Size ?? 0,
        etag: unquote(item.ETag),
      }));
      if (page.length > 0) yield page;
      const next = answer.IsTruncated === true ? answer.NextContinuationToken : undefined;
      // A server that hands back the token it was given would page forever.
      if (next !== undefined && next === token)
        throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `list s3://${bucket}/${prefix}: the listing does not advance`);
      token = next;
    } while (token !== undefined);
  }

  async head(bucket: string, key: string): Promise<ObjectInfo> {
    const where = `head s3://${bucket}/${key}`;
    try {
      const answer = await this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { key, bytes: answer.ContentLength ?? 0, etag: unquote(answer.ETag) };
    } catch (error) {
      const failure = objectStoreFailure(where, error);
      // A HEAD answer has no body, so a missing bucket looks like a missing key: ask the bucket.
      if (failure.code === 'DRAM_ERR_S3_NOT_FOUND') await this.#checkBucket(bucket);
      throw failure;
    }
  }

  async get(
    bucket: string,
    key: string,
    options: { readonly range?: ByteRange; readonly bytesMax: number },
  ): Promise<ObjectBody> {
    const opened = await this.stream(bucket, key, options.range === undefined ? {} : { range: options.range });
    if (opened.length > options.bytesMax) {
      await discard(opened.chunks);
      throw new ObjectStoreError(
        'DRAM_ERR_S3_TOO_LARGE',
        `s3://${bucket}/${key}: ${opened.length} bytes, over the limit of ${options.bytesMax}`,
      );
    }
    const bytes = new Uint8Array(opened.length);
    let filled = 0;
    for await (const chunk of opened.chunks) {
      if (filled + chunk.length > bytes.length)
        throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `s3://${bucket}/${key}: more bytes than announced`);
      bytes.set(chunk, filled);
      filled += chunk.length;
    }
    if (filled !== bytes.length)
      throw new ObjectStoreError('DRAM_ERR_S3_UNAVAILABLE', `s3://${bucket}/${key}: body ended early`);
    return { info: opened.info, offset: opened.offset, bytes };
  }

  async stream(bucket: string, key: string, options?: { readonly range?: ByteRange }): Promise<ObjectStream> {
    const where = `get s3://${bucket}/${key}`;
    const range = options?.range;
    if (range !== undefined) checkRange(range, where);
    const answer = await this.#getObject(where, bucket, key, range);
    const length = answer.ContentLength ?? 0;
    const total = range === undefined ? length : totalFromContentRange(answer.ContentRange);
    if (total === undefined) {
      await discard(bodyChunks(where, answer));
      throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `${where}: a ranged answer without a usable Content-Range`);
    }
    return {
      info: { key, bytes: total, etag: unquote(answer.ETag) },
      offset: range?.offset ?? 0,
      length,
      chunks: this.#counted(bodyChunks(where, answer)),
    };
  }

  async put(bucket: string, key: string, bytes: Uint8Array): Promise<ObjectInfo> {
    if (bytes.length > this.#settings.multipartThresholdBytes) return this.#putInParts(bucket, key, bytes);
    const answer = await this.#send(`put s3://${bucket}/${key}`, () =>
      this.#client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length })),
    );
    this.#bytesSent += bytes.length;
    return { key, bytes: bytes.length, etag: unquote(answer.ETag) };
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.#send(`delete s3://${bucket}/${key}`, () =>
      this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    );
  }

  async *#counted(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      this.#bytesReceived += chunk.length;
      yield chunk;
    }
  }

  /** Throws DRAM_ERR_S3_NO_BUCKET when the bucket is missing (HEAD answers carry no error name). */
  async #checkBucket(bucket: string): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (error) {
      const failure = objectStoreFailure(`head bucket ${bucket}`, error);
      if (failure.code === 'DRAM_ERR_S3_NOT_FOUND')
        throw new ObjectStoreError('DRAM_ERR_S3_NO_BUCKET', `no bucket "${bucket}"`, { cause: error });
      throw failure;
    }
  }

  async #getObject(
    where: string,
    bucket: string,
    key: string,
    range: ByteRange | undefined,
  ): Promise<GetObjectCommandOutput> {
    return this.#send(where, () =>
      this.#client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
        }),
      ),
    );
  }

  async #putInParts(bucket: string, key: string, bytes: Uint8Array): Promise<ObjectInfo> {
    const where = `put s3://${bucket}/${key} in parts`;
    const partBytes = Math.max(this.#settings.partBytes, Math.ceil(bytes.length / partsMax));
    const created = await this.#send(where, () =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })),
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `${where}: no upload id`);
    try {
      const partCount = Math.ceil(bytes.length / partBytes);
      const parts: CompletedPart[] = new Array<CompletedPart>(partCount);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < partCount) {
          const index = next++;
          const body = bytes.subarray(index * partBytes, Math.min(bytes.length, (index + 1) * partBytes));
          const answer = await this.#send(`${where}, part ${index + 1}`, () =>
            this.#client.send(
              new UploadPartCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: index + 1,
                Body: body,
                ContentLength: body.length,
              }),
            ),
          );
          this.#bytesSent += body.length;
          parts[index] = { PartNumber: index + 1, ETag: answer.ETag };
        }
      };
      await Promise.all(Array.from({ length: Math.min(partCount, this.#settings.partsInFlightMax) }, worker));
      const completed = await this.#send(where, () =>
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
      return { key, bytes: bytes.length, etag: unquote(completed.ETag) };
    } catch (error) {
      // Leave no parts behind (they cost storage on S3); the upload's own error is the one to report.
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw objectStoreFailure(where, error);
    }
  }

  async #send<Output>(where: string, request: () => Promise<Output>): Promise<Output> {
    try {
      return await request();
    } catch (error) {
      throw objectStoreFailure(where, error);
    }
  }
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/gu, '');
}

/** The object's size from `bytes <first>-<last>/<size>`. */
function totalFromContentRange(contentRange: string | undefined): number | undefined {
  const match = /^bytes \d+-\d+\/(\d+)$/u.exec(contentRange ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

async function* bodyChunks(where: string, answer: GetObjectCommandOutput): AsyncGenerator<Uint8Array> {
  const body = answer.Body as unknown;
  if (body === undefined) return;
  if (typeof body !== 'object' || body === null || !(Symbol.asyncIterator in body))
    throw new ObjectStoreError('DRAM_ERR_S3_FAILED', `${where}: the SDK returned a body that is not a stream`);
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) yield chunk;
  } catch (error) {
    throw isObjectStoreError(error) ? error : objectStoreFailure(where, error);
  }
}

/** Abandons a body: starting and returning its iteration destroys the SDK's stream and its socket. */
async function discard(chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const iterator = chunks[Symbol.asyncIterator]();
  try {
    await iterator.next();
    await iterator.return?.();
  } catch {
    // the body is abandoned either way
  }
}
