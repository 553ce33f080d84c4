// The size of this node's data directory (every file under it, in bytes), for the agent API's
// `dram.io/data-dir-bytes` attribute. Walking the directory costs a stat per file, so it is
// measured in the background every `measureMs` (not on each request) and the last figure is
// served; at most `filesMax` files are counted (a bound on the walk; the figure is then a lower
// bound). A file that vanishes during the walk (LevelDB compacting) is skipped.
//
// Called by: src/node/node.ts.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const dataDirMeasureMs = 10_000;
export const dataDirFilesMax = 100_000;

export async function directoryBytes(dir: string, filesMax = dataDirFilesMax): Promise<number> {
  let bytes = 0;
  let files = 0;
  const pending = [dir];
  while (pending.length > 0 && files < filesMax) {
    const current = pending.pop() ?? dir;
    const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile() && files++ < filesMax) bytes += (await stat(path).catch(() => ({ size: 0 }))).size;
    }
  }
  return bytes;
}

/** Measures `dir` now and every `measureMs`; `bytes()` is the last figure (null before the first). */
export function watchDataDir(dir: string, measureMs = dataDirMeasureMs): { bytes(): number | null; stop(): void } {
  let last: number | null = null;
  let busy = false;
  const measure = (): void => {
    if (busy) return;
    busy = true;
    void directoryBytes(dir)
      .then((bytes) => {
        last = bytes;
      })
      .finally(() => {
        busy = false;
      });
  };
  measure();
  const timer = setInterval(measure, measureMs);
  timer.unref();
  return {
    bytes: () => last,
    stop: () => {
      clearInterval(timer);
    },
  };
}
