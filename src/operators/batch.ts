// batch: groups rows into RowBatch values by count and by time, carrying the header in the first batch.
import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import type { FileContext } from '../file-context.js';
import type { Row, RowBatch } from '../row.js';
import { BatchBuffer, normalizeBatchOptions, type BatchOptions } from './batch-policy.js';

export interface BatchOperatorOptions extends BatchOptions {
  /** The file's context: gives each row's line, counts batched rows and takes flow credit for them. */
  context?: FileContext;
  /** Scheduler for the time trigger (tests pass a virtual one). Default asyncScheduler. */
  scheduler?: SchedulerLike;
  /** Carry each row's original text (`context.raw`) with the batch, in this delimiter: rows were not changed. */
  rawDelimiter?: string;
}

/**
 * Groups the stream's rows into batches of `size`, or fewer when `maxWaitMs` passed since a batch's first
 * row, or at once when the source stalls on the context's flow gate (it waits for these rows to be written).
 * The first row (the header) is not counted: it rides on the first batch as `header`. On complete,
 * a partial batch is flushed; a header-only stream yields one batch with no rows.
 *
 * @example rows$.pipe(batch({ size: 500, maxWaitMs: 200 }))
 */
export function batch(options: BatchOperatorOptions = {}): OperatorFunction<Row, RowBatch> {
  const { size, maxWaitMs } = normalizeBatchOptions(options);
  const ctx = options.context;
  const scheduler = options.scheduler ?? asyncScheduler;
  return (source) =>
    new Observable<RowBatch>((subscriber) => {
      const buffer = new BatchBuffer<Row>(size);
      let header: Row | undefined;
      let seenHeader = false;
      let timer: Subscription | undefined;
      const rawDelimiter = ctx === undefined ? undefined : options.rawDelimiter;
      let raws: Array<string | undefined> = [];
      const emit = (): void => {
        timer?.unsubscribe();
        timer = undefined;
        const { rows, lines } = buffer.flush();
        const out: RowBatch = header === undefined ? { rows, lines } : { header, rows, lines };
        if (rawDelimiter !== undefined) {
          out.raw = { delimiter: rawDelimiter, lines: raws };
          raws = [];
        }
        header = undefined;
        subscriber.next(out);
      };
      // the source is about to wait for credit these buffered rows hold: waiting for size or time would stall it
      const offStall = ctx?.gate.onStall(() => {
        if (buffer.length > 0) emit();
      });
      const sub = source.subscribe({
        next(row) {
          // a synchronous source may go on after the subscriber closed: count and take credit for nothing more
          if (subscriber.closed) return;
          if (!seenHeader) {
            seenHeader = true;
            header = row;
            return;
          }
          if (ctx !== undefined) {
            ctx.counts.batched++;
            ctx.gate.take(1);
            if (rawDelimiter !== undefined) raws.push(ctx.raw);
          }
          if (buffer.add(row, ctx === undefined ? 0 : ctx.line)) emit();
          else if (timer === undefined && maxWaitMs !== Infinity) timer = scheduler.schedule(emit, maxWaitMs);
        },
        error(err) {
          subscriber.error(err);
        },
        complete() {
          if (buffer.length > 0 || header !== undefined) emit();
          subscriber.complete();
        },
      });
      return () => {
        offStall?.();
        timer?.unsubscribe();
        sub.unsubscribe();
      };
    });
}
