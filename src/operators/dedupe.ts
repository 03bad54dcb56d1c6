// dedupe: drops rows whose key columns repeat a row already seen in the same file.
import type { OperatorFunction } from 'rxjs';
import { z } from 'zod';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';
import { defineOperator } from './definition.js';
import { columnIndexes, markRowPreserving, rowOperator } from './row-operator.js';

export interface DedupeOptions {
  /** The key columns. Default: the whole row. */
  columns?: readonly string[];
  /** Distinct keys one file may hold before it fails (DEDUPE_TOO_MANY_KEYS): a bound on memory. Default 5,000,000. */
  maxKeys?: number;
}

/** The default cap on distinct keys per file (the schema's default of `dedupe.maxKeys`): some 250-500 MB for keys of 20-50 characters. */
export const DEDUPE_MAX_KEYS = 5_000_000;

/** One string per key, unambiguous: each field is prefixed by its length (`a,bc` and `ab,c` differ). */
export function rowKey(row: Row, indexes: readonly number[] | undefined): string {
  if (indexes !== undefined && indexes.length === 1) return row[indexes[0]!] ?? '';
  let key = '';
  if (indexes === undefined) for (const v of row) key += `${v.length}:${v}`;
  else
    for (const i of indexes) {
      const v = row[i] ?? '';
      key += `${v.length}:${v}`;
    }
  return key;
}

/**
 * Keeps the first row of each key and drops later ones (pandas `drop_duplicates(subset, keep='first')`),
 * within one file: each file starts with no keys seen. Dropped rows count as filtered, not rejected.
 *
 * Memory: every distinct key stays in a `Set` until the file ends, about the key's length in UTF-16
 * plus some 50 bytes each (10 million distinct 20-character keys take near 1 GB). Choose narrow key
 * columns for large files; the set is freed when the file's stream ends or is unsubscribed. A file with
 * more than `maxKeys` distinct keys fails (DEDUPE_TOO_MANY_KEYS, its input kept) rather than grow without
 * bound.
 *
 * @example rows$.pipe(dedupe({ columns: ['order_id'] }))
 * @param options `columns`: the key columns (default the whole row); `maxKeys`: the cap on distinct keys.
 * @throws CONFIG_INVALID for an empty column list (when built); UNKNOWN_COLUMN when the header lacks a
 * key column; DEDUPE_TOO_MANY_KEYS past `maxKeys`.
 */
export function dedupe(options: DedupeOptions = {}): OperatorFunction<Row, Row> {
  const { columns, maxKeys = DEDUPE_MAX_KEYS } = options;
  if (columns !== undefined && (!Array.isArray(columns) || columns.length === 0)) {
    throw new SluiceError('CONFIG_INVALID', `dedupe.columns: expected a non-empty list of column names, got ${JSON.stringify(columns)}`, {
      field: 'dedupe.columns',
    });
  }
  return markRowPreserving(
    rowOperator((header) => {
      const indexes = columns === undefined ? undefined : columnIndexes(header, columns, 'dedupe');
      const seen = new Set<string>();
      return {
        header,
        row(row) {
          const key = rowKey(row, indexes);
          if (seen.has(key)) return undefined;
          if (seen.size >= maxKeys) {
            throw new SluiceError(
              'DEDUPE_TOO_MANY_KEYS',
              `dedupe holds ${seen.size} distinct keys, the most dedupe.maxKeys allows; narrow the key columns or raise maxKeys`,
              { field: 'dedupe.maxKeys' },
            );
          }
          seen.add(key);
          return row;
        },
      };
    }),
  );
}

/** The `dedupe` step: each file gets its own operator, so the keys it has seen are that file's. */
export const dedupeStep = defineOperator({
  name: 'dedupe',
  schema: z
    .strictObject({
      columns: z.array(z.string()).min(1).optional().describe('Key columns (default: the whole row).'),
      maxKeys: z
        .number()
        .int()
        .min(1)
        .default(DEDUPE_MAX_KEYS)
        .describe('Distinct keys a file may hold before it fails (DEDUPE_TOO_MANY_KEYS): a bound on memory, some 50-100 bytes a key.'),
    })
    .describe('Drop rows whose key was already seen in the file.'),
  build: (options) => () => dedupe(options),
});
