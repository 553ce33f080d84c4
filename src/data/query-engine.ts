// The query engine port: what the query layer (src/query/) needs from an SQL engine over a
// database's local files, declared here so that code never imports the adapter. src/engine/
// implements it with DuckDB; src/node/ wires the two together.
//
// One call runs one read-only SQL statement with positional arguments and answers plain JSON rows
// (objects keyed by column name). The engine bounds every statement: its memory, its time and its
// answer (rows and bytes). A statement over a bound is refused with a QueryError carrying a
// DRAM_ERR_* code, never an out-of-memory or a hang. `QueryError` is recognised by its code (a
// plain string), not instanceof, so it survives duplicate copies of this module.
//
// Called by: src/query/local-runner.ts (each endpoint's `ctx.sql`).

/** A value that survives JSON.stringify and JSON.parse unchanged. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** One row of an answer: column name -> value (a later column of the same name wins). */
export type SqlRow = Readonly<Record<string, JsonValue>>;

/**
 * An argument bound to a `?` or `$n` placeholder: a string (VARCHAR), an integer that is a safe
 * integer or a bigint (BIGINT), another number (DOUBLE), a boolean, null, or an array of these
 * (a LIST, e.g. the file list handed to `read_parquet(?)`).
 */
export type SqlArgument = null | boolean | number | bigint | string | readonly SqlArgument[];

export interface SqlStatement {
  readonly text: string;
  readonly args: readonly SqlArgument[];
  /** Aborting interrupts the statement (waiting for a connection or running); it then rejects. */
  readonly signal?: AbortSignal | undefined;
}

export interface QueryEngine {
  /** Runs one read-only statement; rejects with a QueryError (see queryErrorCodes). */
  sql(statement: SqlStatement): Promise<readonly SqlRow[]>;
  /** Interrupts what runs, refuses what comes, frees the engine. Idempotent. */
  close(): Promise<void>;
}

/**
 * The codes a query can fail with; each is a code of the HTTP error registry (src/api/errors.ts,
 * docs/errors.md), so a route answers a QueryError with its code's status unchanged.
 */
export const queryErrorCodes = [
  'DRAM_ERR_UNKNOWN_ENDPOINT',
  'DRAM_ERR_INVALID_PARAMS',
  'DRAM_ERR_ENDPOINT_BUSY',
  'DRAM_ERR_QUERY_FAILED',
  'DRAM_ERR_QUERY_MEMORY',
  'DRAM_ERR_ANSWER_TOO_LARGE',
  'DRAM_ERR_QUERY_TIMEOUT',
  'DRAM_ERR_OVERLOADED',
  'DRAM_ERR_SHUTTING_DOWN',
  // The query route's (src/query/query-service.ts): which database and shards a query runs over.
  'DRAM_ERR_DATABASE_NOT_FOUND',
  'DRAM_ERR_UNKNOWN_SHARD',
  'DRAM_ERR_NO_LOCAL_SHARDS',
  'DRAM_ERR_PARTIAL',
] as const;

export type QueryErrorCode = (typeof queryErrorCodes)[number];

export class QueryError extends Error {
  override readonly name = 'QueryError';
  readonly code: QueryErrorCode;
  /** What a client can act on: a limit and the size that broke it, the schema errors. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: QueryErrorCode, message: string, details?: Readonly<Record<string, unknown>>) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

export function isQueryError(error: unknown): error is QueryError {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return (error as { name?: unknown }).name === 'QueryError' && (queryErrorCodes as readonly unknown[]).includes(code);
}
