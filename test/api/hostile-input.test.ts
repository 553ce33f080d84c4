// What a hostile or broken HTTP client can send (issue 19): bodies where none is taken and deeply
// nested JSON, refused from the request head before anything is parsed; malformed requests below
// the router, answered in dram's error shape; strict media types; repeated identity headers;
// requests that never finish and connections over the limit. Over the one-node stub host, through
// inject() where it can say it and raw sockets where it cannot; every refusal is checked to have
// reached nothing in the host.

import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { httpLimitsDefault, type HttpLimits } from '../../src/api/http-server.ts';
import { isJsonMediaType, parseMediaType } from '../../src/api/media-type.ts';
import { jsonDepthMax, jsonTooDeep, repeatedHeader } from '../../src/api/request-guard.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { connect, rawRequest, readAll, type RawAnswer } from './raw-http.ts';
import { stubGroups, stubHost, stubNodeId, type StubHost } from './stub-host.ts';

let running: FastifyInstance | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

function start(httpLimits: Partial<HttpLimits> = {}): { app: FastifyInstance; stub: StubHost } {
  const stub = stubHost();
  const app = buildApp({
    nodeId: stubNodeId,
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    httpLimits: { ...httpLimitsDefault, ...httpLimits },
  });
  running = app;
  return { app, stub };
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

function codeOf(answer: { body: string }): unknown {
  return (JSON.parse(answer.body) as { code?: unknown }).code;
}

function summary(answer: RawAnswer): { status: number; code: unknown; closed: boolean } {
  return { status: answer.status, code: answer.body === '' ? undefined : codeOf(answer), closed: answer.closed };
}

const transferUrl = '/v1/admin/groups/1/transfer-leadership';

describe('bodies (issue 19 item 1)', () => {
  it('refuses a deeply nested body on a route that takes none, from its head, and runs nothing', async () => {
    const { app, stub } = start();
    const port = await listen(app);
    const deep = '['.repeat(500_000) + ']'.repeat(500_000);
    // Only the head is sent: the answer cannot have waited for (or parsed) the body.
    const head = `DELETE /v1/admin/members/999 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${deep.length}\r\n\r\n`;
    expect(summary(await rawRequest(port, head))).toEqual({
      status: 413,
      code: 'DRAM_ERR_BODY_TOO_LARGE',
      closed: true,
    });
    expect(stub.calls.confChanges).toBe(0);
  });

  it('refuses any body on GET and DELETE routes, chunked or not, and on unmatched URLs answers 404', async () => {
    const { app, stub } = start();
    const cases = [
      { method: 'GET', url: '/v1/status', status: 413, code: 'DRAM_ERR_BODY_TOO_LARGE' },
      { method: 'GET', url: '/v1/kv/a', status: 413, code: 'DRAM_ERR_BODY_TOO_LARGE' },
      { method: 'DELETE', url: '/v1/kv/a', status: 413, code: 'DRAM_ERR_BODY_TOO_LARGE' },
      { method: 'DELETE', url: '/v1/admin/members/2', status: 413, code: 'DRAM_ERR_BODY_TOO_LARGE' },
      { method: 'POST', url: '/nowhere', status: 404, code: 'DRAM_ERR_ROUTE_NOT_FOUND' },
    ] as const;
    for (const request of cases) {
      for (const framing of [{ 'content-length': '2' }, { 'transfer-encoding': 'chunked' }]) {
        const response = await app.inject({
          method: request.method,
          url: request.url,
          headers: { 'content-type': 'application/json', ...framing },
          payload: '[]',
        });
        expect({ ...request, status: response.statusCode, code: codeOf(response) }).toEqual(request);
        expect(response.headers['connection']).toBe('close');
      }
    }
    expect(stub.calls).toEqual({ proposals: 0, reads: 0, confChanges: 0 });
    // No body, or an empty one, is still fine.
    expect(
      (await app.inject({ method: 'DELETE', url: '/v1/kv/a', headers: { 'content-length': '0' } })).statusCode,
    ).toBe(404);
  });

  it('refuses a JSON body nested deeper than the limit, even one within the size limit', async () => {
    const { app } = start();
    const nested = (depth: number) => '{"to":' + '['.repeat(depth - 1) + ']'.repeat(depth - 1) + '}';
    const deep = await app.inject({
      method: 'POST',
      url: transferUrl,
      headers: { 'content-type': 'application/json' },
      payload: nested(jsonDepthMax + 1),
    });
    expect({ status: deep.statusCode, code: codeOf(deep) }).toEqual({ status: 400, code: 'DRAM_ERR_BAD_REQUEST' });
    expect(deep.json<{ message: string }>().message).toMatch(/nested deeper/);
    const atLimit = await app.inject({
      method: 'POST',
      url: transferUrl,
      headers: { 'content-type': 'application/json' },
      payload: nested(jsonDepthMax),
    });
    // Parsed, then refused by the route's own validation ('to' must be a node id).
    expect(atLimit.json<{ message: string }>().message).toMatch(/'to' must be/);
  });

  it('refuses a declared length over the route limit before the body is sent', async () => {
    const { app } = start();
    const port = await listen(app);
    const head = (url: string, method: string, type: string) =>
      `${method} ${url} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 10000000\r\n\r\n`;
    expect(summary(await rawRequest(port, head(transferUrl, 'POST', 'application/json')))).toEqual({
      status: 413,
      code: 'DRAM_ERR_BODY_TOO_LARGE',
      closed: true,
    });
    expect(summary(await rawRequest(port, head('/v1/kv/a', 'PUT', 'application/octet-stream')))).toEqual({
      status: 413,
      code: 'DRAM_ERR_VALUE_TOO_LARGE',
      closed: true,
    });
  });

  it('measures JSON depth as JSON.parse would, ignoring brackets in strings', () => {
    const depthOf = (value: unknown): number =>
      typeof value === 'object' && value !== null
        ? 1 + Math.max(0, ...Object.values(value as Record<string, unknown>).map(depthOf))
        : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 9 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(jsonTooDeep(text, limit)).toBe(depthOf(value) > limit);
      }),
      { numRuns: 300, seed: 19 },
    );
    expect(jsonTooDeep('{"a": "[[[[\\"[[["}', 1)).toBe(false);
    expect(jsonTooDeep('[[', 1)).toBe(true);
  });
});

describe('malformed requests below the router (issue 19 item 5)', () => {
  it('answers every parser-level error in dram shape and closes the connection', async () => {
    const { app, stub } = start();
    const port = await listen(app);
    const probes = [
      { what: 'a 1 MiB URL', request: `GET /v1/kv/${'a'.repeat(1 << 20)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 431 },
      {
        what: 'a 20 KB header',
        request: `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        status: 431,
      },
      {
        what: 'a raw 0xFF in the path',
        request: Buffer.from('GET /v1/kv/\xff HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'),
        status: 400,
      },
      { what: 'a space in the path', request: 'GET /v1/kv/a b HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
      { what: 'an unknown method', request: 'FOO /v1/status HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
      {
        what: 'Content-Length with Transfer-Encoding',
        request: 'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        status: 400,
      },
      {
        what: 'two Content-Lengths',
        request: 'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc',
        status: 400,
      },
      { what: 'the HTTP/2 preface', request: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 400 },
      { what: 'a NUL in a header', request: 'GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', status: 400 },
      { what: 'no Host in HTTP/1.1', request: 'GET /v1/status HTTP/1.1\r\n\r\n', status: 400 },
      { what: 'Expect: bogus', request: 'GET /v1/status HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n', status: 417 },
      { what: 'CONNECT', request: 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 404 },
    ];
    const codes = {
      400: 'DRAM_ERR_BAD_REQUEST',
      404: 'DRAM_ERR_ROUTE_NOT_FOUND',
      417: 'DRAM_ERR_EXPECTATION_FAILED',
      431: 'DRAM_ERR_HEADERS_TOO_LARGE',
    } as const;
    for (const probe of probes) {
      const answer = await rawRequest(port, probe.request);
      expect({ what: probe.what, ...summary(answer) }).toEqual({
        what: probe.what,
        status: probe.status,
        code: codes[probe.status as keyof typeof codes],
        closed: true,
      });
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    }
    expect(stub.calls).toEqual({ proposals: 0, reads: 0, confChanges: 0 });
  });
});

describe('media types (issue 19 item 6)', () => {
  it('parses Content-Type strictly', () => {
    const accepted = [
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON;Charset="UTF-8"',
      'application/json ;\tcharset=UTF-8',
    ];
    const readsAsJson = (header: string) => {
      const parsed = parseMediaType(header);
      return { header, json: parsed !== undefined && isJsonMediaType(parsed) };
    };
    for (const header of accepted) expect(readsAsJson(header)).toEqual({ header, json: true });
    const malformed = [
      'application/json; charset=',
      'application/json;',
      'application/json; foo',
      'application/json;;charset=utf-8',
      'application/json; charset="utf-8',
      'application/json; a=1; a=2',
      '///',
      'application',
      '/json',
      'application/json x',
      'application/json; charset=utf 8',
      '',
    ];
    for (const header of malformed)
      expect({ header, parsed: parseMediaType(header) }).toEqual({ header, parsed: undefined });
    const notJson = [
      'application/json; charset=utf-16',
      'text/plain',
      'application/json; foo=bar',
      'application/jsonx',
      'text/json',
    ];
    for (const header of notJson) expect(readsAsJson(header)).toEqual({ header, json: false });
  });

  it('answers 415 for a JSON route given anything but JSON, and runs nothing', async () => {
    const { app } = start();
    for (const type of [
      'application/json; charset=',
      'application/json;',
      'application/json; foo',
      'application/json; charset=utf-16',
      'text/plain',
      undefined,
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: transferUrl,
        headers: type === undefined ? { 'content-length': '9' } : { 'content-type': type },
        payload: '{"to": 2}',
      });
      expect({ type, status: response.statusCode, code: codeOf(response) }).toEqual({
        type,
        status: 415,
        code: 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
      });
    }
    const fine = await app.inject({
      method: 'POST',
      url: transferUrl,
      headers: { 'content-type': 'application/json; charset=UTF-8' },
      payload: '{"to": 1}',
    });
    expect(fine.statusCode).toBe(200);
  });

  it('stores a KV value of any well-formed media type, or none, and refuses a malformed one', async () => {
    const { app, stub } = start();
    for (const type of ['application/json', 'text/plain; charset=latin1', 'image/png', undefined]) {
      const response = await app.inject({
        method: 'PUT',
        url: '/v1/kv/a',
        headers: type === undefined ? {} : { 'content-type': type },
        payload: 'v',
      });
      expect({ type, status: response.statusCode }).toEqual({ type, status: 200 });
    }
    const proposals = stub.calls.proposals;
    for (const payload of ['v', '']) {
      const malformed = await app.inject({
        method: 'PUT',
        url: '/v1/kv/a',
        headers: { 'content-type': 'text/plain;' },
        payload,
      });
      expect({ payload, status: malformed.statusCode, code: codeOf(malformed) }).toEqual({
        payload,
        status: 415,
        code: 'DRAM_ERR_UNSUPPORTED_MEDIA_TYPE',
      });
    }
    expect(stub.calls.proposals).toBe(proposals);
  });
});

describe('repeated identity headers (issue 19 item 7)', () => {
  it('refuses a request that repeats X-Dram-Client-Id, X-Dram-Request-Seq, Content-Type or Host, and applies nothing', async () => {
    const { app, stub } = start();
    const port = await listen(app);
    const put = (headers: string) => `PUT /v1/kv/a HTTP/1.1\r\n${headers}Content-Length: 1\r\n\r\nv`;
    const requests = [
      put('Host: x\r\nX-Dram-Client-Id: a\r\nX-Dram-Client-Id: b\r\nX-Dram-Request-Seq: 1\r\n'),
      put('Host: x\r\nX-Dram-Client-Id: a\r\nx-dram-client-id: a\r\nX-Dram-Request-Seq: 1\r\n'),
      put('Host: x\r\nX-Dram-Client-Id: a\r\nX-Dram-Request-Seq: 1\r\nX-Dram-Request-Seq: 2\r\n'),
      put('Host: x\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\n'),
      put('Host: x\r\nHost: y\r\n'),
    ];
    for (const request of requests) {
      const answer = await rawRequest(port, request);
      expect({ request, ...summary(answer) }).toEqual({
        request,
        status: 400,
        code: 'DRAM_ERR_BAD_REQUEST',
        closed: true,
      });
    }
    expect(stub.calls.proposals).toBe(0);
    expect(repeatedHeader(['Accept', 'a', 'accept', 'b', 'X-Other', '1', 'x-other', '2'])).toBeUndefined();
  });
});

describe('time and connection limits (issue 19 item 8)', () => {
  const fast = { headTimeoutMs: 100, receiveTimeoutMs: 200, timeoutCheckMs: 50 };

  it('answers 408 and closes a request whose body stops short, or whose head never ends', async () => {
    const { app, stub } = start(fast);
    const port = await listen(app);
    for (const request of [
      'PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
      'GET /v1/status HTTP/1.1\r\nHost: x\r\n',
    ]) {
      expect({ request, ...summary(await rawRequest(port, request, 5000)) }).toEqual({
        request,
        status: 408,
        code: 'DRAM_ERR_REQUEST_TIMEOUT',
        closed: true,
      });
    }
    expect(stub.calls.proposals).toBe(0);
  });

  it('answers 503 to a connection over the limit, and takes one again once a slot is free', async () => {
    const { app } = start({ connectionsMax: 2 });
    const port = await listen(app);
    const held = [await connect(port), await connect(port)];
    const served = held.map((socket) => readAll(socket, 5000));
    for (const socket of held) socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    // Both answered over keep-alive connections that stay open: both slots are taken.
    await Promise.all(held.map((socket) => new Promise((resolve) => socket.once('data', resolve))));
    expect(summary(await rawRequest(port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({
      status: 503,
      code: 'DRAM_ERR_OVERLOADED',
      closed: true,
    });
    held[0]?.destroy();
    await served[0];
    // The server sees the close a moment after the client: ask again, a bounded number of times.
    let again: RawAnswer | undefined;
    for (let attempt = 0; attempt < 50 && again?.status !== 200; attempt++) {
      again = await rawRequest(port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(again?.status).toBe(200);
    held[1]?.destroy();
  });
});
