// Node configuration, for `--join`: the member URL comes from a flag, DRAM_JOIN or the config
// file (flag > env > file), is normalised to a base URL, and anything that is not a plain http(s)
// URL is a ConfigError naming the setting; --init and --join together are refused.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  insecureDevSecret,
  mergeSources,
  parseJoinUrl,
  resolveConfig,
  type RawConfig,
} from '../../src/node/config.ts';

const base: RawConfig = {
  nodeId: '4',
  dataDir: '/tmp/dram-config-test',
  http: '127.0.0.1:8084',
  raft: '127.0.0.1:9084',
  secret: 'config-test-secret-0123',
};

const folders: string[] = [];

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function configFile(contents: object): string {
  const folder = mkdtempSync(join(tmpdir(), 'dram-config-'));
  folders.push(folder);
  const path = join(folder, 'node.json');
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

function configError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('--join', () => {
  it('is absent unless given, and a joining node needs no --peers', () => {
    expect(resolveConfig(base).join).toBeUndefined();
    const config = resolveConfig({ ...base, join: 'http://127.0.0.1:8081' });
    expect(config.join).toBe('http://127.0.0.1:8081');
    expect(config.init).toBe(false);
    expect([...config.peers.keys()]).toEqual([4]);
  });

  it('normalises the member URL to its base: no trailing slash, path kept', () => {
    expect(parseJoinUrl('http://127.0.0.1:8081/')).toBe('http://127.0.0.1:8081');
    expect(parseJoinUrl(' https://dram.example:443/proxy/dram// ')).toBe('https://dram.example/proxy/dram');
    expect(parseJoinUrl('http://[::1]:8081')).toBe('http://[::1]:8081');
  });

  it('refuses what is not a plain http(s) base URL, naming the setting', () => {
    for (const text of [
      '127.0.0.1:8081',
      'ftp://member',
      'http://member:8081/?x=1',
      'http://member#frag',
      'http://user:pw@member',
      '',
      'not a url',
    ]) {
      expect(configError(() => resolveConfig({ ...base, join: text }))).toMatch(/^join: /);
    }
  });

  it('and --init together are a configuration error', () => {
    expect(configError(() => resolveConfig({ ...base, init: true, join: 'http://127.0.0.1:8081' }))).toMatch(
      /init and join/,
    );
    expect(resolveConfig({ ...base, init: false, join: 'http://127.0.0.1:8081' }).join).toBe('http://127.0.0.1:8081');
  });

  it('comes from DRAM_JOIN or the config file, a flag winning over both', () => {
    const file = configFile({ join: 'http://from-file:8081' });
    expect(resolveConfig(mergeSources({ ...base, config: file }, {})).join).toBe('http://from-file:8081');
    expect(resolveConfig(mergeSources({ ...base, config: file }, { DRAM_JOIN: 'http://from-env:8081' })).join).toBe(
      'http://from-env:8081',
    );
    expect(
      resolveConfig(
        mergeSources({ ...base, config: file, join: 'http://from-flag:8081' }, { DRAM_JOIN: 'http://from-env:8081' }),
      ).join,
    ).toBe('http://from-flag:8081');
    expect(
      configError(() => resolveConfig(mergeSources({ ...base, init: true }, { DRAM_JOIN: 'http://from-env:8081' }))),
    ).toMatch(/init and join/);
  });
});

describe('the peer secret', () => {
  const noSecret: RawConfig = { ...base, secret: undefined };

  it('is required: without --secret, DRAM_SECRET or the file nothing starts', () => {
    expect(configError(() => resolveConfig(noSecret))).toMatch(/^secret: required/);
  });

  it('comes from the flag, DRAM_SECRET or the config file', () => {
    expect(resolveConfig(mergeSources(noSecret, { DRAM_SECRET: 'from-the-environment' })).secret).toBe(
      'from-the-environment',
    );
    const file = configFile({ secret: 'from-the-config-file' });
    expect(resolveConfig(mergeSources({ ...noSecret, config: file }, {})).secret).toBe('from-the-config-file');
  });

  it('uses the public development secret only when asked to in so many words', () => {
    expect(resolveConfig({ ...noSecret, insecureDevSecret: true }).secret).toBe(insecureDevSecret);
    expect(configError(() => resolveConfig({ ...base, insecureDevSecret: true }))).toMatch(/not both/);
  });

  it('refuses a short secret with a ConfigError, not an assertion at start', () => {
    expect(configError(() => resolveConfig({ ...base, secret: 'short' }))).toMatch(/at least 16 characters/);
  });
});

describe('tokens and TLS files', () => {
  it('takes --token and --read-token from flags or DRAM_TOKEN / DRAM_READ_TOKEN', () => {
    const config = resolveConfig(
      mergeSources(base, { DRAM_TOKEN: 'full-token-from-env-0', DRAM_READ_TOKEN: 'read-token-from-env-0' }),
    );
    expect({ token: config.token, readToken: config.readToken }).toEqual({
      token: 'full-token-from-env-0',
      readToken: 'read-token-from-env-0',
    });
    expect(resolveConfig(base).token).toBeUndefined();
  });

  it('refuses a read token without a token, a short token, and the same token twice', () => {
    expect(configError(() => resolveConfig({ ...base, readToken: 'read-token-0123456' }))).toMatch(/^readToken:/);
    expect(configError(() => resolveConfig({ ...base, token: 'short' }))).toMatch(/^token: must be at least 16/);
    expect(
      configError(() => resolveConfig({ ...base, token: 'same-token-012345', readToken: 'same-token-012345' })),
    ).toMatch(/must differ/);
  });

  it('reads the TLS files, and refuses a cert without a key, a CA alone, or a missing file', () => {
    const cert = configFile({ pem: 'cert' });
    const key = configFile({ pem: 'key' });
    const config = resolveConfig({ ...base, tlsCert: cert, tlsKey: key, tlsCa: cert });
    expect(config.tls).toEqual({ cert: '{"pem":"cert"}', key: '{"pem":"key"}', ca: '{"pem":"cert"}' });
    expect(configError(() => resolveConfig({ ...base, tlsCert: cert }))).toMatch(/give both or neither/);
    expect(configError(() => resolveConfig({ ...base, tlsCa: cert }))).toMatch(/^tlsCa:/);
    expect(configError(() => resolveConfig({ ...base, tlsCert: '/nonexistent/cert.pem', tlsKey: key }))).toMatch(
      /^--tls-cert \/nonexistent\/cert.pem: ENOENT/,
    );
  });
});

describe('--backup', () => {
  it('is off unless given; s3://bucket/prefix gives the target with the retention and timing defaults', () => {
    expect(resolveConfig(base).backup).toBeUndefined();
    expect(resolveConfig({ ...base, backup: 's3://dram-config/prod/eu/', backupKeep: '5' }).backup).toEqual({
      bucket: 'dram-config',
      prefix: 'prod/eu',
      keep: 5,
      debounceMs: 2_000,
      intervalMs: 3_600_000,
    });
    expect(resolveConfig({ ...base, backup: 's3://dram-config' }).backup?.prefix).toBe('');
  });

  it('refuses what is not an s3:// URL or a bad retention, naming the setting', () => {
    expect(() => resolveConfig({ ...base, backup: '/var/backups' })).toThrow(/backup: expected s3:\/\/bucket\/prefix/u);
    expect(() => resolveConfig({ ...base, backup: 's3://bkt/p', backupKeep: '0' })).toThrow(/backupKeep/u);
  });
});

describe('snapshot settings', () => {
  it('leaves the send limits off and keeps the default tail unless given, from a flag, DRAM_* or the file', () => {
    const plain = resolveConfig(base);
    expect([plain.snapshotSendBytesPerSecMax, plain.snapshotSendsMax, plain.snapshotTailEntries]).toEqual([0, 0, 5000]);
    const flags = resolveConfig({
      ...base,
      snapshotSendBytesPerSecMax: '33554432',
      snapshotSendsMax: '2',
      snapshotTailEntries: '0',
    });
    expect([flags.snapshotSendBytesPerSecMax, flags.snapshotSendsMax, flags.snapshotTailEntries]).toEqual([
      33_554_432, 2, 0,
    ]);
    const merged = resolveConfig(
      mergeSources(
        { ...base, config: configFile({ snapshotSendsMax: 4, snapshotTailEntries: 100 }) },
        { DRAM_SNAPSHOT_SEND_BYTES_PER_SEC_MAX: '1000000', DRAM_SNAPSHOT_SENDS_MAX: '3' },
      ),
    );
    expect([merged.snapshotSendBytesPerSecMax, merged.snapshotSendsMax, merged.snapshotTailEntries]).toEqual([
      1_000_000, 3, 100,
    ]);
  });

  it('refuses a negative, fractional or oversized value, naming the setting', () => {
    expect(configError(() => resolveConfig({ ...base, snapshotSendsMax: '-1' }))).toMatch(/^snapshotSendsMax/u);
    expect(configError(() => resolveConfig({ ...base, snapshotSendBytesPerSecMax: '1.5' }))).toMatch(
      /^snapshotSendBytesPerSecMax/u,
    );
    expect(configError(() => resolveConfig({ ...base, snapshotTailEntries: '2000000' }))).toMatch(
      /^snapshotTailEntries: at most/u,
    );
  });
});
