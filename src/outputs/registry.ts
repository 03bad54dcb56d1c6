// The output drivers by name: the `output` setting is a union of their schemas, and a pipeline finds its
// driver here. Adding an output format is one driver file and one line below.
import { z } from 'zod';
import { csvOutput, csvOutputSchema } from './csv.js';
import type { OutputDriver } from './driver.js';
import { ndjsonOutput, ndjsonOutputSchema } from './ndjson.js';
import { parquetOutput, parquetOutputSchema } from './parquet.js';
import { postgresOutput, postgresOutputSchema } from './postgres.js';

export const OUTPUT_DRIVERS = [csvOutput, ndjsonOutput, parquetOutput, postgresOutput] as const;

export const outputSchema = z
  .discriminatedUnion('format', [csvOutputSchema, postgresOutputSchema, ndjsonOutputSchema, parquetOutputSchema])
  .prefault({ format: 'csv' })
  .describe('Where kept rows go: a CSV, NDJSON or Parquet file in `out`, or a PostgreSQL table.');

export type OutputConfig = z.output<typeof outputSchema>;

/** The driver of an output as configured. */
export function outputDriver(config: OutputConfig): OutputDriver<OutputConfig> {
  const driver = OUTPUT_DRIVERS.find((d) => d.format === config.format);
  if (driver === undefined) throw new Error(`no output driver for format ${JSON.stringify(config.format)}`);
  // each driver is given only configs of its own format (the schema's discriminator)
  return driver as unknown as OutputDriver<OutputConfig>;
}
