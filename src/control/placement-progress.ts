// When each placement move last made progress (pure): the controller keeps one entry per move
// across its rounds and gives the planner `progressMs`, so a move that stopped moving is cancelled
// after `moveStalledMs` (placement-planner.ts) instead of staying open for ever.
//
// Progress is a change in what the move waits on, as the group's leader reports it: the leader,
// the configuration (its index, voters and learners), and, while the node added is a learner
// not caught up yet, its match index and the snapshot bytes it acknowledged. A caught-up learner's
// match index follows every write, so it does not count: a move waiting on something else (a
// quorum, a leadership transfer) with a caught-up learner is not making progress. A group no
// leader reported has a signature of its own, so the first report after it is progress too.
// Entries start afresh with a new meta leader (the controller's map is its own), as the grace
// periods do.
//
// Called by: src/control/placement-controller.ts; test/control/.

import type { GroupId } from '../base/ids.ts';
import type { PlacementMove } from './placement-planner.ts';
import type { GroupReport } from './placement-view.ts';

export interface MoveProgress {
  /** The move it belongs to (a new move of the group starts a new entry). */
  readonly moveKey: string;
  readonly signature: string;
  readonly sinceMs: number;
}

function moveKeyOf(move: PlacementMove): string {
  return `${move.startedMs}:${move.add ?? 0}:${move.remove ?? 0}`;
}

function signatureOf(move: PlacementMove, report: GroupReport | undefined, caughtUp: boolean): string {
  if (report === undefined) return 'no leader';
  const conf = `${report.leader}@${report.confIndex} v${report.voters.join(',')} l${report.learners.join(',')}`;
  const added = move.add === undefined || caughtUp ? undefined : report.progress.find((p) => p.id === move.add);
  if (added === undefined) return conf;
  return `${conf} m${added.match} s${added.snapshot?.ackedBytes ?? 0}`;
}

/**
 * The entries after this round (one per move in `moves`), and the moves with their `progressMs`.
 * `caughtUp(group)` lists the group's learners that are caught up (the view's).
 */
export function trackMoveProgress(
  previous: ReadonlyMap<GroupId, MoveProgress>,
  moves: readonly PlacementMove[],
  leaders: ReadonlyMap<GroupId, GroupReport>,
  caughtUp: (group: GroupId) => readonly number[],
  nowMs: number,
): { readonly entries: Map<GroupId, MoveProgress>; readonly moves: PlacementMove[] } {
  const entries = new Map<GroupId, MoveProgress>();
  const tracked = moves.map((move): PlacementMove => {
    const moveKey = moveKeyOf(move);
    const added = move.add;
    const signature = signatureOf(
      move,
      leaders.get(move.group),
      added !== undefined && caughtUp(move.group).includes(added),
    );
    const known = previous.get(move.group);
    const same = known !== undefined && known.moveKey === moveKey && known.signature === signature;
    const entry = same ? known : { moveKey, signature, sinceMs: Math.max(nowMs, move.startedMs) };
    entries.set(move.group, entry);
    return { ...move, progressMs: Math.max(entry.sinceMs, move.startedMs) };
  });
  return { entries, moves: tracked };
}
