// Human-readable, deterministic one-line (or few-line) renderings of the Raft vocabulary: entries,
// messages, Ready, ConfState, Status, events and call outcomes, in the spirit of etcd-io/raft's
// util.go (DescribeMessage, DescribeEntry...). Used by the golden transcripts and for debugging.
// Pure: no I/O, no clock; the same value always prints the same text.
// Conventions: a log position prints as term/index (`1/11`), everywhere, snapshots included;
// entry data prints as a quoted string when it is printable UTF-8, else as hex (`0x00ff`).

import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  ProposeOrForwardResult,
  RaftEvent,
  ReadFailure,
  ReadResult,
  ReadState,
  Ready,
  Snapshot,
  SoftState,
  Status,
  TransferResult,
} from './types.ts';

const dataCharsMax = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `"text"` for printable UTF-8 (truncated past 64 characters), `0x…` hex otherwise. */
export function describeData(data: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(data);
  } catch {
    text = undefined;
  }
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point
  if (text !== undefined && !/[\u0000-\u001f\u007f-\u009f]/u.test(text)) {
    const chars = Array.from(text);
    if (chars.length <= dataCharsMax) return JSON.stringify(text);
    return `${JSON.stringify(chars.slice(0, dataCharsMax).join(''))}...(${data.length} bytes)`;
  }
  const shown = data.subarray(0, dataCharsMax / 2);
  let hex = '0x';
  for (const byte of shown) hex += byte.toString(16).padStart(2, '0');
  return shown.length < data.length ? `${hex}...(${data.length} bytes)` : hex;
}

/** `v2 l3 r4` (add voter, add learner, remove), `joint` when forced; `leave-joint` for the empty change. */
export function describeConfChange(change: ConfChange): string {
  if (change.changes.length === 0) return 'leave-joint';
  const items = change.changes.map((item) => {
    switch (item.type) {
      case 'add_voter':
        return `v${item.node}`;
      case 'add_learner':
        return `l${item.node}`;
      case 'remove_node':
        return `r${item.node}`;
    }
  });
  if (change.transition === 'joint') items.push('joint');
  return items.join(' ');
}

/** `1/11 "prop_1"`, or `1/12 conf(v4)` for a membership change. */
export function describeEntry(entry: Entry): string {
  const position = `${entry.term}/${entry.index}`;
  return entry.kind === 'normal'
    ? `${position} ${describeData(entry.data)}`
    : `${position} conf(${describeConfChange(entry.change)})`;
}

export function describeEntries(entries: readonly Entry[]): string {
  return `[${entries.map(describeEntry).join(', ')}]`;
}

function ids(list: readonly number[]): string {
  return `(${list.join(' ')})`;
}

/** etcd's notation: `voters=(1 2 3)&&(1 2) learners=(4) learners_next=(3) autoleave`. */
export function describeConfState(confState: ConfState): string {
  let text = `voters=${ids(confState.voters)}`;
  if (confState.votersOutgoing.length > 0) text += `&&${ids(confState.votersOutgoing)}`;
  if (confState.learners.length > 0) text += ` learners=${ids(confState.learners)}`;
  if (confState.learnersNext.length > 0) text += ` learners_next=${ids(confState.learnersNext)}`;
  if (confState.autoLeave) text += ' autoleave';
  return text;
}

export function describeHardState(hardState: HardState): string {
  return `term:${hardState.term} vote:${hardState.vote} commit:${hardState.commit}`;
}

export function describeSoftState(softState: SoftState): string {
  return `${softState.role} leader:${softState.leader}`;
}

export function describeSnapshot(snapshot: Snapshot): string {
  return `${snapshot.meta.term}/${snapshot.meta.index} ${describeConfState(snapshot.meta.confState)} bytes:${snapshot.data.length}`;
}

/** One line: `1->2 AppendEntries term:1 prev:1/10 commit:10 entries:[1/11 "prop_1"]`. */
export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type}`;
  switch (message.type) {
    case 'RequestVote': {
      const flags = `${message.preVote ? ' pre' : ''}${message.transfer ? ' transfer' : ''}`;
      return `${head}${flags} term:${message.term} last:${message.lastLogTerm}/${message.lastLogIndex}`;
    }
    case 'RequestVoteResponse':
      return `${head}${message.preVote ? ' pre' : ''} term:${message.term} ${message.granted ? 'granted' : 'rejected'}`;
    case 'AppendEntries': {
      const entries = message.entries.length > 0 ? ` entries:${describeEntries(message.entries)}` : '';
      return `${head} term:${message.term} prev:${message.prevLogTerm}/${message.prevLogIndex} commit:${message.commit}${entries}`;
    }
    case 'AppendEntriesResponse':
      if (message.success) return `${head} term:${message.term} index:${message.index}`;
      return `${head} term:${message.term} rejected index:${message.index} hint:${message.hintTerm}/${message.hintIndex}`;
    case 'Heartbeat':
      return `${head} term:${message.term} commit:${message.commit}${message.readRound > 0 ? ` round:${message.readRound}` : ''} tick:${message.sentTick}${message.quiesce ? ' quiesce' : ''}`;
    case 'HeartbeatResponse':
      return `${head} term:${message.term}${message.readRound > 0 ? ` round:${message.readRound}` : ''} tick:${message.sentTick}`;
    case 'InstallSnapshot':
      return `${head} term:${message.term} snap:${message.meta.term}/${message.meta.index} offset:${message.offset}/${message.totalBytes} bytes:${message.chunk.length}`;
    case 'InstallSnapshotResponse':
      return message.needSnapshot
        ? `${head} term:${message.term} need-snapshot-from:${message.snapshotIndex}`
        : `${head} term:${message.term} snap:${message.snapshotTerm}/${message.snapshotIndex} next:${message.nextOffset}`;
    case 'TimeoutNow':
      return `${head} term:${message.term}`;
    case 'ReadIndex':
      return `${head} term:${message.term} req:${message.requestId}`;
    case 'ReadIndexResponse':
      return `${head} term:${message.term} req:${message.requestId} index:${message.index}`;
    case 'Propose':
      return `${head} term:${message.term} payloads:[${message.payloads.map(describeData).join(', ')}]`;
  }
}

export function describeReadState(read: ReadState): string {
  return `req:${read.requestId} index:${read.index}`;
}

export function describeReadFailure(failure: ReadFailure): string {
  return `req:${failure.requestId} ${failure.reason}`;
}

export function describeEvent(event: RaftEvent): string {
  switch (event.kind) {
    case 'transfer_handed_off':
      return `transfer_handed_off target:${event.target} term:${event.term}`;
    case 'transfer_campaign':
      return `transfer_campaign candidate:${event.candidate} term:${event.term}`;
    case 'transfer_aborted':
      return `transfer_aborted target:${event.target} reason:${event.reason}`;
    case 'conf_applied':
      return `conf_applied index:${event.index} ${describeConfState(event.confState)}`;
    case 'snapshot_installed':
      return `snapshot_installed ${event.term}/${event.index}`;
    case 'snapshot_refused':
      return `snapshot_refused ${event.term}/${event.index}: ${event.reason}`;
  }
}

function section(lines: string[], title: string, items: readonly string[], indent: string): void {
  if (items.length === 0) return;
  lines.push(`${indent}${title}:`);
  for (const item of items) lines.push(`${indent}  ${item}`);
}

/**
 * Several lines, only the non-empty parts of the Ready:
 * ```
 * Ready mustSync:true
 * soft: leader leader:1
 * hard: term:1 vote:1 commit:0
 * entries:
 *   1/1 ""
 * messages:
 *   1->2 AppendEntries term:1 prev:0/0 commit:0 entries:[1/1 ""]
 * ```
 */
export function describeReady(ready: Ready, indent = ''): string {
  const lines = [`${indent}Ready mustSync:${ready.mustSync}`];
  if (ready.softState !== undefined) lines.push(`${indent}soft: ${describeSoftState(ready.softState)}`);
  if (ready.hardState !== undefined) lines.push(`${indent}hard: ${describeHardState(ready.hardState)}`);
  if (ready.snapshot !== undefined) lines.push(`${indent}snapshot: ${describeSnapshot(ready.snapshot)}`);
  section(lines, 'entries', ready.entries.map(describeEntry), indent);
  section(lines, 'committed', ready.committedEntries.map(describeEntry), indent);
  section(lines, 'messages', ready.messages.map(describeMessage), indent);
  section(lines, 'messagesAfterPersist', ready.messagesAfterPersist.map(describeMessage), indent);
  section(lines, 'readStates', ready.readStates.map(describeReadState), indent);
  section(lines, 'readFailures', ready.readFailures.map(describeReadFailure), indent);
  section(lines, 'events', ready.events.map(describeEvent), indent);
  if (ready.snapshotRequest !== undefined) lines.push(`${indent}snapshot request at:${ready.snapshotRequest}`);
  return lines.join('\n');
}

/**
 * ```
 * 1 leader term:1 vote:1 leader:1 commit:3 applied:3 log:1..3 lease:false transfer:0
 * conf: voters=(1 2 3)
 * progress:
 *   2: match:3 next:4 replicate active inflight:0
 * ```
 */
export function describeStatus(status: Status): string {
  const lines = [
    `${status.id} ${status.role} term:${status.term} vote:${status.vote} leader:${status.leader} commit:${status.commit} applied:${status.applied}` +
      ` log:${status.firstIndex}..${status.lastIndex} lease:${status.leaseValid} transfer:${status.transferTarget}${status.quiesced ? ' quiesced' : ''}`,
    `conf: ${describeConfState(status.confState)}`,
  ];
  section(
    lines,
    'progress',
    status.progress.map(
      (p) =>
        `${p.id}: match:${p.match} next:${p.next} ${p.state}${p.learner ? ' learner' : ''}` +
        `${p.recentActive ? ' active' : ''}${p.inflightMessages > 0 ? ` inflight:${p.inflightMessages}` : ''}`,
    ),
    '',
  );
  return lines.join('\n');
}

export function describeProposeResult(result: ProposeOrForwardResult): string {
  switch (result.kind) {
    case 'forwarded':
      return `forwarded leader:${result.leader} term:${result.term}`;
    case 'accepted':
      return `accepted ${result.term}/${result.index}`;
    case 'not_leader':
      return `not_leader hint:${result.leaderHint}`;
    case 'transferring':
      return `transferring target:${result.target}`;
    case 'entry_too_large':
    case 'uncommitted_full':
      return `${result.kind} bytes:${result.bytes} max:${result.bytesMax}`;
    case 'conf_change_pending':
      return `conf_change_pending index:${result.pendingIndex}`;
    case 'conf_change_invalid':
      return `conf_change_invalid: ${result.reason}`;
  }
}

export function describeReadResult(result: ReadResult): string {
  switch (result.kind) {
    case 'queued':
      return 'queued';
    case 'forwarded':
      return `forwarded leader:${result.leader}`;
    case 'not_leader':
      return `not_leader hint:${result.leaderHint}`;
    case 'read_queue_full':
      return `read_queue_full queued:${result.queued} max:${result.queuedMax}`;
  }
}

export function describeTransferResult(result: TransferResult): string {
  switch (result.kind) {
    case 'started':
      return `started target:${result.target}`;
    case 'already_leader':
      return 'already_leader';
    case 'not_leader':
      return `not_leader hint:${result.leaderHint}`;
    case 'invalid_target':
      return `invalid_target: ${result.reason}`;
    case 'in_progress':
      return `in_progress target:${result.target}`;
  }
}
