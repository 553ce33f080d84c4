// TLS with real processes (docs/security.md), certificates made by the test: three nodes started
// with --tls-cert/--tls-key/--tls-ca serve their HTTP API over HTTPS only and talk to each other
// over mutual TLS. The cluster forms (peer mTLS works), writes sent to any node are forwarded to
// the leaders over HTTPS with the cluster's CA, the agent API reports https:// addresses, a plain
// HTTP request gets no answer, and the CLI works with the CA in NODE_EXTRA_CA_CERTS. Every wait
// is a bounded poll that fails with a message.

import { execFile } from 'node:child_process';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificates, type TestCertificates } from '../support/tls-certs.ts';
import { eventually, processCluster, type ProcessCluster } from './cluster-process.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));
let certificates: TestCertificates;
let cluster: ProcessCluster;

const secureUrl = (id: number): string => cluster.url(id).replace(/^http:/u, 'https:');

/** One HTTPS call that trusts the test CA only (and checks the host name, 127.0.0.1, against it). */
function call(url: string, method = 'GET', body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = https.request(url, { method, ca: certificates.ca, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    outgoing.on('timeout', () => outgoing.destroy(new Error('timed out')));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

beforeAll(async () => {
  certificates = makeCertificates('dram-it');
  const { files } = certificates;
  cluster = processCluster(3, { args: ['--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca] });
  await eventually(async () => {
    for (const id of cluster.ids) {
      const status = JSON.parse((await call(`${secureUrl(id)}/v1/status`)).text) as { groups: { leader: number }[] };
      if (status.groups.length !== 5 || status.groups.some((g) => g.leader === 0)) return undefined;
    }
    return true;
  }, 150);
}, 60_000);

afterAll(async () => {
  await cluster.stopAll();
  certificates.remove();
});

describe('a cluster with TLS', () => {
  it('forwards writes from every node to the leaders over HTTPS', async () => {
    for (const id of cluster.ids) {
      for (let k = 0; k < 8; k++) {
        const answer = await call(`${secureUrl(id)}/v1/kv/tls-${id}-${k}`, 'PUT', `v${k}`);
        expect({ id, k, status: answer.status, text: answer.text }).toMatchObject({ id, k, status: 200 });
      }
    }
    expect((await call(`${secureUrl(2)}/v1/kv/tls-3-7`)).text).toBe('v7');
  });

  it('reports its https:// address and serves nothing over plain HTTP', async () => {
    const info = JSON.parse((await call(`${secureUrl(1)}/api/unstable/info/node`)).text) as {
      address: { member: string };
    };
    expect(info.address.member).toBe(secureUrl(1));
    await expect(fetch(`${cluster.url(1)}/v1/status`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
  });

  it('works from the CLI with the CA in NODE_EXTRA_CA_CERTS', async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: certificates.files.ca };
    const run = promisify(execFile);
    await run(process.execPath, [bin, 'kv', 'put', 'tls-cli', 'hello', '--url', secureUrl(3)], {
      env,
      timeout: 30_000,
    });
    const { stdout } = await run(process.execPath, [bin, 'kv', 'get', 'tls-cli', '--url', secureUrl(1)], {
      env,
      timeout: 30_000,
    });
    expect(stdout).toBe('hello\n');
  });
});
