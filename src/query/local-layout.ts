// A database's files on this member, in the layout a database has in S3 and on disk: the files
// under `<root>/shard=<id>/` form shard `<id>`, the files under `<root>/global/` are the global
// data every member has; a root with no `shard=` folder is one shard, `0`, of every file outside
// `global/`. Shards are ordered by id, numerically when every id is an integer.
//
// Called by: tests, the benchmark and `dram dev` tooling for a directory in this layout. The
// database registry builds LocalDatabase from its manifests instead (only complete files).

import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LocalDatabase, LocalShard } from './local-runner.ts';

/** Files of one shard (or of global/); more is refused. */
export const shardFilesMax = 100_000;

function filesUnder(directory: string, skip?: (name: string) => boolean): string[] {
  const files: string[] = [];
  const pending = [directory];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const entry of readdirSync(next, { withFileTypes: true })) {
      if (next === directory && skip?.(entry.name) === true) continue;
      const path = join(next, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) files.push(path);
      if (files.length > shardFilesMax) throw new Error(`${directory}: more than ${shardFilesMax} files`);
    }
  }
  return files.sort();
}

function shardOrder(ids: string[]): string[] {
  const numeric = ids.every((id) => /^\d{1,15}$/u.test(id));
  return numeric ? ids.sort((a, b) => Number(a) - Number(b)) : ids.sort();
}

export function localDatabaseFromDirectory(root: string, name: string, version: string): LocalDatabase {
  const absolute = resolve(root);
  const entries = readdirSync(absolute, { withFileTypes: true });
  const globalEntry = entries.find((entry) => entry.isDirectory() && entry.name === 'global');
  const globalDir = globalEntry === undefined ? undefined : join(absolute, 'global');
  const ids = entries
    .filter((entry) => entry.isDirectory() && entry.name.startsWith('shard=') && entry.name.length > 6)
    .map((entry) => entry.name.slice('shard='.length));
  const shards: LocalShard[] =
    ids.length === 0
      ? [{ shard: '0', dir: absolute, files: filesUnder(absolute, (entry) => entry === 'global') }]
      : shardOrder(ids).map((id) => {
          const dir = join(absolute, `shard=${id}`);
          return { shard: id, dir, files: filesUnder(dir) };
        });
  return { name, version, globalDir, globalFiles: globalDir === undefined ? [] : filesUnder(globalDir), shards };
}
