// `dram dev` (and `npm start`): a local three-node cluster as three `dram start` processes with
// data under ./.dram/, each node's URL printed, then the leader of each group once elected; beside
// them a local S3 server holding the sample database (src/cli/dev-s3.ts), whose s3:// URL is printed.
// The nodes log readable lines (--log-format pretty, through the pino-pretty dev dependency) rather
// than production's JSON. Ctrl-C (SIGINT) or SIGTERM stops all of them gracefully. Each run draws a random peer secret for
// its nodes (handed over in DRAM_SECRET, not on the command line), so a dev cluster is never
// open to the well-known development secret.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addSample, devS3PortDefault, nodeS3Settings, prepareSample, startDevS3 } from './dev-s3.ts';
import { call } from './http-client.ts';

export interface DevOptions {
  readonly dataDir: string;
  readonly httpPortBase: number;
  readonly raftPortBase: number;
  readonly nodes: number;
  /** The dev S3 server's port (default 4568). */
  readonly s3Port?: number;
}

/** The example query endpoints (examples/endpoints), served by every dev node over the sample database. */
const exampleEndpoints = fileURLToPath(new URL('../../examples/endpoints', import.meta.url));

export async function runDev(options: DevOptions, entry: string): Promise<void> {
  const ids = Array.from({ length: options.nodes }, (_, k) => k + 1);
  const peers = ids.map((id) => `${id}=127.0.0.1:${options.raftPortBase + id}`).join(',');
  const peerHttp = ids.map((id) => `${id}=127.0.0.1:${options.httpPortBase + id}`).join(',');
  const children: ChildProcess[] = [];
  const secret = randomBytes(24).toString('base64url');
  mkdirSync(options.dataDir, { recursive: true });
  const s3 = await startDevS3(options.dataDir, options.s3Port ?? devS3PortDefault);
  const s3Node = nodeS3Settings(s3.endpoint);
  console.log(`s3: ${s3.endpoint} (s3rver, objects in ${join(options.dataDir, 's3')}, access key S3RVER)`);
  for (const id of ids) {
    const dataDir = join(options.dataDir, `node${id}`);
    mkdirSync(dataDir, { recursive: true });
    const args = [
      ...process.execArgv,
      entry,
      'start',
      '--node-id',
      String(id),
      '--data-dir',
      dataDir,
      '--http',
      `127.0.0.1:${options.httpPortBase + id}`,
      '--raft',
      `127.0.0.1:${options.raftPortBase + id}`,
      '--init',
      '--peers',
      peers,
      '--peer-http',
      peerHttp,
      ...s3Node.args,
      '--endpoints',
      exampleEndpoints,
      '--log-format',
      'pretty',
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...s3Node.env, DRAM_SECRET: secret },
    });
    children.push(child);
    console.log(
      `node ${id}: http://127.0.0.1:${options.httpPortBase + id} (raft 127.0.0.1:${options.raftPortBase + id}, data ${dataDir})`,
    );
  }
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('stopping the cluster');
    for (const child of children) child.kill('SIGTERM');
    void s3.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const exited = Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) =>
          child.once('exit', () => {
            resolve();
          }),
        ),
    ),
  );
  void printLeaders(`http://127.0.0.1:${options.httpPortBase + 1}`, () => stopping);
  void offerSample(options.dataDir, s3.endpoint, `http://127.0.0.1:${options.httpPortBase + 1}`, () => stopping);
  await exited;
  await s3.stop();
}

async function offerSample(
  dataDir: string,
  endpoint: string,
  memberUrl: string,
  stopped: () => boolean,
): Promise<void> {
  try {
    const sample = await prepareSample(dataDir, endpoint);
    console.log(
      `sample database: ${sample.url} (${sample.files} files, ${(sample.bytes / 1e6).toFixed(1)} MB, ${sample.uploaded} uploaded now)`,
    );
    console.log(await addSample(memberUrl, sample.url, stopped));
  } catch (error) {
    if (stopped()) return; // Ctrl-C during the upload: nothing to report
    console.error(`sample database not prepared: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function printLeaders(url: string, stopped: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !stopped(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      const answer = await call(url, 'GET', '/v1/status');
      const status = JSON.parse(new TextDecoder().decode(answer.body)) as {
        groups: { group: number; leader: number }[];
      };
      if (status.groups.length > 0 && status.groups.every((group) => group.leader > 0)) {
        console.log(`leaders: ${status.groups.map((group) => `kv/${group.group}=node ${group.leader}`).join(', ')}`);
        console.log(`try: curl -X PUT --data-binary hello ${url}/v1/kv/greeting`);
        return;
      }
    } catch {
      // not up yet
    }
  }
}
