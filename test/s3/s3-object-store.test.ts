// The S3 adapter against a real S3 server: an s3rver process of its own on a random loopback port,
// through the port's conformance suite (paging over more than 1,000 objects included), with parts
// of 5 MiB so the suite's large body really goes up as a multipart upload.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partBytesMin } from '../../src/s3/s3-object-store.ts';
import { startS3rver } from '../../src/s3/s3rver-process.ts';
import { s3rverStore } from './support.ts';
import { objectStoreConformance } from '../data/object-store-conformance.ts';

objectStoreConformance('S3ObjectStore on s3rver', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'dram-s3rver-'));
  const server = await startS3rver({ directory });
  const store = s3rverStore(server, { multipartThresholdBytes: partBytesMin, partBytes: partBytesMin, attemptsMax: 2 });
  return {
    store,
    multipartBytes: 2 * partBytesMin + 1234,
    refusesRangeOfEmptyObject: false,
    stopServer: () => server.stop(),
    dispose: async () => {
      store.close();
      await server.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
});
