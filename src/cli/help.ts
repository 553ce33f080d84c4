// `dram --help`: after commander's own list, every command (subcommands spelled out) with one
// example. A command without an example here is listed as such, and test/cli/help.test.ts fails
// on it, so a new command cannot be added without one. Called by src/cli/main.ts.

import type { Command } from 'commander';

const examples: Readonly<Record<string, string>> = {
  start:
    'dram start --node-id 1 --data-dir /var/lib/dram --http 10.0.0.1:8081 --raft 10.0.0.1:9081 --init --peers 1=10.0.0.1:9081,2=10.0.0.2:9081,3=10.0.0.3:9081 --peer-http 1=10.0.0.1:8081,2=10.0.0.2:8081,3=10.0.0.3:8081 --secret "$DRAM_SECRET"',
  dev: 'dram dev   (what npm start runs: three local nodes, URLs printed)',
  status: 'dram status --url http://127.0.0.1:8081',
  failover: 'dram failover 1 --to 2',
  compact: 'dram compact 1 --url http://127.0.0.1:8082',
  placement: 'dram placement --url http://127.0.0.1:8081',
  'members add': 'dram members add http://10.0.0.4:8081 --no-wait',
  'members list': 'dram members list --url http://127.0.0.1:8081',
  'members remove': 'dram members remove 4',
  'actions ls': 'dram actions ls --json',
  'actions show': 'dram actions show 3d0c0000-0000-4000-8000-000000000001',
  'actions schedule': 'dram actions schedule dram.io/group.transfer-leadership \'{"group": 1, "to": 2}\'',
  'actions cancel': 'dram actions cancel 3d0c0000-0000-4000-8000-000000000001 --reason "wrong target"',
  'kv get': 'dram kv get greeting --consistency lease',
  'kv put': 'dram kv put greeting hello --cas 0',
  'kv del': 'dram kv del greeting',
  query: 'dram query events count \'{"kind": "purchase"}\' --partial allow',
  backup: 'dram backup s3://dram-backups/prod/2026-12-05.drbk --s3-endpoint http://127.0.0.1:4568 --s3-path-style',
  restore:
    'dram restore ./cluster.drbk --data-dir /var/lib/dram --peers 1=10.0.0.1:9081,2=10.0.0.2:9081,3=10.0.0.3:9081',
  recover: 'dram recover --force-new-cluster --data-dir /var/lib/dram --node-id 1   (the node stopped)',
  'db add': 'dram db add shop s3://dram-dev/sample/shop --replicas 2',
  'db ls': 'dram db ls --json',
  'db show': 'dram db show shop',
  'db shards': 'dram db shards shop',
  'db rm': 'dram db rm shop --no-wait',
  'db reload': 'dram db reload shop',
  'alias ls': 'dram alias ls',
  'alias set': 'dram alias set live shop',
  'alias rm': 'dram alias rm live',
  'alias swap': 'dram alias swap live=shop-v2 staging=shop   (or: dram alias swap --rollback)',
};

export const missingExample = '(no example yet)';

/** Every runnable command's path (`kv put`), depth first, in the order they were defined. */
export function commandPaths(command: Command, prefix = ''): string[] {
  return command.commands.flatMap((sub) => {
    const path = `${prefix}${sub.name()}`;
    return sub.commands.length === 0 ? [path] : commandPaths(sub, `${path} `);
  });
}

/** The text after commander's help: each command with its example. */
export function examplesHelp(program: Command): string {
  const paths = commandPaths(program).filter((path) => path !== 'help');
  const width = Math.max(...paths.map((path) => path.length));
  const lines = paths.map((path) => `  ${path.padEnd(width)}  ${examples[path] ?? missingExample}`);
  return [
    '',
    'Commands with an example each (the client commands take --url <any member>, --token or DRAM_TOKEN):',
    ...lines,
  ].join('\n');
}
