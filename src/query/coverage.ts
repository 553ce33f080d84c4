// A query's coverage, built from the fan-out's shard outcomes, and the partial policy applied to
// it, and the shards a query asks for: what the member that takes a query (query-service.ts) and the smart client
// (src/client/query-client.ts) both answer, so the two never disagree on what "complete" means.
//
// The coverage lists every shard asked for, in shard order: who answered, at which version, in
// how many ms; or why it was skipped. Under `deny` a coverage missing any shard is
// DRAM_ERR_PARTIAL carrying it (never a short answer); under `allow` the answered partials go to
// reduce and the coverage says which are missing.
//
// Called by: src/query/query-service.ts, src/client/query-client.ts.

import type { NodeId } from '../base/ids.ts';
import { QueryError, type JsonValue } from '../data/query-engine.ts';
import { isAnswered, type ShardOutcome, type SkipReason } from './fan-out.ts';

export type PartialPolicy = 'allow' | 'deny';

/** Shards named in one `?shards=` or one map request, and listed in an error's details; more is refused. */
export const shardsListedMax = 1024;

export type CoverageShard =
  | { readonly shard: string; readonly node: NodeId; readonly version: string; readonly ms: number }
  | { readonly shard: string; readonly skipped: SkipReason; readonly message?: string };

export interface Coverage {
  /** Every shard asked for answered. */
  readonly complete: boolean;
  /** In shard order. */
  readonly shards: readonly CoverageShard[];
}

/** The shards of `shards` named in `names` (all without names), in shard order; an unknown name is DRAM_ERR_UNKNOWN_SHARD. */
export function pickShards<T extends { readonly shard: string }>(
  database: string,
  shards: readonly T[],
  names: readonly string[] | undefined,
): readonly T[] {
  if (names === undefined) return shards;
  const known = new Set(shards.map((shard) => shard.shard));
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0)
    throw new QueryError(
      'DRAM_ERR_UNKNOWN_SHARD',
      `database "${database}" has no shard ${unknown.map((name) => JSON.stringify(name)).join(', ')}`,
      { shards: shards.map((shard) => shard.shard).slice(0, shardsListedMax) },
    );
  const wanted = new Set(names);
  return shards.filter((shard) => wanted.has(shard.shard));
}

export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * The coverage of `outcomes` and the answered shards' partials in shard order; under `deny`, a
 * coverage missing a shard is DRAM_ERR_PARTIAL (details.coverage) naming the missing shards.
 */
export function gather(
  database: string,
  outcomes: readonly ShardOutcome[],
  partial: PartialPolicy,
): { readonly coverage: Coverage; readonly partials: JsonValue[] } {
  const shards: CoverageShard[] = outcomes.map((outcome) =>
    isAnswered(outcome)
      ? { shard: outcome.shard, node: outcome.node, version: outcome.version, ms: roundMs(outcome.ms) }
      : {
          shard: outcome.shard,
          skipped: outcome.skipped,
          ...(outcome.message === undefined ? {} : { message: outcome.message }),
        },
  );
  const answered = outcomes.filter(isAnswered);
  const coverage: Coverage = { complete: answered.length === outcomes.length, shards };
  if (!coverage.complete && partial === 'deny') {
    const missing = shards.filter((shard) => 'skipped' in shard).map((shard) => shard.shard);
    throw new QueryError(
      'DRAM_ERR_PARTIAL',
      `${missing.length} of ${outcomes.length} shard(s) of database "${database}" could not be answered (${missing.join(', ')}); ?partial=allow answers the others`,
      { coverage },
    );
  }
  return { coverage, partials: answered.map((outcome) => outcome.result) };
}
