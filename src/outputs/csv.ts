// The CSV file output: a CSV file per input in `out`, in the input's dialect unless told otherwise.
import { z } from 'zod';
import { csvFileSink } from '../sinks/csv-file.js';
import { type OutputDriver, outputBatchSetting } from './driver.js';
import { fileModeSetting, fileOutput, gzipSetting } from './file-output.js';

export const csvOutputSchema = z.strictObject({
  format: z.literal('csv'),
  delimiter: z.string().min(1).optional().describe("Field delimiter of the output; default the input's (`,`, or a tab for .tsv files)."),
  quote: z.enum(['minimal', 'all']).default('minimal').describe('`minimal`: quote only where CSV requires it; `all`: every field.'),
  header: z.boolean().default(true).describe('Write the header row.'),
  lineEnding: z.enum(['lf', 'crlf']).default('lf').describe('Line ending of the output.'),
  gzip: gzipSetting,
  escapeFormulas: z
    .boolean()
    .default(false)
    .describe('Guard against formula injection in spreadsheets: a field starting with = + - @ tab or CR gets a leading quote character.'),
  name: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Output name template: {name} {stem} {ext} {pipeline} {date} ({name} and {stem} leave out an input .gz). Default `{name}` (`{stem}.csv.gz` with gzip).',
    ),
  mode: fileModeSetting,
  batch: outputBatchSetting,
});

export type CsvOutputConfig = z.output<typeof csvOutputSchema>;

export const csvOutput: OutputDriver<CsvOutputConfig> = fileOutput({
  format: 'csv',
  schema: csvOutputSchema,
  names: (c) => ({ ext: 'csv', defaultName: c.gzip ? '{stem}.csv.gz' : '{name}' }),
  // each write of a gzip output is a gzip member: slices would cut members where one run does not
  sliceable: (c) => !c.gzip,
  open: (c, dir, name, options, file) =>
    csvFileSink(dir, name, {
      ...options,
      // what the input was, unless the output says: a .tsv comes out tab-separated
      delimiter: c.delimiter ?? file.delimiter,
      quote: c.quote,
      // a slice after the first continues the file: the header is the first slice's
      header: c.header && file.slice?.first !== false,
      escapeFormulas: c.escapeFormulas,
      recordDelimiter: c.lineEnding === 'crlf' ? '\r\n' : '\n',
    }),
});
