// The previous release's source tree, for tests that run it beside the current code (docs/deploy.md,
// "Upgrading"). releases.json at the repository's root lists every release with its full commit
// hash; the newest one is "the previous release". Its tree is extracted with `git archive` from
// the commit object (not the tag: a fresh clone need not have fetched tags), into a temporary
// directory, and runs with this checkout's node_modules (a symlink): that works while the release's
// runtime dependencies are the versions installed here, which is checked against both lock files
// before anything runs. Every refusal (no such commit in this clone, dependencies that differ)
// throws an Error that says what to do.
//
// Called by test/integration/previous-release.test.ts.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Release {
  /** `v` and semver: v0.11.0. */
  readonly version: string;
  /** The full commit hash the release was cut from. */
  readonly commit: string;
}

export interface ExtractedRelease extends Release {
  /** The release's source tree: bin/, src/, package.json, node_modules -> this checkout's. */
  readonly root: string;
  /** Removes the tree. */
  remove(): void;
}

/** The releases listed in releases.json, oldest first, each checked for shape. */
export function listedReleases(): readonly Release[] {
  const file = join(repositoryRoot, 'releases.json');
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { releases?: unknown };
  if (!Array.isArray(parsed.releases) || parsed.releases.length === 0) throw new Error(`${file}: no releases listed`);
  return parsed.releases.map((item: unknown, k) => {
    const { version, commit } = (item ?? {}) as { version?: unknown; commit?: unknown };
    if (typeof version !== 'string' || !/^v\d+\.\d+\.\d+$/u.test(version))
      throw new Error(`${file}: releases[${k}].version: expected vMAJOR.MINOR.PATCH`);
    if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/u.test(commit))
      throw new Error(`${file}: releases[${k}].commit: expected a full 40-digit commit hash`);
    return { version, commit };
  });
}

function git(args: readonly string[]): string {
  return execFileSync('git', ['-C', repositoryRoot, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Extracts the newest listed release's tree into a temporary directory, ready to run. */
export function extractPreviousRelease(): ExtractedRelease {
  const release = listedReleases().at(-1);
  if (release === undefined) throw new Error('releases.json lists no release');
  try {
    git(['cat-file', '-e', `${release.commit}^{commit}`]);
  } catch {
    throw new Error(
      `release ${release.version} (commit ${release.commit}, from releases.json) is not in this clone: ` +
        `fetch its history (git fetch --unshallow, or git fetch origin ${release.commit}) and run the test again`,
    );
  }
  const root = mkdtempSync(join(tmpdir(), `dram-${release.version}-`));
  const remove = (): void => {
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const archive = join(root, 'release.tar');
    git(['archive', '--format=tar', `--output=${archive}`, release.commit]);
    execFileSync('tar', ['-xf', archive, '-C', root]);
    rmSync(archive);
    const differences = runtimeDependencyDifferences(
      readFileSync(join(root, 'package-lock.json'), 'utf8'),
      readFileSync(join(repositoryRoot, 'package-lock.json'), 'utf8'),
    );
    if (differences.length > 0)
      throw new Error(
        `release ${release.version} needs runtime dependencies other than the ones installed here ` +
          `(${differences.slice(0, 10).join('; ')}${differences.length > 10 ? '; ...' : ''}): ` +
          `its tree cannot share this checkout's node_modules; run \`npm ci --omit=dev\` in an extracted copy of ${release.commit} instead`,
      );
    symlinkSync(join(repositoryRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
    if (!existsSync(join(root, 'bin', 'dram.js'))) throw new Error(`release ${release.version} has no bin/dram.js`);
    return { ...release, root, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

interface LockFile {
  readonly packages?: Record<string, { readonly version?: string; readonly dev?: boolean }>;
}

/**
 * Every package the old lock file installs for running (not `dev`) whose version differs from the
 * one the current lock file installs at the same path, or that the current one lacks: `name old -> new`.
 */
export function runtimeDependencyDifferences(oldLockText: string, currentLockText: string): string[] {
  const old = (JSON.parse(oldLockText) as LockFile).packages ?? {};
  const current = (JSON.parse(currentLockText) as LockFile).packages ?? {};
  const differences: string[] = [];
  for (const [path, entry] of Object.entries(old)) {
    if (path === '' || entry.dev === true) continue;
    const installed = current[path]?.version;
    if (installed !== entry.version)
      differences.push(`${path.replace(/^node_modules\//u, '')} ${entry.version ?? '?'} -> ${installed ?? 'missing'}`);
  }
  return differences;
}
