// Small node-wide records kept as JSON files in the data dir (the address book, the join record),
// written so that a crash at any moment leaves either the old file or the new one, never a torn
// mix: write a temporary file next to it, fsync it, rename it over the old one, fsync the folder
// (the rename itself must be durable before we act on it). Reads answer undefined for a missing
// file and throw for an unreadable or unparsable one: the caller decides what that means.
// Synchronous on purpose: these files are tiny and change rarely (a node joins, a peer moves).
//
// Called by: src/node/address-book.ts, src/node/membership.ts.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeJsonAtomic(path: string, value: unknown): void {
  const temporary = `${path}.tmp`;
  const file = openSync(temporary, 'w');
  try {
    writeSync(file, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(file);
  } finally {
    closeSync(file);
  }
  renameSync(temporary, path);
  const folder = openSync(dirname(path), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as unknown;
}
