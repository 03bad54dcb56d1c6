// Unit tests for select: keeps and orders columns, resolves names once, errors and teardown as marbles.
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/errors.js';
import { select } from '../../src/operators/select.js';
import type { Row } from '../../src/row.js';

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const header: Row = ['id', 'email', 'amount', 'country'];

describe('select', () => {
  it('keeps the columns in the order given, header included', async () => {
    const out = await lastValueFrom(from([header, ['1', 'a@x', '10', 'FR'], ['2', '', '5', 'DE']]).pipe(select(['amount', 'id']), toArray()));
    expect(out).toEqual([
      ['amount', 'id'],
      ['10', '1'],
      ['5', '2'],
    ]);
  });

  it('emits a header-only stream as the new header', async () => {
    expect(await lastValueFrom(from([header]).pipe(select(['country']), toArray()))).toEqual([['country']]);
  });

  it('refuses an empty list or a repeated name when built', () => {
    expect(() => select([])).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => select(['id', 'id'])).toThrow(/column "id" is listed twice/);
  });

  it("does not keep the caller's array (changing it later changes nothing)", async () => {
    const cols = ['id'];
    const op = select(cols);
    cols.push('email');
    expect(await lastValueFrom(from([header, ['1', 'a', '2', 'FR']]).pipe(op, toArray()))).toEqual([['id'], ['1']]);
  });

  describe('marbles', () => {
    const values = { h: header, a: ['1', 'a@x', '10', 'FR'], b: ['2', 'b@x', '20', 'DE'] };
    const expected = { H: ['email', 'id'], A: ['a@x', '1'], B: ['b@x', '2'] };

    it('maps header and rows, completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-|', values);
        expectObservable(src.pipe(select(['email', 'id']))).toBe('-H-A-B-|', expected);
        expectSubscriptions(src.subscriptions).toBe('^------!');
      });
    });

    it('errors with UNKNOWN_COLUMN on the header and unsubscribes from the source', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-|', values);
        const err = expect.objectContaining({ code: 'UNKNOWN_COLUMN', field: 'mail', line: 1 }) as unknown as SluiceError;
        expectObservable(src.pipe(select(['id', 'mail']))).toBe('-#', undefined, err);
        expectSubscriptions(src.subscriptions).toBe('^!');
      });
    });

    it('passes a source error through', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('-h-a-#', values, new Error('read')).pipe(select(['email', 'id']))).toBe('-H-A-#', expected, new Error('read'));
      });
    });

    it('unsubscribes from the source early', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-|', values);
        expectObservable(src.pipe(select(['email', 'id'])), '^--!').toBe('-H-', expected);
        expectSubscriptions(src.subscriptions).toBe('^--!');
      });
    });
  });
});
