// dropNulls' pandas preset and trim, against what pandas' dropna kept (test/fixtures/pandas-na, committed data).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { dropNulls, PANDAS_NULL_VALUES, type DropNullsOptions } from '../../src/operators/drop-nulls.js';
import { parseCsv } from '../../src/operators/parse-csv.js';
import type { Row } from '../../src/row.js';

const DIR = resolve(import.meta.dirname, '../fixtures/pandas-na');
const file = (name: string): Buffer => readFileSync(resolve(DIR, name));

async function rowsOf(csv: Buffer, ...ops: Array<ReturnType<typeof dropNulls>>): Promise<Row[]> {
  return lastValueFrom(ops.reduce((o, op) => o.pipe(op), from([csv]).pipe(parseCsv())).pipe(toArray()));
}

describe('dropNulls nullValues: pandas', () => {
  const meta = JSON.parse(file('pandas.json').toString('utf8')) as { pandas: string; STR_NA_VALUES: string[]; extraNaValues: string[] };

  it("is pandas' default NA list (the generator's pandas, plus None for pandas < 2.0)", () => {
    expect([...PANDAS_NULL_VALUES].sort()).toEqual([...meta.STR_NA_VALUES, ...meta.extraNaValues].sort());
    expect(PANDAS_NULL_VALUES).toHaveLength(19);
  });

  const cases: Array<[string, DropNullsOptions]> = [
    ['expected-any.csv', { nullValues: 'pandas' }],
    ['expected-all-subset.csv', { nullValues: 'pandas', how: 'all', columns: ['value', 'other'] }],
    ['expected-thresh2.csv', { nullValues: 'pandas', thresh: 2 }],
  ];
  it.each(cases)('keeps exactly the rows of %s', async (expectedFile, options) => {
    const expected = await rowsOf(file(expectedFile));
    const actual = await rowsOf(file('input.csv'), dropNulls(options));
    // pandas writes a missing value back as an empty field; every other field is the input's text
    const nulls = new Set(PANDAS_NULL_VALUES);
    expect(actual.map((r, i) => (i === 0 ? r : r.map((v) => (nulls.has(v) ? '' : v))))).toEqual(expected);
    expect(actual.length).toBeGreaterThan(30);
  });

  it('the fixture exercises every token and keeps every near-miss', async () => {
    const input = await rowsOf(file('input.csv'));
    const values = new Set(input.slice(1).flatMap((r) => r.slice(1)));
    for (const token of PANDAS_NULL_VALUES) expect(values).toContain(token);
    const kept = await rowsOf(file('expected-any.csv'));
    expect(kept.map((r) => r[0])).toContain('r39'); // 'NA ' is a value for pandas
    expect(kept.some((r) => r.includes('none'))).toBe(true);
    expect(kept.some((r) => r.includes('NA'))).toBe(false);
  });
});

describe('dropNulls trim', () => {
  const header: Row = ['id', 'v'];
  const data: Row[] = [
    ['1', 'NA '],
    ['2', ' '],
    ['3', '\tnull\t'],
    ['4', ' x '],
    ['5', ''],
    ['6', 'none'],
  ];
  const kept = async (options: DropNullsOptions): Promise<string[]> => {
    const out = await lastValueFrom(from([header, ...data.map((r) => [...r])]).pipe(dropNulls(options), toArray()));
    expect(out[0]).toEqual(header);
    return out.slice(1).map((r) => r[0]!);
  };

  it('compares trimmed fields with the pandas preset', async () => {
    expect(await kept({ nullValues: 'pandas' })).toEqual(['1', '2', '3', '4', '6']);
    expect(await kept({ nullValues: 'pandas', trim: true })).toEqual(['4', '6']);
  });

  it('makes a blank field null with the default empty-field rule', async () => {
    expect(await kept({})).toEqual(['1', '2', '3', '4', '6']);
    expect(await kept({ trim: true })).toEqual(['1', '3', '4', '6']);
    expect(await kept({ trim: true, nullValues: ['NA', 'null'] })).toEqual(['2', '4', '5', '6']);
  });

  it('keeps fields unchanged: trimming is for the comparison only', async () => {
    const out = await lastValueFrom(from([header, ['7', ' x ']]).pipe(dropNulls({ trim: true }), toArray()));
    expect(out[1]).toEqual(['7', ' x ']);
  });

  it('refuses a nullValues that is neither a list nor "pandas"', () => {
    expect(() => dropNulls({ nullValues: 'numpy' as 'pandas' })).toThrow('dropNulls.nullValues: expected a list of strings or "pandas", got "numpy"');
    expect(() => dropNulls({ nullValues: [1] as unknown as string[] })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', field: 'dropNulls.nullValues' }),
    );
  });
});
