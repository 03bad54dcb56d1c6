// cast: checks and normalizes column values as integer, number, boolean, date or timestamp text.
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';
import { csvField } from '../csv/fields.js';
import { CAST_TYPE_NAMES, CONVERTERS, type CastType, type Converter, dateTimeConverter } from './cast-values.js';
import { defineOperator } from './definition.js';
import { columnIndexes, rowOperator } from './row-operator.js';

const castOnError = z.enum(['reject', 'null']);

const castColumn = z.union([
  z.enum(CAST_TYPE_NAMES),
  z.strictObject({
    type: z.enum(CAST_TYPE_NAMES),
    onError: castOnError.default('reject').describe('A value that does not parse: reject the row, or make the field empty.'),
    format: z
      .string()
      .min(1)
      .optional()
      .describe(
        "date and timestamp: the values' format in date-fns/Luxon tokens (yyyy yy MMM MM M dd d HH H hh h a mm m ss s S… X XX XXX x xx xxx ZZ, 'literal'), e.g. dd/MM/yyyy HH:mm. Default ISO 8601.",
      ),
    timezone: z.string().min(1).optional().describe('timestamp: the IANA zone (Europe/Paris) of values without an offset; they are written as UTC instants.'),
  }),
]);

const castSpec = z.record(z.string(), castColumn).describe('Parse columns as types: { column: type } or { column: { type, onError, format, timezone } }.');

/** What to do with a value that is not of the type: reject the row (default) or empty the field. */
export type CastOnError = z.output<typeof castOnError>;

/** One column's cast: a type, or a type with its error policy. */
export type CastColumnSpec = z.input<typeof castColumn>;

/** Columns to cast, by name: `{ amount: 'number', paid: { type: 'boolean', onError: 'null' } }` (the cast step's value). */
export type CastSpec = Readonly<z.input<typeof castSpec>>;

export interface CastOptions {
  /**
   * The file's context: a rejected row goes to `context.reject` with the current line. Without one,
   * the first rejected row errors the stream with `CAST_FAILED`.
   */
  context?: FileContext;
}

interface ColumnCast {
  column: string;
  type: CastType;
  convert: Converter;
  reject: boolean;
  /** The format the values must be in, when not ISO (said in the rejection). */
  format: string | undefined;
}

function normalizeSpec(spec: CastSpec): ColumnCast[] {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new SluiceError('CONFIG_INVALID', `cast: expected { column: type }, got ${JSON.stringify(spec)}`);
  }
  return Object.entries(spec).map(([column, s]) => {
    const type = typeof s === 'string' ? s : s?.type;
    const onError = typeof s === 'string' ? 'reject' : (s?.onError ?? 'reject');
    if (!CAST_TYPE_NAMES.includes(type as CastType)) {
      throw new SluiceError('CONFIG_INVALID', `cast.${column}: got type ${JSON.stringify(type)}; expected one of ${CAST_TYPE_NAMES.join('|')}`, {
        field: `cast.${column}`,
      });
    }
    if (onError !== 'reject' && onError !== 'null') {
      throw new SluiceError('CONFIG_INVALID', `cast.${column}.onError: got ${JSON.stringify(onError)}; expected "reject" or "null"`, {
        field: `cast.${column}.onError`,
      });
    }
    const format = typeof s === 'string' ? undefined : s?.format;
    const timezone = typeof s === 'string' ? undefined : s?.timezone;
    let convert = CONVERTERS[type as CastType];
    if (format !== undefined || timezone !== undefined) {
      if (type !== 'date' && type !== 'timestamp') {
        throw new SluiceError('CONFIG_INVALID', `cast.${column}: format and timezone apply to date and timestamp, not ${type}`, {
          field: `cast.${column}.${format !== undefined ? 'format' : 'timezone'}`,
        });
      }
      convert = dateTimeConverter(type, { ...(format === undefined ? {} : { format }), ...(timezone === undefined ? {} : { timezone }) }, `cast.${column}`);
    }
    return { column, type: type as CastType, convert, reject: onError === 'reject', format };
  });
}

/** The row as one CSV record (comma-delimited, quoted where needed): what a rejection keeps as raw. */
export function rowToCsv(row: Row): Buffer {
  return Buffer.from(row.map(csvField).join(','));
}

const shown = (value: string): string => JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);

/**
 * Casts columns to types and writes each value in one canonical text, so the output (or a database
 * column) gets clean values:
 * - `integer`: sign and digits, 64-bit signed range, exact: `+007` -> `7`;
 * - `number`: a double, shortest round-trip text: `1.50` -> `1.5`, `1e3` -> `1000`, `.5` -> `0.5`;
 * - `boolean`: true/t/yes/y/on/1 and false/f/no/n/off/0, any case -> `true` / `false`;
 * - `date`: ISO `YYYY-MM-DD`, a date that exists;
 * - `timestamp`: ISO 8601; with a zone -> the UTC instant `2024-05-01T10:00:00Z`, without -> local
 *   `2024-05-01T12:00:00` (seconds added, fraction kept);
 * - `string`: unchanged.
 * A date or timestamp column may say its `format` (date-fns/Luxon tokens, e.g. `dd/MM/yyyy HH:mm`,
 * compiled once) and, for a timestamp, the IANA `timezone` of values without an offset: such values are
 * then written as UTC instants (`{ when: { type: 'timestamp', format: 'dd/MM/yyyy HH:mm', timezone:
 * 'Europe/Paris' } }`: `01/07/2024 14:30` -> `2024-07-01T12:30:00Z`). See dateTimeConverter.
 * Surrounding whitespace is ignored. An empty field is null and stays empty, whatever the type; a blank
 * (whitespace-only) field becomes empty for every type but `string`.
 *
 * A value that is not of its type: with `onError: 'reject'` (default) the row is dropped and sent to
 * `context.reject` with the row's source line, code `CAST_FAILED`, a message naming every failing column,
 * its value and type, and the row (as this operator received it) re-encoded as CSV; with `onError: 'null'`
 * the field becomes empty. Rows flow synchronously, so `context.line` is the rejected row's line.
 *
 * @example rows$.pipe(cast({ id: 'integer', amount: { type: 'number', onError: 'null' } }, { context }))
 * @param spec Columns to cast, by name.
 * @param options `context` receives rejected rows.
 * @throws CONFIG_INVALID for an unknown type or onError (when built); UNKNOWN_COLUMN when the header lacks
 * a column; CAST_FAILED (a row code) without a context, at the first rejected row.
 */
export function cast(spec: CastSpec, options: CastOptions = {}): OperatorFunction<Row, Row> {
  const casts = normalizeSpec(spec);
  const ctx = options.context;
  return rowOperator((header) => {
    const indexes = columnIndexes(
      header,
      casts.map((c) => c.column),
      'cast',
    );
    const n = casts.length;
    const values: string[] = new Array<string>(n).fill(''); // reused: a row changes only if every cast passed
    const fail = (row: Row): undefined => {
      const failed: string[] = [];
      const problems: string[] = [];
      for (let k = 0; k < n; k++) {
        const c = casts[k]!;
        const v = row[indexes[k]!] ?? '';
        if (!c.reject || v.trim() === '' || c.convert(v) !== undefined) continue;
        failed.push(c.column);
        const inFormat = c.format === undefined ? '' : ` in the format ${c.format}`;
        problems.push(`column ${JSON.stringify(c.column)}: ${shown(v)} is not ${c.type === 'integer' ? 'an' : 'a'} ${c.type}${inFormat}`);
      }
      const message = `cast: ${problems.join('; ')}`;
      if (ctx === undefined) throw new SluiceError('CAST_FAILED', message, { field: failed[0] });
      ctx.reject({ line: ctx.line, code: 'CAST_FAILED', message, raw: rowToCsv(row) });
      return undefined;
    };
    return {
      header,
      row(row) {
        for (let k = 0; k < n; k++) {
          const v = row[indexes[k]!] ?? '';
          const c = casts[k]!;
          const out = v === '' ? '' : c.convert(v);
          if (out !== undefined) values[k] = out;
          else if (v.trim() === '' || !c.reject) values[k] = '';
          else return fail(row);
        }
        for (let k = 0; k < n; k++) row[indexes[k]!] = values[k]!;
        return row;
      },
    };
  });
}

/** The `cast` step: the spec is checked when built, then each file gets an operator that rejects into its context. */
export const castStep = defineOperator({
  name: 'cast',
  // a row at a time, the same in any slice of a file: a large file may be cut across workers
  rowLocal: () => true,
  schema: castSpec,
  build(spec) {
    cast(spec); // checks the spec now, not at the first file
    return (ctx) => cast(spec, { context: ctx });
  },
});
