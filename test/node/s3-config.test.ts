// The S3 settings of a node's configuration: --s3-endpoint, --s3-region and --s3-path-style (and
// their DRAM_S3_* variables) resolve into config.s3; a bad endpoint or region stops the start.

import { describe, expect, it } from 'vitest';
import { ConfigError, mergeSources, resolveConfig, type RawConfig } from '../../src/node/config.ts';

const base: RawConfig = {
  nodeId: '1',
  dataDir: '/tmp/x',
  http: '127.0.0.1:8081',
  raft: '127.0.0.1:9081',
  insecureDevSecret: true,
};

describe('S3 configuration', () => {
  it('defaults to AWS in us-east-1 with virtual-host addressing', () => {
    expect(resolveConfig(base).s3).toEqual({ region: 'us-east-1', pathStyle: false });
  });

  it('takes an endpoint, a region and path-style from flags or DRAM_S3_* variables', () => {
    expect(
      resolveConfig({ ...base, s3Endpoint: 'http://127.0.0.1:4568/', s3Region: 'eu-west-1', s3PathStyle: true }).s3,
    ).toEqual({ endpoint: 'http://127.0.0.1:4568', region: 'eu-west-1', pathStyle: true });
    const fromEnv = mergeSources(base, { DRAM_S3_ENDPOINT: 'https://s3.example.test', DRAM_S3_PATH_STYLE: 'true' });
    expect(resolveConfig(fromEnv).s3).toEqual({
      endpoint: 'https://s3.example.test',
      region: 'us-east-1',
      pathStyle: true,
    });
  });

  it.each([
    [{ s3Endpoint: 'not a url' }, /s3Endpoint: expected a URL/],
    [{ s3Endpoint: 'ftp://127.0.0.1:21' }, /s3Endpoint: expected an http/],
    [{ s3Endpoint: 'http://key:secret@127.0.0.1:4568' }, /no query, fragment or credentials/],
    [{ s3Region: 'EU West' }, /s3Region: expected a region name/],
    [{ s3PathStyle: 'maybe' }, /s3PathStyle: expected true or false/],
  ])('refuses %o', (bad, message) => {
    expect(() => resolveConfig({ ...base, ...bad })).toThrow(ConfigError);
    expect(() => resolveConfig({ ...base, ...bad })).toThrow(message);
  });
});
