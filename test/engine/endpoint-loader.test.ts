// Loading endpoint modules: the examples load; every malformed module is a start-up error that
// names its file and what is wrong; params are validated against the schema with defaults filled
// in and the caller's object left alone.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { endpointSet, loadEndpoints } from '../../src/query/endpoint-loader.ts';
import { EndpointLoadError } from '../../src/query/endpoint-module.ts';

const examples = new URL('../../examples/endpoints/', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'dram-endpoints-'));
let directories = 0;

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** A directory holding these files (name -> source). */
function directory(files: Record<string, string>): string {
  const dir = join(scratch, `d${directories++}`);
  mkdirSync(dir);
  for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
  return dir;
}

const good = (name: string): string => `export default { name: '${name}', map: () => 1 };\n`;

async function loadError(dir: string): Promise<EndpointLoadError> {
  try {
    await loadEndpoints(dir);
  } catch (error) {
    if (error instanceof EndpointLoadError) return error;
    throw error;
  }
  throw new Error('expected the endpoints to be refused');
}

describe('loadEndpoints', () => {
  it('loads the example endpoints', async () => {
    const endpoints = await loadEndpoints(examples);
    expect([...endpoints.keys()].sort()).toEqual(['count', 'histogram', 'top-k']);
    for (const endpoint of endpoints.values()) expect(endpoint.file.startsWith(examples)).toBe(true);
  });

  it('takes *.js, *.mjs and *.ts files directly in the directory, not *.d.ts or other files', async () => {
    const dir = directory({
      'a.mjs': good('a'),
      'b.js': good('b'),
      'c.ts': `export default { name: 'c', map: (): number => 1 };\n`,
      'd.d.ts': 'export {};\n',
      'notes.md': '# not a module\n',
    });
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'e.mjs'), good('e'));
    expect([...(await loadEndpoints(dir)).keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  const refusals: readonly [string, string, RegExp][] = [
    ['a file that throws on import', `throw new Error('boom at import');\n`, /failed to load: boom at import/u],
    ['a file with a syntax error', `export default {\n`, /failed to load/u],
    ['no default export', `export const endpoint = {};\n`, /no default export/u],
    ['a default export that is not an object', `export default 42;\n`, /default export must be an object/u],
    ['no map', `export default { name: 'x' };\n`, /map must be a function/u],
    ['a reduce that is not a function', `export default { name: 'x', map() {}, reduce: 1 };\n`, /reduce/u],
    ['a misspelt key', `export default { name: 'x', map() {}, reducer() {} };\n`, /unknown key\(s\) reducer/u],
    ['a name that is no URL segment', `export default { name: '../x', map() {} };\n`, /name must match/u],
    ['a timeout out of range', `export default { name: 'x', map() {}, timeoutMs: 0 };\n`, /timeoutMs must be/u],
    [
      'a concurrency limit that is no integer',
      `export default { name: 'x', map() {}, concurrencyMax: 1.5 };\n`,
      /concurrencyMax/u,
    ],
    [
      'params that are not an object',
      `export default { name: 'x', map() {}, params: [] };\n`,
      /params must be a JSON schema/u,
    ],
    [
      'params with an unknown keyword',
      `export default { name: 'x', map() {}, params: { type: 'object', propertys: {} } };\n`,
      /params is not a schema ajv can compile: .*propertys/u,
    ],
    ['an async schema', `export default { name: 'x', map() {}, params: { $async: true } };\n`, /\$async/u],
  ];
  for (const [what, source, message] of refusals)
    it(`refuses ${what}, naming the file`, async () => {
      const dir = directory({ 'ok.mjs': good('ok'), 'bad.mjs': source });
      const error = await loadError(dir);
      expect(error.file).toBe(join(dir, 'bad.mjs'));
      expect(error.message).toContain(join(dir, 'bad.mjs'));
      expect(error.message).toMatch(message);
      expect(error.code).toBe('DRAM_ERR_ENDPOINT_LOAD');
    });

  it('refuses two files with the same endpoint name, naming both', async () => {
    const dir = directory({ 'one.mjs': good('same'), 'two.mjs': good('same') });
    const error = await loadError(dir);
    expect(error.message).toContain(join(dir, 'two.mjs'));
    expect(error.message).toContain(join(dir, 'one.mjs'));
  });

  it('refuses a directory that does not exist, naming it', async () => {
    const error = await loadError(join(scratch, 'absent'));
    expect(error.message).toContain(join(scratch, 'absent'));
  });
});

describe('params validation', () => {
  const [endpoint] = endpointSet([
    {
      file: 'inline.mjs',
      exported: {
        name: 'p',
        map: () => 1,
        params: {
          type: 'object',
          additionalProperties: false,
          properties: { k: { type: 'integer', minimum: 1, default: 10 }, at: { type: 'string', format: 'date-time' } },
        },
      },
    },
  ]).values();

  it('fills in defaults on a copy, leaving the caller’s params alone', () => {
    const params = { at: '2026-01-01T00:00:00Z' };
    expect(endpoint?.validateParams(params)).toEqual({ kind: 'valid', params: { k: 10, at: '2026-01-01T00:00:00Z' } });
    expect(params).toEqual({ at: '2026-01-01T00:00:00Z' });
  });

  it('lists every error with its path, and coerces nothing', () => {
    const check = endpoint?.validateParams({ k: '3', at: 'yesterday', extra: true });
    expect(check?.kind).toBe('invalid');
    if (check?.kind !== 'invalid') return;
    expect(check.errors.map((error) => error.path).sort()).toEqual(['', '/at', '/k']);
    expect(check.message).toContain('extra');
  });

  it('takes any JSON as the params of an endpoint without a schema', () => {
    const [open] = endpointSet([{ file: 'open.mjs', exported: { name: 'o', map: () => 1 } }]).values();
    expect(open?.validateParams([1, 'two'])).toEqual({ kind: 'valid', params: [1, 'two'] });
  });
});
