// parquetFileSink: rows encoded a row group at a time into a temporary file, published atomically on commit.
import type { CastType } from '../operators/cast-values.js';
import type { Row, RowBatch } from '../row.js';
import { AtomicFile, type AtomicFileOptions } from '../fs/atomic-file.js';
import type { RowSink, SinkResult, StagedFileOutput } from '../outputs/driver.js';
import { MAGIC, type ParquetCodec, ParquetEncoder } from '../parquet/encoder.js';

/** Rows per row group unless told: DuckDB's default, about 10 MB of column data on the benchmark's rows. */
export const DEFAULT_ROW_GROUP_ROWS = 122_880;

export interface ParquetFileSinkOptions extends Omit<AtomicFileOptions, 'gzip'> {
  /** Column compression. Default zstd. */
  compression?: ParquetCodec;
  /** Rows per row group (the last one may hold fewer). Default {@link DEFAULT_ROW_GROUP_ROWS}. */
  rowGroupRows?: number;
  /** Each column's cast type by name; a column not named is a string. */
  types?: Readonly<Record<string, CastType>>;
}

/**
 * A sink that writes `dir/name` as Parquet: one column per header name, typed by `types` (integer INT64,
 * number DOUBLE, boolean BOOLEAN, date DATE, timestamp TIMESTAMP(MICROS, UTC), else UTF8 strings), an
 * empty field a null. Values are encoded into column buffers as they come; a full row group is compressed
 * and written, so memory is bounded by the row group. Nothing appears under `name` until `commit` (or the caller's publication).
 *
 * @example parquetFileSink('./out', 'orders.parquet', { types: { qty: 'integer' }, compression: 'zstd' })
 */
export function parquetFileSink(dir: string, name: string, options: ParquetFileSinkOptions = {}): RowSink {
  return new ParquetFileSink(dir, name, options);
}

class ParquetFileSink implements RowSink {
  private file: Promise<AtomicFile> | undefined;
  private encoder: ParquetEncoder | undefined;
  private rows = 0;
  private readonly groupRows: number;
  private readonly codec: ParquetCodec;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly options: ParquetFileSinkOptions,
  ) {
    this.groupRows = options.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS;
    this.codec = options.compression ?? 'zstd';
  }

  private started = false;

  /** The temporary file, `PAR1` written first. */
  private async open(): Promise<AtomicFile> {
    this.file ??= AtomicFile.create(this.dir, this.name, { ...this.options, gzip: false });
    const file = await this.file;
    if (!this.started) {
      await file.write(MAGIC);
      this.started = true;
    }
    return file;
  }

  async write(batch: RowBatch): Promise<void> {
    const file = await this.open();
    if (batch.header !== undefined) this.start(batch.header);
    const rows = batch.rows;
    const encoder = this.encoder ?? this.start([]);
    for (let at = 0; at < rows.length; ) {
      const end = Math.min(rows.length, at + this.groupRows - encoder.pending);
      encoder.append(rows, at, end);
      at = end;
      if (encoder.pending >= this.groupRows) await this.flush(file, encoder);
    }
  }

  private start(header: Row): ParquetEncoder {
    const types = this.options.types ?? {};
    this.encoder = new ParquetEncoder(
      header.map((h) => ({ name: h, type: Object.hasOwn(types, h) ? types[h]! : 'string' })),
      this.codec,
      this.groupRows,
    );
    return this.encoder;
  }

  private async flush(file: AtomicFile, encoder: ParquetEncoder): Promise<void> {
    if (encoder.pending === 0) return;
    const rows = encoder.pending;
    const bytes = await encoder.rowGroup(file.bytes);
    await file.write(bytes);
    this.rows += rows;
  }

  /** The last row group and the footer (no header at all: an empty schema). */
  private async finish(): Promise<AtomicFile> {
    const file = await this.open();
    const encoder = this.encoder ?? this.start([]);
    await this.flush(file, encoder);
    await file.write(encoder.footer());
    return file;
  }

  async commit(): Promise<SinkResult> {
    const file = await this.finish();
    const path = await file.commit();
    return { path, rows: this.rows, bytes: file.bytes };
  }

  async stage(): Promise<StagedFileOutput> {
    const file = await this.finish();
    return { kind: 'file', file: await file.stage(), rows: this.rows, bytes: file.bytes };
  }

  async abort(): Promise<void> {
    this.encoder = undefined;
    if (this.file === undefined) return;
    const file = await this.file.catch(() => undefined);
    await file?.abort();
  }
}
