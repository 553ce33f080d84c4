// Semantic versions (src/base/semver.ts): strict parsing, and semver.org's precedence, prereleases
// (`-dev`) included: the example chain of the specification, dram's own versions, garbage refused.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareSemver, parseSemver, type Semver } from '../../src/base/semver.ts';

function parsed(text: string): Semver {
  const version = parseSemver(text);
  if (version === undefined) throw new Error(`not parsed: ${text}`);
  return version;
}

function expectAscending(chain: readonly string[]): void {
  for (let i = 0; i < chain.length; i++)
    for (let j = 0; j < chain.length; j++) {
      const a = chain[i] ?? '';
      const b = chain[j] ?? '';
      expect(compareSemver(parsed(a), parsed(b)), `${a} vs ${b}`).toBe(Math.sign(i - j));
    }
}

describe('semver', () => {
  it("orders the specification's example chain", () => {
    expectAscending([
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '2.0.0',
      '10.0.0',
    ]);
  });

  it("orders dram's versions: a -dev prerelease before its release, after the previous one", () => {
    expectAscending(['0.1.0', '0.2.0', '0.11.0', '0.12.0-dev', '0.12.0-dev.1', '0.12.0-rc.1', '0.12.0', '0.12.1-dev']);
    expect(compareSemver(parsed('0.12.0-dev+build.5'), parsed('0.12.0-dev'))).toBe(0);
    expect(parsed('0.12.0-dev')).toEqual({ major: 0, minor: 12, patch: 0, prerelease: ['dev'] });
  });

  it('refuses what is not a semantic version', () => {
    for (const text of [
      '',
      '0',
      'sim',
      '1.0',
      'v1.0.0',
      '01.0.0',
      '1.0.0-',
      '1.0.0-01',
      '1.0.0-a..b',
      ' 1.0.0',
      '1.0.0+',
      '9007199254740993.0.0',
    ])
      expect(parseSemver(text), text).toBeUndefined();
    expect(parseSemver(`1.0.0-${'a'.repeat(300)}`)).toBeUndefined();
  });

  it('is a total order on parsed versions (antisymmetric, transitive), and any string parses or not without throwing', () => {
    const part = fc.integer({ min: 0, max: 20 });
    const identifier = fc.oneof(part.map(String), fc.constantFrom('dev', 'rc', 'alpha', 'beta', 'x-1'));
    const version = fc
      .tuple(part, part, part, fc.array(identifier, { maxLength: 3 }))
      .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre.length === 0 ? '' : `-${pre.join('.')}`}`);
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        const [x, y, z] = [parsed(a), parsed(b), parsed(c)];
        expect(compareSemver(x, y)).toBe(-compareSemver(y, x));
        if (compareSemver(x, y) <= 0 && compareSemver(y, z) <= 0) expect(compareSemver(x, z)).toBeLessThanOrEqual(0);
      }),
      { seed: 12, numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        parseSemver(text);
      }),
      { seed: 12, numRuns: 1000 },
    );
  });
});
