// A small seeded pseudo-random generator (sfc32 seeded through splitmix32). Everything random in
// the pure layers comes from one of these, passed in, so a seed replays a run exactly.

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, bound). */
  int(bound: number): number;
  /** True with the given probability. */
  chance(probability: number): boolean;
  /** A new, independent generator derived from this one. */
  fork(): Rng;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const split = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  const nextUint = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) nextUint();
  const rng: Rng = {
    next: () => nextUint() / 4294967296,
    int: (bound) => {
      if (!Number.isSafeInteger(bound) || bound < 1)
        throw new RangeError(`rng.int: bound must be a positive integer, got ${bound}`);
      return Math.floor((nextUint() / 4294967296) * bound);
    },
    chance: (probability) => nextUint() / 4294967296 < probability,
    fork: () => createRng(nextUint()),
  };
  return rng;
}
