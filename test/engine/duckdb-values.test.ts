// DuckDB values to JSON, against DuckDB's own formatting: random timestamps (years 1 to 9999,
// before and after 1970, with and without microseconds) must come out as the ISO string DuckDB's
// strftime gives, with the microsecond digits only when they are not zero; and random integers
// come out exactly while within 2^53 - 1.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';

let engine: DuckDbEngine;

beforeAll(async () => {
  engine = await DuckDbEngine.open({
    limits: { ...duckDbEngineLimitsDefault, connectionsMax: 1 },
    readableDirectories: ['/nonexistent'],
  });
});

afterAll(async () => {
  await engine.close();
});

/** 0001-01-01 and 9999-12-31 23:59:59.999999 in microseconds since the epoch. */
const microsMin = -62_135_596_800_000_000n;
const microsMax = 253_402_300_799_999_999n;

describe('DuckDB values to JSON', () => {
  it('writes timestamps as DuckDB’s strftime does, microseconds only when present', async () => {
    const micros = fc.sample(
      fc.oneof(
        fc.bigInt({ min: microsMin, max: microsMax }),
        fc.bigInt({ min: microsMin / 1000n, max: microsMax / 1000n }).map((ms) => ms * 1000n),
        fc.bigInt({ min: -2_000_000n, max: 2_000_000n }),
      ),
      { numRuns: 300, seed: 14 },
    );
    const rows = await engine.sql({
      text: `SELECT make_timestamp(x) AS t, strftime(make_timestamp(x), '%Y-%m-%dT%H:%M:%S.%f') AS s
             FROM unnest(?::BIGINT[]) u(x)`,
      args: [micros],
    });
    expect(rows).toHaveLength(micros.length);
    for (const row of rows) {
      const text = row['s'] as string;
      const expected = text.endsWith('000') ? `${text.slice(0, -3)}Z` : `${text}Z`;
      expect({ from: text, t: row['t'] }).toEqual({ from: text, t: expected });
    }
  });

  it('answers integers exactly up to 2^53 - 1 in both directions', async () => {
    const values = fc.sample(fc.maxSafeInteger(), { numRuns: 300, seed: 14 });
    const rows = await engine.sql({ text: 'SELECT x, x::HUGEINT AS h FROM unnest(?::BIGINT[]) u(x)', args: [values] });
    expect(rows.map((row) => row['x'])).toEqual(values);
    expect(rows.map((row) => row['h'])).toEqual(values);
  });
});
