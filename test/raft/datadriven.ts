// A small reader and runner for "datadriven" golden files in the style of cockroachdb/datadriven
// (as etcd-io/raft uses it). A file is a sequence of blocks:
//
//   # comment lines and blank lines between blocks are kept as they are
//   command arg key=value key=(v1,v2) "quoted arg"
//   optional input lines
//   ----
//   expected output, up to the first blank line
//
// Output that itself contains blank lines is fenced by doubled separators: `----` `----`, the
// output, then `----` `----`. runDataDrivenFile() runs every block through a handler and compares
// the handler's output with the expected one; with REWRITE=1 in the environment it writes the
// actual outputs back into the file in place instead (comments and layout are kept).

import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

export interface CmdArg {
  /** `key` of `key=value`; for a bare token its text (`v1`, `(1,2)`). */
  readonly key: string;
  /** The values: `[value]`, the list of `key=(a,b)` or of a bare `(a,b)`, `[]` for a bare word. */
  readonly vals: readonly string[];
}

export interface TestBlock {
  /** `file:line` of the command line. */
  readonly pos: string;
  readonly cmd: string;
  readonly args: readonly CmdArg[];
  /** The command line as written. */
  readonly cmdLine: string;
  /** Input lines between the command and the separator, joined with newlines. */
  readonly input: string;
  readonly expected: string;
}

interface ParsedBlock extends TestBlock {
  /** 0-based line number of the (first) `----` separator. */
  readonly separatorLine: number;
  /** 0-based line number just past the output (and past the closing fence, when fenced). */
  readonly endLine: number;
}

const separator = '----';

/** The first value of `key=value`, if given. */
export function argOf(args: readonly CmdArg[], key: string): string | undefined {
  return args.find((a) => a.key === key)?.vals[0];
}

/** `key=<number>`; the fallback when absent, and an error when absent without one. */
export function numOf(args: readonly CmdArg[], key: string, fallback?: number): number {
  const value = argOf(args, key);
  if (value === undefined) {
    if (fallback === undefined) throw new Error(`missing ${key}=`);
    return fallback;
  }
  return Number(value);
}

/** `key=(1,2,3)` as numbers of type T (node ids, group ids); [] when absent. */
export function idsOf<T extends number>(args: readonly CmdArg[], key: string): T[] {
  return (args.find((a) => a.key === key)?.vals ?? []).map((v) => Number(v) as T);
}

export function parseDataDriven(text: string, name: string): ParsedBlock[] {
  const lines = text.split('\n');
  const blocks: ParsedBlock[] = [];
  let at = 0;
  const line = (index: number): string | undefined => lines[index];
  while (at < lines.length) {
    const current = line(at) ?? '';
    if (current.trim() === '' || current.trimStart().startsWith('#')) {
      at++;
      continue;
    }
    const commandLine = at;
    const cmdLine = current.trim();
    const tokens = tokenize(cmdLine, `${name}:${commandLine + 1}`);
    const [cmd, ...rest] = tokens;
    if (cmd === undefined) throw new Error(`${name}:${commandLine + 1}: empty command`);
    at++;
    const input: string[] = [];
    while (at < lines.length && line(at) !== separator) input.push(line(at++) ?? '');
    if (at >= lines.length) throw new Error(`${name}:${commandLine + 1}: ${cmd}: missing ${separator}`);
    const separatorLine = at;
    at++;
    const output: string[] = [];
    if (line(at) === separator) {
      // Fenced output: runs until `----` `----`.
      at++;
      while (at < lines.length && !(line(at) === separator && line(at + 1) === separator))
        output.push(line(at++) ?? '');
      if (at >= lines.length)
        throw new Error(`${name}:${commandLine + 1}: ${cmd}: unterminated ${separator} ${separator} output`);
      at += 2;
    } else {
      while (at < lines.length && (line(at) ?? '') !== '') output.push(line(at++) ?? '');
    }
    blocks.push({
      pos: `${name}:${commandLine + 1}`,
      cmd,
      args: rest.map(parseArg),
      cmdLine,
      input: input.join('\n'),
      expected: output.join('\n').trimEnd(),
      separatorLine,
      endLine: at,
    });
  }
  return blocks;
}

/** Splits on spaces outside double quotes and parentheses; quotes are removed. */
function tokenize(text: string, pos: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let started = false;
  let quoted = false;
  let depth = 0;
  for (const char of text) {
    if (quoted) {
      if (char === '"') quoted = false;
      else current += char;
    } else if (char === '"') {
      quoted = true;
      started = true;
    } else if (char === ' ' && depth === 0) {
      if (started) tokens.push(current);
      current = '';
      started = false;
    } else {
      if (char === '(') depth++;
      if (char === ')') depth--;
      current += char;
      started = true;
    }
  }
  if (quoted || depth !== 0) throw new Error(`${pos}: unbalanced quotes or parentheses`);
  if (started) tokens.push(current);
  return tokens;
}

function parseArg(token: string): CmdArg {
  const eq = token.indexOf('=');
  if (eq < 0) return { key: token, vals: token.startsWith('(') ? parseList(token) : [] };
  const value = token.slice(eq + 1);
  return { key: token.slice(0, eq), vals: value.startsWith('(') ? parseList(value) : [value] };
}

function parseList(text: string): string[] {
  const inner = text.slice(1, -1).trim();
  return inner === '' ? [] : inner.split(',').map((item) => item.trim());
}

function formatOutput(actual: string): string[] {
  if (actual === '') return [];
  const lines = actual.split('\n');
  return lines.some((l) => l.trim() === '') ? [separator, ...lines, separator, separator] : lines;
}

/**
 * Runs every block of the file through `handler` in order. Without REWRITE=1 it asserts each
 * output equals the expected one (stopping at the first difference: later blocks depend on the
 * state the earlier ones built); with it, rewrites the file with the actual outputs.
 */
export function runDataDrivenFile(path: string, handler: (block: TestBlock) => string): void {
  const text = readFileSync(path, 'utf8');
  const blocks = parseDataDriven(text, path);
  const rewrite = process.env['REWRITE'] === '1';
  const outputs: string[] = [];
  for (const block of blocks) {
    const actual = handler(block).trimEnd();
    outputs.push(actual);
    if (!rewrite) expect(actual, `${block.pos}: ${block.cmdLine}`).toBe(block.expected);
  }
  if (!rewrite) return;
  const lines = text.split('\n');
  const result: string[] = [];
  let cursor = 0;
  blocks.forEach((block, i) => {
    result.push(...lines.slice(cursor, block.separatorLine + 1), ...formatOutput(outputs[i] ?? ''));
    cursor = block.endLine;
    const next = lines[cursor];
    if (next !== undefined && next !== '') result.push('');
  });
  result.push(...lines.slice(cursor));
  const rewritten = result.join('\n');
  if (rewritten !== text) writeFileSync(path, rewritten);
}
