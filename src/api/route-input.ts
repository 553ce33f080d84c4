// Parsing shared by every route's input: plain decimal numbers in paths, queries and headers.
// One rule for all of them: digits only, no sign, no leading zeros, within the safe-integer range;
// anything else is a 400 DRAM_ERR_BAD_REQUEST naming what was wrong. Used by the KV, admin and
// membership routes.

import { ApiError } from './errors.ts';

const decimal = /^(0|[1-9][0-9]*)$/;

/** A non-negative integer written in plain decimal; `what` names it in the error. */
export function parseCounter(text: string, what: string): number {
  const value = decimal.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw new ApiError('DRAM_ERR_BAD_REQUEST', `${what} must be a non-negative integer, got '${text}'`);
  return value;
}
