// Runs every golden transcript in test/control/testdata/*.txt (the action executor and its steps
// for every kind, the meta membership planner, the start planner, the removal planner), each in a
// fresh ControlEnv. The env's steps are async (an action step may
// await its effects), so every block is run first and the runner then compares (or, with
// REWRITE=1, writes) the outputs in order.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { parseDataDriven, runDataDrivenFile } from '../raft/datadriven.ts';
import { ControlEnv } from './control-env.ts';

const dir = join(import.meta.dirname, 'testdata');
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.txt'))
  .sort();

describe('control transcripts', () => {
  for (const name of files) {
    it(name, async () => {
      const path = join(dir, name);
      const env = new ControlEnv();
      const outputs: string[] = [];
      for (const block of parseDataDriven(readFileSync(path, 'utf8'), path)) outputs.push(await env.handle(block));
      let next = 0;
      runDataDrivenFile(path, () => outputs[next++] ?? '');
    });
  }
});
