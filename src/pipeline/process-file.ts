// Runs one file through its pipeline: bytes -> parseCsv -> steps -> batch -> sink, then publishes the
// output and the rejects, and reports the counts. It never moves the input: the caller does.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { concatMap, type Observable, type OperatorFunction } from 'rxjs';
import type { CsvReadOptions } from '../csv/record-reader.js';
import { SluiceError, toSluiceError } from '../errors.js';
import { noRows, type Outcome } from '../outcome.js';
import { FileContext } from '../file-context.js';
import { stemOf } from '../fs/no-clobber.js';
import { batch } from '../operators/batch.js';
import type { BatchOptions } from '../operators/batch-policy.js';
import { decodeText, type InputEncoding } from '../operators/decode-text.js';
import { DEFAULT_MAX_COLUMNS, parseCsv } from '../operators/parse-csv.js';
import { parseNdjson } from '../operators/parse-ndjson.js';
import { preservesRows } from '../operators/row-operator.js';
import type { Rejection, Row, RowBatch } from '../row.js';
import { fileBytes } from '../sources/file-bytes.js';
import { RejectsFile } from '../sinks/rejects-file.js';
import type { RowSink, SinkFactory, SinkResult, StagedFileOutput, StagedOutput } from '../outputs/driver.js';

/** Where rejected records go: RejectsFile, or a collector (preview). */
export interface RejectsTarget {
  add(r: Rejection): void;
  commit(): Promise<SinkResult>;
  /** The rejects file made durable, not yet visible (undefined when nothing was rejected). */
  stage?(): Promise<StagedFileOutput | undefined>;
  abort(): Promise<void>;
}

export type Steps = ReadonlyArray<OperatorFunction<Row, Row>>;

export interface PipelineSettings {
  /** The pipeline's name (logs and metrics). */
  pipeline?: string;
  outDir: string;
  rejectsDir: string;
  /** How the bytes are read; a non-UTF-8 `encoding` is decoded to UTF-8 before parsing. */
  csv: Omit<CsvReadOptions, 'encoding'> & { encoding?: InputEncoding };
  /** The reader: CSV (default), JSON lines or a JSON array (`csv.columns` is then the header, default the first object's keys). */
  format?: 'csv' | 'ndjson' | 'json';
  /** The operators between parsing and batching, in order (or built per file, for those that need it). */
  steps: Steps | ((ctx: FileContext) => Steps);
  /** The output sink of each file (an output driver's). Temporary files must carry `file.tempTag`. */
  sink: SinkFactory;
  /** The claim this run belongs to (database sinks record it with the load). Default: the temp tag. */
  claimId?: string;
  /** Where rejects go; default `rejectsDir/<stem>.rejects.csv`. */
  rejects?: (ctx: FileContext) => RejectsTarget;
  batch: BatchOptions;
  /** Rows in flight (read, not yet written) before reading pauses. */
  highWaterMark: number;
  fsync: boolean;
  /** Tag for temporary file names (the instance id). */
  tempTag: string;
  chunkSize?: number;
  /**
   * Stage the outputs (durable under temporary names) instead of publishing them: the caller publishes
   * after recording its intent (the daemon's commit protocol). Default false.
   */
  stageOnly?: boolean;
  /** Compute the input's sha256 (for receipts). Default false. */
  hash?: boolean;
  /** A header with more columns fails the file (TOO_MANY_COLUMNS). Default 10000. */
  maxColumns?: number;
  /** The mode of outputs and rejects; default the input's, at most 0640. */
  mode?: number;
  /** Take an input with more than one hard link (default: HARDLINK_REFUSED). */
  allowHardLinks?: boolean;
}

export interface PipelineHooks {
  /** The rows-in-flight level moved by `delta` (for a gauge). */
  onInFlight?: (delta: number) => void;
  /** A batch of `rows` was written in `seconds`. */
  onBatchWritten?: (rows: number, seconds: number, pipeline?: string) => void;
  /** Every row of the file is written (what follows is staging: waits on the disk, no parsing). */
  onParsed?: () => void;
  /** `bytes` more of the input were read (a progress display). */
  onBytesRead?: (bytes: number) => void;
}

/** What a row producer is given: the opened input, and the file's context, steps and sink. */
export interface RowRun {
  /** The input (claimed): a producer that hands it to workers gives them this. */
  path: string;
  fd: number;
  st: Stats;
  ctx: FileContext;
  steps: Steps;
  sink: RowSink;
  settings: PipelineSettings;
  hooks: PipelineHooks;
  signal: AbortSignal | undefined;
  /** Each chunk of the input as read (its hash, byte counts, progress). */
  onRead(chunk: Buffer): void;
  /** The input was read to its end. */
  onEnd(): void;
  /** A read was issued on `fd`: closing it waits for the last one. */
  onReadIssued(read: Promise<unknown>): void;
  /** The producer cut the file into this many slices (the report says so). */
  slices?: number;
}

/**
 * Gets every row of the input to the sink, counting them in `ctx` (read, batched, written, rejects through
 * `ctx.reject`): this thread's pipeline (the default), or slices run by workers (workers/slices.ts).
 */
export type RowProducer = (run: RowRun) => Promise<void>;

/**
 * Thrown by a producer that finds the file cannot be cut safely after all (it aborts its slices first):
 * processFile removes what was written and rethrows it, and the caller runs the file whole.
 */
export class RunWhole extends Error {
  constructor(readonly why: string) {
    super(`the file is run whole: ${why}`);
  }
}

export type { RowTotals } from '../outcome.js';

export interface FileReport extends Outcome<SluiceError> {
  name: string;
  bytesRead: number;
  bytesWritten: number;
  durationMs: number;
  output?: string;
  rejects?: string;
  /** With `stageOnly`: the outputs to publish. */
  staged?: { output: StagedOutput; rejects?: StagedFileOutput };
  /** Rejected records by error code. */
  rejectCodes?: Record<string, number>;
  /** JSON lines: keys objects had beyond the header, with how many objects had each (not in the output). */
  extraKeys?: Record<string, number>;
  /** CSV with `input.comment`: the comment lines skipped (not rows, not rejects). */
  comments?: number;
  /** The file was cut into this many slices, run in parallel by the workers. */
  slices?: number;
  /** The file was to be cut into slices, but ran whole: why (a RunWhole's reason). */
  notCut?: string;
  /** With `hash`: the sha256 of the input's bytes as stored (before decompression). */
  sha256?: string;
  error?: SluiceError;
  /** The input's inode and size when it was opened (absent if it could not be opened). */
  input?: { ino: number; size: number };
  /** For a failed file: records read before it failed (its row counts are all 0: nothing of it was kept). */
  readBeforeFailure?: number;
}

/**
 * Processes the file at `path` (already claimed) as `name`. Resolves with a report whether it succeeded or
 * failed; on failure nothing is left in the output folders. An abort signal stops it the same way.
 */
export async function processFile(
  path: string,
  name: string,
  settings: PipelineSettings,
  hooks: PipelineHooks = {},
  signal?: AbortSignal,
  produce: RowProducer = pipeRows,
): Promise<FileReport> {
  const started = performance.now();
  const ctx = new FileContext(name, { highWaterMark: settings.highWaterMark, onInFlight: hooks.onInFlight });
  const rejectCodes: Record<string, number> = {};
  let rejects: RejectsTarget | undefined;
  ctx.onReject = (r) => {
    rejectCodes[r.code] = (rejectCodes[r.code] ?? 0) + 1;
    rejects!.add(r);
  };
  let sink: RowSink | undefined;
  let output: string | undefined;
  let rejectsPath: string | undefined;
  let bytesWritten = 0;
  let staged: FileReport['staged'];
  let sha256: string | undefined;
  let slices: number | undefined;
  let input: FileReport['input'];
  let before: Stats | undefined;
  const hash = settings.hash === true ? createHash('sha256') : undefined;
  try {
    const steps = typeof settings.steps === 'function' ? settings.steps(ctx) : settings.steps;
    const opened = openInput(path, name, settings.allowHardLinks === true);
    const { fd } = opened;
    before = opened.st;
    let lastRead: Promise<unknown> = Promise.resolve();
    let atEnd = false;
    try {
      input = { ino: before.ino, size: before.size };
      // outputs are never more readable than their input: its mode, at most 0640 (or output.mode); the umask applies
      const fileOpts = { fsync: settings.fsync, tempTag: settings.tempTag, mode: settings.mode ?? before.mode & 0o640 };
      rejects = settings.rejects?.(ctx) ?? new RejectsFile(settings.rejectsDir, `${stemOf(name)}.rejects.csv`, { ...fileOpts, gate: ctx.gate });
      sink = await settings.sink(ctx, { ...fileOpts, claimId: settings.claimId ?? settings.tempTag, delimiter: settings.csv.delimiter ?? ',' });
      const rowRun: RowRun = {
        path,
        fd,
        st: before,
        ctx,
        steps,
        sink,
        settings,
        hooks,
        signal,
        onRead: (chunk) => {
          ctx.bytesRead += chunk.length;
          hash?.update(chunk);
          hooks.onBytesRead?.(chunk.length);
        },
        onEnd: () => (atEnd = true),
        onReadIssued: (read) => (lastRead = read),
      };
      await produce(rowRun);
      slices = rowRun.slices;
      const after = fstatSync(fd);
      // bytes read against the size only when the reading went to the end (a step may stop it early)
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || (atEnd && ctx.bytesRead !== after.size)) {
        throw new SluiceError(
          'INPUT_CHANGED',
          `the input changed while it was read (${before.size} bytes at the start, ${after.size} at the end, ${ctx.bytesRead} read)`,
          { file: name },
        );
      }
    } finally {
      // a read still queued would land in whatever file next gets this fd number
      await lastRead.catch(() => undefined);
      closeSync(fd);
    }
    hooks.onParsed?.();
    if (settings.stageOnly === true) {
      sha256 = hash?.digest('hex');
      staged = await stageBoth(sink, rejects!, { size: ctx.bytesRead, ...(sha256 === undefined ? {} : { sha256 }) });
      bytesWritten = staged.output.bytes + (staged.rejects?.bytes ?? 0);
      // staging takes a while (fsync): a writer still appending to the input is caught here, just before the
      // commit, rather than its last rows being archived without being in the output
      checkUnchanged(path, name, before);
      return report('succeeded');
    }
    const out = await sink.commit().catch((err: unknown) => {
      throw new SluiceError('WRITE_FAILED', `could not publish the output: ${(err as Error).message}`, { file: name, cause: err });
    });
    output = out.path;
    bytesWritten += out.bytes;
    const rej = await rejects!.commit().catch((err: unknown) => {
      throw new SluiceError('WRITE_FAILED', `could not write the rejects file: ${(err as Error).message}`, { file: name, cause: err });
    });
    rejectsPath = rej.path;
    bytesWritten += rej.bytes;
    return report('succeeded');
  } catch (err) {
    await sink?.abort().catch(() => undefined);
    await rejects?.abort().catch(() => undefined);
    if (err instanceof RunWhole) throw err;
    return report('failed', toSluiceError(err, 'READ_FAILED', name));
  } finally {
    ctx.gate.drain();
  }

  function report(outcome: FileReport['outcome'], error?: SluiceError): FileReport {
    const c = ctx.counts;
    const rows = outcome === 'succeeded' ? { read: c.read, written: c.written, filtered: ctx.filtered, rejected: c.rejected } : noRows();
    const r: FileReport = {
      name,
      pipeline: settings.pipeline ?? 'default',
      outcome,
      rows,
      bytesRead: ctx.bytesRead,
      bytesWritten,
      durationMs: performance.now() - started,
    };
    if (output !== undefined) r.output = output;
    if (rejectsPath !== undefined) r.rejects = rejectsPath;
    if (staged !== undefined) r.staged = staged;
    if (input !== undefined) r.input = input;
    if (outcome === 'succeeded' && c.rejected > 0) r.rejectCodes = rejectCodes;
    if (ctx.extraKeys.size > 0) r.extraKeys = Object.fromEntries(ctx.extraKeys);
    if (ctx.comments > 0) r.comments = ctx.comments;
    if (slices !== undefined && outcome === 'succeeded') r.slices = slices;
    if (hash !== undefined && outcome === 'succeeded') r.sha256 = sha256 ?? hash.digest('hex');
    if (outcome === 'failed') r.readBeforeFailure = c.read;
    if (error !== undefined) {
      if (error.file === undefined) Object.assign(error, { file: name });
      r.error = error;
    }
    return r;
  }
}

/** The rows of the input through this thread's pipeline: read, decode, parse, steps, batch, write. */
async function pipeRows(run: RowRun): Promise<void> {
  const { ctx, settings, sink, hooks } = run;
  const bytes$ = fileBytes(
    { fd: run.fd, size: run.st.size },
    { onReadIssued: run.onReadIssued, onEnd: run.onEnd, gate: ctx.gate, chunkSize: settings.chunkSize, onRead: run.onRead },
  );
  const written$ = batchedRows(bytes$, settings, ctx, run.steps).pipe(concatMap((b) => writeBatch(b, sink, ctx, hooks, settings.pipeline)));
  await runToEnd(written$, run.signal, ctx.name);
}

/**
 * Bytes to batches: decoded, parsed (CSV or JSON, as `settings` say), through the steps, batched. Rows no
 * step can change keep their original text, which a sink of the same dialect writes as is.
 */
export function batchedRows(bytes$: Observable<Buffer>, settings: PipelineSettings, ctx: FileContext, steps: Steps): Observable<RowBatch> {
  const rows$ = bytes$.pipe(
    decodeText(settings.csv.encoding),
    settings.format === 'ndjson' || settings.format === 'json'
      ? parseNdjson({
          array: settings.format === 'json',
          context: ctx,
          ...(settings.csv.maxRecordSize === undefined ? {} : { maxRecordSize: settings.csv.maxRecordSize }),
          ...(settings.csv.columns === undefined ? {} : { columns: settings.csv.columns }),
        })
      : parseCsv({ ...settings.csv, encoding: 'utf8', context: ctx, maxColumns: settings.maxColumns ?? DEFAULT_MAX_COLUMNS }),
  );
  const shaped$ = steps.reduce<Observable<Row>>((o, op) => o.pipe(op), rows$);
  const rawDelimiter = steps.every((op) => preservesRows(op)) ? (settings.csv.delimiter ?? ',') : undefined;
  return shaped$.pipe(batch({ ...settings.batch, context: ctx, ...(rawDelimiter === undefined ? {} : { rawDelimiter }) }));
}

/** A sink's failure as the file's error: WRITE_FAILED with its cause, unless it is coded already. */
export function writeFailed(err: unknown, what: string, file: string): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError('WRITE_FAILED', `could not write the ${what}: ${(err as Error).message}`, { file, cause: err });
}

/** Writes one batch and counts it written (its flow credit goes back to the gate). */
export async function writeBatch(b: RowBatch, sink: RowSink, ctx: FileContext, hooks: PipelineHooks, pipeline: string | undefined): Promise<void> {
  const t0 = performance.now();
  try {
    await sink.write(b);
  } catch (err) {
    throw writeFailed(err, 'output', ctx.name);
  }
  const n = b.rows.length;
  ctx.counts.written += n;
  ctx.gate.give(n);
  hooks.onBatchWritten?.(n, (performance.now() - t0) / 1000, pipeline);
}

async function stageBoth(sink: RowSink, rejects: RejectsTarget, info: { size: number; sha256?: string }): Promise<NonNullable<FileReport['staged']>> {
  const wrap = (what: string) => (err: unknown) => {
    throw new SluiceError('WRITE_FAILED', `could not write the ${what}: ${(err as Error).message}`, { cause: err });
  };
  if (sink.stage === undefined || rejects.stage === undefined) throw new SluiceError('INTERNAL', 'this sink cannot stage its output');
  const output = await sink.stage(info).catch((err: unknown) => {
    if (err instanceof SluiceError) throw err;
    return wrap('output')(err);
  });
  // a sink of the library's users may predate the union: what it staged must say what it is
  if (output.kind !== 'file' && output.kind !== 'transaction')
    throw new SluiceError('WRITE_FAILED', 'the sink staged an output of no known kind (file or transaction)');
  const rej = await rejects.stage().catch(wrap('rejects file'));
  return rej === undefined ? { output } : { output, rejects: rej };
}

/** The input as it is now against what was read: a change (a writer still appending) is INPUT_CHANGED. */
function checkUnchanged(path: string, name: string, before: Stats): void {
  const now = lstatSync(path);
  if (now.size !== before.size || now.mtimeMs !== before.mtimeMs || now.ino !== before.ino) {
    throw new SluiceError('INPUT_CHANGED', `the input changed after it was read (${before.size} bytes read, ${now.size} now): it is still being written?`, {
      file: name,
    });
  }
}

/**
 * Opens the input without following links and refuses anything but a regular file, without blocking (a
 * FIFO opened with O_NONBLOCK returns at once). Synchronous: a name operation (see fs/no-clobber.ts).
 */
export function openInput(path: string, name: string, allowHardLinks: boolean): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new SluiceError('SYMLINK_REFUSED', 'the input is a symbolic link; sluice never follows links', { file: name });
    }
    throw new SluiceError('READ_FAILED', `could not open the input: ${(err as Error).message}`, { file: name, cause: err });
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw new SluiceError('READ_FAILED', `could not stat the input: ${(err as Error).message}`, { file: name, cause: err });
  }
  if (!st.isFile()) {
    closeSync(fd);
    throw new SluiceError('NOT_REGULAR_FILE', 'the input is not a regular file', { file: name });
  }
  // a hard link into the inbox could make sluice copy out a file its dropper could not read: one to a
  // file of another user is refused (a link to one's own file, `ln big.csv watch/` to spare a copy, is not)
  if (st.nlink > 1 && !allowHardLinks && st.uid !== process.getuid?.()) {
    closeSync(fd);
    throw new SluiceError(
      'HARDLINK_REFUSED',
      `the input has ${st.nlink} hard links and belongs to another user (uid ${st.uid}); input.allowHardLinks: true takes it`,
      { file: name },
    );
  }
  return { fd, st };
}

export function runToEnd(o$: Observable<unknown>, signal: AbortSignal | undefined, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new SluiceError('ABORTED', 'processing was stopped before it finished', { file: name }));
      return;
    }
    const onAbort = (): void => {
      sub.unsubscribe();
      reject(new SluiceError('ABORTED', 'processing was stopped before it finished', { file: name }));
    };
    const sub = o$.subscribe({
      error: (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      },
      complete: () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
