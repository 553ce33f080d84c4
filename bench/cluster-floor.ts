// The floor of a replicated write on this machine, measured in the cluster bench's run (phase
// `floor`): what no design can go under for one client's sequential write, one synced LevelDB
// batch (a 256-byte entry and a small hard state, as a turn writes) plus two loopback round trips
// between processes (client to node, leader to follower). A child process does both halves of the
// server side, as a node would: it writes its batches, then echoes what this process sends.
//
// Called by: bench/cluster.bench.ts.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export interface FloorResult {
  /** p50 of one synced LevelDB batch (a 256-byte entry and a 24-byte hard state), ms. */
  readonly syncedBatchP50Ms: number;
  /** p50 of one 256-byte loopback round trip to another process, ms. */
  readonly roundTripP50Ms: number;
  /** syncedBatchP50Ms + 2 x roundTripP50Ms. */
  readonly floorMs: number;
}

const batches = { warmup: 20, measured: 500 } as const;
const roundTrips = { warmup: 200, measured: 2000 } as const;
const valueBytes = 256;
const childTimeoutMs = 60_000;

const floorChild = `
import { Level } from 'level';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dram-floor-'));
const db = new Level(dir, { keyEncoding: 'view', valueEncoding: 'view' });
await db.open();
const value = new Uint8Array(${valueBytes}).fill(7);
const hardState = new Uint8Array(24).fill(1);
const times = [];
for (let k = 0; k < ${batches.warmup + batches.measured}; k++) {
  const started = process.hrtime.bigint();
  await db.batch([
    { type: 'put', key: Buffer.from('e' + String(k).padStart(8, '0')), value },
    { type: 'put', key: Buffer.from('h'), value: hardState },
  ], { sync: true });
  if (k >= ${batches.warmup}) times.push(Number(process.hrtime.bigint() - started) / 1e6);
}
await db.close();
fs.rmSync(dir, { recursive: true, force: true });
times.sort((a, b) => a - b);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => socket.write(chunk));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ syncedBatchP50Ms: times[times.length >> 1], port: server.address().port }) + '\\n');
});
`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? 0;
}

/** Sequential 256-byte round trips to the child's echo port; the p50 in ms. */
async function roundTripP50(port: number): Promise<number> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const payload = Buffer.alloc(valueBytes, 9);
  const times: number[] = [];
  try {
    for (let k = 0; k < roundTrips.warmup + roundTrips.measured; k++) {
      const started = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        let received = 0;
        const onData = (chunk: Buffer): void => {
          received += chunk.length;
          if (received < valueBytes) return;
          socket.off('data', onData);
          socket.off('error', reject);
          resolve();
        };
        socket.on('data', onData);
        socket.once('error', reject);
        socket.write(payload);
      });
      if (k >= roundTrips.warmup) times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    socket.destroy();
  }
  return median(times);
}

/** Measures the floor; the child is stopped at the end, on error too. */
export async function measureFloor(log: (line: string) => void): Promise<FloorResult> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['--input-type=module', '-e', floorChild], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const first = await new Promise<{ syncedBatchP50Ms: number; port: number }>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => {
        reject(new Error(`the floor child said nothing in ${childTimeoutMs} ms`));
      }, childTimeoutMs);
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const line = text.split('\n')[0];
        if (!text.includes('\n') || line === undefined) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { syncedBatchP50Ms: number; port: number });
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the floor child exited with ${code}`));
      });
    });
    const roundTripP50Ms = await roundTripP50(first.port);
    const round3 = (value: number): number => Math.round(value * 1000) / 1000;
    const result = {
      syncedBatchP50Ms: round3(first.syncedBatchP50Ms),
      roundTripP50Ms: round3(roundTripP50Ms),
      floorMs: round3(first.syncedBatchP50Ms + 2 * roundTripP50Ms),
    };
    log(
      `floor: synced LevelDB batch p50 ${result.syncedBatchP50Ms} ms, loopback round trip p50 ${result.roundTripP50Ms} ms, floor ${result.floorMs} ms`,
    );
    return result;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
}
