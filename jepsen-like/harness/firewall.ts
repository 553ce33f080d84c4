// Partitions by iptables DROP rules, Jepsen's method, on per-node loopback addresses. The harness
// owns one chain, DRAM_JEPSEN, jumped to from INPUT: every rule it adds lives there, healing is
// flushing it, and teardown removes the jump and the chain, so nothing else in the tables is ever
// touched. On loopback every packet crosses INPUT, so a rule `-s A -d B -j DROP` drops what node A
// sends to node B. Both directions of a link need a rule; a single rule (the one-way shape) still
// stalls TCP both ways, because the replies of the connection B opens to A are dropped too.
//
// Also here: installing iptables when it is missing (Debian's package, before the harness enters
// its network namespace, which has no route out) and probing for tc netem, which this kernel lacks.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const CHAIN = 'DRAM_JEPSEN';

/** One directed drop: packets from `from` to `to` are dropped. */
export interface Drop {
  readonly from: number;
  readonly to: number;
}

async function commandExists(name: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's iptables package if the binary is missing. Needs the network: call before unshare. */
export async function ensureIptables(log: (line: string) => void): Promise<void> {
  if (await commandExists('iptables')) return;
  log('iptables is missing: installing it with apt-get (Debian package iptables)');
  await run('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables'], {
    maxBuffer: 16 << 20,
  });
  if (!(await commandExists('iptables'))) throw new Error('iptables is still missing after apt-get install iptables');
}

/** Whether `tc ... netem` works here; tried in a throwaway namespace so the host's lo is never touched. */
export async function probeNetem(): Promise<{ available: boolean; detail: string }> {
  try {
    await run('unshare', ['-n', 'sh', '-c', 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms']);
    return { available: true, detail: 'tc netem works on this kernel (the harness still uses its userspace proxy)' };
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const why = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
    return {
      available: false,
      detail: `tc netem is not available on this kernel (${why}); delay, loss, duplication and reordering use the userspace peer proxy`,
    };
  }
}

async function iptables(args: readonly string[]): Promise<void> {
  await run('iptables', ['-w', ...args]);
}

export class Firewall {
  private readonly address: (node: number) => string;
  private installed = false;

  constructor(address: (node: number) => string) {
    this.address = address;
  }

  /** Creates (or empties) the chain and the jump to it. Idempotent. */
  async setup(): Promise<void> {
    try {
      await iptables(['-N', CHAIN]);
    } catch {
      await iptables(['-F', CHAIN]); // left over from a harness that died: start clean
    }
    try {
      await iptables(['-C', 'INPUT', '-j', CHAIN]);
    } catch {
      await iptables(['-I', 'INPUT', '1', '-j', CHAIN]);
    }
    this.installed = true;
  }

  /** Replaces the current rules with exactly these drops. */
  async apply(drops: readonly Drop[]): Promise<void> {
    await iptables(['-F', CHAIN]);
    for (const drop of drops) {
      await iptables(['-A', CHAIN, '-s', this.address(drop.from), '-d', this.address(drop.to), '-j', 'DROP']);
    }
  }

  async heal(): Promise<void> {
    if (!this.installed) return;
    await iptables(['-F', CHAIN]);
  }

  /** Removes every trace; never throws (it runs in finally blocks). */
  async teardown(): Promise<string[]> {
    const problems: string[] = [];
    for (const args of [
      ['-F', CHAIN],
      ['-D', 'INPUT', '-j', CHAIN],
      ['-X', CHAIN],
    ]) {
      try {
        await iptables(args);
      } catch (error) {
        if (this.installed) problems.push(`iptables ${args.join(' ')}: ${String(error)}`);
      }
    }
    this.installed = false;
    return problems;
  }

  /** The chain's current rules, for the log. */
  static async listRules(): Promise<string> {
    try {
      return (await run('iptables', ['-w', '-S', CHAIN])).stdout;
    } catch {
      return '';
    }
  }
}

/** Every directed pair between different components. */
export function completeGrudge(components: readonly (readonly number[])[]): Drop[] {
  const drops: Drop[] = [];
  for (const [i, a] of components.entries()) {
    for (const [j, b] of components.entries()) {
      if (i === j) continue;
      for (const from of a) for (const to of b) drops.push({ from, to });
    }
  }
  return drops;
}

/** Drops both directions between every pair of nodes that may not see each other. */
export function grudgeFromVisibility(nodes: readonly number[], sees: (a: number, b: number) => boolean): Drop[] {
  const drops: Drop[] = [];
  for (const from of nodes) for (const to of nodes) if (from !== to && !sees(from, to)) drops.push({ from, to });
  return drops;
}

/**
 * Jepsen's bridge: two halves that cannot see each other, and one node (the first of `order`)
 * that sees everyone.
 */
export function bridgeGrudge(order: readonly number[]): Drop[] {
  const [bridge, ...rest] = order;
  const half = Math.ceil(rest.length / 2);
  const left = rest.slice(0, half);
  const right = rest.slice(half);
  return grudgeFromVisibility(
    order,
    (a, b) =>
      a === bridge || b === bridge || left.includes(a) === left.includes(b) || (right.includes(a) && right.includes(b)),
  );
}

/**
 * Jepsen's majorities ring: nodes on a ring (in `order`), each sees itself and its neighbours up to
 * a majority, so every node sees a majority but no two see the same one. With 3 nodes every node
 * would see everyone, so it degenerates to the bridge, as in Jepsen.
 */
export function majoritiesRingGrudge(order: readonly number[]): Drop[] {
  const n = order.length;
  if (n < 5) return bridgeGrudge(order);
  const majority = Math.floor(n / 2) + 1;
  const reach = Math.ceil((majority - 1) / 2);
  const position = new Map(order.map((node, i) => [node, i]));
  return grudgeFromVisibility(order, (a, b) => {
    const distance = Math.abs((position.get(a) ?? 0) - (position.get(b) ?? 0));
    return Math.min(distance, n - distance) <= reach;
  });
}
