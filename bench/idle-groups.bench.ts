// The idle-groups benchmark (its target, in docs/benchmarks.md: 1,000 idle groups on three nodes cost
// <= 5% of a core per node). Starts a three-node dram cluster of real processes with 1,000 KV groups,
// waits until every group has a leader every node agrees on, and then until every replica has gone
// quiet (idle groups stop ticking and heartbeating); then measures each node's CPU over a window with
// no client traffic. The same run with quiescence off (`--quiesce-after-ticks 0`: every group ticks and
// heartbeats forever, the baseline) shows what it saves.

import { DramCluster } from './cluster-dram.ts';
import { cpuSecondsOf } from './cluster.bench.ts';
import { until } from './cluster-load.ts';

export interface IdleVariantReport {
  readonly quiesce: boolean;
  /** Seconds from start until every group had an agreed leader (and, with quiesce, all were quiet). */
  readonly settleSeconds: number;
  /** CPU of each node over the window, % of one core. */
  readonly cpuPercent: Record<string, number>;
  readonly quietReplicas: number;
  readonly replicas: number;
}

export interface IdleGroupsReport {
  readonly groups: number;
  readonly windowSeconds: number;
  readonly variants: readonly IdleVariantReport[];
  readonly target: string;
  readonly met: boolean | undefined;
}

export async function runIdleGroupsBench(options: {
  readonly groups: number;
  readonly windowSeconds: number;
  readonly log: (line: string) => void;
}): Promise<IdleGroupsReport> {
  const variants: IdleVariantReport[] = [];
  for (const quiesce of [true, false]) {
    const cluster = new DramCluster(options.groups, undefined, quiesce ? [] : ['--quiesce-after-ticks', '0']);
    const stopOnSignal = (): void => {
      void cluster.stopAll().finally(() => process.exit(130));
    };
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    try {
      options.log(`idle: ${options.groups} groups, quiescence ${quiesce ? 'on' : 'off'}, data under ${cluster.dir}`);
      const started = performance.now();
      cluster.startAll();
      await cluster.waitHealthy(180_000);
      let quietReplicas = 0;
      if (quiesce) {
        await until(
          'every replica of every group quiet',
          async () => {
            const views = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
            quietReplicas = views.flat().filter((row) => row.quiesced).length;
            return quietReplicas === options.groups * cluster.ids.length ? true : undefined;
          },
          120_000,
          500,
        );
      }
      const settleSeconds = (performance.now() - started) / 1000;
      const cpuPercent = await cpuPercentOver(cluster.pids(), options.windowSeconds);
      // Still quiet at the end? (Nothing should have woken them.)
      const views = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
      quietReplicas = views.flat().filter((row) => row.quiesced).length;
      const report = {
        quiesce,
        settleSeconds: Math.round(settleSeconds * 10) / 10,
        cpuPercent,
        quietReplicas,
        replicas: options.groups * cluster.ids.length,
      };
      options.log(
        `idle: quiescence ${quiesce ? 'on' : 'off'}: cpu % ${JSON.stringify(cpuPercent)}, ${quietReplicas}/${report.replicas} replicas quiet, settled in ${report.settleSeconds} s`,
      );
      variants.push(report);
    } finally {
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
      await cluster.stopAll();
    }
  }
  const quiet = variants.find((variant) => variant.quiesce);
  const worst = quiet === undefined ? undefined : Math.max(...Object.values(quiet.cpuPercent));
  return {
    groups: options.groups,
    windowSeconds: options.windowSeconds,
    variants,
    target: '<= 5% of a core per node',
    met: worst === undefined ? undefined : worst <= 5,
  };
}

/** Each process's CPU use over a window of the given length, in percent of one core. */
async function cpuPercentOver(
  pids: ReadonlyMap<string, number>,
  windowSeconds: number,
): Promise<Record<string, number>> {
  const before = new Map([...pids].map(([name, pid]) => [name, cpuSecondsOf(pid)] as const));
  const windowStarted = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
  const seconds = (performance.now() - windowStarted) / 1000;
  const cpuPercent: Record<string, number> = {};
  for (const [name, pid] of pids) {
    const was = before.get(name);
    const now = cpuSecondsOf(pid);
    if (was !== undefined && now !== undefined) cpuPercent[name] = Math.round(((now - was) / seconds) * 1000) / 10;
  }
  return cpuPercent;
}
