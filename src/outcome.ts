// The outcome of one file, one shape for all who tell it: the pipeline's report (in memory), the commit
// record (on disk, before anything is published) and the receipt (in the ledger, after).
import type { SluiceError } from './errors.js';

export interface RowTotals {
  read: number;
  written: number;
  filtered: number;
  rejected: number;
}

/** Rows of a file that failed: nothing of it was kept. */
export function noRows(): RowTotals {
  return { read: 0, written: 0, filtered: 0, rejected: 0 };
}

/** An error as records and receipts keep it (serializable). */
export interface ErrorInfo {
  code: string;
  message: string;
  line?: number;
  field?: string;
}

export interface Outcome<E = ErrorInfo> {
  /** The pipeline that processed the file (`none` when none could). */
  pipeline: string;
  outcome: 'succeeded' | 'failed';
  rows: RowTotals;
  error?: E;
}

/** What a record or receipt keeps of an error: its code, message and, when known, line and field. */
export function errorInfo(err: Pick<SluiceError, 'code' | 'message' | 'line' | 'field'>): ErrorInfo {
  return {
    code: err.code,
    message: err.message,
    ...(err.line === undefined ? {} : { line: err.line }),
    ...(err.field === undefined ? {} : { field: err.field }),
  };
}
