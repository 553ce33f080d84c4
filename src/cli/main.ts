// The `dram` command: start | dev | status | failover | members | actions | kv | db | alias | query | backup | restore | recover. Each subcommand parses its flags here
// and hands over to the module that does the work; errors print one line and exit non-zero.

import { Command } from 'commander';
import type { StatusAnswer } from '../api/admin-routes.ts';
import type { PlacementAnswer } from '../api/placement-routes.ts';
import { fileURLToPath } from 'node:url';
import { ConfigError, mergeSources, resolveConfig, type RawConfig } from '../node/config.ts';
import { registerBackupCommands } from './backup-commands.ts';
import { runDev } from './dev.ts';
import { call, describeError, useToken, type ApiAnswer } from './http-client.ts';
import { examplesHelp } from './help.ts';
import { addDatabaseCommands } from './db-commands.ts';
import { printTable } from './table.ts';
import { addQueryCommand } from './query-command.ts';
import { dbGroupIdFirst } from '../models/meta.ts';

const program = new Command('dram')
  .description('data-analysis clusters on a hand-written multi-group Raft')
  .option('--token <token>', "the API token for the client commands (default: DRAM_TOKEN); see 'dram start --token'");
// Before any client command runs: the token it presents (`start` has its own --token, the server's).
program.hook('preAction', (_program, command) => {
  if (command.name() !== 'start') useToken(command.optsWithGlobals<{ token?: string }>().token);
});
const defaultUrl = process.env['DRAM_URL'] ?? 'http://127.0.0.1:8081';

program
  .command('start')
  .description('start one node')
  .option('--config <file>', 'JSON file with settings (flags and DRAM_* env vars override it)')
  .option('--node-id <id>', 'this node id (a positive integer)')
  .option('--cluster-id <name>', 'cluster id checked in the peer handshake')
  .option('--data-dir <dir>', 'where the node keeps its LevelDB')
  .option('--http <host:port>', 'public HTTP address')
  .option('--client <host:port>', 'binary client protocol address (msgpack frames over TCP; off when absent)')
  .option('--raft <host:port>', 'peer (Raft) address; outgoing connections bind its host')
  .option('--init', 'create the groups on first start')
  .option('--peers <list>', 'id=raftHost:port,... for every member, this node included')
  .option('--peer-http <list>', "id=httpHost:port,... for forwarding to a group's leader")
  .option('--join <url>', "join a running cluster through any member's HTTP URL (first start; exclusive with --init)")
  .option('--kv-groups <n>', 'number of KV groups created by --init (default 8)')
  .option('--secret <secret>', 'shared peer secret, at least 16 characters (or DRAM_SECRET); required')
  .option('--insecure-dev-secret', 'use a built-in, public peer secret instead of --secret (local trials only)')
  .option('--token <token>', 'require Authorization: Bearer <token> on the HTTP API (or DRAM_TOKEN; 16+ characters)')
  .option('--read-token <token>', 'a second token that may only read (or DRAM_READ_TOKEN; needs --token)')
  .option('--tls-cert <file>', 'PEM certificate: serve the HTTP API over HTTPS (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--log-format <format>', 'json (default, for production) or pretty (readable lines, for development)')
  .option('--tls-ca <file>', 'PEM CA: peer connections become mutual TLS, each side checked against it')
  .option(
    '--quiesce-after-ticks <n>',
    'idle ticks before a group goes quiet: no ticks, no heartbeats (0: never; default 100)',
  )
  .option(
    '--snapshot-interval-entries <n>',
    'a group snapshots and compacts its log every n applied entries (default 50000)',
  )
  .option(
    '--snapshot-tail-entries <n>',
    'log entries kept behind each snapshot for followers a little behind (default 5000)',
  )
  .option(
    '--snapshot-send-bytes-per-sec-max <n>',
    'bytes of snapshot chunks this node sends per second over every group (0: no limit, the default)',
  )
  .option(
    '--snapshot-sends-max <n>',
    'snapshot transfers this node sends at once over every group (0: no limit, the default)',
  )
  .option('--s3-endpoint <url>', 'an S3-compatible server (default: AWS S3); credentials from the AWS_* chain')
  .option('--s3-region <region>', 'S3 region (default us-east-1)')
  .option('--s3-path-style', 'address buckets as endpoint/bucket/key (most S3-compatible servers)')
  .option('--lazy-cache-bytes <n>', "bytes of lazy databases' files kept on disk (default 1 GiB)")
  .option('--endpoints <dir>', 'load the query endpoint modules (*.ts, *.js, *.mjs) of this directory at start')
  .option('--backup <s3url>', 'configuration backup to s3://bucket/prefix on every change and hourly')
  .option('--backup-keep <n>', 'configuration backup objects kept (default 24)')
  .action(async (flags: RawConfig) => {
    // commander hands `--token` to the program's option of the same name, wherever it is given.
    const token = program.opts<{ token?: string }>().token;
    const config = resolveConfig(mergeSources({ ...flags, ...(token === undefined ? {} : { token }) }, process.env));
    const { startNode } = await import('../node/node.ts');
    await startNode(config);
  });

program
  .command('dev')
  .description('a local three-node cluster under ./.dram (what npm start runs)')
  .option('--data-dir <dir>', 'where the nodes keep their data', '.dram')
  .option('--http-port-base <port>', 'node n listens on base+n', '8080')
  .option('--raft-port-base <port>', 'node n peers on base+n', '9080')
  .option('--s3-port <port>', 'the local S3 server (s3rver) listens here', '4568')
  .action(async (flags: { dataDir: string; httpPortBase: string; raftPortBase: string; s3Port: string }) => {
    await runDev(
      {
        dataDir: flags.dataDir,
        httpPortBase: Number(flags.httpPortBase),
        raftPortBase: Number(flags.raftPortBase),
        nodes: 3,
        s3Port: Number(flags.s3Port),
      },
      fileURLToPath(new URL('../../bin/dram.js', import.meta.url)),
    );
  });

program
  .command('status')
  .description('print the cluster as a table')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (flags: { url: string }) => {
    const answer = await call(flags.url, 'GET', '/v1/status');
    if (answer.status !== 200) fail(describeError(answer));
    const status = JSON.parse(new TextDecoder().decode(answer.body)) as StatusAnswer;
    console.log(`node ${status.nodeId}`);
    printTable(
      status.groups.map((g) => ({
        group: g.group === 0 ? 'meta' : `kv/${g.group}`,
        role: g.role,
        term: g.term,
        commit: g.commit,
        applied: g.applied,
        leader: g.leader,
        lag: g.lag,
        voters: g.voters.join(' '),
        learners: g.learners.join(' '),
        quiet: g.quiesced ? 'yes' : '',
        'last leader change': describeLeaderChange(g.lastLeaderChange),
      })),
    );
    // The action queue (a node without the meta group does not serve it).
    const queue = await call(flags.url, 'GET', '/v1/actions').catch(() => undefined);
    if (queue?.status === 200) {
      const lists = JSON.parse(new TextDecoder().decode(queue.body)) as { queue: unknown[] };
      console.log(`actions queued: ${lists.queue.length}`);
    }
    // The nodes this member knows (an older node may not serve the list: the groups are enough then).
    const members = await call(flags.url, 'GET', '/v1/admin/members').catch(() => undefined);
    if (members?.status !== 200) return;
    const book = JSON.parse(new TextDecoder().decode(members.body)) as {
      members: { nodeId: number; raft: string; http?: string }[];
    };
    printTable(book.members.map((m) => ({ node: m.nodeId, raft: m.raft, http: m.http ?? '?' })));
  });

/** `2->3 automatic term 7 at 2026-12-05T05:01:02.123Z` (from 0: the first leader this node saw). */
function describeLeaderChange(
  change: { at: string; from: number; to: number; term: number; cause: string } | null | undefined,
): string {
  if (change === null || change === undefined) return '';
  return `${change.from === 0 ? '?' : String(change.from)}->${change.to} ${change.cause} term ${change.term} at ${change.at}`;
}

/** The admin routes that change the cluster run an action and wait for it (or not: `?wait=false`). */
const actionWaitMs = 70_000;
const waitQuery = (wait: boolean): string => (wait ? '' : '?wait=false');

/** A 202 from such a route: the action is scheduled (--no-wait) or still running; says how to follow it. */
function printScheduled(answer: ApiAnswer): boolean {
  if (answer.status !== 202) return false;
  const body = JSON.parse(new TextDecoder().decode(answer.body)) as { action?: string; phase?: string };
  // A 202 without an action is a route's own answer (a compaction started on a node without the meta model).
  if (typeof body.action !== 'string') return false;
  console.log(`action ${body.action} is ${body.phase}: follow it with \`dram actions show ${body.action}\``);
  return true;
}

program
  .command('failover <group>')
  .description(
    "move a group's leader (to the most caught-up voter, or --to), as the action dram.io/group.transfer-leadership",
  )
  .option('--to <node>', 'the node that should lead')
  .option('--no-wait', 'print the action id at once instead of waiting for the new leader')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (group: string, flags: { to?: string; url: string; wait: boolean }) => {
    const body = JSON.stringify(flags.to === undefined ? {} : { to: Number(flags.to) });
    const answer = await call(
      flags.url,
      'POST',
      `/v1/admin/groups/${encodeURIComponent(group)}/transfer-leadership${waitQuery(flags.wait)}`,
      body,
      actionWaitMs,
    );
    if (answer.status >= 300) fail(describeError(answer));
    if (printScheduled(answer)) return;
    console.log(new TextDecoder().decode(answer.body));
  });

program
  .command('compact <group>')
  .description(
    "snapshot one node's replica of a group now and compact its log behind the snapshot, as the action dram.io/group.compact",
  )
  .option('--url <url>', 'the member whose replica to compact', defaultUrl)
  .option('--no-wait', 'print the action id at once instead of waiting for the compaction to start')
  .action(async (group: string, flags: { url: string; wait: boolean }) => {
    const answer = await call(
      flags.url,
      'POST',
      `/v1/admin/groups/${encodeURIComponent(group)}/compact${waitQuery(flags.wait)}`,
      '{}',
      actionWaitMs,
    );
    if (answer.status >= 300) fail(describeError(answer));
    if (printScheduled(answer)) return;
    console.log(new TextDecoder().decode(answer.body));
  });

const members = program.command('members').description("list the cluster's nodes, add one, or remove one");
members
  .command('list')
  .description('every node the member knows, with its addresses')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (flags: { url: string }) => {
    const answer = await call(flags.url, 'GET', '/v1/admin/members');
    if (answer.status !== 200) fail(describeError(answer));
    const book = JSON.parse(new TextDecoder().decode(answer.body)) as {
      members: { nodeId: number; raft: string; http?: string }[];
    };
    printTable(book.members.map((m) => ({ node: m.nodeId, raft: m.raft, http: m.http ?? '?' })));
  });
members
  .command('add <url>')
  .description(
    'add the node at this HTTP URL (started with neither --init nor --join) as the action agent.replicante.io/cluster.add; it joins through the member and becomes a voter of every group',
  )
  .option('--no-wait', 'print the action id at once instead of waiting for the node to join')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (url: string, flags: { url: string; wait: boolean }) => {
    const body = JSON.stringify({ kind: 'agent.replicante.io/cluster.add', args: { node: url } });
    const scheduled = await call(flags.url, 'POST', '/v1/actions', body);
    if (scheduled.status !== 200) fail(describeError(scheduled));
    const { id } = JSON.parse(new TextDecoder().decode(scheduled.body)) as { id: string };
    if (!flags.wait) {
      console.log(id);
      return;
    }
    const deadline = Date.now() + actionWaitMs;
    while (Date.now() < deadline) {
      const answer = await call(flags.url, 'GET', `/v1/actions/${encodeURIComponent(id)}`);
      if (answer.status !== 200) fail(describeError(answer));
      const action = JSON.parse(new TextDecoder().decode(answer.body)) as ActionJson;
      if (action.state.phase === 'FAILED') fail(`action ${id} failed: ${JSON.stringify(action.state.error)}`);
      if (action.state.phase === 'DONE') {
        console.log(`node ${JSON.stringify(action.state.payload)} joined (action ${id})`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    fail(`action ${id} is still running: follow it with \`dram actions show ${id}\``);
  });
members
  .command('remove <nodeId>')
  .description(
    'remove a node from every group and every address book, as the action agent.replicante.io/cluster.remove (idempotent)',
  )
  .option('--no-wait', 'print the action id at once instead of waiting for the removal')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (nodeId: string, flags: { url: string; wait: boolean }) => {
    const answer = await call(
      flags.url,
      'DELETE',
      `/v1/admin/members/${encodeURIComponent(nodeId)}${waitQuery(flags.wait)}`,
      undefined,
      actionWaitMs,
    );
    if (answer.status >= 300) fail(describeError(answer));
    if (printScheduled(answer)) return;
    // The action's payload: the node, and the kv removal's report (absent when it had none).
    const result = JSON.parse(new TextDecoder().decode(answer.body)) as {
      node: number;
      groups?: { group: number; leader: number; steps: string[]; voters?: number[] }[] | null;
      warnings?: string[] | null;
    };
    printTable(
      (result.groups ?? []).map((g) => ({
        group: `kv/${g.group}`,
        leader: g.leader,
        removed: g.steps.includes('remove_node') ? 'yes' : 'already out',
        voters: (g.voters ?? []).join(' '),
      })),
    );
    for (const warning of result.warnings ?? []) console.warn(`warning: ${warning}`);
    console.log(`node ${result.node} is out of every group`);
  });

interface ActionJson {
  id: string;
  kind: string;
  args: unknown;
  scheduled_time: string;
  finished_time: string | null;
  state: { phase: string; payload: unknown; error: unknown };
}

function actionRow(action: ActionJson): Record<string, string> {
  return {
    id: action.id,
    kind: action.kind,
    phase: action.state.phase,
    scheduled: action.scheduled_time,
    finished: action.finished_time ?? '',
    error: action.state.error === null ? '' : JSON.stringify(action.state.error),
  };
}

/** Prints the answer as JSON (--json) or through `table`; a non-2xx answer is a one-line error. */
function printAnswer(answer: ApiAnswer, json: boolean | undefined, table: (body: unknown) => void): void {
  if (answer.status >= 300) fail(describeError(answer));
  const body: unknown = JSON.parse(new TextDecoder().decode(answer.body));
  if (json === true) console.log(JSON.stringify(body, null, 2));
  else table(body);
}

program
  .command('placement')
  .description(
    'where each kv and database shard group lives: desired and actual replicas, moves in progress, the last moves, failed loads',
  )
  .option('--url <url>', 'any member', defaultUrl)
  .option('--json', 'print JSON')
  .action(async (flags: { url: string; json?: boolean }) => {
    printAnswer(await call(flags.url, 'GET', '/v1/placement'), flags.json, (body) => {
      const answer = body as PlacementAnswer;
      const settings = answer.settings;
      console.log(
        `kv factor ${answer.factor ?? 'not set (every node hosts every group)'}; grace ${settings.nodeGoneGraceMs} ms; ${settings.movesPerNodeMax} moves per node; a move without progress cancelled after ${settings.moveStalledMs} ms`,
      );
      if (answer.shardMovesHeld !== null) console.log(answer.shardMovesHeld);
      printTable(
        answer.groups.map((g) => ({
          group: g.shard === null ? `${g.kind}/${g.group}` : `db/${g.group} ${g.shard.database}#${g.shard.shard}`,
          desired: g.desired ?? '',
          replicas: g.replicas.join(' '),
          leader: g.leader ?? '',
          state: g.state ?? '',
          detail: g.detail ?? '',
        })),
      );
      if (answer.moves.length > 0)
        printTable(
          answer.moves.map((m) => ({
            moving: `${m.group >= dbGroupIdFirst ? 'db' : 'kv'}/${m.group}`,
            add: m.add ?? '',
            remove: m.remove ?? '',
            'caught up':
              m.progress === null
                ? ''
                : m.progress.snapshot === null
                  ? `${m.progress.match}/${m.progress.commit}`
                  : `snapshot ${m.progress.snapshot.ackedBytes}/${m.progress.snapshot.totalBytes} B`,
            reason: m.reason,
          })),
        );
      if (answer.history.length > 0)
        printTable(
          answer.history.slice(0, 10).map((m) => ({
            moved: `${m.group >= dbGroupIdFirst ? 'db' : 'kv'}/${m.group}`,
            add: m.add ?? '',
            remove: m.remove ?? '',
            outcome: m.outcome,
            finished: m.finished,
            reason: m.detail === '' ? m.reason : `${m.reason} (${m.detail})`,
          })),
        );
      if (answer.loadFailures.length > 0)
        printTable(
          answer.loadFailures.map((f) => ({
            'failed load': `${f.database}#${f.shard} v${f.version}`,
            node: f.node,
            at: f.at,
            error: f.error,
          })),
        );
    });
  });

const actions = program.command('actions').description("the cluster's agent actions (one at a time, in order)");
actions
  .command('ls')
  .description("the whole cluster's queue, then the finished actions")
  .option('--url <url>', 'any member', defaultUrl)
  .option('--json', 'print JSON')
  .action(async (flags: { url: string; json?: boolean }) => {
    printAnswer(await call(flags.url, 'GET', '/v1/actions'), flags.json, (body) => {
      const lists = body as { queue: ActionJson[]; finished: ActionJson[] };
      printTable([...lists.queue, ...lists.finished].map(actionRow));
    });
  });
actions
  .command('show <id>')
  .description('one action with its args, payload and error')
  .option('--url <url>', 'any member', defaultUrl)
  .option('--json', 'print JSON')
  .action(async (id: string, flags: { url: string; json?: boolean }) => {
    printAnswer(await call(flags.url, 'GET', `/v1/actions/${encodeURIComponent(id)}`), flags.json, (body) => {
      const action = body as ActionJson;
      printTable([actionRow(action)]);
      console.log(`args: ${JSON.stringify(action.args)}`);
      console.log(`payload: ${JSON.stringify(action.state.payload)}`);
    });
  });
actions
  .command('schedule <kind> [args]')
  .description('schedule an action (args as JSON, e.g. \'{"group": 1, "to": 2}\'); prints its id')
  .option('--id <uuid>', 'the action id (default: a new UUID); retrying with the same id never schedules twice')
  .option('--url <url>', 'any member', defaultUrl)
  .option('--json', 'print JSON')
  .action(async (kind: string, args: string | undefined, flags: { id?: string; url: string; json?: boolean }) => {
    let parsed: unknown = null;
    try {
      parsed = args === undefined ? null : JSON.parse(args);
    } catch {
      fail(`args must be JSON: ${args ?? ''}`);
    }
    const body = JSON.stringify({ kind, args: parsed, ...(flags.id === undefined ? {} : { id: flags.id }) });
    printAnswer(await call(flags.url, 'POST', '/v1/actions', body), flags.json, (answer) => {
      console.log((answer as { id: string }).id);
    });
  });
actions
  .command('cancel <id>')
  .description('cancel an unfinished action (it ends FAILED with the reason)')
  .option('--reason <text>', 'why, recorded in the error')
  .option('--url <url>', 'any member', defaultUrl)
  .option('--json', 'print JSON')
  .action(async (id: string, flags: { reason?: string; url: string; json?: boolean }) => {
    const body = JSON.stringify(flags.reason === undefined ? {} : { reason: flags.reason });
    printAnswer(
      await call(flags.url, 'POST', `/v1/actions/${encodeURIComponent(id)}/cancel`, body),
      flags.json,
      (answer) => {
        printTable([actionRow(answer as ActionJson)]);
      },
    );
  });

const kv = program.command('kv').description('read and write keys');
kv.command('get <key>')
  .option('--url <url>', 'any member', defaultUrl)
  .option('--consistency <level>', 'linearizable | lease | stale', 'linearizable')
  .action(async (key: string, flags: { url: string; consistency: string }) => {
    const answer = await call(
      flags.url,
      'GET',
      `/v1/kv/${encodeURIComponent(key)}?consistency=${encodeURIComponent(flags.consistency)}`,
    );
    if (answer.status !== 200) fail(describeError(answer));
    process.stdout.write(answer.body);
    process.stdout.write('\n');
  });
kv.command('put <key> <value>')
  .option('--url <url>', 'any member', defaultUrl)
  .option('--cas <index>', 'only if the modify index is this (0: create only)')
  .action(async (key: string, value: string, flags: { url: string; cas?: string }) => {
    const query = flags.cas === undefined ? '' : `?cas=${encodeURIComponent(flags.cas)}`;
    const answer = await call(
      flags.url,
      'PUT',
      `/v1/kv/${encodeURIComponent(key)}${query}`,
      new TextEncoder().encode(value),
    );
    if (answer.status !== 200) fail(describeError(answer));
    console.log(
      `ok index ${answer.headers.get('x-dram-index') ?? '?'} shard ${answer.headers.get('x-dram-shard') ?? '?'} leader ${answer.headers.get('x-dram-leader') ?? '?'}`,
    );
  });
kv.command('del <key>')
  .option('--url <url>', 'any member', defaultUrl)
  .action(async (key: string, flags: { url: string }) => {
    const answer = await call(flags.url, 'DELETE', `/v1/kv/${encodeURIComponent(key)}`);
    if (answer.status !== 200) fail(describeError(answer));
    console.log(`ok index ${answer.headers.get('x-dram-index') ?? '?'}`);
  });

function fail(message: string): never {
  console.error(`dram: ${message}`);
  process.exit(1);
}

addQueryCommand(program, defaultUrl, fail);
registerBackupCommands(program, defaultUrl, fail);
addDatabaseCommands(program, defaultUrl, fail);

program.addHelpText('after', () => examplesHelp(program));

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) fail(error.message);
  fail(error instanceof Error ? error.message : String(error));
});
