// rowOperator: the one adapter that turns a header-aware row function into an RxJS operator.
import { Observable, type OperatorFunction } from 'rxjs';
import { SluiceError } from '../errors.js';
import type { Row } from '../row.js';

/** What a row operator does once it knows the header. */
export interface BoundRowFunction {
  /** The header this operator emits (the input header when it does not change columns). */
  header: Row;
  /** Maps one data row; `undefined` drops it. Called once per row: keep it free of allocations. */
  row(row: Row): Row | undefined;
}

/**
 * Builds an operator from `bind(header)`, called once per file with the header (the stream's first row),
 * so column names resolve to indexes once, not per row. Errors thrown by `bind` or `row` error the stream.
 *
 * @example
 * const upper = (col: string) => rowOperator((header) => {
 *   const i = header.indexOf(col);
 *   return { header, row: (r) => { r[i] = r[i]!.toUpperCase(); return r; } };
 * });
 */
export function rowOperator(bind: (header: Row) => BoundRowFunction): OperatorFunction<Row, Row> {
  return (source) =>
    new Observable<Row>((subscriber) => {
      let bound: BoundRowFunction | undefined;
      return source.subscribe({
        next(row) {
          // a synchronous source may go on after the subscriber closed: map nothing more
          if (subscriber.closed) return;
          let out: Row | undefined;
          try {
            if (bound === undefined) {
              bound = bind(row);
              out = bound.header;
            } else {
              out = bound.row(row);
            }
          } catch (err) {
            subscriber.error(err);
            return;
          }
          if (out !== undefined) subscriber.next(out);
        },
        error(err) {
          subscriber.error(err);
        },
        complete() {
          subscriber.complete();
        },
      });
    });
}

const ROW_PRESERVING = new WeakSet<object>();

/** Declares that `op` never changes a row's fields or the header (it only drops rows): raw text may pass. */
export function markRowPreserving<T extends object>(op: T): T {
  ROW_PRESERVING.add(op);
  return op;
}

/** True when `op` was declared row-preserving. */
export function preservesRows(op: object): boolean {
  return ROW_PRESERVING.has(op);
}

/** Resolves column names to indexes in `header`; an unknown name is an error naming it. */
export function columnIndexes(header: Row, columns: readonly string[], operator: string): number[] {
  return columns.map((c) => {
    const i = header.indexOf(c);
    if (i === -1) {
      throw new UnknownColumnError(operator, c, header);
    }
    return i;
  });
}

export class UnknownColumnError extends SluiceError {
  constructor(operator: string, column: string, header: Row) {
    super('UNKNOWN_COLUMN', `${operator}: column ${JSON.stringify(column)} is not in the header (${header.map((h) => JSON.stringify(h)).join(', ')})`, {
      field: column,
      line: 1,
    });
  }
}
