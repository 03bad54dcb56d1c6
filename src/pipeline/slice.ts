// One slice of a large CSV file, run in a worker: the bytes [start, end) through the file's pipeline into
// memory, with the header and the first line number given, so that the slices' outputs one after the other
// are what one run of the whole file writes (workers/slices.ts cuts the file and joins them).
import { closeSync, constants, openSync } from 'node:fs';
import { concatMap } from 'rxjs';
import { type SluiceError, toSluiceError } from '../errors.js';
import { FileContext } from '../file-context.js';
import { MemoryOutput } from '../fs/atomic-file.js';
import type { Rejection } from '../row.js';
import { fileBytes } from '../sources/file-bytes.js';
import { batchedRows, type PipelineHooks, type PipelineSettings, runToEnd, writeBatch } from './process-file.js';

/** Where a slice is and how its first record is read. */
export interface SliceSpec {
  start: number;
  end: number;
  /** The file's line number of the slice's first byte. */
  firstLine: number;
  /** The first slice reads the header itself (and its sink writes it); the others are given its names. */
  first: boolean;
  /** The header's names (what the first slice emits as its header); unused by the first slice. */
  header: readonly string[];
}

/** What a slice gives back: its output bytes, its counts, and its rejects in order. */
export interface SliceResult {
  /** The output's bytes, in slabs (fs/slabs.ts) to be given back once written. */
  output: Uint8Array[];
  read: number;
  batched: number;
  written: number;
  rejects: Rejection[];
  comments: number;
  extraKeys: Record<string, number>;
  /** The slice ended inside a quoted field: its end was no row boundary (the file must be run whole). */
  openQuote: boolean;
  /** It stopped at REJECTS_PER_SLICE rejects (held in memory until appended): the file must be run whole. */
  manyRejects?: boolean;
  error?: SluiceError;
}

/**
 * A slice holds its rejects in memory until the main thread appends it; past this many it stops, and the
 * file runs whole, where rejects are written as they come under the file's backpressure. A file of short
 * rejected lines cut into slices otherwise held millions of them (600 MB for 2 MB of such lines).
 */
export const REJECTS_PER_SLICE = 10_000;

/**
 * Runs the slice `spec` of the file at `path` with the file's settings (its per-file ones: temp tag,
 * delimiter, format). Never throws: an error is in the result.
 */
export async function runSlice(
  path: string,
  name: string,
  settings: PipelineSettings,
  spec: SliceSpec,
  hooks: PipelineHooks,
  signal?: AbortSignal,
): Promise<SliceResult> {
  const ctx = new FileContext(name, { highWaterMark: settings.highWaterMark, onInFlight: hooks.onInFlight });
  const rejects: Rejection[] = [];
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let manyRejects = false;
  ctx.onReject = (r) => {
    rejects.push(r);
    if (rejects.length >= REJECTS_PER_SLICE && !manyRejects) {
      manyRejects = true;
      stop.abort();
    }
  };
  const into = new MemoryOutput();
  const result = (error?: SluiceError): SliceResult => {
    if (manyRejects) {
      void into.abort();
      return { output: [], read: 0, batched: 0, written: 0, rejects: [], comments: 0, extraKeys: {}, openQuote: false, manyRejects: true };
    }
    const last = rejects.at(-1);
    const openQuote = error?.code === 'CSV_QUOTE_NOT_CLOSED' || last?.code === 'CSV_QUOTE_NOT_CLOSED';
    // a failed slice's bytes are of no use: its slabs are kept for the next
    if (error !== undefined) void into.abort();
    return {
      output: error === undefined ? into.take() : [],
      read: ctx.counts.read,
      batched: ctx.counts.batched,
      written: ctx.counts.written,
      rejects,
      comments: ctx.comments,
      extraKeys: Object.fromEntries(ctx.extraKeys),
      openQuote,
      ...(error === undefined ? {} : { error }),
    };
  };
  let fd: number | undefined;
  let lastRead: Promise<unknown> = Promise.resolve();
  try {
    const steps = typeof settings.steps === 'function' ? settings.steps(ctx) : settings.steps;
    // the slices after the first continue the file: no header, no BOM, no binary check (only a file's start has them)
    const sliceSettings: PipelineSettings = spec.first
      ? settings
      : {
          ...settings,
          csv: { ...settings.csv, header: false, columns: [...spec.header], firstLine: spec.firstLine, skipLines: 0, bom: false, refuseBinary: false },
        };
    const sink = await settings.sink(ctx, {
      tempTag: settings.tempTag,
      fsync: false,
      claimId: settings.claimId ?? settings.tempTag,
      delimiter: settings.csv.delimiter ?? ',',
      mode: 0o600,
      slice: { first: spec.first, into },
    });
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const bytes$ = fileBytes(
      { fd, size: spec.end - spec.start, start: spec.start },
      {
        gate: ctx.gate,
        decompress: 'none',
        onReadIssued: (read) => (lastRead = read),
        ...(settings.chunkSize === undefined ? {} : { chunkSize: settings.chunkSize }),
        // no onRead: the main thread counts a slice's bytes as it scans the file
      },
    );
    const written$ = batchedRows(bytes$, sliceSettings, ctx, steps).pipe(concatMap((b) => writeBatch(b, sink, ctx, hooks, settings.pipeline)));
    await runToEnd(written$, stop.signal, name);
    return result();
  } catch (err) {
    return result(toSluiceError(err, 'READ_FAILED', name));
  } finally {
    signal?.removeEventListener('abort', onAbort);
    ctx.gate.drain();
    if (fd !== undefined) {
      await lastRead.catch(() => undefined);
      closeSync(fd);
    }
  }
}
