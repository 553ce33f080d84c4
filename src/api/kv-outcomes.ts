// How the KV front ends (HTTP routes and the binary protocol) turn the host's outcomes into
// answers: metric labels, and the ApiError for each refusal or failed KV result. One place, so
// the two protocols cannot drift apart; what differs (forwarding on HTTP, hints to the smart
// client on the binary protocol) stays with the caller, which handles `not_leader` itself.
//
// Called by: src/api/kv-routes.ts, src/api/binary-server.ts.

import type { GroupId } from '../base/ids.ts';
import type { KvCommand } from '../codec/kv.ts';
import { KvModel, type KvOutcome } from '../models/kv.ts';
import type { ProposalOutcome, ReadOutcome } from '../multiraft/host.ts';
import { ApiError } from './errors.ts';
import { noLeaderError, notLeaderError } from './forwarding.ts';
import { leaderOf } from './host-view.ts';
import type { ApiHost, ProposalOutcomeLabel, ReadOutcomeLabel } from './ports.ts';

type WriteRefusal = Extract<ProposalOutcome, { kind: 'refused' }>['reason'];
type ReadRefusal = Extract<ReadOutcome, { kind: 'refused' }>['reason'];

export function kvModelOf(host: ApiHost, group: GroupId): KvModel {
  const model = host.model(group);
  if (!(model instanceof KvModel))
    throw new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
  return model;
}

export function proposalLabel(outcome: ProposalOutcome): ProposalOutcomeLabel {
  if (outcome.kind !== 'refused') return outcome.kind;
  const reason = outcome.reason;
  switch (reason.kind) {
    case 'not_leader':
      return reason.leaderHint === 0 ? 'no_leader' : 'not_leader';
    case 'transferring':
    case 'superseded':
    case 'overloaded':
    case 'unknown_group':
    case 'stopped':
      return reason.kind;
    case 'uncommitted_full':
      return 'overloaded';
    case 'entry_too_large':
      return 'too_large';
    case 'conf_change_pending':
    case 'conf_change_invalid':
      return 'rejected';
  }
}

export function readLabel(reason: ReadRefusal): ReadOutcomeLabel {
  return reason === 'read_queue_full' ? 'overloaded' : reason;
}

/** The error for a write the host refused for any reason but `not_leader`. */
export function writeRefusalError(
  host: ApiHost,
  group: GroupId,
  reason: Exclude<WriteRefusal, { kind: 'not_leader' }>,
): ApiError {
  switch (reason.kind) {
    case 'transferring':
      return notLeaderError(group, reason.target, `leadership is moving to node ${reason.target}`);
    case 'superseded':
      return notLeaderError(
        group,
        leaderOf(host, group),
        'leadership changed before the write committed; it was not applied',
      );
    case 'overloaded':
      return new ApiError('DRAM_ERR_OVERLOADED', 'proposal queue is full', {
        queued: reason.queued,
        queuedMax: reason.queuedMax,
      });
    case 'uncommitted_full':
      return new ApiError('DRAM_ERR_OVERLOADED', 'too many uncommitted bytes in this group', {
        bytes: reason.bytes,
        bytesMax: reason.bytesMax,
      });
    case 'entry_too_large':
      return new ApiError(
        'DRAM_ERR_VALUE_TOO_LARGE',
        `the write is ${reason.bytes} bytes encoded, more than the entry limit ${reason.bytesMax}`,
        { bytes: reason.bytes, bytesMax: reason.bytesMax },
      );
    case 'unknown_group':
      return new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
    case 'stopped':
      return nodeStoppedError();
    case 'conf_change_pending':
    case 'conf_change_invalid':
      return new ApiError('DRAM_ERR_INTERNAL', `unexpected refusal of a KV write: ${reason.kind}`);
  }
}

/** The error for a read refused for any reason but a known other leader. */
export function readRefusalError(
  group: GroupId,
  reason: Exclude<ReadRefusal, 'not_leader' | 'leader_changed'>,
): ApiError {
  switch (reason) {
    case 'no_leader':
      return noLeaderError(group);
    case 'read_queue_full':
      return new ApiError('DRAM_ERR_OVERLOADED', 'read queue is full', { group });
    case 'timeout':
      return new ApiError('DRAM_ERR_TIMEOUT', 'the read did not become safe to serve in time', { group });
    case 'unknown_group':
      return new ApiError('DRAM_ERR_UNKNOWN_GROUP', `KV group ${group} is not hosted on this node`, { group });
    case 'stopped':
      return nodeStoppedError();
  }
}

function nodeStoppedError(): ApiError {
  return new ApiError('DRAM_ERR_NODE_STOPPED', 'this node is stopping (shut down, or a fatal error); not applied');
}

/** The model's outcome of an applied write (it always returns one for a KV command). */
export function appliedOutcome(result: unknown): KvOutcome {
  if (result === undefined)
    throw new ApiError('DRAM_ERR_INTERNAL', 'the KV model did not return an outcome for an applied write');
  return result as KvOutcome;
}

/** A KV write that was applied but did not succeed: the error, and the index to report with it. */
export function failedWriteError(
  group: GroupId,
  command: KvCommand,
  result: Exclude<KvOutcome, { ok: true }>,
): { error: ApiError; index: number | undefined } {
  switch (result.code) {
    case 'cas_mismatch':
      return {
        error: new ApiError(
          'DRAM_ERR_CAS_MISMATCH',
          `key's modify index is ${result.currentIndex}, not ${command.cas ?? 'absent'}`,
          { group, currentIndex: result.currentIndex },
        ),
        index: result.currentIndex,
      };
    case 'key_not_found':
      return { error: new ApiError('DRAM_ERR_KEY_NOT_FOUND', 'key not found', { group }), index: 0 };
    case 'stale_request':
      return {
        error: new ApiError(
          'DRAM_ERR_STALE_REQUEST',
          `request seq is older than the last one applied for this client (${result.lastSeq})`,
          { lastSeq: result.lastSeq },
        ),
        index: undefined,
      };
    case 'session_expired':
      return {
        error: new ApiError(
          'DRAM_ERR_STALE_REQUEST',
          'no session for this client id (it expired, or its first request was not seq 1): not applied now',
          { sessionExpired: true },
        ),
        index: undefined,
      };
  }
}
