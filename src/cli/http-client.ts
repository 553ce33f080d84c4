// A small HTTP client for the CLI: talks to a node's public API and turns its error bodies
// ({ error, code, message }) into one-line messages.

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
    ...(body === undefined
      ? {}
      : {
          body,
          headers: { 'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream' },
        }),
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
