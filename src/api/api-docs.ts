// `GET /docs`: the interactive API page (Swagger UI, @fastify/swagger-ui) over an OpenAPI 3
// document that @fastify/swagger generates from the app's route table and the routes' schemas, at
// `GET /docs/json`. Generated, so every route the app serves is in it, a route added later included
// (with what its `schema` says: summary, description, params, responses). The routes validate their
// input by hand (fastify's Ajv coerces types and drops unknown fields, and an admin command with a
// typo must be refused, see admin-routes.ts), so route schemas are descriptions only: the app's
// validator compiler accepts everything, and its serializer compiler is plain JSON.stringify (a
// response schema never drops a field). Where a hand-written description of an operation exists
// (openapi.ts, openapi-actions.ts: the error codes each route answers, headers, bodies), it is
// merged over the generated one, operation by operation.
//
// The generator sees the routes registered once it has loaded: register routes in a plugin
// (app.register), as every route of the app is; one added straight on the root instance before
// the app is ready is served but missing from the document.
//
// Called by: src/api/app.ts (before any route plugin is registered).

import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export const apiDocsPrefix = '/docs';

/** The hand-written parts: the document's info and components, and operations by path and method. */
export interface HandWrittenDocument {
  readonly info: { readonly title: string; readonly version: string; readonly description?: string };
  readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly components: Readonly<Record<string, unknown>>;
}

type PathItems = Record<string, Record<string, unknown>>;

/** The generated paths with each hand-written operation (and path-level parameters) laid over them. */
export function withHandWritten(generated: PathItems, handWritten: HandWrittenDocument['paths']): PathItems {
  const paths: PathItems = {};
  for (const [path, item] of Object.entries(generated)) paths[path] = { ...item };
  for (const [path, item] of Object.entries(handWritten)) paths[path] = { ...paths[path], ...item };
  return paths;
}

export function installApiDocs(app: FastifyInstance, handWritten: HandWrittenDocument): void {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  void app.register(fastifySwagger, {
    openapi: { openapi: '3.0.3', info: { ...handWritten.info }, components: { ...handWritten.components } },
    transformObject: (document) => {
      const openapi = 'openapiObject' in document ? document.openapiObject : {};
      return { ...openapi, paths: withHandWritten((openapi.paths ?? {}) as PathItems, handWritten.paths) };
    },
  });
  void app.register(fastifySwaggerUi, { routePrefix: apiDocsPrefix, uiConfig: { docExpansion: 'list' } });
}
