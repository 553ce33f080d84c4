// `dram dev` (and `npm start`): a local three-node cluster as three `dram start` processes with
// data under ./.dram/, each node's URL printed, then the leader of each group once elected.
// Ctrl-C (SIGINT) or SIGTERM stops all three gracefully. The nodes log readable lines
// (--log-format pretty, through the pino-pretty dev dependency) rather than production's JSON. Each run draws a random peer secret for
// its nodes (handed over in DRAM_SECRET, not on the command line), so a dev cluster is never
// open to the well-known development secret.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { call } from './http-client.ts';

export interface DevOptions {
  readonly dataDir: string;
  readonly httpPortBase: number;
  readonly raftPortBase: number;
  readonly nodes: number;
}

export async function runDev(options: DevOptions, entry: string): Promise<void> {
  const ids = Array.from({ length: options.nodes }, (_, k) => k + 1);
  const peers = ids.map((id) => `${id}=127.0.0.1:${options.raftPortBase + id}`).join(',');
  const peerHttp = ids.map((id) => `${id}=127.0.0.1:${options.httpPortBase + id}`).join(',');
  const children: ChildProcess[] = [];
  const secret = randomBytes(24).toString('base64url');
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
      '--log-format',
      'pretty',
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DRAM_SECRET: secret },
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
  await exited;
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
