// Unit tests for filter: ops, the number-or-text rule, all/any, checks at build, marbles.
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/errors.js';
import { filter, type FilterPredicate } from '../../src/operators/filter.js';
import { preservesRows } from '../../src/operators/row-operator.js';
import type { Row } from '../../src/row.js';

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const header: Row = ['id', 'amount', 'country', 'code'];
const rows: Row[] = [
  ['1', '250', 'FR', '007'],
  ['2', '99.5', 'DE', '7'],
  ['3', '', 'fr', '10'],
  ['4', 'n/a', 'IT', '9'],
  ['5', ' 1e3 ', 'FR', 'A-1'],
  ['6', '100', 'ES', ''],
];

async function ids(p: FilterPredicate): Promise<string[]> {
  const out = await lastValueFrom(from([header, ...rows]).pipe(filter(p), toArray()));
  expect(out[0]).toEqual(header);
  return out.slice(1).map((r) => r[0]!);
}

describe('filter', () => {
  it('a number value compares numerically; a non-number field fails all but ne', async () => {
    expect(await ids({ column: 'amount', op: 'gt', value: 100 })).toEqual(['1', '5']);
    expect(await ids({ column: 'amount', op: 'ge', value: 100 })).toEqual(['1', '5', '6']);
    expect(await ids({ column: 'amount', op: 'lt', value: 100 })).toEqual(['2']);
    expect(await ids({ column: 'amount', op: 'le', value: 100 })).toEqual(['2', '6']);
    expect(await ids({ column: 'amount', op: 'eq', value: 1000 })).toEqual(['5']);
    expect(await ids({ column: 'amount', op: 'ne', value: 100 })).toEqual(['1', '2', '3', '4', '5']);
    expect(await ids({ column: 'code', op: 'eq', value: 7 })).toEqual(['1', '2']);
  });

  it('a string value compares as exact text in code-unit order', async () => {
    expect(await ids({ column: 'code', op: 'eq', value: '007' })).toEqual(['1']);
    expect(await ids({ column: 'country', op: 'eq', value: 'FR' })).toEqual(['1', '5']);
    expect(await ids({ column: 'country', op: 'ne', value: 'FR' })).toEqual(['2', '3', '4', '6']);
    expect(await ids({ column: 'code', op: 'lt', value: '10' })).toEqual(['1', '6']); // '9' > '10' as text
    expect(await ids({ column: 'code', op: 'eq', value: '' })).toEqual(['6']);
  });

  it('in: each element compares by its own type', async () => {
    expect(await ids({ column: 'country', op: 'in', value: ['FR', 'DE'] })).toEqual(['1', '2', '5']);
    expect(await ids({ column: 'code', op: 'in', value: [10, 'A-1'] })).toEqual(['3', '5']);
    expect(await ids({ column: 'code', op: 'in', value: [] })).toEqual([]);
  });

  it('matches: an unanchored pattern, /…/flags for flags', async () => {
    expect(await ids({ column: 'country', op: 'matches', value: 'R' })).toEqual(['1', '5']);
    expect(await ids({ column: 'country', op: 'matches', value: '/^fr$/i' })).toEqual(['1', '3', '5']);
    expect(await ids({ column: 'code', op: 'matches', value: '^\\d+$' })).toEqual(['1', '2', '3', '4']);
  });

  it('all and any combine, nested', async () => {
    expect(
      await ids({
        all: [
          { column: 'country', op: 'eq', value: 'FR' },
          { column: 'amount', op: 'gt', value: 300 },
        ],
      }),
    ).toEqual(['5']);
    expect(
      await ids({
        any: [
          { column: 'country', op: 'eq', value: 'IT' },
          {
            all: [
              { column: 'amount', op: 'ge', value: 100 },
              { column: 'code', op: 'eq', value: '' },
            ],
          },
        ],
      }),
    ).toEqual(['4', '6']);
    expect(await ids({ all: [] })).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(await ids({ any: [] })).toEqual([]);
  });

  it('passes kept rows as the same arrays and is row-preserving (original text may pass)', async () => {
    const r: Row = ['1', '2', 'FR', 'x'];
    const op = filter({ column: 'country', op: 'eq', value: 'FR' });
    const out = await lastValueFrom(from([header, r]).pipe(op, toArray()));
    expect(out[1]).toBe(r);
    expect(preservesRows(op)).toBe(true);
  });

  it('checks the predicate when built, naming its path', () => {
    const bad = (p: unknown) => () => filter(p as FilterPredicate);
    expect(
      bad({
        all: [
          { column: 'a', op: 'eq', value: 1 },
          { column: 'a', op: 'like', value: 'x' },
        ],
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        field: 'filter.all[1].op',
        message: 'filter.all[1].op: got "like"; expected one of eq|ne|lt|le|gt|ge|in|matches',
      }),
    );
    expect(bad({ column: 'a', op: 'in', value: 'x' })).toThrow(/filter.value: op "in" needs a list/);
    expect(bad({ column: 'a', op: 'eq', value: ['x'] })).toThrow(/filter.value: expected a string or a finite number/);
    expect(bad({ column: 'a', op: 'eq', value: Number.NaN })).toThrow(/finite number/);
    expect(bad({ column: 'a', op: 'matches', value: '(' })).toThrow(/filter.value: not a valid pattern/);
    expect(bad({ column: 'a', op: 'matches', value: '/x/g' })).toThrow(/flag "g" is not allowed/);
    expect(bad({ column: 'a', op: 'eq' })).toThrow(/expected \{ column, op, value \}/);
    expect(bad({ any: {} })).toThrow(/filter.any: expected a list of predicates/);
  });

  describe('marbles', () => {
    const values = { h: header, a: rows[0]!, b: rows[1]!, c: rows[2]! };
    const p: FilterPredicate = { column: 'amount', op: 'gt', value: 200 };

    it('emits the header and matching rows, completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-|', values);
        expectObservable(src.pipe(filter(p))).toBe('-h-a-----|', values);
        expectSubscriptions(src.subscriptions).toBe('^--------!');
      });
    });

    it('errors with UNKNOWN_COLUMN on the header and unsubscribes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-|', values);
        const err = expect.objectContaining({ code: 'UNKNOWN_COLUMN', field: 'price' }) as unknown as SluiceError;
        expectObservable(src.pipe(filter({ any: [p, { column: 'price', op: 'eq', value: 1 }] }))).toBe('-#', undefined, err);
        expectSubscriptions(src.subscriptions).toBe('^!');
      });
    });

    it('passes a source error through', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('-h-a-b-#', values, new Error('read')).pipe(filter(p))).toBe('-h-a---#', values, new Error('read'));
      });
    });

    it('unsubscribes from the source early', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-|', values);
        expectObservable(src.pipe(filter(p)), '^----!').toBe('-h-a-', values);
        expectSubscriptions(src.subscriptions).toBe('^----!');
      });
    });
  });
});
