// ndjsonFileSink: one JSON object per row, keys from the header, published atomically like CSV outputs.
import type { CastType } from '../operators/cast-values.js';
import type { Row, RowBatch } from '../row.js';
import { type AtomicFileOptions, type OutputFile, openOutputFile } from '../fs/atomic-file.js';
import type { RowSink, SinkResult, StagedFileOutput } from '../outputs/driver.js';

export interface NdjsonFileSinkOptions extends AtomicFileOptions {
  /**
   * Columns cast to a type (by name): integer and number values are written as JSON numbers, boolean as
   * true/false, others as strings, and an empty field of a cast column as null. Other columns are strings.
   */
  types?: Readonly<Record<string, CastType>>;
}

/** How one column's text becomes JSON. */
type Encode = (v: string) => string;
const asString: Encode = (v) => JSON.stringify(v);
const asStringOrNull: Encode = (v) => (v === '' ? 'null' : JSON.stringify(v));
// cast wrote canonical text (`-12`, `1.5`, `true`): valid JSON as it is
const asLiteral: Encode = (v) => (v === '' ? 'null' : v);

function encoderOf(type: CastType | undefined): Encode {
  if (type === undefined) return asString;
  return type === 'integer' || type === 'number' || type === 'boolean' ? asLiteral : asStringOrNull;
}

/**
 * A sink that writes `dir/name` as newline-delimited JSON: `{"id":"1","email":"a@x.io"}` per row, keys from
 * the header; with `types` (a pipeline's cast steps), typed: `{"id":1,"paid":true,"email":"a@x.io"}`. A
 * header-only input gives an empty file.
 *
 * @example ndjsonFileSink('./out', 'orders.ndjson', { gzip: true, types: { id: 'integer' } })
 */
export function ndjsonFileSink(dir: string, name: string, options: NdjsonFileSinkOptions = {}): RowSink {
  let file: Promise<OutputFile> | undefined;
  let keys: string[] | undefined;
  let encoders: Encode[] = [];
  let rows = 0;
  const open = (): Promise<OutputFile> => (file ??= openOutputFile(dir, name, options));
  return {
    async write(batch: RowBatch): Promise<void> {
      const f = await open();
      if (batch.header !== undefined) {
        keys = batch.header.map((h) => `${JSON.stringify(h)}:`);
        encoders = batch.header.map((h) => encoderOf(options.types !== undefined && Object.hasOwn(options.types, h) ? options.types[h] : undefined));
      }
      if (batch.rows.length === 0) return;
      await f.write(toLines(keys ?? [], encoders, batch.rows));
      rows += batch.rows.length;
    },
    async append(chunks: readonly Uint8Array[], n: number): Promise<void> {
      const f = await open();
      for (const c of chunks) await f.write(Buffer.from(c.buffer, c.byteOffset, c.length));
      rows += n;
    },
    async commit(): Promise<SinkResult> {
      const f = await open();
      const path = await f.commit();
      return { path, rows, bytes: f.bytes };
    },
    async stage(): Promise<StagedFileOutput> {
      const f = await open();
      return { kind: 'file', file: await f.stage(), rows, bytes: f.bytes };
    },
    async abort(): Promise<void> {
      const f = await file?.catch(() => undefined);
      await f?.abort();
    },
  };
}

function toLines(keys: string[], encoders: Encode[], rows: Row[]): string {
  let out = '';
  for (const row of rows) {
    let line = '{';
    for (let i = 0; i < keys.length; i++) line += `${i === 0 ? '' : ','}${keys[i]}${encoders[i]!(row[i] ?? '')}`;
    out += `${line}}\n`;
  }
  return out;
}
