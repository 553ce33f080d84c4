// The lazy cache's bookkeeping: least recently used eviction under the bound, pins that are never
// evicted, the evicted set a refetch clears, and which files of a lazy database are metadata.

import { describe, expect, it } from 'vitest';
import { globPattern, LazyCache, lazyLimitsDefault, lazySplit } from '../../src/data/lazy-cache.ts';

function cache(bytesMax: number): { cache: LazyCache; removed: string[] } {
  const removed: string[] = [];
  return { cache: new LazyCache(bytesMax, (path) => removed.push(path)), removed };
}

describe('lazy cache', () => {
  it('evicts the least recently used unpinned file to admit one over the bound', () => {
    const { cache: lru, removed } = cache(30);
    lru.admit('db/1', 'a', 10, false);
    lru.admit('db/1', 'b', 10, false);
    lru.admit('db/1', 'c', 10, false);
    expect(lru.pinIfCached('db/1', 'a')).toBe(true); // a is now the most recent
    lru.unpin('a');
    lru.admit('db/1', 'd', 10, false);
    expect(removed).toEqual(['b']);
    expect(lru.figures('db/1')).toEqual({ files: 3, bytes: 30, hits: 1, misses: 0, evictions: 1, evictedFiles: 1 });
    lru.miss('db/1');
    lru.admit('db/1', 'b', 10, false); // fetched again: no longer counted evicted
    expect(removed).toEqual(['b', 'c']);
    expect(lru.figures('db/1')).toMatchObject({ misses: 1, evictions: 2, evictedFiles: 1 });
  });

  it('never evicts a pinned file: over the bound while pinned, trimmed when released', () => {
    const { cache: lru, removed } = cache(15);
    lru.admit('db/1', 'a', 10, true);
    lru.admit('db/1', 'b', 10, true);
    expect(removed).toEqual([]);
    expect(lru.bytes).toBe(20);
    lru.unpin('a');
    expect(removed).toEqual(['a']);
    expect(lru.bytes).toBe(10);
    expect(() => {
      lru.unpin('a');
    }).toThrow(/not pinned/u);
  });

  it('forgets a dropped version and keeps versions apart', () => {
    const { cache: lru } = cache(100);
    lru.admit('db/1', 'a', 10, false);
    lru.admit('db/2', 'b', 20, false);
    lru.dropVersion('db/1');
    expect(lru.bytes).toBe(20);
    expect(lru.figures('db/1')).toMatchObject({ files: 0, bytes: 0 });
    expect(lru.figures('db/2')).toMatchObject({ files: 1, bytes: 20 });
  });

  it('splits metadata (small or matching the pattern) from data files', () => {
    const file = (path: string, bytes: number) => ({ path, bytes, etag: 'e' });
    const files = [
      file('shard=0/events-0.parquet', 1_000_000),
      file('shard=0/users.ndjson', 10),
      file('global/products.parquet', 2_000_000),
      file('shard=1/dims/x.csv', 500_000),
    ];
    const split = lazySplit(files, 'global/**', lazyLimitsDefault);
    expect(split.metadata.map((f) => f.path)).toEqual(['shard=0/users.ndjson', 'global/products.parquet']);
    expect(split.data.map((f) => f.path)).toEqual(['shard=0/events-0.parquet', 'shard=1/dims/x.csv']);
    expect(globPattern('*/dims/*.csv').test('shard=1/dims/x.csv')).toBe(true);
    expect(globPattern('*.csv').test('shard=1/dims/x.csv')).toBe(false);
    expect(globPattern('**/x.csv').test('shard=1/dims/x.csv')).toBe(true);
    expect(globPattern('a.b').test('axb')).toBe(false);
  });
});
