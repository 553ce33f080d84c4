// Parsing history.jsonl and pairing events into operations.

import { describe, expect, it } from 'vitest';
import {
  HistoryFormatError,
  groupByKey,
  loadOperations,
  pairEvents,
  pairOperations,
  parseHistory,
  type HistoryEvent,
} from './history.ts';
import { toJsonl } from './test-support.ts';

const invoke = (process: number, f: HistoryEvent['f'], value: unknown, time: number, key = 'x'): HistoryEvent => ({
  process,
  type: 'invoke',
  f,
  key,
  value,
  time,
});
const complete = (type: 'ok' | 'fail' | 'info', event: HistoryEvent, value: unknown, time: number): HistoryEvent => ({
  ...event,
  type,
  value,
  time,
});

describe('parseHistory', () => {
  it('reads one event per line and skips blank lines', () => {
    const text =
      '{"process":0,"type":"invoke","f":"read","key":"a","value":null,"time":5}\n\n' +
      '{"process":0,"type":"ok","f":"read","key":"a","value":3,"time":9,"index":1}\n';
    expect(parseHistory(text)).toEqual([
      { process: 0, type: 'invoke', f: 'read', key: 'a', value: null, time: 5 },
      { process: 0, type: 'ok', f: 'read', key: 'a', value: 3, time: 9, index: 1 },
    ]);
  });

  const bad: [string, string][] = [
    ['{"process":0,"type":"invoke"', 'not JSON'],
    ['[1,2]', 'JSON object'],
    ['{"process":-1,"type":"invoke","f":"read","value":null,"time":0}', '"process"'],
    [
      '{"process":0,"type":"done","f":"read","value":null,"time":0}',
      '"type" must be one of invoke, ok, fail, info, got "done"',
    ],
    ['{"process":0,"type":"ok","f":"incr","value":null,"time":0}', '"f"'],
    ['{"process":0,"type":"ok","f":"read","key":7,"value":null,"time":0}', '"key"'],
    ['{"process":0,"type":"ok","f":"read","time":0}', '"value" is missing'],
    ['{"process":0,"type":"ok","f":"read","value":null,"time":"soon"}', '"time"'],
    ['{"process":0,"type":"invoke","f":"cas","value":[1],"time":0}', '[expected, new]'],
  ];
  for (const [line, reason] of bad) {
    it(`names the line and the problem: ${reason}`, () => {
      const good = '{"process":0,"type":"invoke","f":"write","value":1,"time":0}';
      const parse = () => parseHistory(`${good}\n\n${line}\n`);
      expect(parse).toThrow(HistoryFormatError);
      expect(parse).toThrow(`history line 3: `);
      expect(parse).toThrow(reason);
    });
  }
});

describe('pairing', () => {
  it('pairs per process, drops fails, and sends unknown outcomes to the end of time', () => {
    const w = invoke(0, 'write', 1, 0);
    const r = invoke(1, 'read', null, 1);
    const c = invoke(2, 'cas', [1, 2], 2);
    const w2 = invoke(0, 'write', 3, 20);
    const events = [w, r, c, complete('ok', r, 1, 5), complete('fail', c, [1, 2], 6), complete('info', w, 1, 10), w2];
    const recorded = pairEvents(events);
    expect(recorded.map((op) => [op.index, op.f, op.status, op.call, op.ret, op.completionTime])).toEqual([
      [0, 'write', 'info', 0, Infinity, 10],
      [1, 'read', 'ok', 1, 5, 5],
      [2, 'cas', 'fail', 2, 6, 6],
      [3, 'write', 'info', 20, Infinity, Infinity],
    ]);
    expect(recorded[1]).toMatchObject({ process: 1, key: 'x', input: null, output: 1 });
    expect(recorded[0]?.output).toBeUndefined();
    expect(pairOperations(events).map((op) => op.index)).toEqual([0, 1, 3]);
  });

  it('round-trips through JSONL', () => {
    const w = invoke(0, 'write', { nested: [1] }, 0);
    const ops = loadOperations(toJsonl([w, complete('ok', w, { nested: [1] }, 4)]));
    expect(ops).toEqual([
      {
        index: 0,
        process: 0,
        f: 'write',
        key: 'x',
        input: { nested: [1] },
        output: { nested: [1] },
        call: 0,
        ret: 4,
        completionTime: 4,
        status: 'ok',
      },
    ]);
  });

  it('rejects histories no recorder could write', () => {
    const w = invoke(0, 'write', 1, 5);
    expect(() => pairEvents([w, invoke(0, 'read', null, 6)])).toThrow(
      'event 2: process 0 invokes read while its write from event 1 is still pending',
    );
    expect(() => pairEvents([complete('ok', w, 1, 6)])).toThrow(
      'event 1: process 0 completes write (ok) with nothing pending',
    );
    expect(() => pairEvents([w, { ...complete('ok', w, 1, 6), f: 'read' }])).toThrow(
      'does not match the invoked write',
    );
    expect(() => pairEvents([w, { ...complete('ok', w, 1, 6), key: 'y' }])).toThrow('key "y" does not match');
    expect(() => pairEvents([w, complete('ok', w, 1, 4)])).toThrow('before its invocation');
  });

  it('groups by key with keyless ops under the empty key', () => {
    const groups = groupByKey([{ key: 'b' }, { key: undefined }, { key: 'a' }, { key: 'b' }]);
    expect([...groups].map(([key, group]) => [key, group.length])).toEqual([
      ['', 1],
      ['a', 1],
      ['b', 2],
    ]);
  });
});
