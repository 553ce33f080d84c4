// Shared helpers for the storage tests: temporary directories that are always removed, and the
// limits the tests open stores with.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiskStoreOptions } from '../../src/storage/disk-store.ts';

export const testStoreOptions: DiskStoreOptions = { entryDataBytesMax: 1 << 20, snapshotDataBytesMax: 64 << 20 };

/** A fresh directory under the OS temp dir; `cleanup` removes it and everything in it. */
export async function temporaryDirectory(label: string): Promise<{ readonly path: string; cleanup(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `dram-${label}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
