// A simulated peer network for the host simulator, shaped like the real transport
// (src/transport/peer-transport.ts): per ordered pair of nodes one connection, which delivers
// frames in order (TCP), and a bounded send queue holding the frames sent while it is down.
//
// Owns, per link (from -> to): whether a connection is up, its epoch (bumped when it breaks: the
// frames on the wire are lost), when its last frame arrives (so delivery stays FIFO), and the
// send queue. What the real transport can do, this does; what it cannot, this does not:
//  - no reordering or duplication within a connection, no loss of single frames;
//  - a connection breaks (a partition, a reset, the receiver's death): frames on the wire are
//    lost, the sender is told (MultiRaftHost.peerLost), later frames queue (the oldest are dropped
//    past sendQueueFramesMax) and go out, in order, once it reconnects. Frames queued before the
//    receiver restarted are delivered to its next life;
//  - the sender's death loses its queue, but frames already on the wire still arrive (the kernel
//    sends what was written);
//  - a paused receiver gets its frames on resume (they wait in its socket buffer).
// Partitions are per direction (a one-way partition cuts one), as the transport's source-address
// partitions are.

import type { NodeId } from '../../src/base/ids.ts';
import type { Rng } from '../../src/base/rng.ts';
import type { GroupMessage, HostTransport } from '../../src/multiraft/ports.ts';
import type { EventQueue, SimProcess } from './sim-time.ts';

export interface NetworkShape {
  /** One-way latency: uniform in [min, min + spread) ms. */
  readonly latencyMsMin: number;
  readonly latencyMsSpread: number;
  /** Probability that sending a frame finds its connection reset (frames on the wire lost). */
  readonly resetProbability: number;
  /** Reconnect delay: uniform in [min, 2·min) ms. */
  readonly reconnectMsMin: number;
  readonly sendQueueFramesMax: number;
}

/** What the network needs of the simulated nodes. */
export interface NetworkEndpoints {
  /** The node's live process (undefined while it is down). */
  process(node: NodeId): SimProcess | undefined;
  deliver(to: NodeId, batch: readonly GroupMessage[], from: NodeId): void;
  peerLost(node: NodeId, peer: NodeId): void;
}

interface Link {
  up: boolean;
  epoch: number;
  lastArrivalMs: number;
  reconnecting: boolean;
  readonly queue: (readonly GroupMessage[])[];
}

export class SimNetwork {
  private readonly links = new Map<string, Link>();
  private readonly cut = new Set<string>();
  readonly stats = { frames: 0, delivered: 0, lostOnWire: 0, queueDropped: 0, resets: 0 };
  private readonly queue: EventQueue;
  private readonly rng: Rng;
  private readonly shape: NetworkShape;
  private readonly endpoints: NetworkEndpoints;

  constructor(queue: EventQueue, rng: Rng, shape: NetworkShape, endpoints: NetworkEndpoints) {
    this.queue = queue;
    this.rng = rng;
    this.shape = shape;
    this.endpoints = endpoints;
  }

  transport(from: NodeId): HostTransport {
    return {
      send: (peer, batch) => {
        this.send(from, peer, batch);
      },
    };
  }

  /** Cuts (or heals) the direction from -> to. */
  setCut(from: NodeId, to: NodeId, cut: boolean): void {
    if (cut) this.cut.add(`${from}>${to}`);
    else this.cut.delete(`${from}>${to}`);
    this.refresh(from, to);
  }

  healAll(): void {
    const pairs = [...this.cut].map((key) => key.split('>').map(Number) as [NodeId, NodeId]);
    this.cut.clear();
    for (const [from, to] of pairs) this.refresh(from, to);
  }

  /** Neither direction between the two nodes is cut. */
  linked(a: NodeId, b: NodeId): boolean {
    return !this.cut.has(`${a}>${b}`) && !this.cut.has(`${b}>${a}`);
  }

  cutPairs(): number {
    return this.cut.size;
  }

  /** A node died: its send queues are gone, connections to it break. */
  nodeDown(node: NodeId, nodes: readonly NodeId[]): void {
    for (const peer of nodes) {
      if (peer === node) continue;
      const outgoing = this.link(node, peer);
      outgoing.queue.length = 0;
      outgoing.up = false;
      this.refresh(peer, node);
    }
  }

  /** A node (re)started: links from and to it connect again. */
  nodeUp(node: NodeId, nodes: readonly NodeId[]): void {
    for (const peer of nodes) {
      if (peer === node) continue;
      this.refresh(node, peer);
      this.refresh(peer, node);
    }
  }

  private link(from: NodeId, to: NodeId): Link {
    const key = `${from}>${to}`;
    let link = this.links.get(key);
    if (link === undefined)
      this.links.set(key, (link = { up: false, epoch: 0, lastArrivalMs: 0, reconnecting: false, queue: [] }));
    return link;
  }

  private connectable(from: NodeId, to: NodeId): boolean {
    return (
      !this.cut.has(`${from}>${to}`) &&
      this.endpoints.process(from) !== undefined &&
      this.endpoints.process(to) !== undefined
    );
  }

  /** Breaks a link whose connection can no longer work, and reconnects one that can. */
  private refresh(from: NodeId, to: NodeId): void {
    const link = this.link(from, to);
    if (!this.connectable(from, to)) {
      if (link.up) this.breakLink(from, to, link);
      return;
    }
    if (!link.up) this.scheduleReconnect(from, to, link);
  }

  private breakLink(from: NodeId, to: NodeId, link: Link): void {
    link.up = false;
    link.epoch++;
    if (this.endpoints.process(from) !== undefined) this.endpoints.peerLost(from, to);
  }

  private scheduleReconnect(from: NodeId, to: NodeId, link: Link): void {
    if (link.reconnecting) return;
    link.reconnecting = true;
    const delayMs = this.shape.reconnectMsMin * (1 + this.rng.next());
    this.queue.schedule(this.queue.now + delayMs, () => {
      link.reconnecting = false;
      if (link.up) return;
      if (!this.connectable(from, to)) return;
      link.up = true;
      const queued = link.queue.splice(0, link.queue.length);
      for (const batch of queued) this.transmit(from, to, link, batch);
    });
  }

  private send(from: NodeId, to: NodeId, batch: readonly GroupMessage[]): void {
    this.stats.frames++;
    const link = this.link(from, to);
    if (link.up && this.rng.chance(this.shape.resetProbability)) {
      this.stats.resets++;
      this.breakLink(from, to, link);
      this.scheduleReconnect(from, to, link);
    }
    if (!link.up) {
      link.queue.push(batch);
      if (link.queue.length > this.shape.sendQueueFramesMax) {
        link.queue.shift();
        this.stats.queueDropped++;
      }
      this.refresh(from, to);
      return;
    }
    this.transmit(from, to, link, batch);
  }

  private transmit(from: NodeId, to: NodeId, link: Link, batch: readonly GroupMessage[]): void {
    const receiver = this.endpoints.process(to);
    if (receiver === undefined) return;
    const epoch = link.epoch;
    const arrivalMs = Math.max(
      this.queue.now + this.shape.latencyMsMin + this.rng.next() * this.shape.latencyMsSpread,
      link.lastArrivalMs,
    );
    link.lastArrivalMs = arrivalMs;
    receiver.schedule(
      arrivalMs,
      () => {
        if (link.epoch !== epoch) {
          this.stats.lostOnWire++;
          return;
        }
        this.stats.delivered++;
        this.endpoints.deliver(to, batch, from);
      },
      `peer${from}`,
    );
  }
}
