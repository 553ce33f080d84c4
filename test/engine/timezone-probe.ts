// Run as its own process (by duckdb-engine.test.ts) with TZ set: the host's zone is read once per
// process, so only a fresh process shows whether the engine depends on it. Prints one JSON row.

import { DuckDbEngine, duckDbEngineLimitsDefault } from '../../src/engine/duckdb-engine.ts';

const engine = await DuckDbEngine.open({
  limits: { ...duckDbEngineLimitsDefault, connectionsMax: 1 },
  readableDirectories: ['/nonexistent'],
});
try {
  const rows = await engine.sql({ text: 'SELECT ?::TIMESTAMPTZ::TIMESTAMP AS t', args: ['2026-01-01T00:00:00+01:00'] });
  process.stdout.write(`${JSON.stringify(rows)}\n`);
} finally {
  await engine.close();
}
