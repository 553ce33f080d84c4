// How the KV front ends (HTTP routes and the binary protocol) write, and turn the host's outcomes
// into answers: metric labels, and the ApiError for each refusal or failed KV result. One place, so
// the two protocols cannot drift apart. Writes are proposed from any node (writeKv): each carries
// an exactly-once stamp (the client's, or this node's own session's), which lets a follower hand
// it to the leader through Raft and recognize it among the entries it applies. Reads differ
// (forwarding on HTTP, hints to the smart client on the binary protocol) and stay with the caller.
//
// Called by: src/api/kv-routes.ts, src/api/binary-server.ts, src/api/meta-propose.ts.

import { randomBytes } from 'node:crypto';
import { assert } from '../base/assert.ts';
import type { GroupId, NodeId } from '../base/ids.ts';
import { encodeKvCommand, kvRequestKey, type KvClientStamp, type KvCommand } from '../codec/kv.ts';
import { KvModel, type KvOutcome } from '../models/kv.ts';
import type { ProposalOutcome, ReadOutcome } from '../multiraft/host.ts';
import { ApiError, isApiError } from './errors.ts';
import { noLeaderError, notLeaderError } from './forwarding.ts';
import { leaderOf } from './host-view.ts';
import type { ApiHost, ApiMetrics, ProposalOutcomeLabel, ReadOutcomeLabel } from './ports.ts';

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

/**
 * This node's own exactly-once sessions for the writes that come without a client stamp, one per
 * group: a client id unique to this server instance (node id, group and a random part) and a seq.
 * The model opens a session only with seq 1 and refuses any later seq of a client id it has no
 * session for, so a group's first write (seq 1) goes alone: the writes that arrive meanwhile wait
 * for its outcome. Applied (whatever the model answered): the session is open, and later writes
 * take seq 2, 3, ... in the order they are proposed. Definitely not applied: the next write is seq
 * 1 again. Unknown: the next write opens a new session (a new id), since a late copy of the old
 * seq 1 could otherwise be taken for it. A session the model forgot (session_expired) is replaced
 * the same way.
 */
export class NodeSession {
  private readonly nodeId: NodeId;
  private readonly groups = new Map<GroupId, SessionState>();

  constructor(nodeId: NodeId) {
    this.nodeId = nodeId;
  }

  /** The stamp for the next write of `group`, and what to call with its outcome. */
  async stamp(
    group: GroupId,
  ): Promise<{ readonly client: KvClientStamp; readonly settle: (outcome: SessionOutcome) => void }> {
    let state = this.groups.get(group);
    if (state === undefined) this.groups.set(group, (state = this.fresh(group)));
    while (state.opening !== undefined) {
      await state.opening;
      state = this.groups.get(group) ?? state;
    }
    const current = state;
    if (current.open)
      return {
        client: { id: current.id, seq: ++current.seq },
        settle: (outcome) => {
          this.expired(group, current, outcome);
        },
      };
    let release = (): void => {};
    current.opening = new Promise((resolve) => {
      release = resolve;
    });
    current.seq = 1;
    return {
      client: { id: current.id, seq: 1 },
      settle: (outcome) => {
        current.opening = undefined;
        if (outcome === 'applied') current.open = true;
        else if (outcome !== 'not_applied') this.groups.set(group, this.fresh(group));
        release();
      },
    };
  }

  /** A write of an open session found it forgotten by the model: the next write opens a new one. */
  private expired(group: GroupId, state: SessionState, outcome: SessionOutcome): void {
    if (outcome === 'session_expired' && this.groups.get(group) === state) this.groups.set(group, this.fresh(group));
  }

  private fresh(group: GroupId): SessionState {
    return {
      id: `dram.node.${this.nodeId}.${group}.${randomBytes(8).toString('hex')}`,
      seq: 0,
      open: false,
      opening: undefined,
    };
  }
}

/** What a write's outcome says about the session that stamped it. */
export type SessionOutcome = 'applied' | 'not_applied' | 'unknown' | 'session_expired';

interface SessionState {
  readonly id: string;
  seq: number;
  open: boolean;
  /** Set while the session's opening write (seq 1) is in flight. */
  opening: Promise<void> | undefined;
}

export type KvWriteAnswer =
  | { readonly ok: true; readonly modifyIndex: number }
  /** `index`: the index to report with the error (the current one on a CAS mismatch), if any. */
  | { readonly ok: false; readonly error: ApiError; readonly index: number | undefined };

/**
 * Proposes a KV write on this node, whichever node leads its group (a follower forwards it to the
 * leader inside Raft and answers once it applied the entry). A write without a client stamp gets
 * this node's session's. The answer is ok only when applied, a definite failure only when
 * certainly not applied, DRAM_ERR_INDETERMINATE otherwise.
 */
export async function writeKv(
  host: ApiHost,
  session: NodeSession,
  metrics: Pick<ApiMetrics, 'proposal'> | undefined,
  group: GroupId,
  command: KvCommand,
): Promise<KvWriteAnswer> {
  const own = command.client === undefined ? await session.stamp(group) : undefined;
  const client = command.client ?? own?.client;
  assert(client !== undefined, 'kv: a write without a stamp');
  const stamped: KvCommand = command.client === undefined ? { ...command, client } : command;
  const outcome = await host.propose(group, encodeKvCommand(stamped), kvRequestKey(client));
  own?.settle(sessionOutcome(outcome));
  metrics?.proposal(proposalLabel(outcome));
  if (outcome.kind === 'indeterminate') return { ok: false, error: indeterminateError(group), index: undefined };
  if (outcome.kind === 'refused') {
    const reason = outcome.reason;
    const error =
      reason.kind === 'not_leader'
        ? notLeaderError(group, reason.leaderHint, 'no leader to hand the write to')
        : writeRefusalError(host, group, reason);
    return { ok: false, error, index: undefined };
  }
  const result = appliedOutcome(outcome.result);
  if (result.ok) return { ok: true, modifyIndex: result.modifyIndex };
  if (command.client === undefined && (result.code === 'stale_request' || result.code === 'session_expired')) {
    // Our own session refused a copy that arrived after a later write of ours (a leader change
    // reordered them): not applied, and past seq 1 no later copy can apply either (the session
    // only moves on, and a forgotten one refuses everything but seq 1; the model's one blind
    // spot, a retried seq 1, is why seq 1 is indeterminate). Safe for the client to retry.
    const definite = result.code === 'stale_request' && client.seq > 1;
    const error = definite ? writeRefusalError(host, group, { kind: 'superseded' }) : indeterminateError(group);
    return { ok: false, error, index: undefined };
  }
  return { ok: false, ...failedWriteError(group, stamped, result) };
}

function sessionOutcome(outcome: ProposalOutcome): SessionOutcome {
  if (outcome.kind === 'refused') return 'not_applied';
  if (outcome.kind === 'indeterminate') return 'unknown';
  const result = outcome.result as KvOutcome | undefined;
  return result?.ok === false && result.code === 'session_expired' ? 'session_expired' : 'applied';
}

function indeterminateError(group: GroupId): ApiError {
  return new ApiError('DRAM_ERR_INDETERMINATE', 'the write may or may not have been applied (no answer in time)', {
    group,
  });
}

/**
 * Whether a request failed because its group was stopped on this node while it waited (the
 * hosting loop stopped a replica its group had removed: src/node/group-hosting.ts; a write was
 * then refused before it reached the log, so it is definitely not applied), on a node that knows
 * who hosts the group (`locate`): the request is handed there rather than answered 404
 * DRAM_ERR_UNKNOWN_GROUP for a key the cluster serves (seen in
 * test/integration/placement-return.test.ts under load). Over HTTP and the binary protocol.
 */
export function groupStoppedMeanwhile(
  error: unknown,
  locate: ((group: GroupId) => readonly NodeId[]) | undefined,
): boolean {
  return locate !== undefined && isApiError(error) && error.code === 'DRAM_ERR_UNKNOWN_GROUP';
}
