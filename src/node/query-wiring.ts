// Wires the query endpoints of one node (`--endpoints DIR`): loads and checks every endpoint module
// at start (a module that cannot be served is an EndpointLoadError naming the file, and the node
// does not start), opens the DuckDB engine over the node's database folder (`<data-dir>/databases`,
// the only files statements may read), and hands the runner to the API with the database directory.
//
// The directory is the database catalog's (src/node/catalog-directory.ts), handed in by node.ts;
// without one, every query answers 404 DRAM_ERR_DATABASE_NOT_FOUND.
//
// Called by: src/node/node.ts.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AppQueryOptions } from '../api/app.ts';
import { DuckDbEngine, duckDbEngineLimitsDefault } from '../engine/duckdb-engine.ts';
import { emptyDatabaseDirectory, type DatabaseDirectory } from '../query/database-directory.ts';
import { loadEndpoints } from '../query/endpoint-loader.ts';
import { LocalRunner } from '../query/local-runner.ts';
import type { NodeConfig } from './config.ts';

export interface NodeQuery {
  readonly options: AppQueryOptions;
  /** Interrupts what runs and frees the engine. */
  close(): Promise<void>;
}

/** The node's query wiring, or undefined without `--endpoints`. */
export async function openNodeQuery(
  config: Pick<NodeConfig, 'endpoints' | 'dataDir'>,
  directory: DatabaseDirectory = emptyDatabaseDirectory,
): Promise<NodeQuery | undefined> {
  if (config.endpoints === undefined) return undefined;
  const endpoints = await loadEndpoints(config.endpoints);
  const databases = join(config.dataDir, 'databases');
  mkdirSync(databases, { recursive: true });
  const engine = await DuckDbEngine.open({ limits: duckDbEngineLimitsDefault, readableDirectories: [databases] });
  return {
    options: { runner: new LocalRunner({ endpoints, engine }), directory },
    close: () => engine.close(),
  };
}
