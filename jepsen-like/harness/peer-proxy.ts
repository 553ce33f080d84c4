// A userspace proxy on every directed peer link, for the packet faults netem would give if this
// kernel had it: delay with jitter, loss, duplication, reordering, and a one-way blackhole.
//
// dram's peer connections are one-way (src/transport/peer-transport.ts): node A sends its messages
// for B only on the connection A dialed to B, as u32-big-endian-length-prefixed frames, after a
// three-hello handshake in which A's only upstream frame is its hello. So the proxy for link A->B
// listens on A's own address (proxyPort(B)), and for each connection dials B's Raft port from A's
// address (so iptables partitions still cut the proxied link). Downstream bytes (B's hellos) pass
// untouched. Upstream it cuts the stream into frames and passes the first (the hello) untouched;
// every later frame is one batch of Raft messages, and the link's current faults decide whether it
// is dropped, delayed, duplicated or allowed to overtake the frames before it. Faulting whole frames
// keeps the stream well-formed: Raft sees lost, late, repeated and reordered messages, never
// garbage.
//
// Invariants: with no fault a frame is written as soon as it is complete and in order; a
// connection's pending bytes are bounded (pendingBytesMax; past it the connection is reset, as a
// congested link would be); close() destroys every socket and server.

import net from 'node:net';
import type { Rng } from './rng.ts';

export interface LinkFaults {
  delayMs: number;
  jitterMs: number;
  /** Probabilities in [0, 1], per frame. */
  loss: number;
  duplicate: number;
  reorder: number;
  /** Drop every frame after the hello: A's messages never reach B, B's still reach A. */
  blackhole: boolean;
}

export const NO_FAULTS: Readonly<LinkFaults> = {
  delayMs: 0,
  jitterMs: 0,
  loss: 0,
  duplicate: 0,
  reorder: 0,
  blackhole: false,
};

const frameHeaderBytes = 4;
const pendingBytesMax = 64 << 20;
const frameBytesMax = 256 << 20;

export interface ProxyOptions {
  readonly nodes: readonly number[];
  readonly address: (node: number) => string;
  readonly raftPort: number;
  readonly proxyPort: (to: number) => number;
  readonly rng: Rng;
}

interface Link {
  readonly from: number;
  readonly to: number;
  faults: LinkFaults;
  readonly server: net.Server;
  readonly sockets: Set<net.Socket>;
  readonly rng: Rng;
  framesPassed: number;
  framesDropped: number;
}

export class PeerProxy {
  private readonly options: ProxyOptions;
  private readonly links = new Map<string, Link>();

  constructor(options: ProxyOptions) {
    this.options = options;
  }

  /** Where node `from` dials node `to`. */
  listenAddress(from: number, to: number): string {
    return `${this.options.address(from)}:${this.options.proxyPort(to)}`;
  }

  async start(): Promise<void> {
    for (const from of this.options.nodes) {
      for (const to of this.options.nodes) {
        if (from === to) continue;
        const link: Link = {
          from,
          to,
          faults: { ...NO_FAULTS },
          server: net.createServer(),
          sockets: new Set(),
          rng: this.options.rng.fork(`link-${from}-${to}`),
          framesPassed: 0,
          framesDropped: 0,
        };
        link.server.on('connection', (socket) => {
          this.accept(link, socket);
        });
        await new Promise<void>((resolve, reject) => {
          link.server.once('error', reject);
          link.server.listen(this.options.proxyPort(to), this.options.address(from), () => {
            link.server.off('error', reject);
            resolve();
          });
        });
        this.links.set(`${from}-${to}`, link);
      }
    }
  }

  /** Sets the faults of the links for which `select` is true, and clears every other link. */
  setFaults(select: (from: number, to: number) => boolean, faults: LinkFaults): void {
    for (const link of this.links.values()) link.faults = select(link.from, link.to) ? { ...faults } : { ...NO_FAULTS };
  }

  heal(): void {
    for (const link of this.links.values()) link.faults = { ...NO_FAULTS };
  }

  stats(): { framesPassed: number; framesDropped: number } {
    let framesPassed = 0;
    let framesDropped = 0;
    for (const link of this.links.values()) {
      framesPassed += link.framesPassed;
      framesDropped += link.framesDropped;
    }
    return { framesPassed, framesDropped };
  }

  private accept(link: Link, downstream: net.Socket): void {
    const upstream = net.connect({
      host: this.options.address(link.to),
      port: this.options.raftPort,
      localAddress: this.options.address(link.from),
    });
    link.sockets.add(downstream);
    link.sockets.add(upstream);
    const pending = new DelayLine((frame) => {
      if (!upstream.destroyed) upstream.write(frame);
    });
    let closed = false;
    const closeBoth = (): void => {
      if (closed) return;
      closed = true;
      pending.clear();
      downstream.destroy();
      upstream.destroy();
      link.sockets.delete(downstream);
      link.sockets.delete(upstream);
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', closeBoth);
      socket.on('close', closeBoth);
    }
    upstream.on('data', (chunk: Buffer) => {
      if (!closed) downstream.write(chunk);
    });
    let buffered: Buffer = Buffer.alloc(0);
    let framesSeen = 0;
    downstream.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= frameHeaderBytes) {
        const length = buffered.readUInt32BE(0);
        if (length === 0 || length > frameBytesMax) {
          closeBoth();
          return;
        }
        if (buffered.length < frameHeaderBytes + length) break;
        const frame = buffered.subarray(0, frameHeaderBytes + length);
        buffered = buffered.subarray(frameHeaderBytes + length);
        framesSeen++;
        if (framesSeen === 1) upstream.write(frame);
        else this.forward(link, upstream, Buffer.from(frame), pending, closeBoth);
      }
    });
  }

  private forward(link: Link, upstream: net.Socket, frame: Buffer, pending: DelayLine, reset: () => void): void {
    const faults = link.faults;
    const rng = link.rng;
    if (faults.blackhole || (faults.loss > 0 && rng.next() < faults.loss)) {
      link.framesDropped++;
      return;
    }
    link.framesPassed++;
    const copies = faults.duplicate > 0 && rng.next() < faults.duplicate ? 2 : 1;
    const noDelay = faults.delayMs === 0 && faults.jitterMs === 0 && faults.reorder === 0;
    if (noDelay && pending.empty()) {
      for (let i = 0; i < copies; i++) upstream.write(frame);
      return;
    }
    const now = Date.now();
    let deliverAt = now + faults.delayMs + (faults.jitterMs > 0 ? rng.between(-faults.jitterMs, faults.jitterMs) : 0);
    // In order unless this frame is picked to be overtaken: then it waits a while longer and later frames pass it.
    if (faults.reorder > 0 && rng.next() < faults.reorder)
      deliverAt += Math.max(5, faults.delayMs) + rng.between(0, 20);
    else deliverAt = Math.max(deliverAt, pending.lastDeliverAt);
    pending.lastDeliverAt = Math.max(pending.lastDeliverAt, deliverAt);
    if (pending.bytes + frame.length * copies > pendingBytesMax) {
      reset();
      return;
    }
    for (let i = 0; i < copies; i++) pending.add(deliverAt + i * 2, frame);
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.links.values()].map(
        (link) =>
          new Promise<void>((resolve) => {
            for (const socket of link.sockets) socket.destroy();
            link.server.close(() => {
              resolve();
            });
          }),
      ),
    );
    this.links.clear();
  }
}

/**
 * One connection's delayed frames, delivered in order of delivery time (equal times keep arrival
 * order) by one timer armed for the earliest. A timer per frame reordered frames with equal times:
 * each timer's expiry counts from the event loop's cached clock, which lags Date.now() by however
 * long the loop has been busy, and by a different amount for frames forwarded in different turns.
 */
class DelayLine {
  bytes = 0;
  /** The latest delivery time handed out, so in-order frames never overtake one another. */
  lastDeliverAt = 0;
  private readonly queue: { readonly at: number; readonly frame: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly deliver: (frame: Buffer) => void;

  constructor(deliver: (frame: Buffer) => void) {
    this.deliver = deliver;
  }

  empty(): boolean {
    return this.queue.length === 0;
  }

  add(at: number, frame: Buffer): void {
    let position = this.queue.length;
    while (position > 0 && (this.queue[position - 1]?.at ?? 0) > at) position--;
    this.queue.splice(position, 0, { at, frame });
    this.bytes += frame.length;
    this.arm();
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.bytes = 0;
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const head = this.queue[0];
    this.timer =
      head === undefined
        ? undefined
        : setTimeout(
            () => {
              this.deliverDue();
            },
            Math.max(0, head.at - Date.now()),
          );
  }

  private deliverDue(): void {
    const now = Date.now();
    for (let head = this.queue[0]; head !== undefined && head.at <= now; head = this.queue[0]) {
      this.queue.shift();
      this.bytes -= head.frame.length;
      this.deliver(head.frame);
    }
    this.arm();
  }
}
