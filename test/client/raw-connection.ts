// A raw connection to a binary client port, for tests that speak the protocol by hand: send
// frames (or any bytes), collect the decoded answers, see whether the server closed it.

import net from 'node:net';
import { decodeClientResponse, type ClientResponse } from '../../src/codec/client-wire.ts';
import { FrameReader } from '../../src/codec/frame-reader.ts';

export interface RawConnection {
  readonly socket: net.Socket;
  readonly answers: ClientResponse[];
  closed(): boolean;
}

export function rawConnection(port: number, localAddress = '127.0.0.1'): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    const reader = new FrameReader(1 << 22);
    const answers: ClientResponse[] = [];
    let closed = false;
    socket.on('data', (chunk: Buffer) => {
      const result = reader.push(chunk);
      if (result.kind === 'frames') for (const payload of result.payloads) answers.push(decodeClientResponse(payload));
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {
      closed = true;
    });
    socket.once('connect', () => {
      resolve({ socket, answers, closed: () => closed });
    });
    socket.once('error', reject);
  });
}
