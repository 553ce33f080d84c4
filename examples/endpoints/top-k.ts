// `top-k`: the k largest groups of events by country, kind, user or product, counted by events or
// summed by amount (cents). Exact, not approximate: every shard answers the total of every group
// it has (small for these columns), reduce adds them up across shards and only then takes the top
// k. (A shard's own top k could miss a group that is everywhere second.) Names of countries and products come
// from the database's global data (global/countries.ndjson, global/products.parquet), which every
// member has.
//
//   POST /v1/databases/shop/query/top-k  {"by": "country", "metric": "amount", "k": 3}
//   -> {"result": [{"key": "US", "name": "United States", "value": 93093601}, ...], ...}

import type { EndpointModule } from '../../src/query/endpoint-module.ts';

interface Params {
  readonly by: 'country' | 'kind' | 'user_id' | 'product_id';
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
const columns: Record<Params['by'], string> = {
  country: 'country',
  kind: 'kind',
  user_id: 'user_id',
  product_id: 'product_id',
};
/** Where a group's name is: a global file, how to read it, and its key column. */
const nameSources: Partial<Record<Params['by'], { file: string; reader: string; key: string }>> = {
  country: { file: 'countries.ndjson', reader: 'read_json', key: 'code' },
  product_id: { file: 'products.parquet', reader: 'read_parquet', key: 'product_id' },
};
const metrics: Record<Params['metric'], string> = { events: 'count(*)', amount: 'sum(amount_cents)' };

export default {
  name: 'top-k',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      by: { enum: ['country', 'kind', 'user_id', 'product_id'], default: 'country' },
      metric: { enum: ['events', 'amount'], default: 'events' },
      k: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
      kind: { type: 'string', maxLength: 64 },
    },
  },
  async map(ctx, params) {
    const parquet = ctx.files.filter((file) => file.endsWith('.parquet'));
    if (parquet.length === 0) return [];
    // Names of countries and products come from the global data, when the database has it.
    const names = nameSources[params.by];
    const namesFile = names === undefined ? undefined : ctx.globalFiles.find((file) => file.endsWith(names.file));
    const join =
      names === undefined || namesFile === undefined
        ? { select: 'NULL::VARCHAR', from: '' }
        : {
            select: 'n.name',
            from: `LEFT JOIN ${names.reader}($3) n ON CAST(n.${names.key} AS VARCHAR) = groups.key`,
          };
    const rows = await ctx.sql(
      `WITH groups AS (
         SELECT CAST(${columns[params.by]} AS VARCHAR) AS key, ${metrics[params.metric]} AS value
         FROM read_parquet($1) WHERE ($2::VARCHAR IS NULL OR kind = $2) GROUP BY 1)
       SELECT key, ${join.select} AS name, value FROM groups ${join.from}`,
      parquet,
      params.kind ?? null,
      ...(namesFile === undefined ? [] : [[namesFile]]),
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
