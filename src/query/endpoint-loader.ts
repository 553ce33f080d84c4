// Loads the query endpoint modules of `--endpoints DIR` at start: every `*.js`, `*.mjs` and `*.ts`
// file directly in the directory (not `*.d.ts`, not subdirectories), in name order. A file that
// fails to import, exports the wrong shape, has a schema ajv cannot compile, or reuses another
// file's endpoint name is an EndpointLoadError naming the file: the node does not start with a
// partial set of endpoints. TypeScript files load because the process runs under tsx.
//
// Called by: src/node/ at start (loadEndpoints), tests and embedders (endpointSet).

import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  checkEndpointModule,
  EndpointLoadError,
  type CheckedEndpoint,
  type EndpointDefaults,
} from './endpoint-module.ts';
import { paramsCompiler, type ParamsValidator } from './endpoint-params.ts';

/** Endpoint modules in one directory; more is a start-up error. */
export const endpointsMax = 256;

export interface LoadedEndpoint extends CheckedEndpoint {
  readonly validateParams: ParamsValidator;
}

/** The endpoints of a node, by name. */
export type EndpointSet = ReadonlyMap<string, LoadedEndpoint>;

export const endpointDefaultsDefault: EndpointDefaults = { timeoutMs: 30_000, concurrencyMax: 16 };

/** Checks already-imported modules (`exported`: each file's default export) into an endpoint set. */
export function endpointSet(
  modules: readonly { readonly file: string; readonly exported: unknown }[],
  defaults: EndpointDefaults = endpointDefaultsDefault,
): EndpointSet {
  if (modules.length > endpointsMax)
    throw new EndpointLoadError(modules[endpointsMax]?.file ?? '', `more than ${endpointsMax} endpoint modules`);
  const compile = paramsCompiler();
  const endpoints = new Map<string, LoadedEndpoint>();
  for (const { file, exported } of modules) {
    const checked = checkEndpointModule(exported, file, defaults);
    const earlier = endpoints.get(checked.name);
    if (earlier !== undefined)
      throw new EndpointLoadError(file, `endpoint name "${checked.name}" is already used by ${earlier.file}`);
    endpoints.set(checked.name, { ...checked, validateParams: compile(checked.params, file) });
  }
  return endpoints;
}

/** The module files of `directory` (absolute paths, sorted), as the loader sees them. */
export function endpointFiles(directory: string): string[] {
  const absolute = resolve(directory);
  let entries: string[];
  try {
    if (!statSync(absolute).isDirectory()) throw new Error('not a directory');
    entries = readdirSync(absolute);
  } catch (error) {
    throw new EndpointLoadError(absolute, `cannot read the endpoints directory: ${(error as Error).message}`);
  }
  return entries
    .filter((entry) => /\.(?:m?js|ts)$/u.test(entry) && !entry.endsWith('.d.ts'))
    .sort()
    .map((entry) => join(absolute, entry))
    .filter((file) => statSync(file).isFile());
}

export async function loadEndpoints(
  directory: string,
  defaults: EndpointDefaults = endpointDefaultsDefault,
): Promise<EndpointSet> {
  const files = endpointFiles(directory);
  if (files.length > endpointsMax)
    throw new EndpointLoadError(resolve(directory), `more than ${endpointsMax} endpoint modules`);
  const modules: { file: string; exported: unknown }[] = [];
  for (const file of files) {
    let namespace: { default?: unknown };
    try {
      namespace = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (error) {
      throw new EndpointLoadError(file, `failed to load: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (namespace.default === undefined) throw new EndpointLoadError(file, 'it has no default export');
    modules.push({ file, exported: namespace.default });
  }
  return endpointSet(modules, defaults);
}
