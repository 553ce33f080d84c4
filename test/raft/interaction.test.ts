// Runs every golden transcript in test/raft/testdata/*.txt, each in a fresh InteractionEnv.
// Set REWRITE=1 to regenerate the expected outputs in place after a deliberate change, then read
// the diff as a Raft reviewer would before keeping it.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { runDataDrivenFile } from './datadriven.ts';
import { InteractionEnv } from './interaction-env.ts';

const dir = join(import.meta.dirname, 'testdata');
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.txt'))
  .sort();

describe('raft interaction transcripts', () => {
  for (const name of files) {
    it(name, () => {
      const env = new InteractionEnv();
      runDataDrivenFile(join(dir, name), (block) => env.handle(block));
    });
  }
});
