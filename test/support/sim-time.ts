// Virtual time for the host simulator (test/sim/host-simulator.ts): one event queue for the whole
// simulated cluster, the processes that own events, and each process's HostClock.
//
// Owns: the global virtual time (`now`, ms of "real" time) and every pending event, ordered by
// (time, sequence number), so the order of events is a function of the seed alone.
// Invariants: time never goes back; an event of a dead process never runs; an event of a paused
// process is pushed back to the moment it resumes, keeping its order relative to the process's
// other pushed-back events (a stopped process runs nothing, and on resume handles what came due in
// the order it came due; I/O of different channels, a peer's frames or a client's requests, may
// be handled in any order across channels, as epoll reports ready sockets, but in order within one).
// A process's clock may drift: it reads `offsetMs + now * rate` (monotonic; the rate stays within
// the scenario's drift bound) and its timers fire after `delayMs / rate` of real time. A paused
// process's clock keeps counting (the OS's monotonic clock does), but none of its timers fire
// while paused, and a repeating timer that missed intervals fires once on resume and then every
// interval from there, as Node's setInterval does (missed intervals are not caught up).

import type { NodeId } from '../../src/base/ids.ts';
import type { HostClock, TimerHandle } from '../../src/multiraft/ports.ts';

export interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
  /** The process the event runs in (none: the simulator's own, e.g. faults and client deadlines). */
  readonly process: SimProcess | undefined;
  /** The I/O source of the event (a peer's connection, a client's, the disk); none for timers. */
  readonly channel: string | undefined;
  cancelled: boolean;
}

/** A binary heap of events by (at, seq). */
export class EventQueue {
  now = 0;
  private readonly heap: SimEvent[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  schedule(at: number, run: () => void, process?: SimProcess, channel?: string): SimEvent {
    const event: SimEvent = { at: Math.max(at, this.now), seq: this.seq++, run, process, channel, cancelled: false };
    const heap = this.heap;
    heap.push(event);
    let k = heap.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      const above = heap[parent] as SimEvent;
      if (!before(event, above)) break;
      heap[k] = above;
      k = parent;
    }
    heap[k] = event;
    return event;
  }

  /** The next event, with `now` moved to its time; undefined when none is left. */
  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop() as SimEvent;
    if (heap.length > 0) {
      let k = 0;
      for (;;) {
        const left = 2 * k + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && before(heap[right] as SimEvent, heap[left] as SimEvent) ? right : left;
        if (!before(heap[child] as SimEvent, last)) break;
        heap[k] = heap[child] as SimEvent;
        k = child;
      }
      heap[k] = last;
    }
    this.now = top.at;
    return top;
  }

  peekTime(): number | undefined {
    return this.heap[0]?.at;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One life of one node's process: from a start to a kill (or a storage failure). */
export class SimProcess {
  alive = true;
  /** While now < pausedUntil the process runs nothing (SIGSTOP). */
  pausedUntil = 0;
  /**
   * Per I/O channel, the offset at which its events that came due in the pause run on resume:
   * timers first (Node's timers phase), then the channels in a seeded order, each in order.
   */
  readonly resumeOffsetMs = new Map<string, number>();
  readonly node: NodeId;
  readonly incarnation: number;
  private readonly queue: EventQueue;

  constructor(queue: EventQueue, node: NodeId, incarnation: number) {
    this.queue = queue;
    this.node = node;
    this.incarnation = incarnation;
  }

  schedule(at: number, run: () => void, channel?: string): SimEvent {
    return this.queue.schedule(at, run, this, channel);
  }

  /** Stops the process for `durationMs` (nothing of it runs; see SimClock for its clock). */
  pause(durationMs: number): void {
    this.pausedUntil = this.now + durationMs;
    this.resumeOffsetMs.clear();
  }

  get now(): number {
    return this.queue.now;
  }
}

interface RepeatingHandle {
  cancelled: boolean;
}

/** A process's HostClock on virtual time (see the header for drift and pauses). */
export class SimClock implements HostClock {
  private readonly process: SimProcess;
  private readonly rate: number;
  private readonly offsetMs: number;

  constructor(process: SimProcess, rate: number, offsetMs: number) {
    this.process = process;
    this.rate = rate;
    this.offsetMs = offsetMs;
  }

  nowMs(): number {
    return this.offsetMs + this.process.now * this.rate;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    return this.process.schedule(this.process.now + Math.max(delayMs, 0) / this.rate, callback);
  }

  setRepeating(callback: () => void, intervalMs: number): TimerHandle {
    const handle: RepeatingHandle = { cancelled: false };
    const fire = (): void => {
      if (handle.cancelled) return;
      this.process.schedule(this.process.now + intervalMs / this.rate, fire);
      callback();
    };
    this.process.schedule(this.process.now + intervalMs / this.rate, fire);
    return handle;
  }

  clearTimer(handle: TimerHandle): void {
    (handle as RepeatingHandle).cancelled = true;
  }

  defer(callback: () => void): void {
    this.process.schedule(this.process.now, callback);
  }
}

/**
 * Lets every promise continuation (microtask) that is due run to completion, chains included:
 * Node empties the microtask queue before it runs the next macrotask, and the simulation has no
 * other macrotask pending (no real I/O, no real timers), so after this resolves the process
 * states depend only on the events run so far. Called by the driver between events.
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
