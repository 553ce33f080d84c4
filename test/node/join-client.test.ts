// The joining node's HTTP calls against a scripted member (a plain node:http server): a member
// that is not up yet or answers 503 is retried and the join goes through; a 4xx is the cluster
// refusing and fails at once with the member's code and message; retries are bounded and end in
// a JoinError that says how to continue; a malformed cluster view is refused.

import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { asNodeId } from '../../src/base/ids.ts';
import {
  fetchClusterView,
  JoinError,
  parseClusterView,
  requestMembership,
  type JoinRetry,
} from '../../src/node/join-client.ts';

interface Scripted {
  readonly url: string;
  readonly requests: { method: string; url: string; body: string }[];
  close(): Promise<void>;
}

const servers: Scripted[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** A member that answers the k-th request with answers[k] (the last one repeats). */
async function scriptedMember(answers: readonly { status: number; body: unknown }[]): Promise<Scripted> {
  const requests: Scripted['requests'] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method ?? '',
        url: request.url ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const answer = answers[Math.min(requests.length, answers.length) - 1] ?? { status: 500, body: {} };
      response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no address');
  const scripted = {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
  servers.push(scripted);
  return scripted;
}

const fast: JoinRetry = { attemptsMax: 5, retryDelayMs: 5, callTimeoutMs: 2000 };
const quiet = (): void => undefined;
const self = {
  nodeId: asNodeId(4),
  raft: { host: '127.0.0.1', port: 9004 },
  http: { host: '127.0.0.1', port: 8004 },
  clusterId: 'dram',
};
const view = {
  nodeId: 1,
  clusterId: 'dram',
  groups: [1, 2],
  members: [
    { nodeId: 1, raft: '127.0.0.1:9001', http: '127.0.0.1:8001' },
    { nodeId: 2, raft: '127.0.0.1:9002' },
  ],
};

describe('join client', () => {
  it('reads the cluster view, retrying a member that is not ready', async () => {
    const member = await scriptedMember([
      { status: 503, body: { error: true, code: 'DRAM_ERR_NO_LEADER', message: 'electing' } },
      { status: 200, body: view },
    ]);
    const answer = await fetchClusterView(member.url, fast, quiet);
    expect(answer).toEqual({
      clusterId: 'dram',
      groups: [1, 2],
      members: [
        { nodeId: 1, raft: { host: '127.0.0.1', port: 9001 }, http: { host: '127.0.0.1', port: 8001 } },
        { nodeId: 2, raft: { host: '127.0.0.1', port: 9002 }, http: undefined },
      ],
      placed: false,
    });
    expect(member.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      'GET /v1/admin/members',
      'GET /v1/admin/members',
    ]);
  });

  it('asks to be added, retrying while the member answers MEMBERSHIP_PENDING', async () => {
    const pending = {
      status: 503,
      body: { error: true, code: 'DRAM_ERR_MEMBERSHIP_PENDING', message: 'group 2: catching up' },
    };
    const member = await scriptedMember([
      pending,
      pending,
      { status: 200, body: { nodeId: 4, groups: [], members: [] } },
    ]);
    const logged: unknown[] = [];
    await requestMembership(member.url, [], self, fast, (_message, fields) => logged.push(fields['problem']));
    expect(member.requests).toHaveLength(3);
    expect(JSON.parse(member.requests[0]?.body ?? '')).toEqual({
      nodeId: 4,
      raft: '127.0.0.1:9004',
      http: '127.0.0.1:8004',
      clusterId: 'dram',
    });
    expect(logged).toEqual([
      '503 DRAM_ERR_MEMBERSHIP_PENDING group 2: catching up',
      '503 DRAM_ERR_MEMBERSHIP_PENDING group 2: catching up',
    ]);
  });

  it('asks the other members when the one joined through does not answer (it may have died since)', async () => {
    const dead = await scriptedMember([]);
    await dead.close();
    servers.splice(servers.indexOf(dead), 1);
    const other = await scriptedMember([{ status: 200, body: { nodeId: 4, groups: [], members: [] } }]);
    await requestMembership(dead.url, [other.url], self, fast, quiet);
    expect(other.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /v1/internal/members']);
  });

  it('stops at once when the cluster refuses (4xx), with its code and message', async () => {
    const member = await scriptedMember([
      {
        status: 409,
        body: { error: true, code: 'DRAM_ERR_CLUSTER_MISMATCH', message: 'this node belongs to cluster "prod"' },
      },
    ]);
    const failure = requestMembership(member.url, [], self, fast, quiet);
    await expect(failure).rejects.toThrow(JoinError);
    await expect(failure).rejects.toThrow(/409 DRAM_ERR_CLUSTER_MISMATCH this node belongs to cluster "prod"/);
    expect(member.requests).toHaveLength(1);
  });

  it('gives up after attemptsMax tries and says how to continue', async () => {
    const member = await scriptedMember([
      { status: 503, body: { error: true, code: 'DRAM_ERR_MEMBERSHIP_PENDING', message: 'still catching up' } },
    ]);
    await expect(requestMembership(member.url, [], self, fast, quiet)).rejects.toThrow(
      /did not succeed in 5 attempts: 503 DRAM_ERR_MEMBERSHIP_PENDING still catching up\. Start the node again/,
    );
    expect(member.requests).toHaveLength(5);
    const closed = await scriptedMember([]);
    await closed.close();
    servers.splice(servers.indexOf(closed), 1);
    await expect(fetchClusterView(closed.url, { ...fast, attemptsMax: 2 }, quiet)).rejects.toThrow(/no answer from/);
  });

  it('refuses a malformed cluster view', () => {
    for (const bad of [
      null,
      [],
      { ...view, clusterId: '' },
      { ...view, groups: [] },
      { ...view, groups: [-1] },
      { ...view, members: [{ nodeId: 0, raft: '127.0.0.1:9' }] },
      { ...view, members: [{ nodeId: 2 }] },
      { ...view, members: [{ nodeId: 2, raft: 'x' }] },
      { ...view, kvReplicationFactor: 0 },
      { ...view, kvReplicationFactor: '3' },
    ]) {
      expect(() => parseClusterView(bad, 'http://member')).toThrow(JoinError);
    }
  });

  it('tells a cluster that places its groups (a kv replication factor) from one that does not', () => {
    expect(parseClusterView({ ...view, kvReplicationFactor: 3 }, 'http://member').placed).toBe(true);
    expect(parseClusterView({ ...view, kvReplicationFactor: null }, 'http://member').placed).toBe(false);
    expect(parseClusterView(view, 'http://member').placed).toBe(false);
  });
});
