// HTTP over a raw socket (node:net on 127.0.0.1), for what inject() cannot send: malformed
// request lines and framing, repeated headers as they are on the wire, slow or partial requests,
// many connections. Reads until the server closes the connection, or until `waitMs` (then the
// answer says the connection was still open). Every wait is bounded.

import net from 'node:net';

export interface RawAnswer {
  /** 0 when nothing came back. */
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Whether the server closed the connection within the wait. */
  readonly closed: boolean;
}

/** Every response in `text`, in order (bodies framed by Content-Length; the last one may run to the end). */
export function parseRawAnswers(text: string, closed: boolean): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let rest = text;
  while (rest.length > 0) {
    const { answer, remainder } = parseOne(rest, closed);
    answers.push(answer);
    if (remainder === rest) break;
    rest = remainder;
  }
  return answers;
}

function parseOne(text: string, closed: boolean): { answer: RawAnswer; remainder: string } {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return { answer: { status: 0, headers: {}, body: text, closed }, remainder: '' };
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? Number.NaN);
  const rest = text.slice(headEnd + 4);
  const body = Number.isNaN(length) ? rest : rest.slice(0, length);
  return {
    answer: { status: Number(statusLine.split(' ')[1] ?? 0), headers, body, closed },
    remainder: rest.slice(body.length),
  };
}

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Every response the server sends on `socket` until it closes it, or until `waitMs` passes. */
export function readAll(socket: net.Socket, waitMs: number): Promise<RawAnswer[]> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRawAnswers(Buffer.concat(chunks).toString('latin1'), closed));
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

/** Sends `request` on a new connection and reads the answer (see readAll). */
export async function rawRequest(port: number, request: string | Buffer, waitMs = 5000): Promise<RawAnswer> {
  const socket = await connect(port);
  const answers = readAll(socket, waitMs);
  socket.write(request);
  return (await answers)[0] ?? { status: 0, headers: {}, body: '', closed: false };
}
