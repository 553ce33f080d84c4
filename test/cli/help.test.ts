// `dram --help` (src/cli/help.ts): lists every command commander knows, subcommands spelled out,
// each with an example; a command added without an example fails here.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { missingExample } from '../../src/cli/help.ts';

const bin = fileURLToPath(new URL('../../bin/dram.js', import.meta.url));

function help(...args: string[]): string {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  expect(result.status).toBe(0);
  return result.stdout;
}

/** The command names in the "Commands:" section of commander's own help. */
function listedCommands(text: string): string[] {
  const section = text.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
  return section
    .split('\n')
    .map((line) => /^ {2}(\S+)/u.exec(line)?.[1] ?? '')
    .filter((name) => name !== '' && name !== 'help');
}

describe('dram --help', () => {
  it('gives every command and subcommand an example', () => {
    const text = help('--help');
    const top = listedCommands(text);
    expect(top).toEqual(expect.arrayContaining(['start', 'dev', 'status', 'failover', 'members', 'actions', 'kv']));
    const paths = top.flatMap((name) => {
      const subcommands = listedCommands(help(name, '--help'));
      return subcommands.length === 0 ? [name] : subcommands.map((sub) => `${name} ${sub}`);
    });
    const examples = text.split('with an example each')[1] ?? '';
    for (const path of paths) {
      const line = examples.split('\n').find((candidate) => candidate.trimStart().startsWith(`${path} `));
      expect({ path, line: line?.includes('dram') }).toEqual({ path, line: true });
    }
    expect(examples).not.toContain(missingExample);
  });
});
