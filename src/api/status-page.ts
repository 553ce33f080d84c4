// The status page, `GET /` on every node (docs/status-page.md): one HTML file with inline script
// (status-page.html, next to this file; no build step) that polls this node's /v1/status,
// /v1/admin/members, /v1/actions, /v1/databases (with each database's /progress here) and
// /api/unstable/info/node once a second, and every member's /v1/status, and draws the cluster:
// nodes with their status, groups with PRIMARY/SECONDARY per node and lag, databases with their
// load state, aliases and this node's download, the action queue and the recent finished actions. The page itself holds no data,
// so it is served without a token; the data routes it calls need one when the node has --token,
// which the page asks for and keeps in the browser's session storage.
//
// /v1/status and /api/unstable/info/node answer any origin (Access-Control-Allow-Origin: *), so a
// node's page can read the other members' views and health. That adds no access: a browser sends
// no credentials with such a request, so where a token is needed the read fails as before (the
// page then shows what this node knows), and a page of any origin could read what needs no token.
//
// Called by: src/api/app.ts.

import { readFileSync } from 'node:fs';
import type { FastifyPluginCallback } from 'fastify';

const page = readFileSync(new URL('./status-page.html', import.meta.url), 'utf8');

export const statusPageRoutes: FastifyPluginCallback = (app, _options, done) => {
  const schema = { summary: 'The status page: the cluster live (HTML; served without a token)' };
  app.get('/', { config: { access: 'page' }, schema }, (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page),
  );
  done();
};

const readableFromAnyOrigin: ReadonlySet<string> = new Set(['/v1/status', '/api/unstable/info/node']);

/** Lets other members' status pages read this node's status and health (an onSend hook on the root app). */
export function allowStatusFromAnyOrigin(url: string | undefined, setHeader: (name: string, value: string) => void) {
  if (url !== undefined && readableFromAnyOrigin.has(url)) setHeader('access-control-allow-origin', '*');
}
