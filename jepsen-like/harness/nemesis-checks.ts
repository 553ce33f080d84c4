// The `nemesis` checker: did the faults that must leave a trace really happen, and did the cluster
// end where they say it must? A snapshot or membership fault is easy to run as a no-op (the
// follower was never behind the compaction, the node was never added), and a run that passes
// because nothing happened proves nothing. So those nemeses record, in the nemesis log, a `check`
// entry per fault with a verdict: valid when the effect was seen (the follower's log started past
// where it ended, the node was added), unknown when it could not be brought about (no verdict on
// dram either way), invalid when dram failed to recover from it (the follower never caught up, the
// crashed node never came back, the groups never got back to their replication factor). This file
// turns those entries into one verdict; a fault of these kinds with no check entry at all is
// unknown, and so is a membership run without its final replication-factor check.
//
// Pure, over schedule.json and nemesis.jsonl, so --recheck reaches the same verdict.
// Called by: results.ts (checkRun); tested in harness.test.ts.

import { overallVerdict, type Verdict } from '../checker/linearizability.ts';
import type { NemesisEntry } from './history-recorder.ts';
import type { Schedule } from './schedule.ts';

/** The kind of the final check a membership run records (no fault index). */
export const finalPlacementCheck = 'placement-final';

export interface NemesisVerdict {
  readonly verdict: Verdict;
  readonly summary: string;
  readonly details: { readonly checks: readonly string[]; readonly missing: readonly string[] };
}

/** The verdict over the checked nemeses' entries, or undefined when the schedule has none of them. */
export function checkNemesisEffects(schedule: Schedule, entries: readonly NemesisEntry[]): NemesisVerdict | undefined {
  const checked = schedule.faults.filter((fault) => fault.spec.kind === 'snapshot' || fault.spec.kind === 'membership');
  if (checked.length === 0) return undefined;
  // A fault ran when it started, or checked without starting (it found nothing to act on).
  const started = new Set(
    entries.filter((entry) => entry.type === 'start' || entry.type === 'check').map((entry) => entry.fault),
  );
  const checks = entries.filter((entry) => entry.type === 'check');
  const verdicts: Verdict[] = checks.map((entry) => entry.verdict ?? 'unknown');
  const missing: string[] = [];
  for (const fault of checked) {
    if (!started.has(fault.index)) continue; // never reached (the run was cut short): nothing to show
    if (!checks.some((entry) => entry.fault === fault.index)) {
      missing.push(`fault ${fault.index} (${fault.spec.kind}): started, but no check recorded what it did`);
      verdicts.push('unknown');
    }
  }
  const membershipRan = checked.some((fault) => fault.spec.kind === 'membership' && started.has(fault.index));
  if (membershipRan && !checks.some((entry) => entry.kind === finalPlacementCheck)) {
    missing.push('membership faults ran, but the final replication-factor check did not');
    verdicts.push('unknown');
  }
  const verdict = overallVerdict(verdicts.map((v) => ({ verdict: v })));
  const count = (v: Verdict): number => verdicts.filter((one) => one === v).length;
  return {
    verdict,
    summary: `${checks.length} checks of ${checked.filter((fault) => started.has(fault.index)).length} snapshot/membership faults run: ${count('valid')} effects seen, ${count('unknown')} not brought about or unrecorded, ${count('invalid')} failures to recover`,
    details: {
      checks: checks.map(
        (entry) =>
          `${entry.fault === undefined ? '' : `fault ${entry.fault} `}${entry.kind}: ${entry.verdict ?? 'unknown'} - ${entry.detail}`,
      ),
      missing,
    },
  };
}
