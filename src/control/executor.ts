// The action executor's planner: pure, from a view of the meta model's queue and the time to the
// next step. The controller (controller.ts) runs on the meta leader, asks for one step at a time,
// carries it out and proposes the resulting state change through group 0's log.
//
// Rules (docs/ARCHITECTURE.md, key decision 8):
//  - one action at a time, cluster-wide: while an action is RUNNING, no other starts;
//  - a RUNNING action is resumed before any NEW one (a new leader finds it in the log and carries
//    on: each step of an action checks the cluster's state before acting, so resuming is safe);
//  - otherwise the oldest NEW action (log order) starts;
//  - a RUNNING action older than its timeout (from when it started) is FAILED with the reason;
//  - a kind this version does not know, or args it refuses, FAIL at start rather than run.
// Every step names the record version it was planned against; the model refuses it when the
// record changed meanwhile (a cancel, another leader's step), so nothing is applied twice.
//
// Called by: src/control/controller.ts; test/control/ (golden transcripts).

import type { ActionRecord, ActionState } from '../codec/meta.ts';
import { argsProblem, isActionKind } from './action-kinds.ts';

export interface ExecutorView {
  /** Unfinished actions in schedule order (MetaModel.queue()). */
  readonly queue: readonly ActionRecord[];
  /** Wall-clock milliseconds on the leader, for timeouts. */
  readonly nowMs: number;
}

export type ExecutorStep =
  | { readonly kind: 'idle' }
  /** Propose NEW -> RUNNING. */
  | { readonly kind: 'start'; readonly action: ActionRecord }
  /** Run one step of the RUNNING action's handler, then propose what it returns. */
  | { readonly kind: 'run'; readonly action: ActionRecord }
  /** Propose FAILED with this error. */
  | { readonly kind: 'fail'; readonly action: ActionRecord; readonly state: ActionState };

export function planNextStep(view: ExecutorView): ExecutorStep {
  const running = view.queue.find((action) => action.state.phase === 'RUNNING');
  if (running !== undefined) {
    const startedMs = running.startedMs ?? running.scheduledMs;
    if (view.nowMs - startedMs >= running.timeoutMs) {
      return failed(running, `timed out: still running ${running.timeoutMs} ms after it started`);
    }
    return { kind: 'run', action: running };
  }
  const next = view.queue.find((action) => action.state.phase === 'NEW');
  if (next === undefined) return { kind: 'idle' };
  if (!isActionKind(next.kind)) return failed(next, `unknown action kind ${next.kind}`);
  const problem = argsProblem(next.kind, next.args);
  if (problem !== undefined) return failed(next, `invalid args: ${problem}`);
  return { kind: 'start', action: next };
}

function failed(action: ActionRecord, message: string): ExecutorStep {
  return {
    kind: 'fail',
    action,
    state: { phase: 'FAILED', payload: action.state.payload, error: { error_msg: message } },
  };
}
