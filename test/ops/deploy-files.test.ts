// The deployment files under deploy/ are read by the same code a node uses: each machine's config
// must resolve (every setting valid, the secret from the environment as the systemd unit passes it),
// and the three must describe the same cluster, each node at the addresses the others know it by.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeSources, resolveConfig, type NodeConfig } from '../../src/node/config.ts';

const root = join(import.meta.dirname, '..', '..');
const machines = [1, 2, 3];
const env = { DRAM_SECRET: 'a-deployment-secret-for-the-test' };

function load(id: number): NodeConfig {
  return resolveConfig(mergeSources({ config: join(root, 'deploy', 'config', `node-${id}.json`) }, env));
}

describe('deploy/config', () => {
  it('every machine config resolves and names its own node', () => {
    for (const id of machines) expect(load(id).nodeId).toBe(id);
  });

  it('the three configs describe one cluster, each node where the others look for it', () => {
    const configs = machines.map(load);
    const first = configs[0];
    if (first === undefined) throw new Error('no config');
    for (const config of configs) {
      expect(config.clusterId).toBe(first.clusterId);
      expect([...config.peers]).toEqual([...first.peers]);
      expect([...config.peerHttp]).toEqual([...first.peerHttp]);
      expect(config.kvGroups).toEqual(first.kvGroups);
      expect(config.peers.get(config.nodeId)).toEqual(config.raft);
      expect(config.peerHttp.get(config.nodeId)).toEqual(config.http);
    }
  });

  it('a config without the secret in the environment is refused, as the unit would be', () => {
    expect(() => resolveConfig(mergeSources({ config: join(root, 'deploy', 'config', 'node-1.json') }, {}))).toThrow(
      /secret/i,
    );
  });

  it('the systemd unit starts from the config and the secret file the docs name', () => {
    const unit = readFileSync(join(root, 'deploy', 'systemd', 'dram.service'), 'utf8');
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/dram\/dram\.env$/mu);
    expect(unit).toMatch(/^ExecStart=.* start --config \/etc\/dram\/node\.json --init$/mu);
    const docs = readFileSync(join(root, 'docs', 'deploy.md'), 'utf8');
    expect(docs).toContain('/etc/dram/dram.env');
    expect(docs).toContain('/etc/dram/node.json');
  });
});
