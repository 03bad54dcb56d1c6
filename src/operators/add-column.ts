// addColumn: appends a column whose value is a constant, the input file's name or the processing time.
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';
import { defineOperator } from './definition.js';
import { rowOperator } from './row-operator.js';

/** Where the new column's value comes from. */
export type AddColumnValue = { constant: string } | { fileName: true } | { timestamp: true };

export interface AddColumnOptions {
  /** The new column's name (appended last). */
  name: string;
  value: AddColumnValue;
  /** The file's context: gives `fileName` (required for it). */
  context?: FileContext;
  /** The clock for `timestamp` (tests pass a fixed one). Default `() => new Date()`. */
  now?: () => Date;
}

/**
 * Appends the column `name` to the header and one value to every row:
 * - `{ constant: 'eu-west' }`: that text;
 * - `{ fileName: true }`: the input's name (`context.name`, e.g. `orders.csv`);
 * - `{ timestamp: true }`: when the file's processing began, as UTC ISO 8601 with milliseconds
 *   (`2024-05-01T10:00:00.000Z`), taken once per file when its header arrives, so every row of a file
 *   has the same value.
 *
 * @example rows$.pipe(addColumn({ name: 'source_file', value: { fileName: true }, context }))
 * @param options The column's name, where its value comes from, and the file's context.
 * @throws CONFIG_INVALID for a bad name or value, or `fileName` without a context (when built);
 * DUPLICATE_COLUMN when the header already has a column of that name.
 */
export function addColumn(options: AddColumnOptions): OperatorFunction<Row, Row> {
  const { name, value, context } = options;
  if (typeof name !== 'string' || name === '') {
    throw new SluiceError('CONFIG_INVALID', `addColumn.name: expected a non-empty column name, got ${JSON.stringify(name)}`, { field: 'addColumn.name' });
  }
  const v = value as Partial<Record<'constant' | 'fileName' | 'timestamp', unknown>> | undefined;
  const kinds = v === undefined || v === null ? [] : Object.keys(v);
  const ok =
    kinds.length === 1 &&
    ((kinds[0] === 'constant' && typeof v?.constant === 'string') ||
      (kinds[0] === 'fileName' && v?.fileName === true) ||
      (kinds[0] === 'timestamp' && v?.timestamp === true));
  if (!ok) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `addColumn.value: expected { constant: text }, { fileName: true } or { timestamp: true }, got ${JSON.stringify(value)}`,
      { field: 'addColumn.value' },
    );
  }
  if (kinds[0] === 'fileName' && context === undefined) {
    throw new SluiceError('CONFIG_INVALID', "addColumn: { fileName: true } needs the file's context", { field: 'addColumn.value' });
  }
  const now = options.now ?? (() => new Date());
  return rowOperator((header) => {
    if (header.includes(name)) {
      throw new SluiceError('DUPLICATE_COLUMN', `addColumn: the header already has a column named ${JSON.stringify(name)}`, {
        field: name,
        line: 1,
        file: context?.name,
      });
    }
    const text = typeof v?.constant === 'string' ? v.constant : v?.fileName === true ? context!.name : now().toISOString();
    return {
      header: [...header, name],
      row(row) {
        row.push(text);
        return row;
      },
    };
  });
}

/** The `addColumn` step: `{ name, constant }` or `{ name, source: fileName | timestamp }`. */
export const addColumnStep = defineOperator({
  name: 'addColumn',
  // the time is taken once per file: a file that adds it is not cut across workers
  rowLocal: (v) => v.source !== 'timestamp',
  schema: z
    .strictObject({
      name: z.string().min(1),
      constant: z.string().optional(),
      source: z.enum(['fileName', 'timestamp']).optional(),
    })
    .refine((a) => (a.constant === undefined) !== (a.source === undefined), { message: 'give exactly one of constant or source' })
    .describe('Append a column: a constant, the input file name, or the processing timestamp.'),
  build({ name, constant, source }) {
    const value = constant !== undefined ? { constant } : source === 'fileName' ? ({ fileName: true } as const) : ({ timestamp: true } as const);
    return (ctx) => addColumn({ name, value, context: ctx });
  },
});
