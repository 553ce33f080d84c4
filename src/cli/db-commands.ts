// `dram db add|ls|show|shards|rm|reload` and `dram alias ls|set|rm|swap`: thin clients of the
// database and alias routes (docs/databases.md). `db add` and `db reload` wait (unless --no-wait)
// for the action, then for the version to be loaded on its copies, drawing a progress bar
// (cli-progress) over the bytes of every replica when the output is a terminal; the first replica
// that records `failed` ends the wait with its error and exit code 1 (the action was DONE, the
// load was not: a failed replica stays failed until a reload, so the version can never become
// loaded by waiting longer). Called by src/cli/main.ts.

import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { call, describeError, type ApiAnswer } from './http-client.ts';
import { printTable } from './table.ts';

/** How long `db add`/`db reload` wait for loaded before saying how to follow it. */
const loadWaitMs = 30 * 60_000;
const pollMs = 500;

interface ReplicaJson {
  node: number;
  state: string;
  error: string | null;
  bytes: number | null;
  bytesTotal: number | null;
  progress: number | null;
  etaSeconds: number | null;
}
interface VersionJson {
  version: number;
  state: string;
  bytes: number;
  shards: { shard: string; files: number; bytes: number; replicas: ReplicaJson[] }[];
}
interface DatabaseJson {
  name: string;
  source: string;
  replicas: number | 'all';
  version: number;
  state: string;
  shards: number;
  files: number;
  bytes: number;
  next: { version: number; state: string } | null;
  aliases: string[];
  lazy?: boolean;
  current?: VersionJson;
  stats?: DatabaseStatsJson;
}
interface DatabaseStatsJson {
  bytesOnDisk: number;
  s3Requests: number;
  s3Bytes: number;
  cacheHitRate: number | null;
  queries: number;
  queriesFailed: number;
  queryP50Ms: number | null;
  queryP99Ms: number | null;
}

type Fail = (message: string) => never;

function parse(answer: ApiAnswer): unknown {
  return JSON.parse(new TextDecoder().decode(answer.body));
}

function mebibytes(bytes: number | null): string {
  return bytes === null ? '?' : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function print(answer: ApiAnswer, json: boolean | undefined, fail: Fail, table: (body: unknown) => void): void {
  if (answer.status >= 300) fail(describeError(answer));
  const body: unknown = parse(answer);
  if (json === true) console.log(JSON.stringify(body, null, 2));
  else table(body);
}

async function waitForAction(url: string, id: string, fail: Fail): Promise<unknown> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const answer = await call(url, 'GET', `/v1/actions/${encodeURIComponent(id)}`);
    if (answer.status === 200) {
      const action = parse(answer) as { state: { phase: string; payload: unknown; error: unknown } };
      if (action.state.phase === 'FAILED') fail(`action ${id} failed: ${JSON.stringify(action.state.error)}`);
      if (action.state.phase === 'DONE') return action.state.payload;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs / 2));
  }
  return fail(`action ${id} is still running: follow it with \`dram actions show ${id}\``);
}

/** Waits until `version` of the database is current and loaded, with a progress bar on a terminal. */
async function waitForLoaded(url: string, name: string, version: number, fail: Fail): Promise<DatabaseJson> {
  const bar = process.stdout.isTTY
    ? new SingleBar({ format: `${name} v${version} [{bar}] {percentage}% {value}/{total} bytes, ETA {eta}s` })
    : undefined;
  let started = false;
  try {
    for (const deadline = Date.now() + loadWaitMs; Date.now() < deadline; ) {
      const answer = await call(url, 'GET', `/v1/databases/${encodeURIComponent(name)}`);
      if (answer.status !== 200) fail(describeError(answer));
      const database = parse(answer) as DatabaseJson & { current: VersionJson; next: VersionJson | null };
      const target = database.current.version === version ? database.current : database.next;
      if (target === null || target.version !== version)
        fail(`version ${version} of ${name} was replaced (now ${database.version})`);
      const replicas = target.shards.flatMap((shard) =>
        shard.replicas.map((replica) => ({ shard: shard.shard, ...replica })),
      );
      // A node's figures cover all its shards: count each node once.
      const perNode = new Map(replicas.map((replica) => [replica.node, replica]));
      const total = [...perNode.values()].reduce((sum, replica) => sum + (replica.bytesTotal ?? 0), 0);
      const done = [...perNode.values()].reduce(
        (sum, replica) => sum + (replica.state === 'loaded' ? (replica.bytesTotal ?? 0) : (replica.bytes ?? 0)),
        0,
      );
      if (bar !== undefined && total > 0) {
        if (!started) bar.start(total, done);
        started = true;
        bar.setTotal(total);
        bar.update(done);
      }
      if (target.state === 'loaded' && database.current.version === version) return database;
      const failed = replicas.filter((replica) => replica.state === 'failed');
      if (failed.length > 0)
        fail(
          `${name} v${version} failed to load:\n${failed.map((r) => `  shard ${r.shard} on node ${r.node}: ${r.error ?? '?'}`).join('\n')}`,
        );
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    if (started) bar?.stop();
  }
  return fail(`${name} is still loading: follow it with \`dram db show ${name}\``);
}

function databaseRow(database: DatabaseJson): Record<string, string | number> {
  return {
    name: database.name,
    version: database.version,
    state: database.state,
    replicas: database.replicas,
    lazy: database.lazy === true ? 'yes' : '',
    shards: database.shards,
    files: database.files,
    size: mebibytes(database.bytes),
    next: database.next === null ? '' : `v${database.next.version} ${database.next.state}`,
    aliases: database.aliases.join(' '),
    source: database.source,
  };
}

/** `dram db ls`: a database's row with its statistics (summed over the members holding it). */
function statsRow(database: DatabaseJson): Record<string, string | number> {
  const stats = database.stats;
  const ms = (value: number | null | undefined): string => (value === null || value === undefined ? '' : `${value}`);
  return {
    name: database.name,
    version: database.version,
    state: database.state,
    lazy: database.lazy === true ? 'yes' : '',
    shards: database.shards,
    'on disk': stats === undefined ? '?' : mebibytes(stats.bytesOnDisk),
    's3 requests': stats?.s3Requests ?? '?',
    's3 bytes': stats === undefined ? '?' : mebibytes(stats.s3Bytes),
    'cache hits': stats?.cacheHitRate === null || stats === undefined ? '' : `${Math.round(stats.cacheHitRate * 100)}%`,
    queries:
      stats === undefined
        ? '?'
        : `${stats.queries}${stats.queriesFailed > 0 ? ` (${stats.queriesFailed} failed)` : ''}`,
    'p50 ms': ms(stats?.queryP50Ms),
    'p99 ms': ms(stats?.queryP99Ms),
    aliases: database.aliases.join(' '),
  };
}

export function addDatabaseCommands(program: Command, defaultUrl: string, fail: Fail): void {
  const db = program.command('db').description('databases loaded from S3 prefixes (docs/databases.md)');
  addDbAdd(db, defaultUrl, fail);
  addDbReads(db, defaultUrl, fail);
  addDbChanges(db, defaultUrl, fail);
  const alias = program.command('alias').description('names that point at databases (swapped all or nothing)');
  addAliasCommands(alias, defaultUrl, fail);
  addAliasSwap(alias, defaultUrl, fail);
}

function addDbAdd(db: Command, defaultUrl: string, fail: Fail): void {
  db.command('add <name> <source>')
    .description('add the database at s3://bucket/prefix; waits until it is loaded on its copies')
    .option('--replicas <n>', 'copies of each shard: a number, or "all" (every member, joiners too)', '1')
    .option('--lazy', 'load only the metadata; fetch the data files when a query first needs them')
    .option('--metadata-pattern <glob>', 'with --lazy: files (paths under the prefix) to fetch at load too')
    .option('--no-wait', 'print the action id at once')
    .option('--url <url>', 'any member', defaultUrl)
    .action(
      async (
        name: string,
        source: string,
        flags: { replicas: string; lazy?: boolean; metadataPattern?: string; wait: boolean; url: string },
      ) => {
        const replicas = flags.replicas === 'all' ? 'all' : Number(flags.replicas);
        const body = JSON.stringify({
          name,
          source,
          replicas,
          ...(flags.lazy === true ? { lazy: true } : {}),
          ...(flags.metadataPattern === undefined ? {} : { metadataPattern: flags.metadataPattern }),
        });
        const answer = await call(flags.url, 'POST', '/v1/databases', body);
        if (answer.status !== 202) fail(describeError(answer));
        const { action } = parse(answer) as { action: string };
        if (!flags.wait) {
          console.log(action);
          return;
        }
        const payload = (await waitForAction(flags.url, action, fail)) as { version: number };
        const database = await waitForLoaded(flags.url, name, payload.version, fail);
        printTable([databaseRow(database)]);
      },
    );
}

/** One shard of GET /v1/databases/:name/shards. */
interface ShardJson {
  shard: string;
  version: number;
  role: string;
  group: number | null;
  members: { node: number; state: string; role: string | null; commitOffset: number | null; lag: number | null }[];
}

/** db ls, show, shards. */
function addDbReads(db: Command, defaultUrl: string, fail: Fail): void {
  db.command('ls')
    .description('every database: version, state, bytes on disk, S3 requests and bytes, cache hit rate, queries')
    .option('--url <url>', 'any member', defaultUrl)
    .option('--json', 'print JSON')
    .action(async (flags: { url: string; json?: boolean }) => {
      print(await call(flags.url, 'GET', '/v1/databases'), flags.json, fail, (body) => {
        printTable((body as { databases: DatabaseJson[] }).databases.map(statsRow));
      });
    });
  db.command('show <name>')
    .description("one database: each shard's replicas with state, progress and error")
    .option('--url <url>', 'any member', defaultUrl)
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { url: string; json?: boolean }) => {
      print(await call(flags.url, 'GET', `/v1/databases/${encodeURIComponent(name)}`), flags.json, fail, (body) => {
        const database = body as DatabaseJson & { current: VersionJson; next: VersionJson | null };
        printTable([databaseRow(database)]);
        const versions = [database.current, ...(database.next === null ? [] : [database.next])];
        printTable(
          versions.flatMap((version) =>
            version.shards.flatMap((shard) =>
              shard.replicas.map((replica) => ({
                version: version.version,
                shard: shard.shard,
                node: replica.node,
                state: replica.state,
                progress: replica.progress === null ? '?' : `${Math.floor(replica.progress * 100)}%`,
                bytes: `${mebibytes(replica.bytes)} / ${mebibytes(replica.bytesTotal)}`,
                eta: replica.etaSeconds === null ? '' : `${replica.etaSeconds}s`,
                error: replica.error ?? '',
              })),
            ),
          ),
        );
      });
    });
  db.command('shards <name>')
    .description('which members hold which shards, per version: role (PRIMARY, SECONDARY, RECOVERING), commit, lag')
    .option('--url <url>', 'any member', defaultUrl)
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { url: string; json?: boolean }) => {
      print(
        await call(flags.url, 'GET', `/v1/databases/${encodeURIComponent(name)}/shards`),
        flags.json,
        fail,
        (body) => {
          const shards = (body as { shards: ShardJson[] }).shards;
          // One row per replica: its role in the shard's group (PRIMARY is the group's leader).
          printTable(
            shards.flatMap((shard) =>
              shard.members.map((member) => ({
                shard: shard.shard,
                version: `${shard.version} (${shard.role})`,
                group: shard.group ?? '-',
                node: member.node,
                role: member.role ?? '?',
                state: member.state,
                commit: member.commitOffset ?? '-',
                lag: member.lag ?? '-',
              })),
            ),
          );
        },
      );
    });
}

/** db rm, reload. */
function addDbChanges(db: Command, defaultUrl: string, fail: Fail): void {
  db.command('rm <name>')
    .description('remove the database; every member deletes its files')
    .option('--no-wait', 'print the action id at once')
    .option('--url <url>', 'any member', defaultUrl)
    .action(async (name: string, flags: { wait: boolean; url: string }) => {
      const answer = await call(flags.url, 'DELETE', `/v1/databases/${encodeURIComponent(name)}`);
      if (answer.status !== 202) fail(describeError(answer));
      const { action } = parse(answer) as { action: string };
      if (!flags.wait) console.log(action);
      else {
        await waitForAction(flags.url, action, fail);
        console.log(`${name} removed`);
      }
    });
  db.command('reload <name>')
    .description('list the prefix again; a new version serves once loaded, then the old one is deleted')
    .option('--no-wait', 'print the action id at once')
    .option('--url <url>', 'any member', defaultUrl)
    .action(async (name: string, flags: { wait: boolean; url: string }) => {
      const answer = await call(flags.url, 'POST', `/v1/databases/${encodeURIComponent(name)}/reload`, '{}');
      if (answer.status !== 202) fail(describeError(answer));
      const { action } = parse(answer) as { action: string };
      if (!flags.wait) {
        console.log(action);
        return;
      }
      const payload = (await waitForAction(flags.url, action, fail)) as { version: number; unchanged?: boolean };
      if (payload.unchanged === true) {
        console.log(`${name} is unchanged (version ${payload.version})`);
        return;
      }
      printTable([databaseRow(await waitForLoaded(flags.url, name, payload.version, fail))]);
    });
}

/** alias ls, set, rm. */
function addAliasCommands(alias: Command, defaultUrl: string, fail: Fail): void {
  const aliasTable = (body: unknown): void => {
    printTable((body as { aliases: { alias: string; database: string }[] }).aliases);
  };
  alias
    .command('ls')
    .description('every alias and its database')
    .option('--url <url>', 'any member', defaultUrl)
    .option('--json', 'print JSON')
    .action(async (flags: { url: string; json?: boolean }) => {
      print(await call(flags.url, 'GET', '/v1/aliases'), flags.json, fail, aliasTable);
    });
  alias
    .command('set <alias> <database>')
    .description('point the alias at the database (loaded on its copies)')
    .option('--url <url>', 'any member', defaultUrl)
    .action(async (name: string, database: string, flags: { url: string }) => {
      const body = JSON.stringify({ database });
      print(
        await call(flags.url, 'PUT', `/v1/aliases/${encodeURIComponent(name)}`, body, 70_000),
        false,
        fail,
        aliasTable,
      );
    });
  alias
    .command('rm <alias>')
    .description('remove the alias')
    .option('--url <url>', 'any member', defaultUrl)
    .action(async (name: string, flags: { url: string }) => {
      print(
        await call(flags.url, 'DELETE', `/v1/aliases/${encodeURIComponent(name)}`, undefined, 70_000),
        false,
        fail,
        aliasTable,
      );
    });
}

function addAliasSwap(alias: Command, defaultUrl: string, fail: Fail): void {
  const aliasTable = (body: unknown): void => {
    printTable((body as { aliases: { alias: string; database: string }[] }).aliases);
  };
  alias
    .command('swap [pairs...]')
    .description(
      'point several aliases at once (alias=database ...), all or nothing; --rollback restores the mapping before the last swap',
    )
    .option('--rollback', 'restore the mapping before the last swap')
    .option('--url <url>', 'any member', defaultUrl)
    .action(async (pairs: string[], flags: { rollback?: boolean; url: string }) => {
      let body: string;
      if (flags.rollback === true) {
        if (pairs.length > 0) fail('--rollback takes no alias=database pairs');
        body = JSON.stringify({ rollback: true });
      } else {
        const actions = pairs.map((pair) => {
          const [name, database, extra] = pair.split('=');
          if (name === undefined || database === undefined || extra !== undefined || name === '' || database === '')
            fail(`expected alias=database, got ${pair}`);
          return { add: { alias: name, database } };
        });
        if (actions.length === 0) fail('name at least one alias=database pair, or --rollback');
        body = JSON.stringify({ actions });
      }
      print(await call(flags.url, 'POST', '/v1/aliases/_swap', body, 70_000), false, fail, aliasTable);
    });
}
