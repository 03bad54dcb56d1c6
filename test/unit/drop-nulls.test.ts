// Unit tests for dropNulls: pandas dropna semantics on rows, as marble tests and on plain arrays.
import { describe, expect, it } from 'vitest';
import { lastValueFrom, from, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { SluiceError } from '../../src/errors.js';
import { dropNulls, nullRowTest, type DropNullsOptions } from '../../src/operators/drop-nulls.js';
import type { Row } from '../../src/row.js';

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

const header: Row = ['id', 'email', 'phone'];
const rows: Row[] = [
  ['1', 'a@x', '555'], // full
  ['2', '', '555'], // email empty
  ['3', '', ''], // email and phone empty
  ['', '', ''], // all empty
  ['5', 'NA', 'n/a'], // null markers
];

/** The ids (first field, or '(blank)') of the rows dropNulls keeps; the header must come out first. */
async function kept(options: DropNullsOptions): Promise<string[]> {
  const out = await lastValueFrom(from([header, ...rows.map((r) => [...r])]).pipe(dropNulls(options), toArray()));
  expect(out[0]).toEqual(header);
  return out.slice(1).map((r) => (r[0] === '' ? '(blank)' : r[0]!));
}

describe('dropNulls', () => {
  it('how any (default): drops a row with any empty field', async () => {
    expect(await kept({})).toEqual(['1', '5']);
    expect(await kept({ how: 'any' })).toEqual(['1', '5']);
  });

  it('how all: drops only a row whose fields are all empty', async () => {
    expect(await kept({ how: 'all' })).toEqual(['1', '2', '3', '5']);
  });

  it('columns: considers only those columns', async () => {
    expect(await kept({ columns: ['phone'] })).toEqual(['1', '2', '5']);
    expect(await kept({ how: 'all', columns: ['email', 'phone'] })).toEqual(['1', '2', '5']);
    expect(await kept({ how: 'any', columns: ['id'] })).toEqual(['1', '2', '3', '5']);
  });

  it('thresh: keeps a row with at least that many non-null fields, overriding how', async () => {
    expect(await kept({ thresh: 2 })).toEqual(['1', '2', '5']);
    expect(await kept({ thresh: 3, how: 'all' })).toEqual(['1', '5']);
    expect(await kept({ thresh: 1, columns: ['email', 'phone'] })).toEqual(['1', '2', '5']);
    expect(await kept({ thresh: 0 })).toEqual(['1', '2', '3', '(blank)', '5']);
  });

  it('nullValues: replaces the default, so an empty field is not null unless listed', async () => {
    expect(await kept({ nullValues: ['NA', 'n/a'] })).toEqual(['1', '2', '3', '(blank)']);
    expect(await kept({ nullValues: ['', 'NA'], columns: ['email'] })).toEqual(['1']);
    expect(await kept({ nullValues: ['', 'NA', 'n/a'], how: 'all', columns: ['email', 'phone'] })).toEqual(['1', '2']);
    expect(await kept({ nullValues: ['NA', 'n/a'], thresh: 2, columns: ['email', 'phone'] })).toEqual(['1', '2', '3', '(blank)']);
    expect(await kept({ nullValues: [] })).toEqual(['1', '2', '3', '(blank)', '5']);
  });

  it('passes rows through unchanged (the same arrays)', async () => {
    const r: Row = ['1', 'a', 'b'];
    const out = await lastValueFrom(from([header, r]).pipe(dropNulls(), toArray()));
    expect(out[1]).toBe(r);
  });

  it('rejects bad options when built, naming the field', () => {
    const invalid = (field: string) => expect.objectContaining({ code: 'CONFIG_INVALID', field });
    expect(() => dropNulls({ how: 'some' as 'any' })).toThrow(invalid('dropNulls.how'));
    expect(() => dropNulls({ how: 'some' as 'any' })).toThrow('dropNulls.how: expected "any" or "all", got "some"');
    expect(() => dropNulls({ thresh: -1 })).toThrow(invalid('dropNulls.thresh'));
    expect(() => dropNulls({ thresh: 1.5 })).toThrow('dropNulls.thresh: expected a whole number >= 0, got 1.5');
  });

  it('nullRowTest is the same predicate without RxJS', () => {
    const keep = nullRowTest({ how: 'all' }, [1, 2]);
    expect(rows.map(keep)).toEqual([true, true, false, false, true]);
  });

  describe('marbles', () => {
    const values = { h: header, a: ['1', 'a@x', '555'], b: ['2', '', '555'], c: ['3', 'c@x', ''], d: ['4', 'd@x', '5'] };

    it('emits the header, drops null rows, completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-d-|', values);
        expectObservable(src.pipe(dropNulls())).toBe('-h-a-----d-|', values);
        expectSubscriptions(src.subscriptions).toBe('^----------!');
      });
    });

    it('passes the header through even when every data row is dropped', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('-h-b-|', values).pipe(dropNulls())).toBe('-h---|', values);
        expectObservable(cold<Row>('|').pipe(dropNulls())).toBe('|');
      });
    });

    it('errors with UNKNOWN_COLUMN on the header and unsubscribes from the source', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-|', values);
        const expectedError = expect.objectContaining({ code: 'UNKNOWN_COLUMN', field: 'mail' }) as unknown as SluiceError;
        expectObservable(src.pipe(dropNulls({ columns: ['id', 'mail'] }))).toBe('-#', undefined, expectedError);
        expectSubscriptions(src.subscriptions).toBe('^!');
      });
    });

    it('passes a source error through', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-#', values, new Error('read'));
        expectObservable(src.pipe(dropNulls())).toBe('-h-a-#', values, new Error('read'));
        expectSubscriptions(src.subscriptions).toBe('^----!');
      });
    });

    it('unsubscribes from the source early', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-d-|', values);
        expectObservable(src.pipe(dropNulls()), '^----!').toBe('-h-a-', values);
        expectSubscriptions(src.subscriptions).toBe('^----!');
      });
    });
  });

  it('names the column and the header in the UNKNOWN_COLUMN error', async () => {
    const err = await lastValueFrom(from([header]).pipe(dropNulls({ columns: ['mail'] }))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).toMatchObject({ code: 'UNKNOWN_COLUMN', field: 'mail', line: 1 });
    expect((err as Error).message).toBe('dropNulls: column "mail" is not in the header ("id", "email", "phone")');
  });
});
