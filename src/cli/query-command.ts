// `dram query <db-or-alias> <endpoint> [params-json]`: runs a query endpoint through any member
// (POST /v1/databases/:nameOrAlias/query/:endpoint, docs/query.md) and prints its result, then the
// coverage as a table (who answered each shard, at which version, in how many ms, or why it was
// skipped); `--json` prints the whole answer. A partial answer refused under the default policy
// (503 DRAM_ERR_PARTIAL) prints the coverage too, then fails.
//
// Called by: src/cli/main.ts.

import type { Command } from 'commander';
import { call, describeError } from './http-client.ts';
import { printTable } from './table.ts';

/** A query's own timeout is the endpoint's (at most 10 minutes); the CLI waits a little longer. */
const queryWaitMs = 11 * 60 * 1000;

interface CoverageShard {
  readonly shard: string;
  readonly node?: number;
  readonly version?: string;
  readonly ms?: number;
  readonly skipped?: string;
  readonly message?: string;
}

interface Coverage {
  readonly complete: boolean;
  readonly shards: readonly CoverageShard[];
}

export interface QueryFlags {
  readonly url: string;
  readonly scope?: string;
  readonly shards?: string;
  readonly partial?: string;
  readonly json?: boolean;
}

/** The route's path and query for these arguments. */
export function queryPath(database: string, endpoint: string, flags: Omit<QueryFlags, 'url' | 'json'>): string {
  const search = new URLSearchParams();
  if (flags.scope !== undefined) search.set('scope', flags.scope);
  if (flags.shards !== undefined) search.set('shards', flags.shards);
  if (flags.partial !== undefined) search.set('partial', flags.partial);
  const query = search.toString();
  return `/v1/databases/${encodeURIComponent(database)}/query/${encodeURIComponent(endpoint)}${query === '' ? '' : `?${query}`}`;
}

function printCoverage(coverage: Coverage): void {
  printTable(
    coverage.shards.map((shard) => ({
      shard: shard.shard,
      node: shard.node ?? '',
      version: shard.version ?? '',
      ms: shard.ms ?? '',
      skipped:
        shard.skipped === undefined ? '' : `${shard.skipped}${shard.message === undefined ? '' : `: ${shard.message}`}`,
    })),
  );
  console.log(coverage.complete ? 'complete' : 'PARTIAL: some shards are missing from the answer');
}

export function addQueryCommand(program: Command, defaultUrl: string, fail: (message: string) => never): void {
  program
    .command('query <database> <endpoint> [params]')
    .description('run a query endpoint over a database or alias; params as JSON (default {})')
    .option('--url <url>', 'any member', defaultUrl)
    .option('--scope <scope>', 'local: only the shards the member at --url holds')
    .option('--shards <list>', 'only these shards, e.g. 0,3,7')
    .option('--partial <policy>', 'deny (default): fail when a shard is missing; allow: answer what there is')
    .option('--json', 'print JSON')
    .action(async (database: string, endpoint: string, params: string | undefined, flags: QueryFlags) => {
      const body = params ?? '{}';
      try {
        JSON.parse(body);
      } catch {
        fail(`params must be JSON, e.g. '{"kind": "purchase"}'`);
      }
      const answer = await call(flags.url, 'POST', queryPath(database, endpoint, flags), body, queryWaitMs);
      const text = new TextDecoder().decode(answer.body);
      if (answer.status !== 200) {
        if (flags.json === true) process.stdout.write(`${text}\n`);
        const coverage = (JSON.parse(text) as { details?: { coverage?: Coverage } }).details?.coverage;
        if (flags.json !== true && coverage !== undefined) printCoverage(coverage);
        fail(describeError(answer));
      }
      if (flags.json === true) {
        process.stdout.write(`${text}\n`);
        return;
      }
      const parsed = JSON.parse(text) as { result: unknown; coverage: Coverage };
      console.log(JSON.stringify(parsed.result, null, 2));
      printCoverage(parsed.coverage);
    });
}
