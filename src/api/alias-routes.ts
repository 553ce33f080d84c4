// The alias routes (docs/databases.md, "Aliases"), errors in dram's shape:
//   GET    /v1/aliases                 {aliases: [{alias, database}]}
//   PUT    /v1/aliases/:alias          {database}: points the alias at the database (replacing its target)
//   DELETE /v1/aliases/:alias
//   POST   /v1/aliases/_swap           {actions: [{add: {alias, database}} | {remove: {alias, database}}]}
//                                      all or nothing; or {rollback: true}: the mapping before the last swap
//
// Each change is the action dram.io/alias.swap, waited for (`?wait=false`: 202 at once). Before
// scheduling, the change is tried on a copy of the catalog (the model's own rules), so a refusal is
// answered with its code and nothing is scheduled: an unknown database 404, an alias to a database
// not loaded on its replica count 409 DRAM_ERR_NOT_LOADED, a remove of an alias that does not point
// there 404 DRAM_ERR_ALIAS_NOT_FOUND.
//
// Called by: src/api/app.ts (registered with the meta model).

import type { FastifyPluginCallback } from 'fastify';
import type { JsonValue } from '../codec/meta.ts';
import { isName, type DatabasesCommand } from '../codec/meta-databases.ts';
import { aliasChangesOf, aliasSwapKind, databaseArgsProblem } from '../control/database-kinds.ts';
import { DatabasesModel, type DatabasesRefusal } from '../models/meta-databases.ts';
import { runAsAction, type ActionsContext } from './action-schedule.ts';
import { ApiError, type ErrorCode } from './errors.ts';
import { jsonBody } from './request-guard.ts';

export interface AliasRoutesOptions {
  readonly actions: ActionsContext;
}

const aliasBodyBytesMax = 32 * 1024;

const refusalCodes: Record<DatabasesRefusal, ErrorCode> = {
  exists: 'DRAM_ERR_DATABASE_EXISTS',
  unknown: 'DRAM_ERR_DATABASE_NOT_FOUND',
  not_loaded: 'DRAM_ERR_NOT_LOADED',
  full: 'DRAM_ERR_CATALOG_FULL',
  stale: 'DRAM_ERR_BAD_REQUEST',
  alias_unknown: 'DRAM_ERR_ALIAS_NOT_FOUND',
};

/** Tries the command on a copy of the catalog; throws the refusal's error. */
function tryOnCopy(context: ActionsContext, command: DatabasesCommand): void {
  const copy = new DatabasesModel();
  copy.restore(context.model.databases.snapshot());
  const outcome = copy.apply(command, context.model.activeNodes());
  if (!outcome.ok) throw new ApiError(refusalCodes[outcome.reason], outcome.message);
}

function aliasName(raw: string): string {
  if (!isName(raw))
    throw new ApiError(
      'DRAM_ERR_BAD_REQUEST',
      'an alias is 1-128 letters, digits, ".", "_" or "-", without "/" or ".."',
    );
  return raw;
}

export const aliasRoutes: FastifyPluginCallback<AliasRoutesOptions> = (app, options, done) => {
  const { actions } = options;

  app.get('/v1/aliases', () => ({ aliases: actions.model.databases.aliases() }));

  app.put<{ Params: { alias: string } }>('/v1/aliases/:alias', jsonBody(aliasBodyBytesMax), async (request, reply) => {
    const alias = aliasName(request.params.alias);
    const body = request.body as Record<string, unknown> | null | undefined;
    const database = typeof body === 'object' && body !== null ? body['database'] : undefined;
    if (typeof database !== 'string' || !isName(database))
      throw new ApiError('DRAM_ERR_BAD_REQUEST', 'body must be {"database": "<name>"}');
    tryOnCopy(actions, { type: 'alias.swap', changes: [{ op: 'add', alias, database }] });
    return runAsAction(actions, request, reply, aliasSwapKind, { actions: [{ add: { alias, database } }] });
  });

  app.delete<{ Params: { alias: string } }>('/v1/aliases/:alias', async (request, reply) => {
    const alias = aliasName(request.params.alias);
    const database = actions.model.databases.aliases().find((entry) => entry.alias === alias)?.database;
    if (database === undefined) throw new ApiError('DRAM_ERR_ALIAS_NOT_FOUND', `no alias ${alias}`, { alias });
    return runAsAction(actions, request, reply, aliasSwapKind, { actions: [{ remove: { alias, database } }] });
  });

  app.post('/v1/aliases/_swap', jsonBody(aliasBodyBytesMax), async (request, reply) => {
    const args = (request.body ?? null) as JsonValue;
    const problem = databaseArgsProblem(aliasSwapKind, args);
    if (problem !== undefined) throw new ApiError('DRAM_ERR_BAD_REQUEST', problem);
    const fields = args as Record<string, JsonValue>;
    if (fields['rollback'] === true) tryOnCopy(actions, { type: 'alias.rollback' });
    else {
      const changes = aliasChangesOf(fields['actions']);
      if (typeof changes === 'string') throw new ApiError('DRAM_ERR_BAD_REQUEST', changes);
      tryOnCopy(actions, { type: 'alias.swap', changes });
    }
    return runAsAction(actions, request, reply, aliasSwapKind, args);
  });

  done();
};
