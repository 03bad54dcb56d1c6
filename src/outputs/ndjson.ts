// The NDJSON file output: one JSON object per row, a file per input in `out`.
import { z } from 'zod';
import { ndjsonFileSink } from '../sinks/ndjson-file.js';
import { type OutputDriver, outputBatchSetting } from './driver.js';
import { fileModeSetting, fileOutput, gzipSetting } from './file-output.js';

export const ndjsonOutputSchema = z.strictObject({
  format: z.literal('ndjson'),
  gzip: gzipSetting,
  name: z.string().min(1).optional().describe('Output name template; default `{stem}.ndjson`.'),
  mode: fileModeSetting,
  batch: outputBatchSetting,
});

export type NdjsonOutputConfig = z.output<typeof ndjsonOutputSchema>;

export const ndjsonOutput: OutputDriver<NdjsonOutputConfig> = fileOutput({
  format: 'ndjson',
  schema: ndjsonOutputSchema,
  names: (c) => ({ ext: 'ndjson', defaultName: c.gzip ? '{stem}.ndjson.gz' : '{stem}.ndjson' }),
  // one line per row, no header: slices join as they are (not gzip: each write is a gzip member)
  sliceable: (c) => !c.gzip,
  // typed by the pipeline's cast steps: numbers and booleans as JSON, an empty cast field as null
  open: (_c, dir, name, options, _file, place) => ndjsonFileSink(dir, name, { ...options, types: place.types }),
});
