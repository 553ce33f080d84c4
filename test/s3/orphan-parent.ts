// A parent for test/s3/s3rver-process.test.ts: starts an s3rver process, prints its pid and waits
// to be killed (SIGKILL: it gets no chance to stop the server itself).

import { startS3rver } from '../../src/s3/s3rver-process.ts';

const directory = process.argv[2];
if (directory === undefined) throw new Error('usage: orphan-parent.ts <directory>');
const server = await startS3rver({ directory });
process.stdout.write(`${server.pid}\n`);
setInterval(() => undefined, 60_000);
