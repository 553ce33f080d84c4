// Tokens on the binary client port (docs/security.md): with --token a connection does nothing until
// an auth frame presents a token; the read token may only read; refused requests change nothing;
// the codes are HTTP's (DRAM_ERR_UNAUTHORIZED, DRAM_ERR_FORBIDDEN); the typed client sends its
// token first on every connection. In-process cluster (test/api/cluster.ts), real sockets.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryServer } from '../../src/api/binary-server.ts';
import { DramClient, DramError } from '../../src/client/client.ts';
import { encodeClientRequest, type ClientFrame } from '../../src/codec/client-wire.ts';
import { frameOf } from '../../src/codec/frame-reader.ts';
import { kvModel, placement, startCluster, waitFor, type ApiCluster, type ApiNode } from '../api/cluster.ts';
import { firstLedNode, startBinaryServer } from './binary-port.ts';
import { rawConnection, type RawConnection } from './raw-connection.ts';

const token = 'full-token-0123456789';
const readToken = 'read-token-0123456789';

let cluster: ApiCluster;
let node: ApiNode;
let server: BinaryServer;
let port: number;

beforeAll(async () => {
  cluster = startCluster({ forwarding: false });
  node = await firstLedNode(cluster);
  ({ server, port } = await startBinaryServer(node, { auth: { token, readToken } }));
});

afterAll(async () => {
  await server.stop();
  await cluster.stop();
});

/** Sends `frames` on a new raw connection and waits for one answer each. */
async function exchange(frames: readonly ClientFrame[]): Promise<RawConnection> {
  const connection = await rawConnection(port);
  connection.socket.write(Buffer.concat(frames.map((frame) => frameOf(encodeClientRequest(frame)))));
  await waitFor(`${frames.length} answers`, () => (connection.answers.length >= frames.length ? true : undefined));
  return connection;
}

function codes(connection: RawConnection): (string | undefined)[] {
  return [...connection.answers].sort((a, b) => a.id - b.id).map((answer) => (answer.ok ? 'ok' : answer.code));
}

function stored(key: string): string | undefined {
  const record = kvModel(node, placement.groupOf(key)).get(key);
  return record === undefined ? undefined : Buffer.from(record.value).toString();
}

const put = (id: number, key: string, value: string): ClientFrame => ({
  id,
  op: 'put',
  key,
  value: Buffer.from(value),
});

describe('binary client port with --token and --read-token', () => {
  it('refuses every request before an auth frame, and after a wrong token, changing nothing', async () => {
    const none = await exchange([
      put(1, 'auth-none', 'x'),
      { id: 2, op: 'get', key: 'auth-none', consistency: 'stale' },
      { id: 3, op: 'delete', key: 'auth-none' },
    ]);
    expect(codes(none)).toEqual(['DRAM_ERR_UNAUTHORIZED', 'DRAM_ERR_UNAUTHORIZED', 'DRAM_ERR_UNAUTHORIZED']);
    const wrong = await exchange([{ id: 1, op: 'auth', token: `${token}x` }, put(2, 'auth-none', 'x')]);
    expect(codes(wrong)).toEqual(['DRAM_ERR_UNAUTHORIZED', 'DRAM_ERR_UNAUTHORIZED']);
    expect(wrong.closed()).toBe(false);
    expect(stored('auth-none')).toBeUndefined();
    none.socket.destroy();
    wrong.socket.destroy();
  });

  it('lets the read token read and refuses its writes with DRAM_ERR_FORBIDDEN, changing nothing', async () => {
    const full = await exchange([{ id: 1, op: 'auth', token }, put(2, 'auth-read', 'before')]);
    expect(codes(full)).toEqual(['ok', 'ok']);
    const reader = await exchange([
      { id: 1, op: 'auth', token: readToken },
      { id: 2, op: 'get', key: 'auth-read' },
      put(3, 'auth-read', 'after'),
      { id: 4, op: 'delete', key: 'auth-read' },
    ]);
    expect(codes(reader)).toEqual(['ok', 'ok', 'DRAM_ERR_FORBIDDEN', 'DRAM_ERR_FORBIDDEN']);
    expect(Buffer.from(reader.answers.find((answer) => answer.id === 2)?.value ?? []).toString()).toBe('before');
    expect(stored('auth-read')).toBe('before');
    full.socket.destroy();
    reader.socket.destroy();
  });

  it('the typed client sends its token: full writes, read-only reads, none is refused', async () => {
    const nodes = [{ id: node.id, host: '127.0.0.1', port }];
    const writer = DramClient.connect({ nodes, token, route: 'any' });
    const reader = DramClient.connect({ nodes, token: readToken, route: 'any' });
    const stranger = DramClient.connect({ nodes, route: 'any' });
    try {
      await writer.put('auth-client', Buffer.from('v1'));
      expect(Buffer.from((await reader.get('auth-client'))?.value ?? []).toString()).toBe('v1');
      const refusedCode = (promise: Promise<unknown>): Promise<unknown> =>
        promise.then(
          () => 'ok',
          (error: unknown) => (error instanceof DramError ? error.code : error),
        );
      expect(await refusedCode(reader.put('auth-client', Buffer.from('v2')))).toBe('DRAM_ERR_FORBIDDEN');
      expect(await refusedCode(stranger.get('auth-client'))).toBe('DRAM_ERR_UNAUTHORIZED');
      expect(await refusedCode(stranger.delete('auth-client'))).toBe('DRAM_ERR_UNAUTHORIZED');
      expect(stored('auth-client')).toBe('v1');
    } finally {
      writer.close();
      reader.close();
      stranger.close();
    }
  });
});
