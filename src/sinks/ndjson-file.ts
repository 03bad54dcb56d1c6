// ndjsonFileSink: one JSON object per row, keys from the header, published atomically like CSV outputs.
import type { Row, RowBatch } from '../row.js';
import { AtomicFile, type AtomicFileOptions } from '../fs/atomic-file.js';
import type { RowSink, SinkResult, StagedFileOutput } from '../outputs/driver.js';

/**
 * A sink that writes `dir/name` as newline-delimited JSON: `{"id":"1","email":"a@x.io"}` per row, values
 * as strings (after `cast`, still the cast text). A header-only input gives an empty file.
 *
 * @example ndjsonFileSink('./out', 'orders.ndjson', { gzip: true })
 */
export function ndjsonFileSink(dir: string, name: string, options: AtomicFileOptions = {}): RowSink {
  let file: Promise<AtomicFile> | undefined;
  let keys: string[] | undefined;
  let rows = 0;
  const open = (): Promise<AtomicFile> => (file ??= AtomicFile.create(dir, name, options));
  return {
    async write(batch: RowBatch): Promise<void> {
      const f = await open();
      if (batch.header !== undefined) keys = batch.header.map((h) => JSON.stringify(h));
      if (batch.rows.length === 0) return;
      await f.write(toLines(keys ?? [], batch.rows));
      rows += batch.rows.length;
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

function toLines(keys: string[], rows: Row[]): string {
  let out = '';
  for (const row of rows) {
    let line = '{';
    for (let i = 0; i < keys.length; i++) line += `${i === 0 ? '' : ','}${keys[i]}:${JSON.stringify(row[i] ?? '')}`;
    out += `${line}}\n`;
  }
  return out;
}
