// Per database, the queries this node took (the member a client sent them to): how many answered,
// how many failed, and the latency of the most recent ones, for `GET /v1/databases` and `dram db
// ls` (Prometheus has the full histogram). Bounded: `recentMax` latencies per database, the oldest
// overwritten first, and at most `databasesMax` databases (the catalog's own bound).
//
// Called by: src/node/ (the query route's observer), src/api/database-routes.ts (through the
// database port).

import { databasesMax } from '../codec/meta-databases.ts';

/** Latencies kept per database for the percentiles. */
export const queryLatenciesRecentMax = 1024;

export interface QueryFigures {
  readonly served: number;
  readonly failed: number;
  /** The recent queries' latencies, milliseconds, oldest first (at most `queryLatenciesRecentMax`). */
  readonly recentMs: readonly number[];
}

interface Counts {
  served: number;
  failed: number;
  readonly recent: number[];
  next: number;
}

export class QueryStats {
  private readonly byDatabase = new Map<string, Counts>();

  observe(database: string, ms: number, ok: boolean): void {
    let counts = this.byDatabase.get(database);
    if (counts === undefined) {
      if (this.byDatabase.size >= databasesMax) return;
      counts = { served: 0, failed: 0, recent: [], next: 0 };
      this.byDatabase.set(database, counts);
    }
    if (ok) counts.served++;
    else counts.failed++;
    if (counts.recent.length < queryLatenciesRecentMax) counts.recent.push(ms);
    else counts.recent[counts.next] = ms;
    counts.next = (counts.next + 1) % queryLatenciesRecentMax;
  }

  figures(database: string): QueryFigures {
    const counts = this.byDatabase.get(database);
    if (counts === undefined) return { served: 0, failed: 0, recentMs: [] };
    const recent = counts.recent;
    const ordered =
      recent.length < queryLatenciesRecentMax
        ? recent
        : [...recent.slice(counts.next), ...recent.slice(0, counts.next)];
    return { served: counts.served, failed: counts.failed, recentMs: ordered.map((ms) => Math.round(ms * 100) / 100) };
  }

  /** Forgets the databases not in `names` (dropped from the catalog). */
  keepOnly(names: ReadonlySet<string>): void {
    for (const name of this.byDatabase.keys()) if (!names.has(name)) this.byDatabase.delete(name);
  }
}

/** The `p`-quantile (0..1) of the values, nearest rank; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? null;
}
