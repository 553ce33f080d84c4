// A small HTTP client for the CLI: talks to a node's public API and turns its error bodies
// ({ error, code, message }) into one-line messages. With a token (`dram --token`, or the
// DRAM_TOKEN environment variable a node also reads), every call carries
// `Authorization: Bearer <token>`. An https:// URL signed by a private CA needs the CA in
// NODE_EXTRA_CA_CERTS (node's own TLS trust, which fetch uses).

let bearerToken: string | undefined = process.env['DRAM_TOKEN'];

/** The token every later call presents (undefined or empty: none). */
export function useToken(token: string | undefined): void {
  if (token !== undefined) bearerToken = token;
}

/** The request headers for a call with this body. */
export function requestHeaders(body: Uint8Array | string | undefined): Record<string, string> {
  return {
    ...(body === undefined
      ? {}
      : { 'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream' }),
    ...(bearerToken === undefined || bearerToken === '' ? {} : { authorization: `Bearer ${bearerToken}` }),
  };
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

export async function call(
  baseUrl: string,
  method: string,
  path: string,
  body?: Uint8Array | string,
  timeoutMs = 10_000,
): Promise<ApiAnswer> {
  const response = await fetch(new URL(path, baseUrl), {
    method,
    headers: requestHeaders(body),
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, headers: response.headers, body: new Uint8Array(await response.arrayBuffer()) };
}

export function describeError(answer: ApiAnswer): string {
  const text = new TextDecoder().decode(answer.body);
  try {
    const parsed = JSON.parse(text) as { code?: string; message?: string };
    return `${answer.status} ${parsed.code ?? ''} ${parsed.message ?? ''}`.trim();
  } catch {
    return `${answer.status} ${text}`.trim();
  }
}
