// Runs every golden transcript of the placement planner (test/control/testdata-placement/*.txt),
// each in a fresh PlacementEnv. REWRITE=1 writes the actual outputs back.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { runDataDrivenFile } from '../raft/datadriven.ts';
import { PlacementEnv } from './placement-env.ts';

const dir = join(import.meta.dirname, 'testdata-placement');
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.txt'))
  .sort();

describe('placement transcripts', () => {
  for (const name of files) {
    it(name, () => {
      const env = new PlacementEnv();
      runDataDrivenFile(join(dir, name), (block) => env.handle(block));
    });
  }
});
