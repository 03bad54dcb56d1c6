// A pipeline's settings as the daemon and `sluice preview` run it: its steps, sink, CSV dialect and limits,
// built and checked once at start (a bad step or name template is a config error, named by its path).
import type { SluiceConfig } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import type { CsvReadOptions } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';
import { batchPolicy } from '../outputs/driver.js';
import { outputDriver } from '../outputs/registry.js';
import type { PipelineSettings } from './process-file.js';
import { buildSteps, columnTypes, configDir } from './steps.js';

/** The dialect options of `input` (CSV dialects of real exports), passed to parseCsv as given. */
function csvDialect(i: PipelineConfig['input']): Pick<CsvReadOptions, 'header' | 'columns' | 'skipLines' | 'comment' | 'relaxQuotes'> {
  return {
    header: i.header,
    skipLines: i.skipLines,
    relaxQuotes: i.relaxQuotes,
    ...(i.columns === undefined ? {} : { columns: i.columns }),
    ...(i.comment === undefined ? {} : { comment: i.comment }),
  };
}

/** What differs per file from its pipeline's settings: temporaries tagged with the claim, the dialect its name gives. */
export interface PerFile {
  tempTag: string;
  claimId: string;
  /** Undefined: the dialect's default (a comma). */
  delimiter: string | undefined;
  format: 'csv' | 'ndjson' | 'json';
}

/** A pipeline's settings for one file (in this thread, or in the worker that runs it). */
export function settingsForFile(settings: PipelineSettings, per: PerFile): PipelineSettings {
  return { ...settings, tempTag: per.tempTag, claimId: per.claimId, csv: { ...settings.csv, delimiter: per.delimiter }, format: per.format };
}

/** The settings of pipeline `p` (at `index` in the config). */
export async function pipelineSettings(cfg: SluiceConfig, p: PipelineConfig, index: number): Promise<PipelineSettings> {
  const driver = outputDriver(p.output);
  driver.check?.(p.output, `pipelines[${index}].output`);
  let steps: Awaited<ReturnType<typeof buildSteps>>;
  try {
    steps = await buildSteps(p.steps, { baseDir: configDir(cfg.source) });
  } catch (err) {
    if (err instanceof SluiceError) {
      throw new SluiceError(err.code, `pipelines[${index}].${err.message}`, { field: `pipelines[${index}].${err.field ?? 'steps'}`, cause: err });
    }
    throw err;
  }
  const { delimiter, quote, encoding, bom, maxRecordSize, maxColumns, allowHardLinks } = p.input;
  const mode = driver.mode?.(p.output);
  return {
    maxColumns,
    allowHardLinks,
    ...(mode === undefined ? {} : { mode }),
    pipeline: p.name,
    outDir: cfg.out,
    rejectsDir: cfg.rejects,
    csv: {
      delimiter,
      quote,
      escape: p.input.escape,
      encoding,
      bom,
      maxRecordSize,
      ...csvDialect(p.input),
    },
    steps,
    sink: driver.sinks(p.output, { outDir: cfg.out, pipeline: p.name, types: columnTypes(p.steps) }),
    batch: batchPolicy(cfg.batch, cfg.given.has('batch'), driver.batch, p.output.batch),
    highWaterMark: cfg.highWaterMark,
    fsync: cfg.fsync,
    // the daemon tags each file's temporaries with its instance and claim (daemon.ts forFile)
    tempTag: cfg.instanceId ?? 'sluice',
    stageOnly: true,
    hash: true,
  };
}
