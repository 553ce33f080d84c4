// /docs (src/api/api-docs.ts): the OpenAPI document is generated from the app's routes, so a route
// added to the app appears in it with what its schema says, hand-written operations are laid over
// the generated ones, and a route schema describes only: it never validates, coerces or drops a
// field (the routes validate by hand).

import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { jsonBody } from '../../src/api/request-guard.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { stubGroups, stubHost, stubNodeId } from './stub-host.ts';

function app() {
  const stub = stubHost();
  return buildApp({
    nodeId: stubNodeId,
    host: stub.host,
    groups: stubGroups,
    metrics: createNodeMetrics({ host: stub.host }),
  });
}

describe('GET /docs', () => {
  it('documents a route added to the app, from its schema, without validating its input', async () => {
    const node = app();
    node.register((instance, _options, done) => {
      instance.post(
        '/v1/example',
        {
          ...jsonBody(1024),
          schema: {
            summary: 'An example route added after the fact',
            body: { type: 'object', properties: { count: { type: 'integer' } }, additionalProperties: false },
          },
        },
        (request) => ({ echoed: request.body }),
      );
      done();
    });
    const document = (await node.inject({ url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { summary?: string }>>;
    }>();
    expect(document.paths['/v1/example']?.['post']?.summary).toBe('An example route added after the fact');
    // Hand-written operations win over the generated ones.
    expect(document.paths['/v1/kv/{key}']?.['put']?.summary).toBe('Store the raw request body under the key');
    const body = { count: 'seven', extra: true };
    const answer = await node.inject({
      method: 'POST',
      url: '/v1/example',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    expect(answer.json()).toEqual({ echoed: body });
    await node.close();
  });
});
