// One large CSV file cut across the workers. This thread reads the file once, in order: it hashes it, counts
// its lines, and cuts it after a line feed every `sliceBytes` or so. Each slice runs in a worker with the
// header's names and the line number of its first byte (so rejects say the same lines as one run would),
// and the slices' outputs are appended to the file's one sink in order. A cut is only known to be a row
// boundary once the slice before it is parsed: a slice that ends inside a quoted field (its parser reports
// CSV_QUOTE_NOT_CLOSED) means the cut was not one, and the file is run whole instead (RunWhole). At most
// `workers + 1` slices are out at once, so memory stays bounded whatever the file's size.
import { readSync } from 'node:fs';
import { FastCsvReader } from '../csv/fast-reader.js';
import { SluiceError } from '../errors.js';
import { DEFAULT_CHUNK_SIZE } from '../sources/file-bytes.js';
import { type PipelineSettings, type RowProducer, RunWhole, writeFailed } from '../pipeline/process-file.js';
import { runSlice, type SliceResult, type SliceSpec } from '../pipeline/slice.js';
import { giveSlabs } from '../fs/slabs.js';
import type { Lane } from './lane.js';
import type { WorkerPool } from './pool.js';
import { type SliceData, sliceFromData, type TaskEvent } from './protocol.js';
import type { PerFile } from '../pipeline/settings.js';
import type { SluiceConfig } from '../config/load.js';

const LF = 10;
const CR = 13;
/**
 * A line longer than this sends the file to a whole run: each slice's reader starts on the fast path,
 * which meets a line of several MB with no line feed by growing and rescanning its text before it hands
 * over to csv-parse; a whole run pays that once, a cut file once per such line (measured: 2-2.5x the time
 * of one thread, and over 250 MB, with a 5 MB line every 1,000 rows).
 */
const LONG_LINE = 1024 * 1024;
/** Bytes per read of the scan. */
const SCAN_CHUNK = 1024 * 1024;

export interface SliceJob {
  pool: WorkerPool;
  /** The main thread's lane: a slice runs here when it is free (see lane.ts). */
  lane: Lane;
  gen: number;
  /** The configuration of generation `gen` (a worker lacking it is sent it). */
  config: SluiceConfig;
  pipeline: number;
  per: PerFile;
  sliceBytes: number;
  /** A worker's progress: rows in flight, batches written (a slice's bytes are counted by the scan here). */
  onEvent: (ev: TaskEvent) => void;
}

/** A slice given out: where it runs, and its result once it is in. */
interface Given {
  spec: SliceSpec;
  local: boolean;
  result?: SliceResult;
  /** Its batches (rows, seconds): told to the hooks when it is appended, so a slice thrown away counts none. */
  batches: Array<[number, number]>;
}

/** The producer that runs the file's rows as slices in `job.pool` (and in this thread's lane). */
export function sliceProducer(job: SliceJob): RowProducer {
  return async (run) => {
    const { fd, st, ctx, sink, settings } = run;
    const size = st.size;
    if (sink.append === undefined) throw new RunWhole('its output cannot be assembled from slices');
    const buf = Buffer.allocUnsafe(SCAN_CHUNK);
    const head = readSync(fd, buf, 0, Math.min(SCAN_CHUNK, size), 0);
    if (head >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) throw new RunWhole('it is compressed');
    // the first record, read as a whole run reads its first chunk (so refusing what it refuses there, NUL bytes or
    // JSON, which a first slice shorter than a chunk would not see); else from all of the first MiB (parsing
    // the whole MiB here, with cold code, cost some 50 ms)
    const firstRead = Math.min(head, settings.chunkSize ?? DEFAULT_CHUNK_SIZE);
    const first = firstRecord(buf.subarray(0, firstRead), settings.csv) ?? firstRecord(buf.subarray(0, head), settings.csv);
    const hasHeader = settings.csv.header !== false;
    const header = settings.csv.columns ?? (hasHeader ? first?.fields : undefined);
    if (header === undefined || (hasHeader && first === undefined)) throw new RunWhole('no header was found in its first MiB');
    // no cut before the header's line: blank or comment lines before it longer than a slice would make a first
    // slice without it, and the next slice would read the header as a row
    const headerLine = hasHeader ? first!.line : 0;

    const stop = new AbortController();
    // a stop wakes the scan wherever it waits
    const onAbort = (): void => fail(new SluiceError('ABORTED', 'processing was stopped before it finished', { file: ctx.name }));
    run.signal?.addEventListener('abort', onAbort, { once: true });
    // cut and not yet given out; given out (in the file's order) and not yet appended
    const pending: SliceSpec[] = [];
    const given: Given[] = [];
    let inPool = 0;
    let count = 0;
    let scanned = false;
    let failure: { err: unknown } | undefined;
    let appending = false;
    // slices started and not yet settled (in the lane or the pool)
    let running = 0;
    // slices running or done and waiting for their turn to be appended: each worker's, this thread's, one more
    const limit = job.pool.size + 2;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const fail = (err: unknown): void => {
      failure ??= { err };
      stop.abort();
      notify();
    };
    const start = (g: Given): Promise<SliceResult> => {
      if (g.local) {
        const release = job.lane.take();
        const hooks = { onInFlight: run.hooks.onInFlight, onBatchWritten: (rows: number, seconds: number) => void g.batches.push([rows, seconds]) };
        return runSlice(run.path, ctx.name, settings, g.spec, hooks, stop.signal).finally(release);
      }
      inPool++;
      const onEvent = (ev: TaskEvent): void => {
        if (ev.batches !== undefined) g.batches.push(...ev.batches);
        job.onEvent({ ...ev, batches: undefined });
      };
      return job.pool
        .run(
          { t: 'slice', gen: job.gen, pipeline: job.pipeline, path: run.path, name: ctx.name, per: job.per, spec: g.spec },
          { signal: stop.signal, onEvent, config: job.config },
        )
        .then((v) => sliceFromData(v as SliceData))
        .finally(() => inPool--);
    };
    // gives out what is cut, to this thread's lane if it is free, else to a free worker
    const dispatch = (): void => {
      while (pending.length > 0 && given.length < limit && failure === undefined) {
        // a worker still loading its code is not waited for while this file has a slice running; with none,
        // the slice waits in the pool's queue (the lane is another file's): the file always has one going
        const local = job.lane.free;
        if (!local && inPool >= job.pool.ready && given.length > 0) return;
        const g: Given = { spec: pending.shift()!, local, batches: [] };
        given.push(g);
        count++;
        running++;
        start(g)
          .then((r) => {
            g.result = r;
            void appendReady();
            dispatch();
          }, fail)
          .finally(() => {
            running--;
            notify();
          });
      }
    };
    // appends the oldest slices that are in, in order, one append at a time
    const appendReady = async (): Promise<void> => {
      if (appending) return;
      appending = true;
      try {
        while (failure === undefined && given[0]?.result !== undefined) {
          const g = given.shift()!;
          const r = g.result!;
          const isLast = scanned && pending.length === 0 && given.length === 0;
          if (!isLast && r.openQuote) throw new RunWhole('a quoted field runs across a cut');
          if (r.manyRejects === true) throw new RunWhole('many of its rows are rejected');
          if (r.error !== undefined) throw r.error;
          await sink.append!(r.output, r.written).catch((err: unknown) => {
            throw writeFailed(err, 'output', ctx.name);
          });
          // a failure meanwhile (a worker died, a stop): this attempt counts nothing more
          if (failure !== undefined) break;
          const slabs = r.output.map((v) => v.buffer as ArrayBuffer);
          if (g.local) giveSlabs(slabs);
          else job.pool.giveSlabs(slabs);
          for (const [rows, seconds] of g.batches) run.hooks.onBatchWritten?.(rows, seconds, settings.pipeline);
          ctx.counts.read += r.read;
          ctx.counts.batched += r.batched;
          ctx.counts.written += r.written;
          for (const rej of r.rejects) ctx.reject(rej);
          // the rejects file writes them under the file's gate: the next slice waits for them
          await ctx.gate.wait();
          if (failure !== undefined) break;
          ctx.comments += r.comments;
          for (const [k, n] of Object.entries(r.extraKeys)) ctx.extraKeys.set(k, (ctx.extraKeys.get(k) ?? 0) + n);
          dispatch();
        }
      } catch (err) {
        fail(err);
      } finally {
        appending = false;
        notify();
      }
    };
    /** Waits for the slices to move on (one in, appended, or a failure); throws the failure. */
    const progress = async (): Promise<void> => {
      if (failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
      if (failure !== undefined) throw failure.err;
    };
    // the lane freed by another file's work: this file's next slice can go there
    const offLane = job.lane.onFree(() => dispatch());
    const cut = (spec: SliceSpec): void => {
      pending.push(spec);
      dispatch();
    };
    try {
      let pos = 0;
      let lines = 1;
      let lineStart = 0;
      let sliceStart = 0;
      let sliceLine = 1;
      let target = job.sliceBytes;
      // a cut is only made with half a slice or more after it: the last slice is not a sliver
      const lastCut = size - Math.floor(job.sliceBytes / 2);
      const byteAt = (at: number): number => {
        const one = Buffer.allocUnsafe(1);
        return readSync(fd, one, 0, 1, at) === 1 ? one[0]! : -1;
      };
      while (pos < size) {
        const n = readSync(fd, buf, 0, Math.min(SCAN_CHUNK, size - pos), pos);
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        run.onRead(chunk);
        // line numbers are counted in line feeds: a CR alone (a line end to csv-parse) would make them differ
        for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
          if ((i + 1 < n ? chunk[i + 1] : byteAt(pos + n)) !== LF) throw new RunWhole('it has a carriage return not followed by a line feed');
        }
        for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
          lines++;
          const next = pos + i + 1;
          if (next - lineStart > LONG_LINE) throw new RunWhole('it has lines of more than 1 MiB');
          lineStart = next;
          if (next < target || next > lastCut || lines <= headerLine) continue;
          // a blank line right after a cut would be the slice's first record: cut after the last of them
          const after = i + 1 < n ? chunk[i + 1] : byteAt(next);
          if (after === LF || after === CR) continue;
          cut({ start: sliceStart, end: next, firstLine: sliceLine, first: sliceStart === 0, header });
          sliceStart = next;
          sliceLine = lines;
          target = next + job.sliceBytes;
          // the scan stays at most one slice ahead of what is given out
          while (pending.length > 0 || failure !== undefined) await progress();
        }
        pos += n;
        if (pos - lineStart > LONG_LINE) throw new RunWhole('it has lines of more than 1 MiB');
      }
      if (pos === size) run.onEnd();
      cut({ start: sliceStart, end: pos, firstLine: sliceLine, first: sliceStart === 0, header });
      scanned = true;
      while (pending.length > 0 || given.length > 0 || appending || failure !== undefined) await progress();
      run.slices = count;
    } catch (err) {
      fail(err);
      // nothing of this attempt may still write when the caller removes its output (and closes its fd), and
      // the lane is free again before a whole run picks where to go: an append and the slices still
      // running (stopped by the abort) end first
      while (appending || running > 0) await new Promise<void>((resolve) => (wake = resolve));
      throw err;
    } finally {
      offLane();
      run.signal?.removeEventListener('abort', onAbort);
    }
    if (run.signal?.aborted) throw new SluiceError('ABORTED', 'processing was stopped before it finished', { file: ctx.name });
  };
}

/**
 * The first record of the file's first bytes and its line, read as the fast path reads it (undefined if it is
 * rejected or not complete in them). What a reader refuses in its first chunk (NUL bytes, JSON) runs the file whole.
 */
function firstRecord(bytes: Buffer, csv: PipelineSettings['csv']): { fields: string[]; line: number } | undefined {
  let record: { fields: string[]; line: number } | undefined;
  let bad = false;
  try {
    const reader = new FastCsvReader(
      {
        record: (fields, line) => {
          record ??= { fields, line };
        },
        reject: () => {
          if (record === undefined) bad = true;
        },
        comments: () => undefined,
      },
      { ...csv, encoding: 'utf8' },
    );
    reader.write(bytes);
  } catch (err) {
    if (err instanceof SluiceError && (err.code === 'BINARY_FILE' || err.code === 'FORMAT_UNSUPPORTED')) throw new RunWhole('its first bytes are not CSV text');
    return undefined;
  }
  return bad ? undefined : record;
}
