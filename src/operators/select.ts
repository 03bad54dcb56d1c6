// select: keeps the named columns, in the order given.
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';
import { defineOperator, everyFile } from './definition.js';
import { columnIndexes, rowOperator } from './row-operator.js';

/**
 * Keeps only `columns`, in that order (the header becomes `columns`). Names resolve to positions once
 * per file; each row becomes a new array of the chosen fields.
 *
 * @example rows$.pipe(select(['id', 'email', 'amount']))
 * @param columns The columns to keep, in output order: at least one, no name twice.
 * @throws CONFIG_INVALID for an empty list or a repeated name (when built); UNKNOWN_COLUMN when the
 * header lacks a column.
 */
export function select(columns: readonly string[]): OperatorFunction<Row, Row> {
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string')) {
    throw new SluiceError('CONFIG_INVALID', `select: expected a non-empty list of column names, got ${JSON.stringify(columns)}`, { field: 'select' });
  }
  const repeated = columns.find((c, i) => columns.indexOf(c) !== i);
  if (repeated !== undefined) {
    throw new SluiceError('CONFIG_INVALID', `select: column ${JSON.stringify(repeated)} is listed twice`, { field: 'select' });
  }
  const names = [...columns];
  return rowOperator((header) => {
    const indexes = columnIndexes(header, names, 'select');
    const n = indexes.length;
    return {
      header: [...names],
      row(row) {
        const out = new Array<string>(n);
        for (let k = 0; k < n; k++) out[k] = row[indexes[k]!] ?? '';
        return out;
      },
    };
  });
}

/** The `select` step. */
export const selectStep = defineOperator({
  name: 'select',
  // a row at a time, the same in any slice of a file: a large file may be cut across workers
  rowLocal: () => true,
  schema: z.array(z.string().min(1)).min(1).describe('Keep these columns, in this order.'),
  build: (columns) => everyFile(select(columns)),
});
