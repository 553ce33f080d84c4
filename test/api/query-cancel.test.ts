// Cancellation through the query routes, over real sockets: a client that goes away stops its
// query (the map's signal fires, so its statements would be interrupted) and frees the endpoint's
// concurrency slot; and when the fan-out gives up a call to another member (here: the query's
// own timeout), the HTTP request to that member is aborted and the member stops its map too.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import type { Forward } from '../../src/api/ports.ts';
import { asNodeId } from '../../src/base/ids.ts';
import type { QueryEngine } from '../../src/data/query-engine.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import type { DatabaseDirectory } from '../../src/query/database-directory.ts';
import { endpointSet } from '../../src/query/endpoint-loader.ts';
import type { EndpointContext } from '../../src/query/endpoint-module.ts';
import { LocalRunner } from '../../src/query/local-runner.ts';
import { waitFor } from './cluster.ts';
import { stubGroups, stubHost } from './stub-host.ts';

const noEngine: QueryEngine = { sql: () => Promise.reject(new Error('no SQL here')), close: () => Promise.resolve() };
/** Maps that started, by member, and whether their signal fired. */
const maps: { node: number; stopped: boolean }[] = [];

function runner(node: number, timeoutMs: number): LocalRunner {
  const waits = {
    name: 'waits',
    timeoutMs,
    concurrencyMax: 1,
    map: (context: EndpointContext) =>
      new Promise((resolve) => {
        const entry = { node, stopped: false };
        maps.push(entry);
        context.signal.addEventListener('abort', () => {
          entry.stopped = true;
          resolve(0);
        });
      }),
  };
  return new LocalRunner({ endpoints: endpointSet([{ file: 'waits.mjs', exported: waits }]), engine: noEngine });
}

/** Shard 0 is on member `holder` only. */
function directory(self: number, holder: number): DatabaseDirectory {
  return {
    resolve: (name) =>
      name === 'events'
        ? {
            name,
            version: 'v1',
            globalDir: undefined,
            globalFiles: [],
            shards: [
              {
                shard: '0',
                replicas: [{ node: asNodeId(holder), state: 'loaded', version: 'v1' }],
                local: self === holder ? { shard: '0', dir: '/nowhere', files: [] } : undefined,
              },
            ],
          }
        : undefined,
  };
}

const apps: FastifyInstance[] = [];
const ports = new Map<number, number>();

afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  maps.splice(0);
  ports.clear();
});

/** A Forward over real HTTP to the members started here, honouring the request's signal. */
const forward: Forward = (node, request) =>
  new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: '127.0.0.1',
        port: ports.get(node),
        method: request.method,
        path: request.url,
        headers: request.headers,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, headers: {}, body: Buffer.concat(chunks) });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });

async function member(node: number, holder: number, timeoutMs: number): Promise<number> {
  const stub = stubHost();
  const app = buildApp({
    nodeId: asNodeId(node),
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
    forward,
    query: { runner: runner(node, timeoutMs), directory: directory(node, holder) },
  });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  ports.set(node, port);
  return port;
}

function post(port: number, path: string): { request: http.ClientRequest; answer: Promise<number> } {
  let request: http.ClientRequest | undefined;
  const answer = new Promise<number>((resolve, reject) => {
    request = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'application/json' } },
      (response) => {
        response.resume();
        response.on('end', () => {
          resolve(response.statusCode ?? 0);
        });
      },
    );
    request.on('error', reject);
    request.end('{}');
  });
  if (request === undefined) throw new Error('no request');
  return { request, answer };
}

describe('query cancellation', () => {
  it("stops the query when its caller goes away, and frees the endpoint's slot", async () => {
    const port = await member(1, 1, 60_000);
    const first = post(port, '/v1/databases/events/query/waits?scope=local');
    first.answer.catch(() => undefined);
    const started = await waitFor('the map to start', () => maps[0]);
    first.request.destroy();
    await waitFor('the map to be stopped', () => (started.stopped ? true : undefined));
    // The slot (concurrencyMax 1) is free again: a second query runs.
    const second = post(port, '/v1/databases/events/query/waits?scope=local');
    second.answer.catch(() => undefined);
    await waitFor('a second map to start', () => maps[1]);
    second.request.destroy();
    await waitFor('the second map to be stopped', () => (maps[1]?.stopped === true ? true : undefined));
  });

  it('aborts the call to another member when the fan-out gives it up, and that member stops its map', async () => {
    await member(2, 2, 60_000);
    const port = await member(1, 2, 300);
    const answer = await post(port, '/v1/databases/events/query/waits').answer;
    expect(answer).toBe(504); // the receiving member's endpoint timeout (300 ms)
    const remote = await waitFor('the map on member 2', () => maps.find((map) => map.node === 2));
    await waitFor("member 2's map to be stopped", () => (remote.stopped ? true : undefined));
  });
});
