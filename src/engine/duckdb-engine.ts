// The query engine on DuckDB (the only importer of @duckdb/node-api): a bounded pool of DuckDB
// instances, each with one connection, each running one statement at a time. One instance per
// connection is what makes DuckDB's `memory_limit` (which is per instance) a limit per query; the
// whole engine holds at most connectionsMax x queryMemoryBytesMax of DuckDB's buffer memory.
//
// Every instance is locked down before its first statement: it reads only the given directories
// (`allowed_directories` with external access off: no network, no other file), installs and loads
// no extension (Parquet, JSON and CSV are built in), spills to disk only where told (nowhere by
// default, so a query over its memory fails with DRAM_ERR_QUERY_MEMORY instead of filling a disk),
// and has its configuration locked so no statement can lift these. Only one statement of the
// SELECT kind is run per call (no DDL, COPY, ATTACH, SET).
//
// Bounds per statement: waiting for a connection (waitingMax waiters, then DRAM_ERR_OVERLOADED),
// its running time (queryTimeoutMs, then the connection is interrupted: DRAM_ERR_QUERY_TIMEOUT),
// the caller's AbortSignal (also an interrupt), and its answer: rows are streamed chunk by chunk
// and counted as they are converted, so an answer over answerRowsMax rows or answerBytesMax bytes
// of JSON stops there with DRAM_ERR_ANSWER_TOO_LARGE before it is held in memory.
//
// Called by: src/node/ (creates it), src/query/local-runner.ts (through the QueryEngine port).

import { DuckDBInstance, StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { assert } from '../base/assert.ts';
import { isQueryError, QueryError, type QueryEngine, type SqlRow, type SqlStatement } from '../data/query-engine.ts';
import { duckDbArgument, jsonFromDuckDb, UnconvertibleValueError } from './duckdb-values.ts';

/** How often a stopped statement's connection is interrupted again until the statement ends. */
const interruptRepeatMs = 10;

export interface DuckDbEngineLimits {
  /** Statements running at once; each has its own DuckDB instance and memory limit. */
  readonly connectionsMax: number;
  /** Statements waiting for a connection; one more is refused with DRAM_ERR_OVERLOADED. */
  readonly waitingMax: number;
  /** DuckDB's memory_limit of each instance, so of each running statement. */
  readonly queryMemoryBytesMax: number;
  /** DuckDB's worker threads of each instance. */
  readonly queryThreadsMax: number;
  /** A statement's running time (not its wait for a connection). */
  readonly queryTimeoutMs: number;
  readonly answerRowsMax: number;
  /** The answer's size as JSON text (UTF-8). */
  readonly answerBytesMax: number;
}

export const duckDbEngineLimitsDefault: DuckDbEngineLimits = {
  connectionsMax: 4,
  waitingMax: 256,
  queryMemoryBytesMax: 256 * 1024 * 1024,
  queryThreadsMax: 1,
  queryTimeoutMs: 30_000,
  answerRowsMax: 100_000,
  answerBytesMax: 16 * 1024 * 1024,
};

export interface DuckDbEngineOptions {
  readonly limits: DuckDbEngineLimits;
  /** Absolute directories statements may read (a database's files live under one of them). */
  readonly readableDirectories: readonly string[];
  /** Where DuckDB may spill a statement that is over its memory; absent: nowhere. */
  readonly spillDirectory?: string | undefined;
}

interface Slot {
  readonly instance: DuckDBInstance;
  readonly connection: DuckDBConnection;
}

interface Waiter {
  readonly resolve: (slot: Slot) => void;
  readonly reject: (error: QueryError) => void;
}

export function checkDuckDbEngineLimits(limits: DuckDbEngineLimits): void {
  for (const [name, value] of Object.entries(limits))
    assert(Number.isSafeInteger(value) && value > 0, `duckdb engine: ${name} must be a positive integer, not ${value}`);
  assert(limits.queryMemoryBytesMax >= 16 * 1024 * 1024, 'duckdb engine: queryMemoryBytesMax must be at least 16 MiB');
}

/** `/a/b` -> `/a/b/`: DuckDB matches allowed directories as prefixes, so `/a/b` would also allow `/a/bc`. */
function directoryPrefix(directory: string): string {
  assert(directory.startsWith('/'), `duckdb engine: readable directory ${directory} is not absolute`);
  assert(!directory.includes("'"), `duckdb engine: readable directory ${directory} contains a quote`);
  return directory.endsWith('/') ? directory : `${directory}/`;
}

async function openSlot(options: DuckDbEngineOptions): Promise<Slot> {
  const { limits } = options;
  const instance = await DuckDBInstance.create(':memory:', {
    memory_limit: `${Math.floor(limits.queryMemoryBytesMax / 1024)}KiB`,
    threads: String(limits.queryThreadsMax),
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    temp_directory: options.spillDirectory ?? '',
  });
  try {
    const connection = await instance.connect();
    const allowed = options.readableDirectories.map((directory) => `'${directoryPrefix(directory)}'`).join(', ');
    await connection.run(`SET allowed_directories = [${allowed}]`);
    // Time zone arithmetic (TIMESTAMPTZ to TIMESTAMP) must not depend on the host's zone.
    await connection.run("SET TimeZone = 'UTC'");
    await connection.run('SET enable_external_access = false');
    await connection.run('SET lock_configuration = true');
    return { instance, connection };
  } catch (error) {
    instance.closeSync();
    throw error;
  }
}

export class DuckDbEngine implements QueryEngine {
  private readonly limits: DuckDbEngineLimits;
  private readonly idle: Slot[];
  private readonly all: readonly Slot[];
  private readonly waiters: Waiter[] = [];
  private readonly running = new Set<Promise<unknown>>();
  /** How to stop each statement that holds a connection. */
  private readonly stops = new Set<(reason: QueryError) => void>();
  private closed = false;

  private constructor(limits: DuckDbEngineLimits, slots: Slot[]) {
    this.limits = limits;
    this.all = slots;
    this.idle = [...slots];
  }

  static async open(options: DuckDbEngineOptions): Promise<DuckDbEngine> {
    checkDuckDbEngineLimits(options.limits);
    options.readableDirectories.forEach(directoryPrefix);
    const slots: Slot[] = [];
    try {
      for (let index = 0; index < options.limits.connectionsMax; index++) slots.push(await openSlot(options));
    } catch (error) {
      for (const slot of slots) {
        slot.connection.closeSync();
        slot.instance.closeSync();
      }
      throw error;
    }
    return new DuckDbEngine(options.limits, slots);
  }

  async sql(statement: SqlStatement): Promise<readonly SqlRow[]> {
    // Registered before its first await, so close() waits for every statement it has let in.
    const work = this.serve(statement);
    this.running.add(work);
    try {
      return await work;
    } finally {
      this.running.delete(work);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters.splice(0))
      waiter.reject(new QueryError('DRAM_ERR_SHUTTING_DOWN', 'the query engine is closing'));
    for (const stop of this.stops) stop(new QueryError('DRAM_ERR_SHUTTING_DOWN', 'the query engine is closing'));
    await Promise.allSettled([...this.running]);
    for (const slot of this.all) {
      slot.connection.closeSync();
      slot.instance.closeSync();
    }
  }

  private async serve(statement: SqlStatement): Promise<readonly SqlRow[]> {
    const slot = await this.acquire(statement.signal);
    try {
      return await this.runOn(slot, statement);
    } finally {
      this.release(slot);
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<Slot> {
    if (this.closed) return Promise.reject(new QueryError('DRAM_ERR_SHUTTING_DOWN', 'the query engine is closed'));
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    const slot = this.idle.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    if (this.waiters.length >= this.limits.waitingMax)
      return Promise.reject(
        new QueryError('DRAM_ERR_OVERLOADED', 'every query connection is busy and the wait queue is full', {
          waitingMax: this.limits.waitingMax,
        }),
      );
    return new Promise<Slot>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        resolve: (given) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(given);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(slot: Slot): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) this.idle.push(slot);
    else waiter.resolve(slot);
  }

  /**
   * Runs one statement on its connection. Stopping it (timeout, abort, close) interrupts the
   * connection, and again every interruptRepeatMs until it settles: DuckDB drops an interrupt that
   * arrives before the statement has begun to execute, and the stop flag is checked after every
   * step, so a stop requested at any moment ends the statement with the stop's reason.
   */
  private async runOn(slot: Slot, statement: SqlStatement): Promise<readonly SqlRow[]> {
    const { signal } = statement;
    let stoppedBy: QueryError | undefined;
    let repeat: NodeJS.Timeout | undefined;
    const stop = (reason: QueryError): void => {
      if (stoppedBy !== undefined) return;
      stoppedBy = reason;
      slot.connection.interrupt();
      repeat = setInterval(() => {
        slot.connection.interrupt();
      }, interruptRepeatMs);
    };
    const stopped = (): void => {
      if (stoppedBy !== undefined) throw stoppedBy;
    };
    const { queryTimeoutMs } = this.limits;
    const timer = setTimeout(() => {
      stop(
        new QueryError('DRAM_ERR_QUERY_TIMEOUT', `the statement ran longer than ${queryTimeoutMs} ms`, {
          timeoutMs: queryTimeoutMs,
        }),
      );
    }, queryTimeoutMs);
    const onAbort = (): void => {
      stop(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.stops.add(stop);
    if (this.closed) stop(new QueryError('DRAM_ERR_SHUTTING_DOWN', 'the query engine is closing'));
    if (signal?.aborted === true) onAbort();
    let prepared: DuckDBPreparedStatement | undefined;
    try {
      prepared = await slot.connection.prepare(statement.text);
      stopped();
      if (prepared.statementType !== StatementType.SELECT)
        throw new QueryError('DRAM_ERR_QUERY_FAILED', 'ctx.sql runs one read-only statement (SELECT, FROM, WITH ...)');
      if (statement.args.length > 0) {
        const bound = statement.args.map(duckDbArgument);
        prepared.bind(
          bound.map((argument) => argument.value),
          bound.map((argument) => argument.type),
        );
      }
      return await this.readAnswer(prepared, stopped);
    } catch (error) {
      throw stoppedBy ?? this.translate(error);
    } finally {
      clearTimeout(timer);
      clearInterval(repeat);
      this.stops.delete(stop);
      signal?.removeEventListener('abort', onAbort);
      prepared?.destroySync();
    }
  }

  /** Streams the answer chunk by chunk, refusing it as soon as it is over a bound. */
  private async readAnswer(prepared: DuckDBPreparedStatement, stopped: () => void): Promise<SqlRow[]> {
    const { answerRowsMax, answerBytesMax } = this.limits;
    const result = await prepared.stream();
    stopped();
    const names = result.columnNames();
    const rows: SqlRow[] = [];
    let bytes = 2; // the answer's brackets
    for (;;) {
      const chunk = await result.fetchChunk();
      stopped();
      if (chunk === null || chunk.rowCount === 0) return rows;
      if (rows.length + chunk.rowCount > answerRowsMax)
        throw new QueryError('DRAM_ERR_ANSWER_TOO_LARGE', `the answer has more than ${answerRowsMax} rows`, {
          rowsMax: answerRowsMax,
        });
      const columns = names.map((name, index) => {
        try {
          return chunk.convertColumnValues(index, jsonFromDuckDb);
        } catch (error) {
          if (error instanceof UnconvertibleValueError)
            throw new QueryError('DRAM_ERR_QUERY_FAILED', `column "${name}": ${error.message}`);
          throw error;
        }
      });
      for (let row = 0; row < chunk.rowCount; row++) {
        const object = Object.fromEntries(names.map((name, index) => [name, columns[index]?.[row] ?? null]));
        bytes += Buffer.byteLength(JSON.stringify(object)) + 1;
        if (bytes > answerBytesMax)
          throw new QueryError(
            'DRAM_ERR_ANSWER_TOO_LARGE',
            `the answer is larger than ${answerBytesMax} bytes of JSON`,
            {
              bytesMax: answerBytesMax,
            },
          );
        rows.push(object);
      }
    }
  }

  private translate(error: unknown): QueryError {
    if (isQueryError(error)) return error;
    if (error instanceof UnconvertibleValueError) return new QueryError('DRAM_ERR_QUERY_FAILED', error.message);
    const message = error instanceof Error ? error.message : String(error);
    if (/^Out of Memory Error/u.test(message))
      return new QueryError('DRAM_ERR_QUERY_MEMORY', `the statement needs more than its memory limit: ${message}`, {
        memoryBytesMax: this.limits.queryMemoryBytesMax,
      });
    return new QueryError('DRAM_ERR_QUERY_FAILED', message);
  }
}

/** The caller's reason when it is a QueryError (the runner aborts with one), else a timeout. */
function abortError(signal: AbortSignal | undefined): QueryError {
  const reason: unknown = signal?.reason;
  if (isQueryError(reason)) return reason;
  return new QueryError('DRAM_ERR_QUERY_TIMEOUT', 'the query was stopped before it finished');
}
