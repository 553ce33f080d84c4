// Builds one node's HTTP API as a fastify instance that is NOT listening (docs/CONTRIBUTING.md: build
// the app apart from listen(), test it with inject()). Owns the wiring of the route plugins, which get
// every dependency as options: the host, the KV placement, the forward port, the metrics port. Routes
// are the external contract (docs/ARCHITECTURE.md): /v1/kv/:key, /v1/status,
// /v1/admin/groups/:group/transfer-leadership, /metrics, / (the status page) and /docs (the API
// page, api-docs.ts); plus the membership
// routes `dram start --join` uses (/v1/admin/members, /v1/admin/groups/:group/members) and their
// removal counterparts (DELETE .../members/:nodeId); with a meta model, the agent API under
// /api/unstable/, the action routes under /v1/actions and /v1/meta/commands (docs/agent-api.md).
//
// Invariants: every error leaves as `{ error: true, code, message }` (through the one handler in
// errors.ts, or, below the routes, http-server.ts), bad input never as a 500; a request's head is
// checked before its body is read (request-guard.ts); the server's limits (http-server.ts) are
// set here, so src/node/ only listens; every answered request is counted once in
// dram_http_requests_total under its route pattern (unmatched paths under "unmatched").
//
// Called by: src/node/ (which then calls listen()), and the tests in test/api/.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { GroupId, NodeId } from '../base/ids.ts';
import { kvKeyBytesMax } from '../codec/kv.ts';
import { createKvPlacement } from '../models/kv-placement.ts';
import { removedByRecord } from '../control/group-hosting.ts';
import { actionRoutes } from './action-routes.ts';
import type { ActionsContext, BootstrapPort } from './action-schedule.ts';
import { adminRoutes } from './admin-routes.ts';
import { backupRoutes } from './backup-routes.ts';
import { aliasRoutes } from './alias-routes.ts';
import { databaseRoutes } from './database-routes.ts';
import type { DatabasePort } from '../data/database-port.ts';
import { installApiDocs } from './api-docs.ts';
import { installAuth, type ApiAuth } from './auth.ts';
import { agentRoutes, type AgentInfo } from './agent-routes.ts';
import { frameworkErrorHandler, installErrorHandling } from './errors.ts';
import {
  assertHttpLimits,
  guardHttpServer,
  httpLimitsDefault,
  httpServerOptions,
  type HttpLimits,
  type HttpTls,
} from './http-server.ts';
import { kvRoutes } from './kv-routes.ts';
import type { MemberChangeLimits } from '../control/member-change.ts';
import { memoryDirectory, type MemberDirectory } from '../control/member-directory.ts';
import { memberRemoveRoutes } from './member-remove-routes.ts';
import { memberRoutes } from './member-routes.ts';
import { openApiDocument } from './openapi.ts';
import { placementRoutes } from './placement-routes.ts';
import type { PlacementRound } from '../control/placement-controller.ts';
import { openApiWithActions } from './openapi-actions.ts';
import type { MetaModel } from '../models/meta.ts';
import type { ApiHost, ApiMetrics, Forward } from './ports.ts';
import { installRequestGuard } from './request-guard.ts';
import { queryRoutes, remoteMap, type QueryObserver } from './query-routes.ts';
import { systemClock } from '../multiraft/system-clock.ts';
import type { DatabaseDirectory } from '../query/database-directory.ts';
import type { FanOutClock, FanOutLimits } from '../query/fan-out.ts';
import type { LocalRunner } from '../query/local-runner.ts';
import { QueryService } from '../query/query-service.ts';
import { allowStatusFromAnyOrigin, statusPageRoutes } from './status-page.ts';

export interface AppOptions {
  readonly nodeId: NodeId;
  /** Reported by /v1/status; the transport handshake checks the same id. */
  readonly clusterId?: string | undefined;
  readonly host: ApiHost;
  /** The KV groups (`kv/<n>`); keys are placed on them by hash. */
  readonly groups: readonly GroupId[];
  /** How to reach another node's API; without it a follower answers 503 with a leader hint. */
  readonly forward?: Forward | undefined;
  readonly metrics: ApiMetrics;
  /** A pino logger; without one the app logs nothing. */
  readonly logger?: FastifyBaseLogger | undefined;
  /** The node's address book; without one, an in-memory directory (tests). */
  readonly members?: MemberDirectory | undefined;
  /** How long a membership request may wait for every group (default `defaultRequestTimeoutMs`). */
  readonly requestTimeoutMs?: number | undefined;
  readonly memberChangeLimits?: MemberChangeLimits | undefined;
  /** The HTTP server's limits (default `httpLimitsDefault`). */
  readonly httpLimits?: HttpLimits | undefined;
  /** The meta model (group 0) and what the Replicante agent API reports; without it, no agent or action routes. */
  readonly meta?: AppMetaOptions | undefined;
  /** Serve HTTPS with this certificate (`dram start --tls-cert/--tls-key`); plain HTTP without it. */
  readonly tls?: HttpTls | undefined;
  /** Who may call which route (src/api/auth.ts); without a token in it, anyone may call any route. */
  readonly auth?: ApiAuth | undefined;
  /** Query endpoints and the databases they run over; without it every database is unknown (404). */
  readonly query?: AppQueryOptions | undefined;
}

export interface AppQueryOptions {
  readonly runner: LocalRunner;
  readonly directory: DatabaseDirectory;
  readonly fanOutLimits?: FanOutLimits | undefined;
  /** The fan-out's time (default: the system clock). */
  readonly clock?: FanOutClock | undefined;
  /** Told of every query this member took (the statistics): the name or alias asked, its duration, whether it answered. */
  readonly onQuery?: QueryObserver | undefined;
}

export interface AppMetaOptions {
  readonly model: MetaModel;
  readonly info: AgentInfo;
  /** Wall-clock milliseconds since the epoch: the times written into action records. */
  readonly wallNowMs: () => number;
  /** cluster.init and cluster.join on a node not (yet) in the cluster's log (src/api/action-schedule.ts). */
  readonly bootstrap?: BootstrapPort | undefined;
  /** The database routes' object store check and local progress; without it, no database routes. */
  readonly databases?: DatabasePort | undefined;
  /** The placement controller's last round, while this node leads group 0 (GET /v1/placement). */
  readonly placementRound?: (() => PlacementRound | undefined) | undefined;
}

export const defaultRequestTimeoutMs = 5000;

/** The nodes hosting a group, as the meta model records them (src/control/group-hosting.ts). */
export function locateOf(model: MetaModel | undefined): ((group: GroupId) => readonly NodeId[]) | undefined {
  if (model === undefined) return undefined;
  return (group) => model.group(group)?.replicas ?? [];
}

/**
 * Whether this node's replica of a group was removed from it, as the meta model records it
 * (src/control/group-hosting.ts, removedByRecord), and is not stopped yet: its requests go to the
 * recorded replicas. A node back after its groups moved away (gone past the grace period) hosts
 * such replicas until its hosting loop stops them; none of them knows a leader any more.
 */
export function removedHereOf(
  model: MetaModel | undefined,
  host: Pick<ApiHost, 'groupStatus'>,
  self: NodeId,
): ((group: GroupId) => boolean) | undefined {
  if (model === undefined) return undefined;
  return (group) => {
    // Asked on every request of a group led somewhere (kv routes, binary protocol): a map lookup,
    // and nothing more while the record still lists this node.
    const record = model.group(group);
    if (record === undefined || record.replicas.includes(self)) return false;
    const here = host.groupStatus(group);
    if (here === undefined || here.status.confState.voters.length === 0) return false;
    const confIndex = model.groupConfIndex(group);
    const added = model.move(group)?.add === self;
    return removedByRecord(self, { replicas: record.replicas, confIndex }, here.confIndex, added);
  };
}

// A percent-encoded key is at most 3 bytes of URL per byte of key; anything longer is a key over
// the limit, answered 413 by the framework-error handler rather than a 404 from the router.
const keyParamLengthMax = 3 * kvKeyBytesMax;

export function buildApp(options: AppOptions): FastifyInstance {
  const app = createFastify(options);
  const forward = options.forward;
  const directory = options.members ?? memoryDirectory([], options.nodeId);
  const requestTimeoutMs = options.requestTimeoutMs ?? defaultRequestTimeoutMs;
  const limits = options.memberChangeLimits === undefined ? {} : { limits: options.memberChangeLimits };
  const actions = actionsContext(options, app, requestTimeoutMs);
  const locate = locateOf(options.meta?.model);
  const removedHere = removedHereOf(options.meta?.model, options.host, options.nodeId);
  app.register(kvRoutes, {
    nodeId: options.nodeId,
    host: options.host,
    placement: createKvPlacement(options.groups),
    forward,
    metrics: options.metrics,
    locate,
    removedHere,
  });
  app.register(adminRoutes, {
    nodeId: options.nodeId,
    clusterId: options.clusterId ?? '',
    host: options.host,
    forward,
    actions,
  });
  app.register(backupRoutes, { host: options.host });
  app.register(memberRoutes, {
    nodeId: options.nodeId,
    clusterId: options.clusterId ?? '',
    host: options.host,
    groups: options.groups,
    locate,
    forward,
    directory,
    requestTimeoutMs,
    ...limits,
    actions,
  });
  app.register(memberRemoveRoutes, {
    nodeId: options.nodeId,
    host: options.host,
    groups: options.groups,
    locate,
    forward,
    directory,
    requestTimeoutMs,
    ...limits,
    actions,
  });

  if (options.meta !== undefined && actions !== undefined) {
    app.register(agentRoutes, { nodeId: options.nodeId, info: options.meta.info, actions });
    app.register(actionRoutes, { nodeId: options.nodeId, actions });
    app.register(aliasRoutes, { actions });
    const databases = options.meta.databases;
    if (databases !== undefined) app.register(databaseRoutes, { nodeId: options.nodeId, actions, databases });
    app.register(placementRoutes, { actions, round: options.meta.placementRound });
  }

  registerQueryRoutes(app, options);
  registerPageRoutes(app, options.metrics);
  return app;
}

/** The query route and the member-to-member map route (a service only when --endpoints is given). */
function registerQueryRoutes(app: FastifyInstance, options: AppOptions): void {
  const query = options.query;
  app.register(queryRoutes, {
    service:
      query === undefined
        ? undefined
        : new QueryService({
            self: options.nodeId,
            runner: query.runner,
            directory: query.directory,
            remote: remoteMap(options.forward),
            clock: query.clock ?? systemClock,
            fanOutLimits: query.fanOutLimits,
            metrics: options.metrics.queryFanOut,
          }),
    onQuery: query?.onQuery,
  });
}

/** The fastify instance with its limits, error handling, request guard, auth, docs and request metrics. */
function createFastify(options: AppOptions): FastifyInstance {
  const httpLimits = options.httpLimits ?? httpLimitsDefault;
  assertHttpLimits(httpLimits);
  // An HTTPS server is typed apart from an HTTP one; the routes and the tests see the same API.
  const app = Fastify({
    ...(options.logger === undefined ? {} : { loggerInstance: options.logger }),
    ...(httpServerOptions(httpLimits, options.tls) as ReturnType<typeof httpServerOptions> & { https?: never }),
    routerOptions: { maxParamLength: keyParamLengthMax },
    frameworkErrors: frameworkErrorHandler,
    // Request logging is the metrics' job; pino logs what went wrong, not every success.
    logController: new LogController({ disableRequestLogging: true }),
  });
  guardHttpServer(app.server, httpLimits, options.tls !== undefined);
  installErrorHandling(app);
  installRequestGuard(app);
  installAuth(app, options.auth);
  installApiDocs(app, options.meta === undefined ? openApiDocument : openApiWithActions);
  app.addHook('onResponse', (request, reply, done) => {
    options.metrics.httpRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });

  return app;
}

/** With the meta model, the admin routes that change the cluster schedule an action and wait for it. */
function actionsContext(
  options: AppOptions,
  app: FastifyInstance,
  requestTimeoutMs: number,
): ActionsContext | undefined {
  if (options.meta === undefined) return undefined;
  return {
    nodeId: options.nodeId,
    host: options.host,
    forward: options.forward,
    requestTimeoutMs,
    log: app.log,
    model: options.meta.model,
    wallNowMs: options.meta.wallNowMs,
    bootstrap: options.meta.bootstrap,
  };
}

/** /metrics and the status page, for people and scrapers rather than clients. */
function registerPageRoutes(app: FastifyInstance, metrics: ApiMetrics): void {
  // In a plugin, like every route: the API docs generator sees routes registered after it loaded.
  app.register((instance, _options, done) => {
    instance.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    });
    done();
  });
  app.register(statusPageRoutes);
  app.addHook('onSend', (request, reply, payload, done) => {
    allowStatusFromAnyOrigin(request.routeOptions.url, (name, value) => {
      reply.header(name, value);
    });
    done(null, payload);
  });
}
