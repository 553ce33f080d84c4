// A node's log format (--log-format, src/node/node.ts nodeLogger): JSON lines by default, one
// readable line per entry with `pretty` (through pino-pretty, as `dram dev` runs its nodes). Each
// case runs in a child process, since pino's transport writes from a worker to the real stdout.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function logOnce(format: string): string {
  const script = [
    `import { nodeLogger } from './src/node/node.ts';`,
    `const logger = nodeLogger({ nodeId: 3, logFormat: '${format}' });`,
    `logger.info({ group: 2, voters: [1, 2, 3] }, 'leader elected');`,
    `logger.flush?.();`,
  ].join('\n');
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../../', import.meta.url),
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(result.stderr).toBe('');
  return result.stdout;
}

describe('node log format', () => {
  it('writes one JSON object a line by default (production)', () => {
    const lines = logOnce('json').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 30, node: 3, group: 2, msg: 'leader elected' });
  });

  it('writes one readable line an entry with --log-format pretty (dram dev)', () => {
    const lines = logOnce('pretty').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node 3: leader elected \{"group":2,"voters":\[1,2,3\]\}$/u,
    );
  });
});
