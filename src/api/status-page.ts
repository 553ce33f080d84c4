// The status page, `GET /` on every node (docs/status-page.md): one HTML file with inline script
// (status-page.html, next to this file; no build step) that polls this node's /v1/status,
// /v1/admin/members, /v1/actions and /api/unstable/info/node once a second, and every member's
// /v1/status, and draws the cluster: nodes with their status, groups with PRIMARY/SECONDARY per
// node and lag, the action queue and the recent finished actions. The page itself holds no data,
// so it is served without a token; the data routes it calls need one when the node has --token,
// which the page asks for and keeps in the browser's session storage.
//
// /v1/status answers any origin (Access-Control-Allow-Origin: *), so a node's page can read the
// other members' views: without a read token it is public anyway, and it takes no credentials.
//
// Called by: src/api/app.ts.

import { readFileSync } from 'node:fs';
import type { FastifyPluginCallback } from 'fastify';

const page = readFileSync(new URL('./status-page.html', import.meta.url), 'utf8');

export const statusPageRoutes: FastifyPluginCallback = (app, _options, done) => {
  app.get('/', { config: { access: 'page' } }, (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page),
  );
  done();
};

/** Lets other members' status pages read this node's /v1/status (an onSend hook on the root app). */
export function allowStatusFromAnyOrigin(url: string | undefined, setHeader: (name: string, value: string) => void) {
  if (url === '/v1/status') setHeader('access-control-allow-origin', '*');
}
