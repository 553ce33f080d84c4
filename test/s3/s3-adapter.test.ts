// What the conformance suite cannot see of the S3 adapter, against its own s3rver process: a large
// body really goes up in parts (and a small one in one request), a get refused over its limit does
// not download the body, and `dram dev`'s sample database path (generate once, upload, upload
// nothing the second time) works against a real server.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devBucket, devSamplePrefix, prepareSample } from '../../src/cli/dev-s3.ts';
import { isObjectStoreError, listAll } from '../../src/data/object-store.ts';
import { partBytesMin, type S3ObjectStore } from '../../src/s3/s3-object-store.ts';
import { startS3rver, type S3rverProcess } from '../../src/s3/s3rver-process.ts';
import { s3rverStore } from './support.ts';

const root = mkdtempSync(join(tmpdir(), 'dram-s3-adapter-'));
let server: S3rverProcess;

beforeAll(async () => {
  server = await startS3rver({ directory: join(root, 's3') });
});
afterAll(async () => {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

function store(): S3ObjectStore {
  return s3rverStore(server, { multipartThresholdBytes: partBytesMin, partBytes: partBytesMin });
}

describe('S3 adapter on s3rver', () => {
  it('uploads a body over the threshold in parts and one under it in one request', async () => {
    const s3 = store();
    try {
      await s3.createBucket('parts');
      await s3.put('parts', 'small', new Uint8Array(partBytesMin));
      const large = 2 * partBytesMin + 1234;
      await s3.put('parts', 'large', new Uint8Array(large).fill(7));
      const { operations, bytesSent } = s3.traffic();
      expect(operations).toMatchObject({
        PutObjectCommand: 1,
        CreateMultipartUploadCommand: 1,
        UploadPartCommand: 3,
        CompleteMultipartUploadCommand: 1,
      });
      expect(operations['AbortMultipartUploadCommand']).toBeUndefined();
      expect(bytesSent).toBe(partBytesMin + large);
      const back = await s3.get('parts', 'large', { bytesMax: large, range: { offset: large - 3, length: 3 } });
      expect([...back.bytes]).toEqual([7, 7, 7]);
    } finally {
      s3.close();
    }
  });

  it('refuses a get over its limit without downloading the body', async () => {
    const s3 = store();
    try {
      await s3.createBucket('limits');
      await s3.put('limits', 'big', new Uint8Array(4 * 1024 * 1024));
      let code: string | undefined;
      try {
        await s3.get('limits', 'big', { bytesMax: 1024 });
      } catch (error) {
        code = isObjectStoreError(error) ? error.code : 'foreign';
      }
      expect(code).toBe('DRAM_ERR_S3_TOO_LARGE');
      expect(s3.traffic().bytesReceived).toBeLessThan(1024 * 1024);
    } finally {
      s3.close();
    }
  });

  it("prepares dram dev's sample database once, and uploads nothing the second time", async () => {
    const dataDir = join(root, 'dev');
    const first = await prepareSample(dataDir, server.endpoint);
    expect(first.url).toBe(`s3://${devBucket}/${devSamplePrefix}/`);
    expect(first.uploaded).toBe(first.files);
    const s3 = store();
    try {
      const listed = await listAll(s3, devBucket, `${devSamplePrefix}/`, 1000);
      expect(listed.length).toBe(first.files);
      expect(listed.reduce((sum, object) => sum + object.bytes, 0)).toBe(first.bytes);
      expect(listed.some((object) => object.key.startsWith(`${devSamplePrefix}/shard=1/`))).toBe(true);
      expect(listed.some((object) => object.key.startsWith(`${devSamplePrefix}/global/`))).toBe(true);
    } finally {
      s3.close();
    }
    const second = await prepareSample(dataDir, server.endpoint);
    expect(second).toEqual({ ...first, uploaded: 0 });
  });
});
