// filter: keeps the rows that match a small declarative predicate (column, op, value; all / any).
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';
import { parseDecimal } from './cast-values.js';
import { defineOperator, everyFile, type ReadonlyDeep } from './definition.js';
import { columnIndexes, markRowPreserving, rowOperator } from './row-operator.js';

const COMPARE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
type CompareOp = (typeof COMPARE_OPS)[number];
const FILTER_OPS = [...COMPARE_OPS, 'in', 'matches'] as const;

const filterValue = z.union([z.string(), z.number()]);

const condition = z.strictObject({
  column: z.string().min(1),
  op: z.enum(FILTER_OPS),
  value: z.union([z.string(), z.number(), z.array(filterValue)]),
});

const predicate = z.union([
  condition,
  z.strictObject({
    get all(): z.ZodArray<typeof predicate> {
      return z.array(predicate).min(1);
    },
  }),
  z.strictObject({
    get any(): z.ZodArray<typeof predicate> {
      return z.array(predicate).min(1);
    },
  }),
]);

export type FilterOp = (typeof FILTER_OPS)[number];
export type FilterValue = z.output<typeof filterValue>;

/** A condition on one column, or a combination of conditions (the filter step's value). */
export type FilterPredicate = ReadonlyDeep<z.output<typeof predicate>>;

/** A predicate checked and compiled (numbers and patterns ready), waiting for the header. */
type Prepared =
  | { kind: 'compare'; column: string; op: CompareOp; value: FilterValue }
  | { kind: 'in'; column: string; values: FilterValue[] }
  | { kind: 'matches'; column: string; pattern: RegExp }
  | { kind: 'all' | 'any'; parts: Prepared[] };

const invalid = (path: string, message: string): SluiceError => new SluiceError('CONFIG_INVALID', `${path}: ${message}`, { field: path });

function checkValue(v: unknown, path: string): FilterValue {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw invalid(path, `expected a string or a finite number, got ${JSON.stringify(v)}`);
}

/** A `matches` value: a JavaScript pattern, unanchored; `/pattern/flags` sets flags (i, m, s, u). */
export function compilePattern(value: string, path = 'filter.value'): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(value);
  const [source, flags] = m === null ? [value, ''] : [m[1]!, m[2]!];
  if (/[gyd]/.test(flags)) throw invalid(path, `flag ${JSON.stringify(flags)} is not allowed (use i, m, s or u)`);
  try {
    return new RegExp(source, flags);
  } catch (err) {
    throw invalid(path, `not a valid pattern: ${(err as Error).message}`);
  }
}

/** Checks a predicate once, when the operator is built, naming the path of anything wrong. */
export function preparePredicate(p: FilterPredicate, path = 'filter'): Prepared {
  const o = p as unknown as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw invalid(path, `expected { column, op, value }, { all: [...] } or { any: [...] }, got ${JSON.stringify(p)}`);
  const keys = Object.keys(o).sort().join(',');
  if (keys === 'all' || keys === 'any') {
    const parts = o[keys];
    if (!Array.isArray(parts)) throw invalid(`${path}.${keys}`, `expected a list of predicates, got ${JSON.stringify(parts)}`);
    return { kind: keys, parts: parts.map((q: FilterPredicate, i) => preparePredicate(q, `${path}.${keys}[${i}]`)) };
  }
  if (keys !== 'column,op,value')
    throw invalid(path, `expected { column, op, value }, { all: [...] } or { any: [...] }, got keys ${JSON.stringify(Object.keys(o))}`);
  const { column, op, value } = o;
  if (typeof column !== 'string' || column === '') throw invalid(`${path}.column`, `expected a column name, got ${JSON.stringify(column)}`);
  if (op === 'in') {
    if (!Array.isArray(value)) throw invalid(`${path}.value`, `op "in" needs a list, got ${JSON.stringify(value)}`);
    return { kind: 'in', column, values: value.map((v, i) => checkValue(v, `${path}.value[${i}]`)) };
  }
  if (op === 'matches') {
    if (typeof value !== 'string') throw invalid(`${path}.value`, `op "matches" needs a pattern string, got ${JSON.stringify(value)}`);
    return { kind: 'matches', column, pattern: compilePattern(value, `${path}.value`) };
  }
  if (!COMPARE_OPS.includes(op as CompareOp)) throw invalid(`${path}.op`, `got ${JSON.stringify(op)}; expected one of ${FILTER_OPS.join('|')}`);
  return { kind: 'compare', column, op: op as CompareOp, value: checkValue(value, `${path}.value`) };
}

function columnsOf(p: Prepared, into: Set<string>): Set<string> {
  if ('parts' in p) {
    for (const q of p.parts) columnsOf(q, into);
  } else {
    into.add(p.column);
  }
  return into;
}

/** -1, 0 or 1 for field vs value by the rule of `filter`; `undefined` when a number meets a non-number. */
function order(field: string, value: FilterValue): number | undefined {
  if (typeof value === 'number') {
    const n = parseDecimal(field);
    if (n === undefined) return undefined;
    return n < value ? -1 : n > value ? 1 : 0;
  }
  return field < value ? -1 : field > value ? 1 : 0;
}

function holds(op: CompareOp, c: number | undefined): boolean {
  if (c === undefined) return op === 'ne';
  switch (op) {
    case 'eq':
      return c === 0;
    case 'ne':
      return c !== 0;
    case 'lt':
      return c < 0;
    case 'le':
      return c <= 0;
    case 'gt':
      return c > 0;
    case 'ge':
      return c >= 0;
  }
}

/** Binds a prepared predicate to a header: the row test, with column positions resolved once. */
export function bindPredicate(p: Prepared, header: Row): (row: Row) => boolean {
  const names = [...columnsOf(p, new Set())];
  const indexes = columnIndexes(header, names, 'filter');
  const at = new Map(names.map((name, k) => [name, indexes[k]!]));
  const bind = (q: Prepared): ((row: Row) => boolean) => {
    switch (q.kind) {
      case 'all': {
        const parts = q.parts.map(bind);
        return (row) => parts.every((t) => t(row));
      }
      case 'any': {
        const parts = q.parts.map(bind);
        return (row) => parts.some((t) => t(row));
      }
      case 'compare': {
        const i = at.get(q.column)!;
        const { op, value } = q;
        return (row) => holds(op, order(row[i] ?? '', value));
      }
      case 'in': {
        const i = at.get(q.column)!;
        const { values } = q;
        return (row) => values.some((v) => order(row[i] ?? '', v) === 0);
      }
      case 'matches': {
        const i = at.get(q.column)!;
        const { pattern } = q;
        return (row) => pattern.test(row[i] ?? '');
      }
    }
  };
  return bind(p);
}

/**
 * Keeps the rows matching `predicate` and drops the others (counted as filtered, not rejected).
 *
 * A condition is `{ column, op, value }`; `{ all: [...] }` needs every condition, `{ any: [...] }` one
 * (an empty `all` is true, an empty `any` false). The value's type chooses how a field compares:
 * - a **number** value compares numerically: the field (surrounding whitespace ignored) is read as a
 *   decimal number (`12`, `-1.5`, `1e3`; see `parseDecimal`). A field that is not a number (empty, `abc`)
 *   fails `eq lt le gt ge` and passes `ne`. So `{ column: amount, op: gt, value: 100 }` keeps `250`
 *   and `1e3`, not `99.5`, `''` or `n/a`.
 * - a **string** value compares as text, exactly (case and spaces count), ordered by UTF-16 code units:
 *   `{ op: eq, value: '007' }` matches `007` only, and `{ op: lt, value: '10' }` is false for `9`
 *   (`'9' > '10'` as text): write the value as a number to compare numbers.
 * - `in` takes a list; each element compares by its own type (`[1, 'n/a']`).
 * - `matches` takes a JavaScript pattern, unanchored (`^…$` to anchor), tested on the raw field;
 *   `/pattern/i` sets flags (i, m, s, u).
 *
 * @example rows$.pipe(filter({ all: [{ column: 'country', op: 'in', value: ['FR', 'DE'] }, { column: 'amount', op: 'ge', value: 10 }] }))
 * @param predicate The condition a kept row meets.
 * @throws CONFIG_INVALID for a malformed predicate, an unknown op or a bad pattern (when built, naming
 * its path, e.g. `filter.all[1].op`); UNKNOWN_COLUMN when the header lacks a column.
 */
export function filter(predicate: FilterPredicate): OperatorFunction<Row, Row> {
  const prepared = preparePredicate(predicate);
  return markRowPreserving(
    rowOperator((header) => {
      const keep = bindPredicate(prepared, header);
      return { header, row: (row) => (keep(row) ? row : undefined) };
    }),
  );
}

/** The `filter` step. */
export const filterStep = defineOperator({
  name: 'filter',
  // a row at a time, the same in any slice of a file: a large file may be cut across workers
  rowLocal: () => true,
  schema: z.lazy(() => predicate).describe('Keep rows matching a predicate: { column, op, value }, { all: [...] } or { any: [...] }.'),
  build: (p) => everyFile(filter(p)),
});
