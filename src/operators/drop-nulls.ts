// dropNulls: pandas' DataFrame.dropna for rows: drop a row when its fields are null (empty by default).
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';
import { defineOperator, everyFile } from './definition.js';
import { columnIndexes, markRowPreserving, rowOperator } from './row-operator.js';

export interface DropNullsOptions {
  /** `any` (default): drop a row if any considered field is null; `all`: only if all of them are. */
  how?: 'any' | 'all';
  /** Consider only these columns (pandas `subset`). Default: every column. */
  columns?: readonly string[];
  /**
   * Field values that count as null: a list, or `'pandas'` for pandas' default NA tokens of `read_csv`
   * (`PANDAS_NULL_VALUES`). Default `['']` (an empty field).
   */
  nullValues?: readonly string[] | 'pandas';
  /** Trim surrounding whitespace (as `String.prototype.trim`) from a field before comparing. Default false. */
  trim?: boolean;
  /** Keep a row only if it has at least this many non-null considered fields; overrides `how`. */
  thresh?: number;
}

/**
 * pandas' default NA tokens of `read_csv` (`keep_default_na=True`), as its documentation lists them
 * (pandas 2.x; `None` joined in 2.0). Matched exactly: case and surrounding spaces count (`'NA '`,
 * `'none'` are values), unless `trim` is on.
 */
export const PANDAS_NULL_VALUES: readonly string[] = Object.freeze([
  '',
  '#N/A',
  '#N/A N/A',
  '#NA',
  '-1.#IND',
  '-1.#QNAN',
  '-NaN',
  '-nan',
  '1.#IND',
  '1.#QNAN',
  '<NA>',
  'N/A',
  'NA',
  'NULL',
  'NaN',
  'None',
  'n/a',
  'nan',
  'null',
]);

/** The pure predicate behind dropNulls: true when the row is kept. */
export function nullRowTest(options: DropNullsOptions, indexes: readonly number[] | undefined): (row: Row) => boolean {
  const nulls = options.nullValues === 'pandas' ? PANDAS_NULL_VALUES : (options.nullValues ?? ['']);
  const trim = options.trim === true;
  // the default (untrimmed empty field) keeps its fast path: no Set lookup, `includes('')` on whole rows
  const onlyEmpty = !trim && nulls.length === 1 && nulls[0] === '';
  const set = new Set(nulls);
  const isNull = onlyEmpty
    ? (v: string | undefined) => v === ''
    : trim
      ? (v: string | undefined) => v !== undefined && set.has(v.trim())
      : (v: string | undefined) => v !== undefined && set.has(v);
  const { thresh } = options;
  if (thresh !== undefined) {
    return (row) => {
      let present = 0;
      if (indexes === undefined) for (const v of row) present += isNull(v) ? 0 : 1;
      else for (const i of indexes) present += isNull(row[i]) ? 0 : 1;
      return present >= thresh;
    };
  }
  if ((options.how ?? 'any') === 'any') {
    if (indexes === undefined) {
      if (onlyEmpty) return (row) => !row.includes('');
      return (row) => !row.some(isNull);
    }
    return (row) => {
      for (const i of indexes) if (isNull(row[i])) return false;
      return true;
    };
  }
  if (indexes === undefined) return (row) => !row.every(isNull);
  return (row) => {
    for (const i of indexes) if (!isNull(row[i])) return true;
    return false;
  };
}

const invalid = (option: string, message: string): SluiceError =>
  new SluiceError('CONFIG_INVALID', `dropNulls.${option}: ${message}`, { field: `dropNulls.${option}` });

/**
 * Drops rows whose fields are null, with pandas `dropna` semantics (`how`, `subset` as `columns`,
 * `thresh`). Dropped rows are counted as filtered, not rejected. What is null: `nullValues` (default an
 * empty field; `'pandas'`: what `pd.read_csv(f).dropna()` treats as missing), compared after trimming
 * with `trim: true`.
 *
 * @example rows$.pipe(dropNulls({ how: 'all', columns: ['email', 'phone'] }))
 * @example rows$.pipe(dropNulls({ nullValues: 'pandas', trim: true }))
 * @param options `how`, `columns`, `thresh`, `nullValues`, `trim`.
 * @throws CONFIG_INVALID for a bad `how`, `thresh` or `nullValues` (when built, naming the field);
 * UNKNOWN_COLUMN when `columns` names a column the header lacks.
 */
export function dropNulls(options: DropNullsOptions = {}): OperatorFunction<Row, Row> {
  const how = options.how ?? 'any';
  if (how !== 'any' && how !== 'all') throw invalid('how', `expected "any" or "all", got ${JSON.stringify(how)}`);
  if (options.thresh !== undefined && !(Number.isInteger(options.thresh) && options.thresh >= 0)) {
    throw invalid('thresh', `expected a whole number >= 0, got ${options.thresh}`);
  }
  const nv: unknown = options.nullValues;
  if (nv !== undefined && nv !== 'pandas' && !(Array.isArray(nv) && nv.every((v) => typeof v === 'string'))) {
    throw invalid('nullValues', `expected a list of strings or "pandas", got ${JSON.stringify(nv)}`);
  }
  return markRowPreserving(
    rowOperator((header) => {
      const indexes = options.columns === undefined ? undefined : columnIndexes(header, options.columns, 'dropNulls');
      const keep = nullRowTest(options, indexes);
      return { header, row: (row) => (keep(row) ? row : undefined) };
    }),
  );
}

/** The `dropNulls` step. */
export const dropNullsStep = defineOperator({
  name: 'dropNulls',
  // a row at a time, the same in any slice of a file: a large file may be cut across workers
  rowLocal: () => true,
  schema: z
    .strictObject({
      how: z.enum(['any', 'all']).default('any').describe('`any`: drop a row with any null field; `all`: only when every considered field is null.'),
      columns: z.array(z.string()).min(1).optional().describe('Only consider these columns (pandas `subset`).'),
      nullValues: z
        .union([z.literal('pandas'), z.array(z.string())])
        .default([''])
        .describe("Values that count as null: a list, or `pandas` for pandas' default NA tokens."),
      thresh: z.number().int().min(0).optional().describe('Keep rows with at least this many non-null fields (overrides `how`).'),
      trim: z.boolean().default(false).describe('Trim spaces before comparing with the null values.'),
    })
    .describe('Drop rows with null fields (pandas dropna).'),
  build: (options) => everyFile(dropNulls(options)),
});
