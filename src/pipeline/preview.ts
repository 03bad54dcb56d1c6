// sluice preview: runs a file through its pipeline in memory, writing and moving nothing.
import { basename } from 'node:path';
import type { SluiceConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import type { Rejection, Row, RowBatch } from '../row.js';
import { processFile, type FileReport } from './process-file.js';
import { pipelineSettings } from './settings.js';
import { createRouter, delimiterFor, formatFor } from './route.js';

export interface PreviewResult {
  pipeline: string;
  header: Row | undefined;
  rows: Row[];
  rejects: Rejection[];
  rejectCodes: Record<string, number>;
  report: FileReport;
}

/** Runs `file` through the pipeline that would take it (or `pipeline`), keeping the first `rows` rows. */
export async function preview(file: string, cfg: SluiceConfig, options: { pipeline?: string; rows?: number } = {}): Promise<PreviewResult> {
  const name = basename(file);
  const p = options.pipeline === undefined ? createRouter(cfg.pipelines)(name) : cfg.pipelines.find((x) => x.name === options.pipeline);
  if (p === undefined) {
    throw options.pipeline === undefined
      ? new SluiceError('NO_PIPELINE', `no pipeline matches the file name ${JSON.stringify(name)}`, { file: name })
      : new SluiceError('USAGE', `--pipeline: no pipeline named ${JSON.stringify(options.pipeline)} (have: ${cfg.pipelines.map((x) => x.name).join(', ')})`);
  }
  const keep = options.rows ?? 10;
  let header: Row | undefined;
  const rows: Row[] = [];
  const rejects: Rejection[] = [];
  const rejectCodes: Record<string, number> = {};
  // the pipeline exactly as the daemon builds it, with the output and the rejects kept in memory
  const settings = await pipelineSettings(cfg, p, cfg.pipelines.indexOf(p));
  const report = await processFile(file, name, {
    ...settings,
    csv: { ...settings.csv, delimiter: delimiterFor(p, name) },
    format: formatFor(p, name),
    stageOnly: false,
    hash: false,
    sink: () => ({
      async write(b: RowBatch) {
        if (b.header !== undefined) header = b.header;
        for (const r of b.rows) if (rows.length < keep) rows.push(r);
      },
      commit: async () => ({ rows: 0, bytes: 0 }),
      abort: async () => undefined,
    }),
    rejects: () => ({
      add(r: Rejection) {
        rejectCodes[r.code] = (rejectCodes[r.code] ?? 0) + 1;
        if (rejects.length < keep) rejects.push(r);
      },
      commit: async () => ({ rows: 0, bytes: 0 }),
      abort: async () => undefined,
    }),
  });
  return { pipeline: p.name, header, rows, rejects, rejectCodes, report };
}

/** A plain text table; long values are cut to `width` characters. */
export function formatTable(header: Row, rows: Row[], width = 32): string {
  const cut = (v: string): string => {
    const s = JSON.stringify(v).slice(1, -1);
    return s.length > width ? `${s.slice(0, width - 1)}…` : s;
  };
  const cells = [header, ...rows].map((r) => r.map(cut));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((v, i) => v.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.slice(1).map(line)].join('\n');
}
