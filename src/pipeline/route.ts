// Routing: the first pipeline whose `match` globs match the file name takes the file.
import picomatch from 'picomatch';
import type { PipelineConfig } from '../config/schema.js';

export type Router = (fileName: string) => PipelineConfig | undefined;

export function createRouter(pipelines: readonly PipelineConfig[]): Router {
  const matchers = pipelines.map((p) => ({ p, test: picomatch(p.match, { dot: true, nocase: false }) }));
  return (fileName) => matchers.find((m) => m.test(fileName))?.p;
}
