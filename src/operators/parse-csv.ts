// parseCsv: bytes in, rows out (header first), with malformed records sent to the file's rejects.
import { Observable, type OperatorFunction } from 'rxjs';
import { FastCsvReader, fastPathApplies } from '../csv/fast-reader.js';
import { CsvRecordReader, type CsvReadOptions, type RecordHandler } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';
import { feedReader } from './record-stream.js';

/**
 * The widest header a pipeline takes when not said (the default of `input.maxColumns`); parseCsv itself
 * caps nothing unless given `maxColumns`.
 */
export const DEFAULT_MAX_COLUMNS = 10_000;

export interface ParseCsvOptions extends CsvReadOptions {
  /**
   * The file's context: receives the line of each row, the read count, and every malformed record
   * (through `context.reject`). Without one, the first malformed record errors the stream.
   */
  context?: FileContext;
  /** Use the fast tokenizer where the options allow (it hands anything unusual to csv-parse). Default true. */
  fast?: boolean;
  /** A header with more columns fails the file (TOO_MANY_COLUMNS): a cap on what one row may hold. */
  maxColumns?: number;
}

/**
 * Parses CSV bytes. Emits the header row first, then one `string[]` per record, in order. Well-formed
 * input goes through a fast tokenizer; from the first unusual record on, csv-parse (same results, proven by
 * a differential test).
 * A malformed record (wrong field count, bad quoting, invalid UTF-8, too large) does not stop the file:
 * it goes to `context.reject` with its line, code and original bytes.
 *
 * @example fileBytes(path).pipe(parseCsv({ delimiter: ';', context }))
 * @throws BINARY_FILE when the file holds NUL bytes; a row code when the header itself is malformed;
 * TOO_MANY_COLUMNS when the header is wider than `maxColumns`.
 */
export function parseCsv(options: ParseCsvOptions = {}): OperatorFunction<Buffer, Row> {
  const ctx = options.context;
  return (source) =>
    new Observable<Row>((subscriber) => {
      let header = false;
      const handler: RecordHandler = {
        record(fields, line, raw) {
          // a subscriber that closed mid-chunk (an error or unsubscribe downstream) gets nothing more counted
          if (subscriber.closed) return;
          if (ctx !== undefined) {
            ctx.line = line;
            ctx.raw = raw;
            if (header) ctx.counts.read++;
          }
          if (!header && options.maxColumns !== undefined && fields.length > options.maxColumns) {
            throw new SluiceError('TOO_MANY_COLUMNS', `the header has ${fields.length} columns; input.maxColumns allows ${options.maxColumns}`, {
              file: ctx?.name,
              line,
            });
          }
          header = true;
          subscriber.next(fields);
        },
        reject(line, code, message, raw) {
          if (subscriber.closed) return;
          if (!header || ctx === undefined) {
            throw new SluiceError(code, header ? message : `the header is malformed: ${message}`, { file: ctx?.name, line });
          }
          ctx.counts.read++;
          ctx.reject({ line, code, message, raw });
        },
      };
      const reader = options.fast !== false && fastPathApplies(options) ? new FastCsvReader(handler, options) : new CsvRecordReader(handler, options);
      return feedReader(source, subscriber, reader);
    });
}
