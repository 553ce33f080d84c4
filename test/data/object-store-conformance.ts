// The one conformance suite of the object store port (src/data/object-store.ts): every
// implementation must pass it, the in-memory fake (test/data/memory-object-store.test.ts) and the
// S3 adapter against a real s3rver process (test/s3/s3-object-store.test.ts). It checks the port's
// stated semantics: buckets, round trips and ETags, explicit ranges (clipped at the end, refused
// past it), the size limit of `get`, streams, replace and delete, listing in UTF-8 key order with
// paging over more than 1,000 objects (S3's page limit), multipart-sized bodies, and the error
// codes for a missing key, a missing bucket and a server that is gone.
//
// A factory is called once per suite (starting a server is slow); each test works in its own bucket.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isObjectStoreError,
  listAll,
  listPageKeysMax,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreErrorCode,
} from '../../src/data/object-store.ts';

export interface ObjectStoreSubject {
  readonly store: ObjectStore;
  /** A body size that the implementation uploads in parts (or any size, when it has no parts). */
  readonly multipartBytes: number;
  /**
   * A range of an empty object is refused, as S3 does (s3rver aborts the connection instead: with
   * it, the port cannot tell that answer from a failed server, so the suite skips that one check).
   */
  readonly refusesRangeOfEmptyObject: boolean;
  /** Makes the server unreachable for good (the suite's last test). */
  stopServer(): Promise<void>;
  dispose(): Promise<void>;
}

const encoder = new TextEncoder();
const bytesOf = (text: string): Uint8Array => encoder.encode(text);

async function failure(promise: Promise<unknown>): Promise<ObjectStoreErrorCode | 'resolved' | 'foreign'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isObjectStoreError(error) ? error.code : 'foreign';
  }
}

async function pages(store: ObjectStore, bucket: string, prefix: string, pageKeys?: number): Promise<ObjectInfo[][]> {
  const all: ObjectInfo[][] = [];
  for await (const page of store.list(bucket, prefix, pageKeys === undefined ? {} : { pageKeys })) all.push([...page]);
  return all;
}

/** Byte equality without vitest's deep comparison, which is far too slow for megabytes. */
function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  return Buffer.from(left.buffer, left.byteOffset, left.byteLength).equals(right);
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return new Uint8Array(Buffer.concat(parts));
}

/** Puts many small objects, `parallel` at a time. */
async function putMany(store: ObjectStore, bucket: string, keys: readonly string[], parallel: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] ?? '';
      await store.put(bucket, key, bytesOf(key));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

export function objectStoreConformance(name: string, factory: () => Promise<ObjectStoreSubject>): void {
  describe(`object store conformance: ${name}`, () => {
    let subject: ObjectStoreSubject;
    let store: ObjectStore;
    let buckets = 0;
    /** A fresh bucket for one test. */
    const bucket = async (): Promise<string> => {
      const created = `conformance-${++buckets}`;
      await store.createBucket(created);
      return created;
    };

    beforeAll(async () => {
      subject = await factory();
      store = subject.store;
    });
    afterAll(async () => {
      await subject.dispose();
    });

    it('creates a bucket idempotently and refuses an invalid name', async () => {
      const created = await bucket();
      await store.createBucket(created);
      expect(await pages(store, created, '')).toEqual([]);
      expect(await failure(store.createBucket('Not_A_Bucket'))).toBe('DRAM_ERR_S3_FAILED');
    });

    it('round-trips bytes with their size and an ETag that follows the content', async () => {
      const at = await bucket();
      const first = await store.put(at, 'db/shard=1/a.ndjson', bytesOf('{"a":1}\n'));
      expect(first).toMatchObject({ key: 'db/shard=1/a.ndjson', bytes: 8 });
      expect(first.etag).toMatch(/^[^"]+$/);
      expect(await store.head(at, 'db/shard=1/a.ndjson')).toEqual(first);
      const got = await store.get(at, 'db/shard=1/a.ndjson', { bytesMax: 100 });
      expect(got).toEqual({ info: first, offset: 0, bytes: bytesOf('{"a":1}\n') });
      const same = await store.put(at, 'other', bytesOf('{"a":1}\n'));
      expect(same.etag).toBe(first.etag);
      const replaced = await store.put(at, 'db/shard=1/a.ndjson', bytesOf('{"a":2}\n'));
      expect(replaced.etag).not.toBe(first.etag);
      expect((await store.get(at, 'db/shard=1/a.ndjson', { bytesMax: 100 })).bytes).toEqual(bytesOf('{"a":2}\n'));
    });

    it('stores an empty object', async () => {
      const at = await bucket();
      const info = await store.put(at, 'empty', new Uint8Array(0));
      expect(info.bytes).toBe(0);
      expect((await store.get(at, 'empty', { bytesMax: 0 })).bytes).toEqual(new Uint8Array(0));
      if (subject.refusesRangeOfEmptyObject)
        expect(await failure(store.get(at, 'empty', { bytesMax: 10, range: { offset: 0, length: 1 } }))).toBe(
          'DRAM_ERR_S3_INVALID_RANGE',
        );
    });

    it('answers explicit byte ranges, clipped at the end, and refuses one past it', async () => {
      const at = await bucket();
      const info = await store.put(at, 'digits', bytesOf('0123456789'));
      const middle = await store.get(at, 'digits', { bytesMax: 100, range: { offset: 2, length: 3 } });
      expect(middle).toEqual({ info, offset: 2, bytes: bytesOf('234') });
      const tail = await store.get(at, 'digits', { bytesMax: 100, range: { offset: 7, length: 50 } });
      expect(tail).toEqual({ info, offset: 7, bytes: bytesOf('789') });
      const last = await store.get(at, 'digits', { bytesMax: 100, range: { offset: 9, length: 1 } });
      expect(last.bytes).toEqual(bytesOf('9'));
      expect(await failure(store.get(at, 'digits', { bytesMax: 100, range: { offset: 10, length: 1 } }))).toBe(
        'DRAM_ERR_S3_INVALID_RANGE',
      );
      for (const range of [
        { offset: 0, length: 0 },
        { offset: -1, length: 2 },
        { offset: 1.5, length: 2 },
      ])
        expect(await failure(store.get(at, 'digits', { bytesMax: 100, range }))).toBe('DRAM_ERR_S3_INVALID_RANGE');
    });

    it('refuses a get over its byte limit, whole or ranged', async () => {
      const at = await bucket();
      await store.put(at, 'ten', bytesOf('0123456789'));
      expect(await failure(store.get(at, 'ten', { bytesMax: 9 }))).toBe('DRAM_ERR_S3_TOO_LARGE');
      expect(await failure(store.get(at, 'ten', { bytesMax: 3, range: { offset: 0, length: 4 } }))).toBe(
        'DRAM_ERR_S3_TOO_LARGE',
      );
      expect((await store.get(at, 'ten', { bytesMax: 10 })).bytes.length).toBe(10);
      // The refused answers left the store usable.
      expect((await store.get(at, 'ten', { bytesMax: 4, range: { offset: 0, length: 4 } })).bytes).toEqual(
        bytesOf('0123'),
      );
    });

    it('streams an object and a range', async () => {
      const at = await bucket();
      const body = new Uint8Array(randomBytes(300_000));
      const info = await store.put(at, 'blob', body);
      const whole = await store.stream(at, 'blob');
      expect({ info: whole.info, offset: whole.offset, length: whole.length }).toEqual({
        info,
        offset: 0,
        length: body.length,
      });
      expect(sameBytes(await collect(whole.chunks), body)).toBe(true);
      const part = await store.stream(at, 'blob', { range: { offset: 100_000, length: 150_000 } });
      expect({ offset: part.offset, length: part.length, bytes: part.info.bytes }).toEqual({
        offset: 100_000,
        length: 150_000,
        bytes: body.length,
      });
      expect(sameBytes(await collect(part.chunks), body.subarray(100_000, 250_000))).toBe(true);
    });

    it('round-trips a body large enough to go up in parts', async () => {
      const at = await bucket();
      const body = new Uint8Array(randomBytes(subject.multipartBytes));
      const info = await store.put(at, 'large', body);
      expect(info.bytes).toBe(body.length);
      expect(await store.head(at, 'large')).toEqual(info);
      expect(sameBytes((await store.get(at, 'large', { bytesMax: body.length })).bytes, body)).toBe(true);
      expect((await store.put(at, 'large', body)).etag).toBe(info.etag);
    });

    it('reports a missing key and a missing bucket by their codes', async () => {
      const at = await bucket();
      expect(await failure(store.head(at, 'absent'))).toBe('DRAM_ERR_S3_NOT_FOUND');
      expect(await failure(store.get(at, 'absent', { bytesMax: 10 }))).toBe('DRAM_ERR_S3_NOT_FOUND');
      expect(await failure(store.stream(at, 'absent'))).toBe('DRAM_ERR_S3_NOT_FOUND');
      const missing = 'no-such-bucket-here';
      expect(await failure(store.head(missing, 'k'))).toBe('DRAM_ERR_S3_NO_BUCKET');
      expect(await failure(store.get(missing, 'k', { bytesMax: 10 }))).toBe('DRAM_ERR_S3_NO_BUCKET');
      expect(await failure(store.put(missing, 'k', bytesOf('x')))).toBe('DRAM_ERR_S3_NO_BUCKET');
      expect(await failure(pages(store, missing, ''))).toBe('DRAM_ERR_S3_NO_BUCKET');
    });

    it('deletes, and deleting an absent key succeeds', async () => {
      const at = await bucket();
      await store.put(at, 'gone', bytesOf('x'));
      await store.delete(at, 'gone');
      expect(await failure(store.head(at, 'gone'))).toBe('DRAM_ERR_S3_NOT_FOUND');
      await store.delete(at, 'gone');
      expect(await pages(store, at, '')).toEqual([]);
    });

    it('lists only keys under the prefix, in UTF-8 byte order, in pages of the asked size', async () => {
      const at = await bucket();
      const keys = [
        'db/b',
        'db/a',
        'db/shard=2/x',
        'db/shard=10/x',
        'db/global/g',
        'dbx/other',
        'top',
        'db/é',
        'db/z',
        'db/\uff5e',
        'db/\u{1f600}',
      ];
      await putMany(store, at, keys, 4);
      const listed = (await pages(store, at, 'db/')).flat();
      const expected = keys
        .filter((key) => key.startsWith('db/'))
        .sort((a, b) => Buffer.compare(bytesOf(a), bytesOf(b)));
      expect(listed.map((object) => object.key)).toEqual(expected);
      for (const object of listed) expect(object.bytes).toBe(bytesOf(object.key).length);
      const small = await pages(store, at, 'db/', 3);
      expect(small.map((page) => page.length)).toEqual([3, 3, 3]);
      expect(expected.length).toBe(9);
      expect(small.flat().map((object) => object.key)).toEqual(expected);
      expect(await pages(store, at, 'nothing/')).toEqual([]);
    });

    it(`pages through more than ${listPageKeysMax} objects, each once`, async () => {
      const at = await bucket();
      const count = listPageKeysMax + 234;
      const keys = Array.from({ length: count }, (_, k) => `many/shard=${k % 3}/part-${String(k).padStart(5, '0')}`);
      await putMany(store, at, keys, 16);
      const listed = await pages(store, at, 'many/');
      expect(listed.map((page) => page.length)).toEqual([listPageKeysMax, count - listPageKeysMax]);
      expect(listed.flat().map((object) => object.key)).toEqual([...keys].sort());
      expect((await listAll(store, at, 'many/shard=1/', count)).length).toBe(Math.ceil((count - 1) / 3));
      expect(await failure(listAll(store, at, 'many/', count - 1))).toBe('DRAM_ERR_S3_TOO_LARGE');
    });

    it('reports a server that is gone as unavailable (retryable)', async () => {
      const at = await bucket();
      await store.put(at, 'k', bytesOf('x'));
      await subject.stopServer();
      let caught: unknown;
      try {
        await store.get(at, 'k', { bytesMax: 10 });
      } catch (error) {
        caught = error;
      }
      expect(isObjectStoreError(caught) && { code: caught.code, retryable: caught.retryable }).toEqual({
        code: 'DRAM_ERR_S3_UNAVAILABLE',
        retryable: true,
      });
      expect(await failure(pages(store, at, ''))).toBe('DRAM_ERR_S3_UNAVAILABLE');
    });
  });
}
