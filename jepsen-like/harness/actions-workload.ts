// The actions workload: clients schedule agent actions through every node (`POST /v1/actions`,
// followers forward to the meta leader) and read the cluster's action records (`GET /v1/actions`,
// the node's applied meta model), while the nemesis kills, partitions and pauses nodes; the final
// reads wait until the queue has drained. Checked by checker/actions.ts.
//
// Mix: `scheduleShare` of the ops schedule (8 in 10 a test.loop of target 1..3, then test.success
// and test.fail), the rest read. The executor runs one step per 200 ms, so a few actions a second
// is what it can do: the workload caps the rate at `actionsRateMax` whatever --rate says, and
// schedules at most `actionsScheduledMax` actions a run (the meta model keeps 1,000 finished
// records; more would prune the ones the checker needs).
//
// A schedule carries an id drawn from the worker's seeded stream (a UUID v4), and is retried with
// the same id while its outcome is unknown (a timeout, a lost connection, a 5xx: the node's own
// proposal retries may have scheduled it), as a Replicante Core would: 200 is ok; 409 after an
// attempt that may have scheduled it is ok too (the id is ours alone, so the action that has it is
// ours); a refusal before anything could be proposed (400, 413, 429, a refused connection) on every
// attempt is fail; otherwise info. The op's call is the first attempt's send, its return the
// answer that decided it, so "returned before another was sent" is what the checker orders by.

import {
  checkActions,
  testFailKind,
  testLoopKind,
  testSuccessKind,
  type ActionSeen,
  type ActionsSnapshot,
} from '../checker/actions.ts';
import { errorCodeOf, sleep, type KvClient } from './db.ts';
import type { Rng } from './rng.ts';
import type { Completion, PlannedOp, Workload } from './workloads.ts';

export const actionsKey = 'actions';
/** Ops per second over all workers at most: the executor runs a few actions a second. */
export const actionsRateMax = 4;
/** Actions scheduled per run at most (the meta model keeps 1,000 finished records). */
export const actionsScheduledMax = 800;
const scheduleShare = 0.4;
/** A schedule's own bound, retries included (a failover takes seconds). */
const scheduleTimeoutMs = 10_000;
const scheduleAttemptsMax = 20;
const retryGapMs = 250;
/** The final reads wait this long at most for the queue to drain. */
const drainTimeMs = 180_000;
const drainGapMs = 1000;

export function actionsWorkload(): Workload {
  let scheduled = 0;
  const acknowledged = new Set<string>();
  return {
    name: 'actions',
    rateMax: actionsRateMax,
    opTimeoutMs: scheduleTimeoutMs,
    nextOp(rng) {
      if (scheduled >= actionsScheduledMax || rng.next() >= scheduleShare)
        return { f: 'read', key: actionsKey, value: null };
      scheduled++;
      return { f: 'schedule', key: actionsKey, value: plannedAction(rng) };
    },
    async invoke(op, client, timeoutMs) {
      if (op.f === 'read') return readActions(client, timeoutMs);
      if (op.f !== 'schedule') throw new Error(`actions workload cannot invoke ${op.f}`);
      const completion = await scheduleAction(client, op, timeoutMs);
      if (completion.type === 'ok') acknowledged.add((op.value as { id: string }).id);
      return completion;
    },
    keys: () => [actionsKey],
    finalRead: {
      value: { final: true },
      timeMs: drainTimeMs,
      gapMs: drainGapMs,
      // Drained: nothing unfinished, and every acknowledged action among the finished.
      settled(value) {
        const snapshot = value as ActionsSnapshot;
        const finished = new Set(snapshot.finished.map((record) => record.id));
        return snapshot.queue.length === 0 && [...acknowledged].every((id) => finished.has(id));
      },
    },
    check(ops) {
      const result = checkActions(ops);
      return { workload: 'actions', verdict: result.verdict, result };
    },
  };
}

function plannedAction(rng: Rng): { id: string; kind: string; args: unknown } {
  const id = uuidOf(rng);
  const roll = rng.int(10);
  if (roll < 8) return { id, kind: testLoopKind, args: { target: 1 + rng.int(3) } };
  return { id, kind: roll === 8 ? testSuccessKind : testFailKind, args: null };
}

/** A version 4 UUID, lower case, from a seeded stream (the host simulator's clients use it too). */
export function uuidOf(rng: { int(maxExclusive: number): number }): string {
  const hex = Array.from({ length: 32 }, () => rng.int(16).toString(16));
  hex[12] = '4';
  hex[16] = (8 + rng.int(4)).toString(16);
  const text = hex.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}

function requestOf(client: KvClient): NonNullable<KvClient['request']> {
  if (client.request === undefined) throw new Error('the actions workload needs dram (a client with request())');
  return client.request.bind(client);
}

async function scheduleAction(client: KvClient, op: PlannedOp, timeoutMs: number): Promise<Completion> {
  const request = requestOf(client);
  const deadline = Date.now() + timeoutMs;
  const { id, kind, args } = op.value as { id: string; kind: string; args: unknown };
  // Whether an attempt so far may have scheduled it.
  let maybeScheduled = false;
  let lastError = 'no attempt';
  for (let attempt = 0; attempt < scheduleAttemptsMax; attempt++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const answer = await request('POST', '/v1/actions', { kind, args, id }, remaining);
    if (answer.kind === 'error') {
      lastError = answer.error;
      if (!answer.refused) maybeScheduled = true;
    } else {
      const code = errorCodeOf(answer.text);
      lastError = `${answer.status} ${code ?? answer.text.slice(0, 80)}`;
      if (answer.status === 200) return { type: 'ok', value: op.value };
      if (answer.status === 409 && code === 'DRAM_ERR_ACTION_EXISTS')
        return maybeScheduled
          ? { type: 'ok', value: op.value, error: `${lastError} on a retry: scheduled by an earlier attempt` }
          : { type: 'info', value: op.value, error: `${lastError} on the first attempt` };
      // Refused before anything was proposed: the request is wrong or the queue is full.
      const definite = answer.status === 400 || answer.status === 413 || answer.status === 429;
      if (!definite) maybeScheduled = true;
      else if (answer.status !== 429) break;
    }
    await sleep(Math.min(retryGapMs, deadline - Date.now()));
  }
  return { type: maybeScheduled ? 'info' : 'fail', value: op.value, error: lastError };
}

interface ExecutionJson {
  id: string;
  kind: string;
  args: unknown;
  scheduled_time: string;
  finished_time: string | null;
  state: { phase: ActionSeen['phase']; payload: unknown; error: { error_msg?: unknown } | null };
}

/** The node's records in the checker's compact form; a body that does not parse is kept as garbage. */
async function readActions(client: KvClient, timeoutMs: number): Promise<Completion> {
  const answer = await requestOf(client)('GET', '/v1/actions', undefined, timeoutMs);
  // As every workload's reads: a timeout is info, any other trouble fail (a read changes nothing).
  if (answer.kind === 'error') return { type: answer.timeout ? 'info' : 'fail', value: null, error: answer.error };
  if (answer.status !== 200)
    return { type: 'fail', value: null, error: `${answer.status} ${errorCodeOf(answer.text) ?? 'no code'}` };
  try {
    const body = JSON.parse(answer.text) as { queue: ExecutionJson[]; finished: ExecutionJson[] };
    return { type: 'ok', value: { queue: body.queue.map(seen), finished: body.finished.map(seen) } };
  } catch (error) {
    return { type: 'ok', value: { garbage: answer.text.slice(0, 200), error: String(error) } };
  }
}

function seen(record: ExecutionJson): ActionSeen {
  const message = record.state.error?.error_msg;
  return {
    id: record.id,
    kind: record.kind,
    args: record.args,
    phase: record.state.phase,
    payload: record.state.payload,
    error:
      typeof message === 'string' ? message : record.state.error === null ? null : JSON.stringify(record.state.error),
    scheduledMs: Date.parse(record.scheduled_time),
    finishedMs: record.finished_time === null ? null : Date.parse(record.finished_time),
  };
}
