// parseCsv: bytes in, rows out (header first), with malformed records sent to the file's rejects.
import { Observable, type OperatorFunction } from 'rxjs';
import { CsvRecordReader, type CsvReadOptions } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';

export interface ParseCsvOptions extends CsvReadOptions {
  /**
   * The file's context: receives the line of each row, the read count, and every malformed record
   * (through `context.reject`). Without one, the first malformed record errors the stream.
   */
  context?: FileContext;
}

/**
 * Parses CSV bytes with csv-parse. Emits the header row first, then one `string[]` per record, in order.
 * A malformed record (wrong field count, bad quoting, invalid UTF-8, too large) does not stop the file:
 * it goes to `context.reject` with its line, code and original bytes.
 *
 * @example fileBytes(path).pipe(parseCsv({ delimiter: ';', context }))
 * @throws BINARY_FILE when the file holds NUL bytes; a row code when the header itself is malformed.
 */
export function parseCsv(options: ParseCsvOptions = {}): OperatorFunction<Buffer, Row> {
  const ctx = options.context;
  return (source) =>
    new Observable<Row>((subscriber) => {
      let header = false;
      const reader = new CsvRecordReader(
        {
          record(fields, line) {
            // a subscriber that closed mid-chunk (an error or unsubscribe downstream) gets nothing more counted
            if (subscriber.closed) return;
            if (ctx !== undefined) {
              ctx.line = line;
              if (header) ctx.counts.read++;
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
        },
        options,
      );
      return source.subscribe({
        next(chunk) {
          if (subscriber.closed) return;
          try {
            reader.write(chunk);
          } catch (err) {
            subscriber.error(err);
          }
        },
        error(err) {
          subscriber.error(err);
        },
        complete() {
          if (subscriber.closed) return;
          try {
            reader.end();
          } catch (err) {
            subscriber.error(err);
            return;
          }
          subscriber.complete();
        },
      });
    });
}
