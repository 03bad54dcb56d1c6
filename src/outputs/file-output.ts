// What the file outputs (csv, ndjson, parquet) share: a name template under `out`, a file mode, atomic publication.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { AtomicFileOptions } from '../fs/atomic-file.js';
import { checkNameTemplate, outputName } from '../sinks/output-name.js';
import type { OutputDriver, OutputPlace, RowSink, SinkFactory, SinkFile } from './driver.js';

/** A file mode as octal text, "0640" or "640". */
export const fileModeSetting = z
  .string({
    // an unquoted 0640 is the YAML number 640: taking its digits as octal would guess; 0o640 would be 416
    error: (issue) =>
      typeof issue.input === 'number' ? 'write the mode as quoted octal text, "0640" (YAML reads an unquoted 0640 as the number 640)' : undefined,
  })
  .regex(/^0?[0-7]{3}$/, 'expected an octal mode such as "0640"')
  .optional()
  .describe(
    'The mode of outputs and rejects files, as octal text (`"0600"`); default the input\'s permission bits, at most 0640 (an output is never more readable than its input). The umask applies.',
  );

export const gzipSetting = z.boolean().default(false).describe('Compress the output with gzip.');

export interface FileOutputConfig {
  name?: string | undefined;
  mode?: string | undefined;
  /** Absent where the format compresses inside the file (Parquet). */
  gzip?: boolean;
}

/** The configured mode as a number. */
export function fileMode(config: FileOutputConfig): number | undefined {
  return config.mode === undefined ? undefined : Number.parseInt(config.mode, 8);
}

/** A name template that cannot escape `out` and names each input's output. */
export function checkFileName(config: FileOutputConfig, field: string): void {
  if (config.name !== undefined) checkNameTemplate(config.name, `${field}.name`);
}

/**
 * The sink factory of a file output: the name filled from the template (folders it names are made), then
 * `open` makes the format's sink in that folder.
 */
export function fileSinks(
  config: FileOutputConfig,
  place: OutputPlace,
  format: { ext: string; defaultName: string },
  open: (dir: string, name: string, options: AtomicFileOptions, file: SinkFile) => RowSink,
): SinkFactory {
  const template = config.name ?? format.defaultName;
  const gzip = config.gzip === true;
  const ext = `${format.ext}${gzip ? '.gz' : ''}`;
  return async (ctx, file) => {
    const rel = outputName(template, { name: ctx.name, pipeline: place.pipeline, ext, gzip });
    const dir = join(place.outDir, dirname(rel));
    // a slice in a worker writes into memory: the main thread's sink makes the folder and the file
    if (rel.includes('/') && file.slice === undefined) await mkdir(dir, { recursive: true });
    const memory = file.slice === undefined ? {} : { memory: file.slice.into };
    return open(dir, rel.slice(rel.lastIndexOf('/') + 1), { tempTag: file.tempTag, fsync: file.fsync, gzip, mode: file.mode, ...memory }, file);
  };
}

/** `file out/{name} (csv)`: the preview's line for a file output. */
export function describeFile(config: FileOutputConfig, format: { ext: string; defaultName: string }, outDir: string): string {
  return `file ${join(outDir, config.name ?? format.defaultName)} (${format.ext})`;
}

/**
 * A file output's driver from what differs between formats: its schema, its names (extension and default
 * template) and how it opens its sink in a folder.
 */
export function fileOutput<C extends FileOutputConfig & { format: string }>(spec: {
  format: C['format'];
  schema: OutputDriver<C>['schema'];
  names: (config: C) => { ext: string; defaultName: string };
  open: (config: C, dir: string, name: string, options: AtomicFileOptions, file: SinkFile, place: OutputPlace) => RowSink;
  /** The output may be assembled from slices (see OutputDriver.sliceable). */
  sliceable?: (config: C) => boolean;
}): OutputDriver<C> {
  return {
    format: spec.format,
    schema: spec.schema,
    check: checkFileName,
    mode: fileMode,
    describe: (c, place) => describeFile(c, spec.names(c), place.outDir),
    sinks: (c, place) => fileSinks(c, place, spec.names(c), (dir, name, options, file) => spec.open(c, dir, name, options, file, place)),
    ...(spec.sliceable === undefined ? {} : { sliceable: spec.sliceable }),
  };
}
