// Tests of the harness's pure parts and its proxy: the seeded streams and the schedule are
// reproducible, the partition shapes cut exactly the links they claim, options are validated, and
// the peer proxy passes the first frame untouched and then applies its faults to whole frames.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bridgeGrudge, completeGrudge, majoritiesRingGrudge, type Drop } from './firewall.ts';
import { parseRunOptions, UsageError, type RunOptions } from './options.ts';
import { NO_FAULTS, PeerProxy } from './peer-proxy.ts';
import { createRng } from './rng.ts';
import { planSchedule } from './schedule.ts';

function options(args: string[]): RunOptions {
  const parsed = parseRunOptions(args);
  if (parsed === 'help') throw new Error('unexpected help');
  return parsed;
}

function sees(drops: readonly Drop[], a: number, b: number): boolean {
  return !drops.some((drop) => drop.from === a && drop.to === b);
}

describe('seeded randomness', () => {
  it('repeats a stream for a seed and keeps forks independent of draws', () => {
    const a = createRng(42);
    const b = createRng(42);
    expect(Array.from({ length: 5 }, () => a.next())).toEqual(Array.from({ length: 5 }, () => b.next()));
    const fresh = createRng(42).fork('nemesis').next();
    const used = createRng(42);
    used.next();
    used.next();
    expect(used.fork('nemesis').next()).toBe(fresh);
    expect(createRng(43).next()).not.toBe(createRng(42).next());
  });
});

describe('schedule', () => {
  it('is the same for the same seed and options, and differs for another seed', () => {
    const run = options(['--nemesis', 'partition,kill,pause,proxy,transfer', '--time', '120', '--seed', '7']);
    const one = planSchedule(run, [1, 2, 3], [1, 2, 3, 4], createRng(run.seed).fork('nemesis'));
    const two = planSchedule(run, [1, 2, 3], [1, 2, 3, 4], createRng(run.seed).fork('nemesis'));
    expect(JSON.stringify(one)).toBe(JSON.stringify(two));
    expect(one.faults.length).toBeGreaterThan(5);
    const other = planSchedule({ ...run, seed: 8 }, [1, 2, 3], [1, 2, 3, 4], createRng(8).fork('nemesis'));
    expect(JSON.stringify(other.faults)).not.toBe(JSON.stringify(one.faults));
  });

  it('keeps faults inside the main phase, one at a time, and skips what it cannot run', () => {
    // Membership needs five nodes (placement); on three it is skipped with its reason.
    const run = options(['--nemesis', 'kill,snapshot,membership', '--time', '60', '--seed', '3']);
    const schedule = planSchedule(run, [1, 2, 3], [1], createRng(3));
    expect(schedule.skipped.map((skip) => skip.kind)).toEqual(['membership']);
    expect(schedule.skipped[0]?.reason).toMatch(/--nodes 5/u);
    let previousEnd = 0;
    for (const fault of schedule.faults) {
      expect(['kill', 'snapshot']).toContain(fault.spec.kind);
      expect(fault.startMs).toBeGreaterThanOrEqual(previousEnd);
      expect(fault.endMs).toBeLessThanOrEqual(59_000);
      previousEnd = fault.endMs;
    }
    const etcd = planSchedule(
      options(['--db', 'etcd', '--nemesis', 'partition,proxy,pause']),
      [1, 2, 3],
      [1],
      createRng(1),
    );
    expect(etcd.skipped.map((skip) => skip.kind)).toEqual(['partition', 'proxy']);
  });
});

describe('partition shapes', () => {
  it('complete grudge cuts both directions between components only', () => {
    const drops = completeGrudge([[1], [2, 3]]);
    expect(drops).toHaveLength(4);
    expect(sees(drops, 2, 3)).toBe(true);
    expect(sees(drops, 1, 2) || sees(drops, 2, 1) || sees(drops, 1, 3) || sees(drops, 3, 1)).toBe(false);
  });

  it('bridge: the first node sees everyone, the two halves do not see each other', () => {
    const drops = bridgeGrudge([3, 1, 2, 4, 5]);
    for (const node of [1, 2, 4, 5]) expect(sees(drops, 3, node) && sees(drops, node, 3)).toBe(true);
    expect(sees(drops, 1, 2)).toBe(true);
    expect(sees(drops, 1, 4) || sees(drops, 5, 2)).toBe(false);
  });

  it('majorities ring: with 5 nodes every node sees a majority, and no two see the same one', () => {
    const nodes = [4, 2, 5, 1, 3];
    const drops = majoritiesRingGrudge(nodes);
    const views = nodes.map((a) =>
      nodes
        .filter((b) => a === b || sees(drops, a, b))
        .sort()
        .join(','),
    );
    for (const view of views) expect(view.split(',').length).toBe(3);
    expect(new Set(views).size).toBe(5);
  });
});

describe('options', () => {
  it('refuses bad values with the flag named', () => {
    expect(() => parseRunOptions(['--workload', 'bank'])).toThrow(UsageError);
    expect(() => parseRunOptions(['--nemesis', 'partition,flood'])).toThrow(/flood/u);
    expect(() => parseRunOptions(['--db', 'etcd', '--workload', 'append'])).toThrow(/etcd/u);
    expect(options(['--nemesis', 'none']).nemeses).toEqual([]);
  });
});

describe('peer proxy', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function frame(payload: string): Buffer {
    const body = Buffer.from(payload);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    return Buffer.concat([header, body]);
  }

  /** Node 2's "Raft port": records what arrives. Node 1 dials node 2 through the proxy. */
  async function setup(): Promise<{ proxy: PeerProxy; received: () => string; send: (data: Buffer) => void }> {
    let received = '';
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const proxyBase = 30_000 + Math.floor(Math.random() * 20_000);
    const proxy = new PeerProxy({
      nodes: [1, 2],
      address: () => '127.0.0.1',
      raftPort: address.port,
      proxyPort: (to) => proxyBase + to,
      rng: createRng(1),
    });
    await proxy.start();
    const client = net.connect({ host: '127.0.0.1', port: proxyBase + 2 });
    await new Promise<void>((resolve) => client.once('connect', resolve));
    cleanups.push(async () => {
      client.destroy();
      await proxy.close();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    });
    return { proxy, received: () => received, send: (data) => client.write(data) };
  }

  async function settle(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 150));
  }

  /** Bounded wait (at most 5 s) until `received` holds at least `text`'s length, for positive checks. */
  async function arrived(received: () => string, text: string): Promise<void> {
    for (let poll = 0; poll < 100 && received().length < text.length; poll++)
      await new Promise((resolve) => setTimeout(resolve, 50));
  }

  it('passes frames through unchanged with no fault', async () => {
    const { received, send } = await setup();
    send(Buffer.concat([frame('hello'), frame('one')]));
    send(frame('two'));
    const expected = Buffer.concat([frame('hello'), frame('one'), frame('two')]).toString('latin1');
    await arrived(received, expected);
    expect(received()).toBe(expected);
  });

  it('blackholes every frame after the hello, and duplicates whole frames', async () => {
    const { proxy, received, send } = await setup();
    proxy.setFaults(() => true, { ...NO_FAULTS, blackhole: true });
    send(Buffer.concat([frame('hello'), frame('lost')]));
    await arrived(received, frame('hello').toString('latin1'));
    await settle(); // give a wrongly delivered 'lost' the chance to show up
    expect(received()).toBe(frame('hello').toString('latin1'));
    proxy.setFaults(() => true, { ...NO_FAULTS, duplicate: 1 });
    send(frame('twice'));
    const expected = Buffer.concat([frame('hello'), frame('twice'), frame('twice')]).toString('latin1');
    await arrived(received, expected);
    expect(received()).toBe(expected);
    proxy.heal();
    expect(proxy.stats().framesDropped).toBe(1);
  });

  // No timing assertion (a loaded machine fires timers late): only that jittered delays never
  // reorder the byte stream of one connection.
  it('keeps frame order under delay and jitter', async () => {
    const { proxy, received, send } = await setup();
    send(frame('hello'));
    proxy.setFaults(() => true, { ...NO_FAULTS, delayMs: 60, jitterMs: 30 });
    for (let i = 0; i < 10; i++) send(frame(`m${i}`));
    const expected = Buffer.concat([frame('hello'), ...Array.from({ length: 10 }, (_, i) => frame(`m${i}`))]).toString(
      'latin1',
    );
    // Bounded wait for everything to arrive (at most 5 s), then compare the whole stream.
    for (let poll = 0; poll < 100 && received().length < expected.length; poll++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received()).toBe(expected);
  });
});
