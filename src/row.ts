// The row model: a row is an array of field strings; the first row of every file's stream is its header.

/** One CSV record as its fields. The first row a file's stream emits is the header (column names). */
export type Row = string[];

/** A group of rows written together; `lines[i]` is the source line where `rows[i]` started. */
export interface RowBatch {
  /** The header, carried by the first batch of a file only. */
  header?: Row;
  rows: Row[];
  lines: number[];
  /**
   * When every operator kept rows unchanged: each row's original text (or undefined where it was not
   * canonical CSV), and the delimiter it uses. A CSV sink with the same dialect writes these as they are.
   */
  raw?: { delimiter: string; lines: Array<string | undefined> };
}

/** A malformed or refused record, kept apart with the reason and its original bytes. */
export interface Rejection {
  line: number;
  code: string;
  message: string;
  raw: Buffer;
}
