// The shape of a query endpoint module, and its check. An endpoint module is a file in the
// `--endpoints DIR` whose default export is `{ name, params?, map, reduce?, timeoutMs?,
// concurrencyMax? }` (docs/endpoints.md is the author's guide). `map` runs once per shard with a
// context over that shard's local files; `reduce`, when present, turns the shards' answers (in
// shard order) into the query's answer; without it the answer is the list of the shards' answers.
//
// `checkEndpointModule` is pure: it takes what a file exported and either answers the module with
// its limits settled or throws an EndpointLoadError naming the file and what is wrong. Unknown
// keys are refused too, so a misspelt `reduce` is a start-up error, not a silent list of partials.
//
// Called by: src/query/endpoint-loader.ts; endpoint authors import the types (and defineEndpoint).

import type { JsonValue, SqlArgument, SqlRow } from '../data/query-engine.ts';

/** What `map` gets for one shard. Paths are absolute; files are the shard's complete local files. */
export interface EndpointContext {
  readonly database: string;
  readonly version: string;
  readonly shard: string;
  readonly dir: string;
  readonly files: readonly string[];
  /** The database's `global/` folder on this member (files every member has), if it has one. */
  readonly globalDir: string | undefined;
  readonly globalFiles: readonly string[];
  /** Runs one read-only statement over local files; `?` or `$1`... placeholders take `args`. */
  sql(text: string, ...args: SqlArgument[]): Promise<readonly SqlRow[]>;
  /** Aborted when the query is stopped (its timeout, the caller gone, another shard failed). */
  readonly signal: AbortSignal;
}

/** A JSON schema object (draft-07 / 2019 keywords as ajv 8 takes them). */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface EndpointModule<Params = unknown, Partial = unknown, Result = unknown> {
  /** The URL segment: /v1/databases/:db/query/:name. */
  readonly name: string;
  /** Params are validated against it (ajv, defaults applied) before anything runs. */
  readonly params?: JsonSchema;
  /** The whole query's time, map and reduce together (default: the node's; at most timeoutMsMax). */
  readonly timeoutMs?: number;
  /** Queries of this endpoint running at once on a member; one more is refused with 429. */
  readonly concurrencyMax?: number;
  map(context: EndpointContext, params: Params): Partial | Promise<Partial>;
  reduce?(partials: Partial[], params: Params): Result | Promise<Result>;
}

/** Identity, for type inference in an endpoint file: `export default defineEndpoint({...})`. */
export function defineEndpoint<Params, Partial, Result>(
  module: EndpointModule<Params, Partial, Result>,
): EndpointModule<Params, Partial, Result> {
  return module;
}

/** A checked module as the runner holds it. */
export interface CheckedEndpoint {
  readonly name: string;
  readonly file: string;
  readonly params: JsonSchema | undefined;
  readonly timeoutMs: number;
  readonly concurrencyMax: number;
  readonly map: (context: EndpointContext, params: JsonValue) => unknown;
  readonly reduce: ((partials: JsonValue[], params: JsonValue) => unknown) | undefined;
}

export interface EndpointDefaults {
  readonly timeoutMs: number;
  readonly concurrencyMax: number;
}

export const endpointTimeoutMsMax = 10 * 60 * 1000;
export const endpointConcurrencyMaxMax = 1024;
/** Letters, digits, `_`, `-`, `.`; starts with a letter or digit; at most 64 characters. */
export const endpointNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/u;

const knownKeys = new Set(['name', 'params', 'timeoutMs', 'concurrencyMax', 'map', 'reduce']);

/** A start-up error: an endpoint module that cannot be served. The node does not start. */
export class EndpointLoadError extends Error {
  override readonly name = 'EndpointLoadError';
  readonly code = 'DRAM_ERR_ENDPOINT_LOAD';
  readonly file: string;

  constructor(file: string, why: string) {
    super(`endpoint module ${file}: ${why}`);
    this.file = file;
  }
}

function limit(file: string, value: unknown, name: string, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
    throw new EndpointLoadError(file, `${name} must be an integer in [1, ${max}], not ${JSON.stringify(value)}`);
  return value;
}

/** The default export of `file`, checked against the module shape. */
export function checkEndpointModule(exported: unknown, file: string, defaults: EndpointDefaults): CheckedEndpoint {
  if (typeof exported !== 'object' || exported === null)
    throw new EndpointLoadError(file, 'its default export must be an object { name, params?, map, reduce? }');
  const module = exported as Record<string, unknown>;
  const unknown = Object.keys(module).filter((key) => !knownKeys.has(key));
  if (unknown.length > 0)
    throw new EndpointLoadError(file, `unknown key(s) ${unknown.join(', ')} (known: ${[...knownKeys].join(', ')})`);
  const { name, params, map, reduce } = module;
  if (typeof name !== 'string' || !endpointNamePattern.test(name))
    throw new EndpointLoadError(file, `name must match ${endpointNamePattern.source}, not ${JSON.stringify(name)}`);
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params)))
    throw new EndpointLoadError(file, 'params must be a JSON schema object');
  if (typeof map !== 'function') throw new EndpointLoadError(file, 'map must be a function (context, params)');
  if (reduce !== undefined && typeof reduce !== 'function')
    throw new EndpointLoadError(file, 'reduce, when given, must be a function (partials, params)');
  return {
    name,
    file,
    params: params as JsonSchema | undefined,
    timeoutMs: limit(file, module['timeoutMs'], 'timeoutMs', endpointTimeoutMsMax, defaults.timeoutMs),
    concurrencyMax: limit(
      file,
      module['concurrencyMax'],
      'concurrencyMax',
      endpointConcurrencyMaxMax,
      defaults.concurrencyMax,
    ),
    map: (context, values) => (map as CheckedEndpoint['map']).call(module, context, values),
    reduce:
      reduce === undefined
        ? undefined
        : (partials, values) => (reduce as NonNullable<CheckedEndpoint['reduce']>).call(module, partials, values),
  };
}
