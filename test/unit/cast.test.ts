// Unit tests for cast: canonical text per type, reject/null policies with line and raw, marbles.
import { from, Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../../src/errors.js';
import { FileContext } from '../../src/file-context.js';
import { cast, rowToCsv, type CastSpec } from '../../src/operators/cast.js';
import { castBoolean, castDate, castInteger, castNumber, castTimestamp, parseDecimal } from '../../src/operators/cast-values.js';
import type { Rejection, Row } from '../../src/row.js';

const testScheduler = (): TestScheduler => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('cast values', () => {
  it('integer: exact 64-bit values, no sign + or leading zeros', () => {
    expect(['7', '+007', '-0', '-00012', ' 42 ', '9223372036854775807', '-9223372036854775808', '0009223372036854775807'].map(castInteger)).toEqual([
      '7',
      '7',
      '0',
      '-12',
      '42',
      '9223372036854775807',
      '-9223372036854775808',
      '9223372036854775807',
    ]);
    expect(
      ['1.0', '1e3', '0x10', '1,000', '--1', '+', '12a', '', '9223372036854775808', '-9223372036854775809', '123456789012345678901234567890'].map(castInteger),
    ).toEqual(Array(11).fill(undefined));
  });

  it('number: shortest round-trip double text', () => {
    expect(['1.50', '1e3', '.5', '-0', '+2.', '1E-7', ' 3 ', '0.1'].map(castNumber)).toEqual(['1.5', '1000', '0.5', '0', '2', '1e-7', '3', '0.1']);
    expect(['NaN', 'Infinity', '1e400', '0x1A', '1,5', '.', 'e5', '1e', ''].map(castNumber)).toEqual(Array(9).fill(undefined));
  });

  it('parseDecimal: the number rule shared with filter', () => {
    expect(parseDecimal(' -1.5e2 ')).toBe(-150);
    expect(parseDecimal('abc')).toBeUndefined();
    expect(parseDecimal('')).toBeUndefined();
  });

  it('boolean: common spellings in any case', () => {
    expect(['true', 'T', 'Yes', 'y', 'ON', '1', 'false', 'F', 'no', 'N', 'off', '0'].map(castBoolean)).toEqual([
      ...Array(6).fill('true'),
      ...Array(6).fill('false'),
    ]);
    expect(['2', 'ja', 'truee', ''].map(castBoolean)).toEqual(Array(4).fill(undefined));
  });

  it('date: ISO dates that exist', () => {
    expect(['2024-02-29', ' 1999-12-31 ', '0001-01-01'].map(castDate)).toEqual(['2024-02-29', '1999-12-31', '0001-01-01']);
    expect(['2023-02-29', '1900-02-29', '2024-13-01', '2024-04-31', '0000-01-01', '2024-1-5', '05/01/2024', '2024-01-01T00:00'].map(castDate)).toEqual(
      Array(8).fill(undefined),
    );
  });

  it('timestamp: zoned -> UTC instant, local stays local; seconds added, fraction kept', () => {
    expect(castTimestamp('2024-05-01T12:00:00+02:00')).toBe('2024-05-01T10:00:00Z');
    expect(castTimestamp('2024-05-01 12:30+0530')).toBe('2024-05-01T07:00:00Z');
    expect(castTimestamp('2024-01-01T00:30:00-01')).toBe('2024-01-01T01:30:00Z');
    expect(castTimestamp('2023-12-31T23:59:59.123456789z')).toBe('2023-12-31T23:59:59.123456789Z');
    expect(castTimestamp('2024-03-01T00:00:00+01:00')).toBe('2024-02-29T23:00:00Z');
    expect(castTimestamp('0050-06-01T00:00:00Z')).toBe('0050-06-01T00:00:00Z');
    expect(castTimestamp('2024-05-01T12:00')).toBe('2024-05-01T12:00:00');
    expect(castTimestamp('2024-05-01T12:00:00,500')).toBe('2024-05-01T12:00:00.5');
    expect(castTimestamp('2024-05-01T12:00:00.000')).toBe('2024-05-01T12:00:00');
    for (const bad of [
      '2024-05-01',
      '2024-05-01T24:00',
      '2024-05-01T12:60',
      '2024-02-30T00:00',
      '2024-05-01T12:00:00+25:00',
      '0001-01-01T00:00:00+01:00',
      'yesterday',
      '1714560000',
    ]) {
      expect(castTimestamp(bad), bad).toBeUndefined();
    }
  });
});

describe('cast', () => {
  const header: Row = ['id', 'amount', 'paid', 'day'];
  const spec: CastSpec = { id: 'integer', amount: { type: 'number', onError: 'null' }, paid: 'boolean', day: { type: 'date' } };

  function run(rows: Row[], s: CastSpec = spec, lines?: number[]) {
    const rejected: Rejection[] = [];
    const ctx = new FileContext('orders.csv', { onReject: (r) => rejected.push(r) });
    // rows flow synchronously: the source sets the line of each row before emitting it, as parseCsv does
    const src = from(rows.map((r, i) => ({ r, line: lines?.[i] ?? i + 1 })));
    const out: Row[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const rows$ = new Observable<Row>((sub) =>
        src.subscribe({
          next: ({ r, line }) => {
            ctx.line = line;
            sub.next(r);
          },
          complete: () => sub.complete(),
          error: (e) => sub.error(e),
        }),
      );
      rows$.pipe(cast(s, { context: ctx })).subscribe({ next: (r) => out.push(r), complete: resolve, error: reject });
    });
    return done.then(() => ({ out, rejected, ctx }));
  }

  it('writes canonical values and keeps empty fields empty', async () => {
    const { out, rejected } = await run([header, ['007', '1.50', 'Yes', '2024-02-29'], ['-3', '', 'f', ''], ['4', ' ', '0', ' ']]);
    expect(out).toEqual([header, ['7', '1.5', 'true', '2024-02-29'], ['-3', '', 'false', ''], ['4', '', 'false', '']]);
    expect(rejected).toEqual([]);
  });

  it("onError 'null' empties the field; 'reject' drops the row to context.reject with its line, code, message and raw", async () => {
    const { out, rejected, ctx } = await run(
      [header, ['1', 'abc', 'yes', '2024-01-01'], ['x2', '5', 'maybe', '2024-01-01'], ['3', '2', 'no', '2024-02-30'], ['4', '1e2', 'y', '2024-01-02']],
      spec,
      [1, 2, 5, 9, 10],
    );
    expect(out).toEqual([header, ['1', '', 'true', '2024-01-01'], ['4', '100', 'true', '2024-01-02']]);
    expect(rejected).toEqual([
      {
        line: 5,
        code: 'CAST_FAILED',
        message: 'cast: column "id": "x2" is not an integer; column "paid": "maybe" is not a boolean',
        raw: Buffer.from('x2,5,maybe,2024-01-01'),
      },
      { line: 9, code: 'CAST_FAILED', message: 'cast: column "day": "2024-02-30" is not a date', raw: Buffer.from('3,2,no,2024-02-30') },
    ]);
    expect(ctx.counts.rejected).toBe(2);
  });

  it('a rejected row is re-encoded as the CSV this operator received, unchanged by earlier casts', async () => {
    const { rejected } = await run(
      [
        ['n', 'note', 'k'],
        ['+1', 'say "hi", then', 'bad'],
      ],
      { n: 'integer', k: 'boolean' },
    );
    expect(rejected[0]?.raw.toString()).toBe('+1,"say ""hi"", then",bad');
    expect(rowToCsv(['a', 'b\nc', '']).toString()).toBe('a,"b\nc",');
  });

  it('fails with UNKNOWN_COLUMN for a column the header lacks', async () => {
    await expect(run([['id']], { amount: 'number' })).rejects.toMatchObject({ code: 'UNKNOWN_COLUMN', field: 'amount' });
  });

  it('refuses an unknown type or onError when built', () => {
    expect(() => cast({ a: 'money' as 'number' })).toThrow(/cast.a: got type "money"; expected one of string\|integer\|number\|boolean\|date\|timestamp/);
    expect(() => cast({ a: { type: 'number', onError: 'skip' as 'null' } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', field: 'cast.a.onError' }),
    );
  });

  it('string and timestamp columns', async () => {
    const { out } = await run(
      [
        ['s', 't'],
        [' keep ', '2024-05-01T12:00:00+02:00'],
      ],
      { s: 'string', t: 'timestamp' },
    );
    expect(out).toEqual([
      ['s', 't'],
      [' keep ', '2024-05-01T10:00:00Z'],
    ]);
  });

  describe('marbles', () => {
    const input = () => ({ h: ['id', 'n'], a: ['01', '2.50'], b: ['2', 'x'], c: ['3', '1e1'] });
    const expected = { h: ['id', 'n'], a: ['1', '2.5'], c: ['3', '10'] };

    it('casts rows, drops rejected ones to the context, completes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const rejected: Rejection[] = [];
        const ctx = new FileContext('f.csv', { onReject: (r) => rejected.push(r) });
        const src = cold('-h-a-b-c-|', input());
        expectObservable(src.pipe(cast({ id: 'integer', n: 'number' }, { context: ctx }))).toBe('-h-a---c-|', expected);
        expectSubscriptions(src.subscriptions).toBe('^--------!');
      });
    });

    it('without a context, errors with CAST_FAILED at the first rejected row and unsubscribes', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-|', input());
        const err = expect.objectContaining({ code: 'CAST_FAILED', field: 'n', message: 'cast: column "n": "x" is not a number' }) as unknown as SluiceError;
        expectObservable(src.pipe(cast({ id: 'integer', n: 'number' }))).toBe('-h-a-#', expected, err);
        expectSubscriptions(src.subscriptions).toBe('^----!');
      });
    });

    it('passes a source error through', () => {
      testScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('-h-a-#', input(), new Error('read')).pipe(cast({ id: 'integer', n: 'number' }))).toBe('-h-a-#', expected, new Error('read'));
      });
    });

    it('unsubscribes from the source early', () => {
      testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const src = cold('-h-a-b-c-|', input());
        expectObservable(src.pipe(cast({ n: { type: 'number', onError: 'null' } })), '^--!').toBe('-h-', { h: ['id', 'n'] });
        expectSubscriptions(src.subscriptions).toBe('^--!');
      });
    });
  });
});
