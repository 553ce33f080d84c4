// A node whose storage fails (issue 19 item 4): it answers what waits with a 503 and a code,
// closes its ports and exits non-zero on its own, its last words naming the cause. The failure
// is a real one: the data dir is deleted under the running node, so LevelDB's next log file
// cannot be created and the write after it fails.

import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, groupStatus, processCluster, request, type ProcessCluster } from './cluster-process.ts';

describe('a node with a fatal storage error', () => {
  let cluster: ProcessCluster | undefined;

  afterAll(async () => {
    await cluster?.stopAll();
  });

  it('answers with a code, exits non-zero on its own and says it was a storage failure', async () => {
    cluster = processCluster(1);
    const url = cluster.url(1);
    await eventually(async () => ((await groupStatus(url)).every((group) => group.leader === 1) ? true : undefined));
    const exited = cluster.exited(1);
    const state = { exited: false };
    void exited.then(() => {
      state.exited = true;
    });
    rmSync(cluster.dataDir(1), { recursive: true, force: true });
    // Values of 512 KiB fill LevelDB's 4 MiB write buffer within a few writes; its flush then
    // fails. Bounded: at most 64 writes.
    const value = 'v'.repeat(512 * 1024);
    const refusals: { status: number; code: unknown }[] = [];
    for (let k = 0; k < 64 && !state.exited && refusals.length === 0; k++) {
      const answer = await request(`${url}/v1/kv/key-${k}`, 'PUT', value).catch(() => undefined);
      if (answer === undefined || answer.status === 200) continue;
      refusals.push({ status: answer.status, code: (JSON.parse(answer.text) as { code?: unknown }).code });
    }
    // Whatever was refused was refused with a 503 and a documented code, never a 404 or a 500.
    for (const refusal of refusals) {
      expect(refusal.status).toBe(503);
      expect(['DRAM_ERR_NODE_STOPPED', 'DRAM_ERR_INDETERMINATE']).toContain(refusal.code);
    }
    // Bounded: the node's own deadline is 2 s; the test gives it 15 s before failing.
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((resolve) => {
        setTimeout(() => {
          resolve('hung');
        }, 15_000).unref();
      }),
    ]);
    expect(code).toBe(1);
    const logs = cluster.logs(1);
    expect(logs).toContain('"cause":"storage failure"');
    expect(logs).toContain('storage failure: stopping the node');
    // Its ports are closed: nothing answers any more.
    await expect(request(`${url}/v1/status`)).rejects.toThrow();
  }, 60_000);
});
