// parseCsv: bytes in, rows out (header first), with malformed records sent to the file's rejects.
import { Observable, type OperatorFunction } from 'rxjs';
import { FastCsvReader, fastPathApplies } from '../csv/fast-reader.js';
import { PreambleSkipper } from '../csv/preamble.js';
import { CsvRecordReader, type CsvReadOptions, type RecordHandler } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';
import type { FileContext } from '../file-context.js';
import type { Row } from '../row.js';
import { type ChunkReader, feedReader } from './record-stream.js';

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

/** The header's first repeated name, or undefined: a header must name each column once. */
function duplicateName(header: readonly string[]): { name: string; first: number; again: number } | undefined {
  const seen = new Map<string, number>();
  for (let i = 0; i < header.length; i++) {
    const first = seen.get(header[i]!);
    if (first !== undefined) return { name: header[i]!, first: first + 1, again: i + 1 };
    seen.set(header[i]!, i);
  }
  return undefined;
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
 * TOO_MANY_COLUMNS when the header is wider than `maxColumns`; DUPLICATE_HEADER when the header names a
 * column twice; COLUMNS_MISMATCH when `columns` replace a header of another width; CONFIG_INVALID for
 * `header: false` without `columns`.
 */
export function parseCsv(options: ParseCsvOptions = {}): OperatorFunction<Buffer, Row> {
  const ctx = options.context;
  const columns = options.columns;
  const inFile = options.header !== false;
  if (!inFile && columns === undefined) {
    throw new SluiceError('CONFIG_INVALID', 'input.header: false needs input.columns (the names of the columns)', { field: 'input.columns' });
  }
  const skipLines = options.skipLines ?? 0;
  const readOptions: CsvReadOptions = {
    ...options,
    ...(skipLines > 0 ? { firstLine: skipLines + 1 } : {}),
    ...(inFile ? {} : { width: columns!.length }),
  };
  /** The header as emitted: checked for width and repeated names. */
  const checkHeader = (names: string[], line: number): string[] => {
    if (options.maxColumns !== undefined && names.length > options.maxColumns) {
      throw new SluiceError('TOO_MANY_COLUMNS', `the header has ${names.length} columns; input.maxColumns allows ${options.maxColumns}`, {
        file: ctx?.name,
        line,
      });
    }
    const dup = duplicateName(names);
    if (dup !== undefined) {
      throw new SluiceError(
        'DUPLICATE_HEADER',
        `the header names column ${JSON.stringify(dup.name)} twice (columns ${dup.first} and ${dup.again}); rename one, or give input.columns`,
        { file: ctx?.name, line },
      );
    }
    return names;
  };
  return (source) =>
    new Observable<Row>((subscriber) => {
      let header = false;
      const preamble = skipLines > 0 ? new PreambleSkipper(skipLines) : undefined;
      const handler: RecordHandler = {
        comments(count) {
          if (ctx !== undefined) ctx.comments += count;
        },
        record(fields, line, raw) {
          // a subscriber that closed mid-chunk (an error or unsubscribe downstream) gets nothing more counted
          if (subscriber.closed) return;
          if (ctx !== undefined) {
            ctx.line = line;
            ctx.raw = raw;
            if (header) ctx.counts.read++;
          }
          if (!header) {
            header = true;
            if (columns !== undefined && columns.length !== fields.length) {
              throw new SluiceError(
                'COLUMNS_MISMATCH',
                `input.columns names ${columns.length} columns; the file's header has ${fields.length}, so it cannot be replaced`,
                { file: ctx?.name, line },
              );
            }
            subscriber.next(checkHeader(columns === undefined ? fields : [...columns], line));
            return;
          }
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
      const reader =
        options.fast !== false && fastPathApplies(readOptions) ? new FastCsvReader(handler, readOptions) : new CsvRecordReader(handler, readOptions);
      if (!inFile) {
        try {
          header = true;
          subscriber.next(checkHeader([...columns!], skipLines));
        } catch (err) {
          subscriber.error(err);
          return;
        }
      }
      // a preamble (skipLines) is cut from the bytes before the reader sees them
      const feed: ChunkReader =
        preamble === undefined
          ? reader
          : {
              write(chunk) {
                const rest = preamble.active ? preamble.take(chunk) : chunk;
                if (rest.length > 0) reader.write(rest);
              },
              end: () => reader.end(),
            };
      return feedReader(source, subscriber, feed);
    });
}
