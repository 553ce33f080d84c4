// `GET /v1/admin/groups/:group/snapshot`: one group's state as a snapshot envelope
// (src/codec/snapshot.ts), for `dram backup` (docs/deploy.md, "Backup and restore"), which takes
// one from every group and writes them, with their timeframes, as one backup file.
//
// Invariants: the snapshot includes every write acknowledged before the request came in: it is
// taken after a linearizable read barrier (a follower asks the leader for the read index), at the
// group's applied index, between two entries; the envelope's checksum is verified before it is
// sent, so a capture cut short by a snapshot installed meanwhile answers 503 DRAM_ERR_SNAPSHOT_INTERRUPTED
// rather than bad bytes. A group not hosted here is 404 DRAM_ERR_UNKNOWN_GROUP. The slices are
// drained one per event-loop turn, so a large group does not stall this node's other work.
//
// Called by: src/api/app.ts (registered as a plugin).

import { crc32 } from 'node:zlib';
import type { FastifyPluginCallback } from 'fastify';
import { concatBytes } from '../base/bytes.ts';
import { asGroupId, type GroupId } from '../base/ids.ts';
import { openSnapshot, SnapshotFormatError } from '../codec/snapshot.ts';
import { ApiError } from './errors.ts';
import { notLeaderError } from './forwarding.ts';
import { parseCounter } from './route-input.ts';
import { readRefusalError } from './kv-outcomes.ts';
import type { ApiHost } from './ports.ts';

export interface BackupRoutesOptions {
  readonly host: ApiHost;
}

export const groupSnapshotPath = '/v1/admin/groups/:group/snapshot';

export const backupRoutes: FastifyPluginCallback<BackupRoutesOptions> = (app, options, done) => {
  app.get<{ Params: { group: string } }>(groupSnapshotPath, async (request, reply) => {
    const group = asGroupId(parseCounter(request.params.group, 'group'));
    const bytes = await groupSnapshot(options.host, group);
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  });
  done();
};

async function groupSnapshot(host: ApiHost, group: GroupId): Promise<Uint8Array> {
  if (host.groupStatus(group) === undefined)
    throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
  const barrier = await host.read(group, 'linearizable');
  if (barrier.kind !== 'ready') {
    if (barrier.reason === 'not_leader' || barrier.reason === 'leader_changed')
      throw notLeaderError(group, barrier.leaderHint, 'the read barrier before the snapshot was refused');
    throw readRefusalError(group, barrier.reason);
  }
  const slices = host.backupSnapshot(group);
  if (slices === undefined)
    throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `group ${group} is not hosted on this node`, { group });
  const taken: Uint8Array[] = [];
  for (let slice = slices.next(); slice.done !== true; slice = slices.next()) {
    taken.push(slice.value);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const bytes = concatBytes(taken);
  try {
    openSnapshot(bytes, (data, previous) => crc32(data, previous));
  } catch (error) {
    if (!(error instanceof SnapshotFormatError)) throw error;
    throw new ApiError(
      'DRAM_ERR_SNAPSHOT_INTERRUPTED',
      `the snapshot of group ${group} was cut short (${error.message}); retry`,
      {
        group,
      },
    );
  }
  return bytes;
}
