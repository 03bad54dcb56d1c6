// The Parquet file output: a typed, compressed Parquet file per input in `out`, written a row group at a time.
import { z } from 'zod';
import { DEFAULT_ROW_GROUP_ROWS, parquetFileSink } from '../sinks/parquet-file.js';
import { type OutputDriver, outputBatchSetting } from './driver.js';
import { fileModeSetting, fileOutput } from './file-output.js';

export const parquetOutputSchema = z.strictObject({
  format: z.literal('parquet'),
  compression: z.enum(['zstd', 'snappy', 'gzip', 'none']).default('zstd').describe('Column compression: `zstd` (level 3), `snappy`, `gzip` or `none`.'),
  rowGroupRows: z
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .default(DEFAULT_ROW_GROUP_ROWS)
    .describe(`Rows per row group (the last one may hold fewer); memory grows with it. Default ${DEFAULT_ROW_GROUP_ROWS} (DuckDB's).`),
  name: z.string().min(1).optional().describe('Output name template; default `{stem}.parquet`.'),
  mode: fileModeSetting,
  batch: outputBatchSetting,
});

export type ParquetOutputConfig = z.output<typeof parquetOutputSchema>;

export const parquetOutput: OutputDriver<ParquetOutputConfig> = fileOutput({
  format: 'parquet',
  schema: parquetOutputSchema,
  names: () => ({ ext: 'parquet', defaultName: '{stem}.parquet' }),
  open: (c, dir, name, options, _file, place) =>
    parquetFileSink(dir, name, { ...options, compression: c.compression, rowGroupRows: c.rowGroupRows, types: place.types }),
});
