// Unit tests for dedupe: first row per key kept, per file, unambiguous multi-column keys.
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { dedupe, rowKey } from '../../src/operators/dedupe.js';
import { preservesRows } from '../../src/operators/row-operator.js';
import type { Row } from '../../src/row.js';

const header: Row = ['id', 'a', 'b'];
const run = (op: ReturnType<typeof dedupe>, rows: Row[]) => lastValueFrom(from(rows).pipe(op, toArray()));

describe('dedupe', () => {
  const rows: Row[] = [
    ['1', 'x', 'y'],
    ['2', 'x', 'y'],
    ['1', 'x', 'y'],
    ['3', 'x', 'z'],
    ['1', 'q', 'y'],
  ];

  it('by default keys on the whole row, keeping the first', async () => {
    expect(await run(dedupe(), [header, ...rows])).toEqual([header, ['1', 'x', 'y'], ['2', 'x', 'y'], ['3', 'x', 'z'], ['1', 'q', 'y']]);
  });

  it('keys on the given columns', async () => {
    expect(await run(dedupe({ columns: ['id'] }), [header, ...rows])).toEqual([header, ['1', 'x', 'y'], ['2', 'x', 'y'], ['3', 'x', 'z']]);
    expect(await run(dedupe({ columns: ['b', 'a'] }), [header, ...rows])).toEqual([header, ['1', 'x', 'y'], ['3', 'x', 'z'], ['1', 'q', 'y']]);
  });

  it('does not confuse keys whose fields join the same way', async () => {
    const r = [header, ['1', 'a', 'bc'], ['2', 'ab', 'c'], ['3', 'a:1', ''], ['4', 'a', '1:']];
    expect(await run(dedupe({ columns: ['a', 'b'] }), r)).toHaveLength(5);
    expect(rowKey(['a', 'bc'], undefined)).not.toBe(rowKey(['ab', 'c'], undefined));
  });

  it('starts afresh for each subscription (each file)', async () => {
    const op = dedupe({ columns: ['id'] });
    expect(await run(op, [header, ['1', 'x', 'y']])).toHaveLength(2);
    expect(await run(op, [header, ['1', 'x', 'y']])).toHaveLength(2);
  });

  it('is row-preserving and refuses an empty key list', () => {
    expect(preservesRows(dedupe())).toBe(true);
    expect(() => dedupe({ columns: [] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', field: 'dedupe.columns' }));
  });

  it('holds at most maxKeys distinct keys: repeats still drop at the cap, a new key past it fails the file', async () => {
    const op = dedupe({ columns: ['id'], maxKeys: 3 });
    const atCap = [header, ['1', 'x', 'y'], ['2', 'x', 'y'], ['3', 'x', 'y'], ['2', 'q', 'q'], ['1', 'q', 'q']];
    expect(await run(op, atCap)).toEqual([header, ['1', 'x', 'y'], ['2', 'x', 'y'], ['3', 'x', 'y']]);
    await expect(run(op, [...atCap, ['4', 'x', 'y']])).rejects.toMatchObject({
      code: 'DEDUPE_TOO_MANY_KEYS',
      field: 'dedupe.maxKeys',
      message: expect.stringContaining('3 distinct keys'),
    });
  });

  it('fails with UNKNOWN_COLUMN for a key the header lacks', async () => {
    await expect(run(dedupe({ columns: ['key'] }), [header])).rejects.toMatchObject({ code: 'UNKNOWN_COLUMN', field: 'key' });
  });

  it('marbles: drops repeats, passes errors, unsubscribes early', () => {
    const values = { h: header, a: ['1', 'x', 'y'], b: ['2', 'x', 'y'] };
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('-h-a-b-a-|', values);
      expectObservable(src.pipe(dedupe({ columns: ['id'] }))).toBe('-h-a-b---|', values);
      expectObservable(cold('-h-a-a-#', values).pipe(dedupe())).toBe('-h-a---#', values);
      const early = cold('-h-a-b-|', values);
      expectObservable(early.pipe(dedupe()), '^--!').toBe('-h-', values);
      expectSubscriptions(early.subscriptions).toBe('^--!');
    });
  });
});
