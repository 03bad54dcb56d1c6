// Routing: the first pipeline whose `match` globs match the file name takes the file.
import picomatch from 'picomatch';
import type { PipelineConfig } from '../config/schema.js';

export type Router = (fileName: string) => PipelineConfig | undefined;

/** A pipeline's settings for one file name: a .tsv file is tab-separated unless the input says otherwise. */
export function delimiterFor(p: PipelineConfig, fileName: string): string | undefined {
  if (p.input.delimiter !== undefined) return p.input.delimiter;
  return /\.tsv(\.gz)?$/i.test(fileName) ? '\t' : undefined;
}

/** The reader of a file: `input.format`, else JSON lines for .ndjson and .jsonl names, a JSON array for .json (.gz too), else CSV. */
export function formatFor(p: PipelineConfig, fileName: string): InputFormat {
  if (p.input.format !== undefined) return p.input.format;
  if (/\.(ndjson|jsonl)(\.gz)?$/i.test(fileName)) return 'ndjson';
  return /\.json(\.gz)?$/i.test(fileName) ? 'json' : 'csv';
}

export type InputFormat = 'csv' | 'ndjson' | 'json';

export function createRouter(pipelines: readonly PipelineConfig[]): Router {
  const matchers = pipelines.map((p) => ({ p, test: picomatch(p.match, { dot: true, nocase: false }) }));
  return (fileName) => matchers.find((m) => m.test(fileName))?.p;
}
