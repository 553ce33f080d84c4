// The CLI's tables: one column per field, no index column (console.table's first column is its
// row index, which means nothing to an operator), no colours (the output is often piped or logged).
// cli-table3 draws them. Called by src/cli/main.ts.

import Table from 'cli-table3';

export type TableRow = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** The rows as a text table, columns in order of first appearance; `(none)` for no rows. */
export function formatTable(rows: readonly TableRow[]): string {
  if (rows.length === 0) return '(none)';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const table = new Table({ head: columns, style: { head: [], border: [] } });
  for (const row of rows) table.push(columns.map((column) => String(row[column] ?? '')));
  return table.toString();
}

export function printTable(rows: readonly TableRow[]): void {
  console.log(formatTable(rows));
}
