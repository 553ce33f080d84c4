// Semantic versions (semver.org 2.0.0) as dram reports its own (package.json's `version`, e.g.
// `0.12.0-dev`): parsed strictly, compared by semver precedence. A prerelease sorts before its
// release (`0.12.0-dev` < `0.12.0`); prerelease identifiers compare one by one, numeric ones as
// numbers and below alphanumeric ones, a shorter list first when one is a prefix of the other;
// build metadata (`+...`) is ignored. Pure.
//
// Called by: src/control/release-guard.ts (which nodes of a mixed-release cluster are older).

export interface Semver {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** Empty for a release. */
  readonly prerelease: readonly (number | string)[];
}

const versionLengthMax = 256;
const numeric = '0|[1-9]\\d*';
const identifier = `(?:${numeric}|\\d*[a-zA-Z-][0-9a-zA-Z-]*)`;
const pattern = new RegExp(
  `^(${numeric})\\.(${numeric})\\.(${numeric})(?:-(${identifier}(?:\\.${identifier})*))?(?:\\+[0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*)?$`,
  'u',
);

/** The version, or undefined when `text` is not a semantic version (or a part is past 2^53). */
export function parseSemver(text: string): Semver | undefined {
  if (text.length > versionLengthMax) return undefined;
  const match = pattern.exec(text);
  if (match === null) return undefined;
  const [major, minor, patch] = [match[1], match[2], match[3]].map(Number);
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const prerelease = (match[4] ?? '')
    .split('.')
    .filter((part) => part !== '')
    .map((part) => (/^\d+$/u.test(part) ? Number(part) : part));
  if (prerelease.some((part) => typeof part === 'number' && !Number.isSafeInteger(part))) return undefined;
  return { major, minor, patch, prerelease };
}

/** Negative when a precedes b, 0 when they are of equal precedence, positive when a follows b. */
export function compareSemver(a: Semver, b: Semver): number {
  const core = a.major - b.major || a.minor - b.minor || a.patch - b.patch;
  if (core !== 0) return Math.sign(core);
  // A release follows every prerelease of it.
  if (a.prerelease.length === 0 || b.prerelease.length === 0)
    return Math.sign(b.prerelease.length - a.prerelease.length);
  for (let k = 0; k < Math.min(a.prerelease.length, b.prerelease.length); k++) {
    const order = compareIdentifiers(a.prerelease[k] ?? 0, b.prerelease[k] ?? 0);
    if (order !== 0) return order;
  }
  return Math.sign(a.prerelease.length - b.prerelease.length);
}

function compareIdentifiers(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return Math.sign(a - b);
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
