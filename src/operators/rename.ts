// rename: gives columns new names; the rows themselves pass unchanged.
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';
import { defineOperator, everyFile } from './definition.js';
import { columnIndexes, rowOperator } from './row-operator.js';

/**
 * Renames columns of the header, `{ old: new }`, all at once (so `{ a: 'b', b: 'a' }` swaps two names).
 * Rows pass through untouched: only the header changes.
 *
 * @example rows$.pipe(rename({ 'Order Id': 'order_id', Email: 'email' }))
 * @param mapping Old name to new name; a new name must not be empty.
 * @throws CONFIG_INVALID for a bad mapping (when built); UNKNOWN_COLUMN when the header lacks an old
 * name; DUPLICATE_COLUMN when the renamed header would hold one name twice.
 */
export function rename(mapping: Readonly<Record<string, string>>): OperatorFunction<Row, Row> {
  if (typeof mapping !== 'object' || mapping === null || Array.isArray(mapping)) {
    throw new SluiceError('CONFIG_INVALID', `rename: expected { old: new }, got ${JSON.stringify(mapping)}`, { field: 'rename' });
  }
  const pairs = Object.entries(mapping);
  for (const [from, to] of pairs) {
    if (typeof to !== 'string' || to === '') {
      throw new SluiceError('CONFIG_INVALID', `rename.${from}: expected a non-empty new name, got ${JSON.stringify(to)}`, { field: `rename.${from}` });
    }
  }
  return rowOperator((header) => {
    const indexes = columnIndexes(
      header,
      pairs.map(([from]) => from),
      'rename',
    );
    const renamed = [...header];
    for (const [k, [, to]] of pairs.entries()) renamed[indexes[k]!] = to;
    const twice = renamed.find((c, i) => renamed.indexOf(c) !== i);
    if (twice !== undefined) {
      throw new SluiceError(
        'DUPLICATE_COLUMN',
        `rename: the header would have two columns named ${JSON.stringify(twice)} (${renamed.map((h) => JSON.stringify(h)).join(', ')})`,
        { field: twice, line: 1 },
      );
    }
    return { header: renamed, row: (row) => row };
  });
}

/** The `rename` step. */
export const renameStep = defineOperator({
  name: 'rename',
  // a row at a time, the same in any slice of a file: a large file may be cut across workers
  rowLocal: () => true,
  schema: z.record(z.string(), z.string().min(1)).describe('Rename columns: { old: new }.'),
  build: (mapping) => everyFile(rename(mapping)),
});
