// csvFileSink: writes batches as CSV (csv-stringify) to a temporary file, published atomically on commit.
import { stringify } from 'csv-stringify/sync';
import type { Row, RowBatch } from '../row.js';
import { type AtomicFileOptions, type OutputFile, openOutputFile } from '../fs/atomic-file.js';
import type { RowSink, SinkResult, StagedFileOutput } from '../outputs/driver.js';

export interface CsvFileSinkOptions extends AtomicFileOptions {
  /** Output delimiter. Default `,`. */
  delimiter?: string;
  /** Line ending. Default `\n`. */
  recordDelimiter?: '\n' | '\r\n';
  /** `minimal` (default): quote only where CSV requires it; `all`: quote every field. */
  quote?: 'minimal' | 'all';
  /** Write the header row. Default true. */
  header?: boolean;
  /** Prefix fields that start with = + - @ tab or CR with `'` (spreadsheet formula injection). Default false. */
  escapeFormulas?: boolean;
}

/**
 * A sink that writes `dir/name` as CSV: the header, then every row, quoting a field only where CSV
 * requires it (a delimiter, quote or line break inside). Nothing appears under `name` until `commit`.
 *
 * @example await lastValueFrom(rows$.pipe(batch(), concatMap((b) => sink.write(b))));  await sink.commit();
 */
export function csvFileSink(dir: string, name: string, options: CsvFileSinkOptions = {}): RowSink {
  return new CsvFileSink(dir, name, options);
}

class CsvFileSink implements RowSink {
  private file: Promise<OutputFile> | undefined;
  private rows = 0;
  private readonly stringifyOptions;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly options: CsvFileSinkOptions,
  ) {
    this.stringifyOptions = {
      delimiter: options.delimiter ?? ',',
      record_delimiter: options.recordDelimiter ?? '\n',
      quoted: options.quote === 'all',
      escape_formulas: options.escapeFormulas === true,
    } as const;
  }

  private open(): Promise<OutputFile> {
    this.file ??= openOutputFile(this.dir, this.name, this.options);
    return this.file;
  }

  /** Appends bytes already written as this sink writes (a worker's slice of the same file), holding `rows` rows. */
  async append(chunks: readonly Uint8Array[], rows: number): Promise<void> {
    const file = await this.open();
    for (const c of chunks) await file.write(Buffer.from(c.buffer, c.byteOffset, c.length));
    this.rows += rows;
  }

  async write(batch: RowBatch): Promise<void> {
    const file = await this.open();
    const raw = this.rawLines(batch);
    if (raw !== undefined) {
      // rows as they were read: byte for byte what stringify would give (proven in test/unit/fast-reader.test.ts)
      const head = batch.header !== undefined && this.options.header !== false ? stringify([batch.header], this.optionsFor(batch.header)) : '';
      const eol = this.stringifyOptions.record_delimiter;
      if (head !== '' || raw.length > 0) await file.write(raw.length === 0 ? head : `${head}${raw.join(eol)}${eol}`);
      this.rows += batch.rows.length;
      return;
    }
    const records = batch.header === undefined || this.options.header === false ? batch.rows : [batch.header, ...batch.rows];
    if (records.length === 0) return;
    await file.write(stringify(records, this.optionsFor(records[0])));
    this.rows += batch.rows.length;
  }

  /** In a one-column file an empty field unquoted is a blank line, which readers skip: it is quoted. */
  private optionsFor(first: Row | undefined) {
    return first?.length === 1 ? { ...this.stringifyOptions, quoted_empty: true } : this.stringifyOptions;
  }

  /** The batch's original row texts, when every row has one and this sink writes the same dialect. */
  private rawLines(batch: RowBatch): string[] | undefined {
    const raw = batch.raw;
    const o = this.options;
    if (raw === undefined || raw.delimiter !== this.stringifyOptions.delimiter || o.quote === 'all' || o.escapeFormulas === true) return undefined;
    const lines = raw.lines;
    for (let i = 0; i < lines.length; i++) if (lines[i] === undefined) return undefined;
    return lines as string[];
  }

  async commit(): Promise<SinkResult> {
    const file = await this.open();
    const path = await file.commit();
    return { path, rows: this.rows, bytes: file.bytes };
  }

  async stage(): Promise<StagedFileOutput> {
    const file = await this.open();
    return { kind: 'file', file: await file.stage(), rows: this.rows, bytes: file.bytes };
  }

  async abort(): Promise<void> {
    if (this.file === undefined) return;
    const file = await this.file.catch(() => undefined);
    await file?.abort();
  }
}
