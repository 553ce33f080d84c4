#!/usr/bin/env node
// The `dram` command. The sources are TypeScript run through tsx's loader, registered here so
// `dram` (and `npm start`) need no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
