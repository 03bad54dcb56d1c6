// parseNdjson: JSON lines in, rows out (header first), with lines that are not JSON objects sent to the
// file's rejects.
import { Observable, type OperatorFunction } from 'rxjs';
import type { RecordHandler } from '../csv/record-reader.js';
import type { FileContext } from '../file-context.js';
import { JsonArrayReader, NdjsonReader, type NdjsonReadOptions } from '../json/ndjson-reader.js';
import type { Row } from '../row.js';
import { feedReader } from './record-stream.js';
import { SluiceError } from '../errors.js';

export interface ParseNdjsonOptions extends Omit<NdjsonReadOptions, 'onExtraKey'> {
  /** The input is one JSON document holding an array of objects, not JSON lines. */
  array?: boolean;
  /** The file's context: each row's line, the read count, rejected lines, and the keys not in the header. */
  context?: FileContext;
}

/**
 * Parses JSON lines (one object per line, UTF-8). Emits the header first (the keys of the first object,
 * or `columns`), then each object's values in header order: a string as itself, null or a missing key as
 * an empty cell, a number, boolean, array or object as its JSON text as written. A line that is not a JSON
 * object (or not UTF-8, or longer than `maxRecordSize`) goes to `context.reject` with its line and bytes;
 * blank lines are skipped. Keys later objects have beyond the header are counted in `context.extraKeys`.
 *
 * @example fileBytes(path).pipe(parseNdjson({ context }))
 */
export function parseNdjson(options: ParseNdjsonOptions = {}): OperatorFunction<Buffer, Row> {
  const ctx = options.context;
  return (source) =>
    new Observable<Row>((subscriber) => {
      let header = false;
      const handler: RecordHandler = {
        record(fields, line) {
          if (subscriber.closed) return;
          if (ctx !== undefined) {
            ctx.line = line;
            ctx.raw = undefined;
            if (header) ctx.counts.read++;
          }
          header = true;
          subscriber.next(fields);
        },
        reject(line, code, message, raw) {
          if (subscriber.closed) return;
          if (ctx === undefined) throw new SluiceError(code, message, { line });
          ctx.counts.read++;
          ctx.reject({ line, code, message, raw });
        },
      };
      const readOptions = { ...options, ...(ctx === undefined ? {} : { onExtraKey: (key: string) => ctx.extraKey(key) }) };
      const reader = options.array === true ? new JsonArrayReader(handler, readOptions) : new NdjsonReader(handler, readOptions);
      return feedReader(source, subscriber, reader);
    });
}
