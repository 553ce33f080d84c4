// The member-only membership change the placement controller asks a group's leader for
// (POST /v1/internal/groups/:group/conf-change, src/api/placement-routes.ts) names the applied
// configuration its plan was made from (`?confIndex=N`): a leader whose configuration has moved
// on since refuses it with 409 DRAM_ERR_CONF_CHANGED and changes nothing. Without that, a round
// carried on by a meta leader that had lost group 0 (paused) re-added a learner that the next
// leader's round had promoted meanwhile, demoting a voter (simulator seed 1777).

import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { asGroupId } from '../../src/base/ids.ts';
import { memoryDirectory } from '../../src/control/member-directory.ts';
import { createNodeMetrics } from '../../src/metrics/registry.ts';
import { MetaModel } from '../../src/models/meta.ts';
import {
  agreedLeader,
  errorCode,
  kvGroups,
  memberAddresses,
  startCluster,
  type ApiCluster,
  type ApiNode,
} from './cluster.ts';

const group = asGroupId(1);
let cluster: ApiCluster | undefined;
let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  await cluster?.stop();
  cluster = undefined;
});

/** The leader's node with the meta routes (the in-process cluster's apps have none). */
function withMetaRoutes(node: ApiNode): FastifyInstance {
  app = buildApp({
    nodeId: node.id,
    host: node.host,
    groups: kvGroups,
    metrics: createNodeMetrics({ host: node.host }),
    members: memoryDirectory([memberAddresses(node.id)], node.id),
    meta: {
      model: new MetaModel(),
      info: { httpUrl: 'http://127.0.0.1:8000', version: '0.0.0', clusterId: 'c' },
      wallNowMs: Date.now,
    },
  });
  return app;
}

describe('POST /v1/internal/groups/:group/conf-change', () => {
  it('refuses a change planned from an older configuration, and makes one planned from the current one', async () => {
    cluster = startCluster();
    const leader = await agreedLeader(cluster, group);
    const confIndex = () => leader.host.groupStatus(group)?.confIndex;
    const learners = () => leader.host.groupStatus(group)?.status.confState.learners;
    const before = confIndex();
    if (before === undefined) throw new Error('the leader hosts no group 1');
    const routes = withMetaRoutes(leader);
    const change = (planned: number, node: number) =>
      routes.inject({
        method: 'POST',
        url: `/v1/internal/groups/${group}/conf-change?confIndex=${planned}`,
        payload: { changes: [{ type: 'add_learner', node }], transition: 'auto' },
      });

    const stale = await change(before + 5, 7);
    expect({ status: stale.statusCode, code: errorCode(stale) }).toEqual({
      status: 409,
      code: 'DRAM_ERR_CONF_CHANGED',
    });
    expect(learners()).toEqual([]);
    expect(confIndex()).toBe(before);

    const current = await change(before, 7);
    expect(current.statusCode).toBe(200);
    expect(learners()).toEqual([7]);
    const after = confIndex() ?? 0;
    expect(after).toBeGreaterThan(before);

    // The plan that added 7 was made from `before`: carried again, it is refused.
    const repeated = await change(before, 8);
    expect({ status: repeated.statusCode, code: errorCode(repeated) }).toEqual({
      status: 409,
      code: 'DRAM_ERR_CONF_CHANGED',
    });
    expect(learners()).toEqual([7]);
  });

  it('rejects a confIndex that is not a count', async () => {
    cluster = startCluster();
    const leader = await agreedLeader(cluster, group);
    const bad = await withMetaRoutes(leader).inject({
      method: 'POST',
      url: `/v1/internal/groups/${group}/conf-change?confIndex=-1`,
      payload: { changes: [{ type: 'add_learner', node: 7 }], transition: 'auto' },
    });
    expect(bad.statusCode).toBe(400);
    expect(leader.host.groupStatus(group)?.status.confState.learners).toEqual([]);
  });
});
