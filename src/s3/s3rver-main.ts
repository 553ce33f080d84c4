// The child process of src/s3/s3rver-process.ts: runs s3rver (a development dependency, an S3 server
// that keeps objects in a directory) on the address it is given, prints one JSON line
// `{"port": N}` on stdout once it listens, and closes it gracefully (in-flight requests finish) on
// SIGTERM, SIGINT or when its parent closes stdin (so a parent that dies leaves no server behind).
// Started as `node --openssl-legacy-provider --import tsx s3rver-main.ts <directory> <host> <port>`:
// s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 only offers
// through its legacy provider (without it, the second page of a listing fails).

import { createRequire } from 'node:module';

interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

type S3rverClass = new (options: {
  readonly directory: string;
  readonly address: string;
  readonly port: number;
  readonly silent: boolean;
}) => S3rverServer;

const [directory, host, port] = process.argv.slice(2);
if (directory === undefined || host === undefined || port === undefined) {
  process.stderr.write('usage: s3rver-main.ts <directory> <host> <port>\n');
  process.exit(2);
}
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
const server = new S3rver({ directory, address: host, port: Number(port), silent: true });
const listening = await server.run();
process.stdout.write(`${JSON.stringify({ port: listening.port })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`s3rver: close failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.once('end', stop);
process.stdin.resume();
