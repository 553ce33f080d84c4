// `top-k`: the k largest groups of events by country, kind or user, counted by events or summed
// by amount. Exact, not approximate: every shard answers the total of every group it has (small
// for these columns), reduce adds them up across shards and only then takes the top k. (A shard's
// own top k could miss a group that is everywhere second.) For countries, the names come from
// the database's global data (global/countries.ndjson), present on every member.
//
//   POST /v1/databases/events/query/top-k  {"by": "country", "metric": "amount", "k": 3}
//   -> {"result": [{"key": "de", "name": "Germany", "value": 1234.5}, ...], ...}

import type { EndpointModule } from '../../src/query/endpoint-module.ts';

interface Params {
  readonly by: 'country' | 'kind' | 'user_id';
  readonly metric: 'events' | 'amount';
  readonly k: number;
  readonly kind?: string;
}

interface Group {
  readonly key: string;
  readonly name: string | null;
  readonly value: number;
}

/** Column names cannot be bound as arguments; the schema's enum limits them to these. */
const columns: Record<Params['by'], string> = { country: 'country', kind: 'kind', user_id: 'user_id' };
const metrics: Record<Params['metric'], string> = { events: 'count(*)', amount: 'sum(amount)' };

export default {
  name: 'top-k',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      by: { enum: ['country', 'kind', 'user_id'], default: 'country' },
      metric: { enum: ['events', 'amount'], default: 'events' },
      k: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
      kind: { type: 'string', maxLength: 64 },
    },
  },
  async map(ctx, params) {
    const parquet = ctx.files.filter((file) => file.endsWith('.parquet'));
    if (parquet.length === 0) return [];
    const countries = ctx.globalFiles.filter((file) => file.endsWith('countries.ndjson'));
    const named = params.by === 'country' && countries.length > 0;
    const rows = await ctx.sql(
      `WITH groups AS (
         SELECT CAST(${columns[params.by]} AS VARCHAR) AS key, ${metrics[params.metric]} AS value
         FROM read_parquet($1) WHERE ($2::VARCHAR IS NULL OR kind = $2) GROUP BY 1)
       SELECT key, ${named ? 'c.name' : 'NULL::VARCHAR'} AS name, CAST(value AS DOUBLE) AS value FROM groups
       ${named ? 'LEFT JOIN read_json($3) c ON c.code = groups.key' : ''}`,
      parquet,
      params.kind ?? null,
      ...(named ? [countries] : []),
    );
    return rows.map((row) => ({
      key: row['key'] as string,
      name: (row['name'] as string | null) ?? null,
      value: Number(row['value']),
    }));
  },
  reduce(partials, params) {
    const totals = new Map<string, Group>();
    for (const group of partials.flat()) {
      const seen = totals.get(group.key);
      totals.set(group.key, {
        key: group.key,
        name: seen?.name ?? group.name,
        value: (seen?.value ?? 0) + group.value,
      });
    }
    return [...totals.values()]
      .sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .slice(0, params.k);
  },
} satisfies EndpointModule<Params, Group[], Group[]>;
