// Reads a Parquet file's footer (its metadata: schema, row groups, row counts) with hyparquet, the
// only importer of it: pure JavaScript, no native code, works on a byte range of the file. A lazy
// database fetches only these footers of its Parquet files at load (the last 8 bytes, then the
// footer), so a replica is `loaded` once every footer is here and parses, and a file that is not
// Parquet fails the replica at load instead of the first query.
//
// Called by: src/data/database-downloads.ts.

import { parquetMetadata } from 'hyparquet';

/** What the last 8 bytes say: the footer's length; a string says why the bytes are not Parquet. */
export function footerLength(tail: Uint8Array, fileBytes: number): number | string {
  if (tail.length !== 8) return `expected 8 tail bytes, got ${tail.length}`;
  const magic = String.fromCharCode(...tail.subarray(4));
  if (magic !== 'PAR1') return 'not a Parquet file (no PAR1 at its end)';
  const length = Buffer.from(tail.buffer, tail.byteOffset, 4).readUInt32LE(0);
  if (length + 12 > fileBytes) return `its footer length ${length} does not fit in ${fileBytes} bytes`;
  return length;
}

/** The footer (with its 8 tail bytes) parsed: its row count, or why it does not parse. */
export function footerRows(footer: Uint8Array): number | string {
  try {
    return Number(parquetMetadata(footer).num_rows);
  } catch (error) {
    return `its footer does not parse: ${error instanceof Error ? error.message : String(error)}`;
  }
}
