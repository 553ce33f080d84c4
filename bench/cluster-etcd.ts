// The etcd side of the cluster benchmark as a WriteTarget. Starting, stopping, killing and
// restarting members lives in test/support/etcd-anchor.ts, shared with the fault-injection
// harness; the etcd3 client there has its retry and circuit-breaker policies off, so the
// benchmark retries the same way for both systems.

import type { Etcd3 } from 'etcd3';
import { etcdClient } from '../test/support/etcd-anchor.ts';
import type { WriteOutcome, WriteTarget } from './cluster-load.ts';

export { EtcdCluster, etcdClient, etcdEndpoints, type EtcdLeader } from '../test/support/etcd-anchor.ts';

function errorName(error: unknown): string {
  return error instanceof Error ? error.constructor.name : 'error';
}

/** The etcd side as a WriteTarget: put with a per-call deadline, a linearizable get to read back. */
export class EtcdTarget implements WriteTarget {
  readonly name = 'etcd';
  readonly client: Etcd3;

  constructor(hosts: readonly string[]) {
    this.client = etcdClient(hosts);
  }

  async write(key: string, value: Uint8Array, timeoutMs: number): Promise<WriteOutcome> {
    try {
      await this.client
        .put(key)
        .value(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
        .options({ deadline: Date.now() + timeoutMs });
      return { ok: true };
    } catch (error) {
      return { ok: false, error: errorName(error) };
    }
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    // Each call goes to one member picked at random (no client retry policy): a member that is down
    // fails it at once, so try a few times.
    let lastError: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        const value = await this.client
          .get(key)
          .options({ deadline: Date.now() + 5000 })
          .buffer();
        return value ?? undefined;
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`etcd: read of ${key} failed: ${errorName(lastError)}`);
  }

  close(): void {
    this.client.close();
  }
}
