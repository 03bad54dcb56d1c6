// Where a claimed file's pipeline runs: in this thread (`workers: 1`; an output that stages a transaction,
// whose COMMIT must come from this thread; a small file; any file when this thread's lane is free), cut into
// slices across the lane and the workers (a large CSV file, alone, whose steps are all row-local, into a
// file output that can be assembled), or whole in a worker. Whichever, the answer is the same FileReport,
// with the outputs staged for the daemon's commit.
import { lstatSync } from 'node:fs';
import type { SluiceConfig } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { fastPathApplies } from '../csv/fast-reader.js';
import { SluiceError } from '../errors.js';
import { noRows } from '../outcome.js';
import { outputDriver } from '../outputs/registry.js';
import { type FileReport, type PipelineHooks, type PipelineSettings, processFile, RunWhole } from '../pipeline/process-file.js';
import type { PerFile } from '../pipeline/settings.js';
import { stepsAreRowLocal } from '../pipeline/steps.js';
import { Lane } from './lane.js';
import type { WorkerPool } from './pool.js';
import { type ReportData, reportFromData, type TaskEvent } from './protocol.js';
import { sliceProducer } from './slices.js';

/** The file to run: its claim, its pipeline (config and index in configuration `gen`), its settings. */
export interface FileRun {
  path: string;
  name: string;
  /** What is its own (workers apply it to the pipeline's settings they build). */
  per: PerFile;
  /** The pipeline's settings with `per` applied. */
  settings: PipelineSettings;
  pipeline: PipelineConfig;
  index: number;
  gen: number;
  /** The configuration of generation `gen`. */
  cfg: SluiceConfig;
}

/**
 * A file smaller than this runs in the main thread even with workers: handing it to a worker (messages, a
 * report cloned back) costs more than parsing it, and the main thread commits it anyway. Measured with
 * 10,000 files of 20 rows on 2 cores: 811 files/s in the main thread, 515-639 through two workers.
 */
export const WORKER_MIN_BYTES = 256 * 1024;

export class FileRunner {
  /** The main thread's lane: with workers, this thread runs one file or slice at a time beside them. */
  private readonly lane = new Lane();

  constructor(
    private readonly pool: WorkerPool | undefined,
    /** Slice size now (a reload may change it); 0: never cut. */
    private readonly sliceBytes: () => number,
    /** A worker died under a file: its temporaries are to be removed. */
    private readonly onWorkerFailed: (run: FileRun) => void = () => undefined,
    /** Other files are being parsed or wait to be: a large file then runs whole, beside them, and is not cut. */
    private readonly crowded: () => boolean = () => false,
  ) {}

  async run(f: FileRun, hooks: PipelineHooks, signal: AbortSignal): Promise<FileReport> {
    const pool = this.pool;
    // no workers (or none could start: the daemon logged why)
    if (pool === undefined || pool.broken) return processFile(f.path, f.name, f.settings, hooks, signal);
    const size = sizeOf(f.path);
    // an output whose COMMIT is this thread's, and a small file, which costs more to hand over than to parse
    if (outputDriver(f.pipeline.output).remote !== undefined || (size !== undefined && size < WORKER_MIN_BYTES)) return this.here(f, hooks, signal);
    const onEvent = (ev: TaskEvent): void => forward(ev, hooks, f.settings.pipeline);
    if (size !== undefined && this.cuttable(f, size) && !this.crowded()) {
      // the threads load their code now, while this one scans and runs the first slices; a file that
      // runs whole in the lane starts none (a batch run of one such file would wait for them at its exit)
      pool.start();
      const produce = sliceProducer({
        pool,
        lane: this.lane,
        gen: f.gen,
        config: f.cfg,
        pipeline: f.index,
        per: f.per,
        sliceBytes: this.sliceBytes(),
        onEvent,
      });
      try {
        // slices write only memory: a worker's death there leaves no temporary file
        return await processFile(f.path, f.name, f.settings, hooks, signal, produce);
      } catch (err) {
        if (!(err instanceof RunWhole)) throw err;
        // it was to be cut and ran whole: its log line says why, whatever its outcome
        return { ...(await this.whole(pool, f, hooks, signal, onEvent)), notCut: err.why };
      }
    }
    return this.whole(pool, f, hooks, signal, onEvent);
  }

  /** Runs the file whole: in this thread's lane if it is free, else in a worker. */
  private async whole(pool: WorkerPool, f: FileRun, hooks: PipelineHooks, signal: AbortSignal, onEvent: (ev: TaskEvent) => void): Promise<FileReport> {
    if (this.lane.free) return this.here(f, hooks, signal);
    try {
      const task = { t: 'file', gen: f.gen, pipeline: f.index, path: f.path, name: f.name, per: f.per } as const;
      const value = await pool.run(task, { signal, onEvent, config: f.cfg });
      return reportFromData(value as ReportData);
    } catch (err) {
      return this.failed(f, unrun(f, err as SluiceError));
    }
  }

  /** Runs the file in this thread, holding its lane until the rows are written. */
  private async here(f: FileRun, hooks: PipelineHooks, signal: AbortSignal): Promise<FileReport> {
    const release = this.lane.take();
    try {
      const onParsed = (): void => {
        release();
        hooks.onParsed?.();
      };
      return await processFile(f.path, f.name, f.settings, { ...hooks, onParsed }, signal);
    } finally {
      release();
    }
  }

  /** A report whose worker died: what the dead worker wrote is removed before a retry writes again. */
  private failed(f: FileRun, report: FileReport): FileReport {
    if (report.error?.code === 'WORKER_FAILED') this.onWorkerFailed(f);
    return report;
  }

  /** Can this file (of `size` bytes) be cut into slices? */
  private cuttable(f: FileRun, size: number): boolean {
    const bytes = this.sliceBytes();
    const s = f.settings;
    if (bytes <= 0 || (s.format ?? 'csv') !== 'csv' || (s.csv.encoding ?? 'utf8') !== 'utf8' || (s.csv.skipLines ?? 0) > 0) return false;
    // the cut and the line count read the bytes as the fast path does: one-byte delimiter, `"` quotes, UTF-8
    if (!fastPathApplies({ ...s.csv, encoding: 'utf8' })) return false;
    const driver = outputDriver(f.pipeline.output);
    if (driver.sliceable?.(f.pipeline.output) !== true || !stepsAreRowLocal(f.pipeline.steps)) return false;
    return size >= 2 * bytes;
  }
}

/** The input's size now (one lstat), or undefined if it cannot be had: the pipeline's own open says why. */
function sizeOf(path: string): number | undefined {
  try {
    return lstatSync(path).size;
  } catch {
    return undefined;
  }
}

/** A worker's progress, told to the hooks as if the pipeline ran here. */
function forward(ev: TaskEvent, hooks: PipelineHooks, pipeline: string | undefined): void {
  if (ev.inFlight !== 0) hooks.onInFlight?.(ev.inFlight);
  if (ev.bytes !== 0) hooks.onBytesRead?.(ev.bytes);
  for (const [rows, seconds] of ev.batches ?? []) hooks.onBatchWritten?.(rows, seconds, pipeline);
  if (ev.parsed === true) hooks.onParsed?.();
}

/** The report of a file whose task did not run to its end (stopped, its worker died). */
function unrun(f: FileRun, error: SluiceError): FileReport {
  const e = error instanceof SluiceError ? error : new SluiceError('WORKER_FAILED', String(error), { file: f.name });
  return {
    name: f.name,
    pipeline: f.settings.pipeline ?? 'default',
    outcome: 'failed',
    rows: noRows(),
    bytesRead: 0,
    bytesWritten: 0,
    durationMs: 0,
    error: e,
  };
}
