// Quiescence of one group (raft.ts drives it; nothing else does). A leader whose group has been
// idle for quiesceAfterTicks ticks sends one last heartbeat marked "quiet", and from then on the
// group's ticks are ignored on every member until an input wakes it: an idle group then costs no
// heartbeats. Every input but a tick wakes a group, except the answers to going quiet and the
// leader's word to go quiet (keepsQuiet).
//
// Invariant: idleTicks counts consecutive idle leader ticks and is 0 whenever the group is awake
// and not idle; a quiet group has no ticks counted at all.

import type { LogIndex, NodeId, Term } from '../base/ids.ts';
import type { Progress } from './progress.ts';
import type { Message, Role } from './types.ts';

export class Quiescence {
  /** Ticks are ignored until an input wakes the group. */
  quiet = false;
  /** Leader: consecutive ticks the group has been idle. */
  private idleTicks = 0;

  /**
   * A leader's tick; returns true when this tick's heartbeat is the one that says "quiet" (the
   * heartbeats of the idle ticks before it carried the final commit index), and goes quiet.
   */
  leaderTick(idle: boolean, quiesceAfterTicks: number, heartbeatDue: boolean): boolean {
    this.idleTicks = quiesceAfterTicks > 0 && idle ? this.idleTicks + 1 : 0;
    if (!heartbeatDue || this.idleTicks === 0 || this.idleTicks < quiesceAfterTicks) return false;
    this.quiet = true;
    return true;
  }

  /** Ends quiet; returns whether the group was quiet (an awake group keeps its idle count). */
  wake(): boolean {
    if (!this.quiet) return false;
    this.reset();
    return true;
  }

  /** A new term or role: awake, nothing counted. */
  reset(): void {
    this.quiet = false;
    this.idleTicks = 0;
  }
}

/** What a leader knows of its group, for groupIdle. */
export interface IdleView {
  readonly committed: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  readonly appendPending: boolean;
  /** Reads queued here or forwarded, a transfer or a configuration change under way. */
  readonly busy: boolean;
  readonly progress: Iterable<Progress>;
}

/**
 * Leader: nothing to do but heartbeat. Everything is committed, applied, and acknowledged by
 * every member; no read, transfer or configuration change is under way.
 */
export function groupIdle(view: IdleView): boolean {
  const { lastIndex } = view;
  if (view.committed !== lastIndex || view.applied !== lastIndex || view.appendPending || view.busy) return false;
  for (const progress of view.progress) {
    if (
      progress.match !== lastIndex ||
      progress.inflights.count > 0 ||
      progress.state === 'snapshot' ||
      progress.snapshotNeededFrom > 0
    )
      return false;
  }
  return true;
}

/** The answers to going quiet, and the leader's word to go quiet, do not wake anyone. */
export function keepsQuiet(message: Message, term: Term, role: Role, leader: NodeId): boolean {
  if (message.term !== term) return false;
  if (role === 'leader') return message.type === 'HeartbeatResponse';
  return message.type === 'Heartbeat' && message.quiesce && message.from === leader;
}
