// The CLI's tables (src/cli/table.ts): a column per field in order of first appearance, no index
// column, every value printed, `(none)` for an empty list.

import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/cli/table.ts';

describe('CLI tables', () => {
  it('has one column per field and no index column', () => {
    const text = formatTable([
      { group: 'kv/1', role: 'leader', lag: 0 },
      { group: 'kv/2', role: 'follower', lag: 7, quiet: 'yes' },
    ]);
    const lines = text.split('\n');
    const header = (lines[1] ?? '').split('│').map((cell) => cell.trim());
    expect(header).toEqual(['', 'group', 'role', 'lag', 'quiet', '']);
    expect(text).not.toContain('(index)');
    expect(
      lines
        .find((line) => line.includes('kv/2'))
        ?.split('│')
        .map((cell) => cell.trim()),
    ).toEqual(['', 'kv/2', 'follower', '7', 'yes', '']);
  });

  it('says (none) for no rows', () => {
    expect(formatTable([])).toBe('(none)');
  });
});
