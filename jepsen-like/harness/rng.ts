// The harness's seeded randomness. Every random choice the harness makes (the fault schedule, its
// targets, each worker's operations, the proxy's packet faults) comes from a stream forked off the
// run's seed by a label, so adding draws to one stream never shifts another: the same seed gives
// the same nemesis schedule whatever the workload did. splitmix32 is enough here: we need
// reproducibility and spread, not cryptographic quality.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** A new shuffled copy. */
  shuffle<T>(items: readonly T[]): T[];
  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number;
  /** An independent stream named by label, derived from this stream's seed (not its position). */
  fork(label: string): Rng;
}

function splitmix32(state: number): { value: number; state: number } {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return { value: (z >>> 0) / 0x1_0000_0000, state: next };
}

function hashLabel(seed: number, label: string): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    hash ^= label.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return splitmix32(hash).state ^ Math.imul(seed, 0x2545f491);
}

export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const rootSeed = Number(BigInt.asIntN(32, BigInt(seed)));
  let state = rootSeed;
  const next = (): number => {
    const step = splitmix32(state);
    state = step.state;
    return step.value;
  };
  const rng: Rng = {
    next,
    int(maxExclusive) {
      if (!Number.isSafeInteger(maxExclusive) || maxExclusive < 1)
        throw new RangeError(`int(${maxExclusive}): need a positive integer`);
      return Math.floor(next() * maxExclusive);
    },
    between: (min, max) => min + next() * (max - min),
    pick(items) {
      const item = items[rng.int(items.length)];
      if (item === undefined) throw new RangeError('pick from an empty list');
      return item;
    },
    shuffle(items) {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const a = copy[i] as (typeof copy)[number];
        copy[i] = copy[j] as (typeof copy)[number];
        copy[j] = a;
      }
      return copy;
    },
    exponential: (mean) => -mean * Math.log(1 - next()),
    fork: (label) => createRng(hashLabel(rootSeed, label)),
  };
  return rng;
}
