// Endpoint params against the endpoint's JSON schema (ajv 8, with ajv-formats for `date-time`,
// `email` and the like). Each schema is compiled once, when the module is loaded, so a schema
// ajv cannot compile (an unknown keyword, a bad `$ref`, `$async`) is a start-up error naming the
// file, and a query pays only for validation.
//
// Validation works on a copy of the params and fills in the schema's `default`s; the answer is
// the copy. No coercion: `"3"` is not the integer 3. An endpoint without a schema takes any JSON
// value as its params (absent params are `{}` either way).
//
// Called by: src/query/endpoint-loader.ts (compile), src/query/local-runner.ts (validate).

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import type { JsonValue } from '../data/query-engine.ts';
import { EndpointLoadError, type JsonSchema } from './endpoint-module.ts';

/** Schema errors listed in an answer; the rest are counted. */
export const paramsErrorsListedMax = 20;

export type ParamsCheck =
  | { readonly kind: 'valid'; readonly params: JsonValue }
  | { readonly kind: 'invalid'; readonly message: string; readonly errors: readonly ParamsError[] };

export interface ParamsError {
  /** JSON pointer into the params, e.g. `/limit`; empty for the params as a whole. */
  readonly path: string;
  readonly message: string;
}

export type ParamsValidator = (params: JsonValue) => ParamsCheck;

/** One ajv instance per endpoint set, so compiled schemas and their `$id`s do not leak between sets. */
export function paramsCompiler(): (schema: JsonSchema | undefined, file: string) => ParamsValidator {
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    coerceTypes: false,
    strictSchema: true,
    strictTypes: false,
    strictTuples: false,
    logger: false,
  });
  formats.default(ajv);
  return (schema, file) => {
    if (schema === undefined) return (params) => ({ kind: 'valid', params });
    if (schema['$async'] === true) throw new EndpointLoadError(file, 'params: $async schemas are not supported');
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(schema);
    } catch (error) {
      throw new EndpointLoadError(file, `params is not a schema ajv can compile: ${(error as Error).message}`);
    }
    return (params) => {
      const copy = structuredClone(params);
      if (validate(copy)) return { kind: 'valid', params: copy };
      const errors = (validate.errors ?? []).map(paramsError);
      const listed = errors.slice(0, paramsErrorsListedMax);
      const more = errors.length - listed.length;
      const message = listed.map((error) => `${error.path || 'params'} ${error.message}`).join('; ');
      return {
        kind: 'invalid',
        message: `params do not match the endpoint's schema: ${message}${more > 0 ? ` (and ${more} more)` : ''}`,
        errors: listed,
      };
    };
  };
}

function paramsError(error: ErrorObject): ParamsError {
  const extra =
    error.keyword === 'additionalProperties'
      ? `: ${String((error.params as { additionalProperty?: unknown }).additionalProperty)}`
      : '';
  return { path: error.instancePath, message: `${error.message ?? error.keyword}${extra}` };
}
