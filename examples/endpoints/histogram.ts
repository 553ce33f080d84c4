// `histogram`: events and amount (cents) per time bucket (minute, hour or day), optionally for one kind
// and a time range. Each shard aggregates its rows per bucket; reduce adds the shards' buckets
// and sorts them by time. Buckets are ISO 8601 strings in UTC, the start of each bucket.
//
//   POST /v1/databases/shop/query/histogram  {"bucket": "day", "kind": "purchase"}
//   -> {"result": [{"bucket": "2026-11-01T00:00:00.000Z", "events": 120, "amount": 300000}, ...], ...}

import type { EndpointModule } from '../../src/query/endpoint-module.ts';

interface Params {
  readonly bucket: 'minute' | 'hour' | 'day';
  readonly kind?: string;
  readonly from?: string;
  readonly to?: string;
}

interface Bucket {
  readonly bucket: string;
  readonly events: number;
  readonly amount: number;
}

export default {
  name: 'histogram',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      bucket: { enum: ['minute', 'hour', 'day'], default: 'hour' },
      kind: { type: 'string', maxLength: 64 },
      from: { type: 'string', format: 'date-time' },
      to: { type: 'string', format: 'date-time' },
    },
  },
  async map(ctx, params) {
    const parquet = ctx.files.filter((file) => file.endsWith('.parquet'));
    if (parquet.length === 0) return [];
    const rows = await ctx.sql(
      `SELECT date_trunc($2, ts) AS bucket, count(*) AS events, sum(amount_cents) AS amount
       FROM read_parquet($1)
       WHERE ($3::VARCHAR IS NULL OR kind = $3)
         AND ($4::TIMESTAMPTZ IS NULL OR ts >= $4::TIMESTAMPTZ)
         AND ($5::TIMESTAMPTZ IS NULL OR ts < $5::TIMESTAMPTZ)
       GROUP BY 1 ORDER BY 1`,
      parquet,
      params.bucket,
      params.kind ?? null,
      params.from ?? null,
      params.to ?? null,
    );
    return rows.map((row) => ({
      bucket: row['bucket'] as string,
      events: Number(row['events']),
      amount: Number(row['amount']),
    }));
  },
  reduce(partials) {
    const totals = new Map<string, Bucket>();
    for (const bucket of partials.flat()) {
      const seen = totals.get(bucket.bucket);
      totals.set(bucket.bucket, {
        bucket: bucket.bucket,
        events: (seen?.events ?? 0) + bucket.events,
        amount: (seen?.amount ?? 0) + bucket.amount,
      });
    }
    return [...totals.values()].sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
  },
} satisfies EndpointModule<Params, Bucket[], Bucket[]>;
