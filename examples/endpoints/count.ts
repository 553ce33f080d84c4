// `count`: how many events match some filters. Each shard counts its own Parquet files' rows;
// reduce adds the counts. Filters are bound as arguments, never pasted into the SQL; a filter left
// out is NULL and matches everything.
//
//   POST /v1/databases/shop/query/count  {"kind": "purchase", "from": "2026-11-02T00:00:00Z"}
//   -> {"result": {"count": 1234}, ...}

import type { EndpointModule } from '../../src/query/endpoint-module.ts';

interface Params {
  readonly kind?: string;
  readonly country?: string;
  /** ISO 8601; events at or after it. */
  readonly from?: string;
  /** ISO 8601; events before it. */
  readonly to?: string;
}

export default {
  name: 'count',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      kind: { type: 'string', maxLength: 64 },
      country: { type: 'string', maxLength: 8 },
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' },
    },
  },
  async map(ctx, params) {
    const parquet = ctx.files.filter((file) => file.endsWith('.parquet'));
    if (parquet.length === 0) return 0;
    const [row] = await ctx.sql(
      `SELECT count(*) AS n FROM read_parquet($1)
       WHERE ($2::VARCHAR IS NULL OR kind = $2)
         AND ($3::VARCHAR IS NULL OR country = $3)
         AND ($4::TIMESTAMPTZ IS NULL OR ts >= $4::TIMESTAMPTZ)
         AND ($5::TIMESTAMPTZ IS NULL OR ts < $5::TIMESTAMPTZ)`,
      parquet,
      params.kind ?? null,
      params.country ?? null,
      params.from ?? null,
      params.to ?? null,
    );
    return Number(row?.['n'] ?? 0);
  },
  reduce(partials) {
    return { count: partials.reduce((sum, n) => sum + n, 0) };
  },
} satisfies EndpointModule<Params, number, { count: number }>;
