// The output of a pipeline as configured: format, options and name template -> a sink per file.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { OutputConfig } from '../config/schema.js';
import type { FileContext } from '../file-context.js';
import { csvFileSink } from './csv-file.js';
import { ndjsonFileSink } from './ndjson-file.js';
import { outputName } from './output-name.js';
import type { SinkFile } from '../pipeline/process-file.js';
import type { RowSink } from './sink.js';

export interface OutputPlace {
  outDir: string;
  pipeline: string;
  /** Column types for a table that `create: true` makes (from the pipeline's cast steps). */
  types?: Record<string, string>;
}

type FileOutput = Exclude<OutputConfig, { format: 'postgres' }>;

/** The default name template of each file output. */
export function defaultTemplate(output: FileOutput): string {
  if (output.format === 'ndjson') return output.gzip ? '{stem}.ndjson.gz' : '{stem}.ndjson';
  return output.gzip ? '{stem}.csv.gz' : '{name}';
}

/** Builds the sink factory of an output config. */
export function outputSink(output: OutputConfig, place: OutputPlace): (ctx: FileContext, file: SinkFile) => Promise<RowSink> {
  if (output.format === 'postgres') {
    const { table, schema, url, columns, create } = output;
    const opts = {
      table,
      create,
      types: place.types ?? {},
      ...(schema === undefined ? {} : { schema }),
      ...(url === undefined ? {} : { url }),
      ...(columns === undefined ? {} : { columns }),
    };
    // pg is loaded only by pipelines that load into PostgreSQL
    return async (ctx, file) => (await import('./postgres.js')).postgresSink(opts, { claimId: file.claimId, file: ctx.name, pipeline: place.pipeline });
  }
  const template = output.name ?? defaultTemplate(output);
  const ext = `${output.format}${output.gzip ? '.gz' : ''}`;
  return async (ctx, file) => {
    const rel = outputName(template, { name: ctx.name, pipeline: place.pipeline, ext, gzip: output.gzip });
    const dir = join(place.outDir, dirname(rel));
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    if (rel.includes('/')) await mkdir(dir, { recursive: true });
    const fileOpts = { tempTag: file.tempTag, fsync: file.fsync, gzip: output.gzip, mode: file.mode };
    if (output.format === 'ndjson') return ndjsonFileSink(dir, name, fileOpts);
    return csvFileSink(dir, name, {
      ...fileOpts,
      // what the input was, unless the output says: a .tsv comes out tab-separated
      delimiter: output.delimiter ?? file.delimiter,
      quote: output.quote,
      header: output.header,
      escapeFormulas: output.escapeFormulas,
      recordDelimiter: output.lineEnding === 'crlf' ? '\r\n' : '\n',
    });
  };
}
