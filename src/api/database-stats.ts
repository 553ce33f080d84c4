// The statistics of `GET /v1/databases(/:name)` (docs/databases.md, "Statistics"), from what each
// member holding a replica answers for the database (`GET /v1/databases/:name/progress`): its
// download jobs (bytes and files on disk, S3 requests and bytes, a lazy database's cache) and the
// queries it took. Summed over the members that answered; query latency percentiles over their
// recent queries together. A member that does not answer adds nothing (`membersAnswered` says so).
//
// Called by: src/api/database-routes.ts.

import type { ShardGroupReport } from '../control/shard-roles.ts';
import type { NodeId } from '../base/ids.ts';
import type { JobProgress } from '../data/database-downloads.ts';
import { percentile, type QueryFigures } from '../data/query-stats.ts';

/** One member's answer for one database: its jobs and the queries it took. */
export interface MemberProgress {
  readonly jobs: readonly JobProgress[];
  readonly queries: QueryFigures | null;
  /** The member's replicas of the database's shard groups (role, leader, term, commit, applied). */
  readonly groups: readonly ShardGroupReport[];
}

export interface DatabaseStats {
  readonly membersAsked: number;
  readonly membersAnswered: number;
  readonly bytesOnDisk: number;
  readonly filesOnDisk: number;
  readonly s3Requests: number;
  readonly s3Bytes: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Hits over hits and misses; null without a lazy file asked for yet. */
  readonly cacheHitRate: number | null;
  readonly cacheEvictions: number;
  readonly queries: number;
  readonly queriesFailed: number;
  readonly queryP50Ms: number | null;
  readonly queryP99Ms: number | null;
}

export function aggregate(answers: ReadonlyMap<NodeId, MemberProgress | null>): DatabaseStats {
  const totals = { bytes: 0, files: 0, requests: 0, s3Bytes: 0, hits: 0, misses: 0, evictions: 0 };
  let served = 0;
  let failed = 0;
  let answered = 0;
  const recent: number[] = [];
  for (const answer of answers.values()) {
    if (answer === null) continue;
    answered++;
    for (const job of answer.jobs) {
      totals.bytes += job.bytesDone + (job.cache?.bytes ?? 0);
      totals.files += job.filesDone + (job.cache?.files ?? 0);
      totals.requests += job.s3Requests;
      totals.s3Bytes += job.bytesFetched;
      totals.hits += job.cache?.hits ?? 0;
      totals.misses += job.cache?.misses ?? 0;
      totals.evictions += job.cache?.evictions ?? 0;
    }
    served += answer.queries?.served ?? 0;
    failed += answer.queries?.failed ?? 0;
    recent.push(...(answer.queries?.recentMs ?? []));
  }
  const asked = totals.hits + totals.misses;
  return {
    membersAsked: answers.size,
    membersAnswered: answered,
    bytesOnDisk: totals.bytes,
    filesOnDisk: totals.files,
    s3Requests: totals.requests,
    s3Bytes: totals.s3Bytes,
    cacheHits: totals.hits,
    cacheMisses: totals.misses,
    cacheHitRate: asked === 0 ? null : Math.round((totals.hits / asked) * 1000) / 1000,
    cacheEvictions: totals.evictions,
    queries: served,
    queriesFailed: failed,
    queryP50Ms: percentile(recent, 0.5),
    queryP99Ms: percentile(recent, 0.99),
  };
}
