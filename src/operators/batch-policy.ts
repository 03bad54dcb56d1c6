// The batch policy: when a group of rows is complete. Pure state, no timers; batch() wires the clock.
import { SluiceError } from '../errors.js';

/** Rows per batch when not said (the default of the `batch.size` setting). */
export const DEFAULT_BATCH_SIZE = 1000;
/** How long (ms) a partial batch waits for more rows when not said (the default of `batch.maxWaitMs`). */
export const DEFAULT_BATCH_MAX_WAIT_MS = 1000;

export interface BatchOptions {
  /** Emit when this many rows are buffered. Default `DEFAULT_BATCH_SIZE` (1000). */
  size?: number;
  /** Emit a partial batch this long after its first row arrived. Default `DEFAULT_BATCH_MAX_WAIT_MS` (1000 ms); Infinity turns it off. */
  maxWaitMs?: number;
}

export interface NormalizedBatchOptions {
  readonly size: number;
  readonly maxWaitMs: number;
}

/** The options with their defaults; CONFIG_INVALID, naming the field, for a size or wait that cannot be. */
export function normalizeBatchOptions(options: BatchOptions = {}): NormalizedBatchOptions {
  const size = options.size ?? DEFAULT_BATCH_SIZE;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_BATCH_MAX_WAIT_MS;
  if (!Number.isInteger(size) || size < 1) {
    throw new SluiceError('CONFIG_INVALID', `batch.size: expected a whole number >= 1, got ${size}`, { field: 'batch.size' });
  }
  if (!(maxWaitMs > 0)) {
    throw new SluiceError('CONFIG_INVALID', `batch.maxWaitMs: expected a number > 0 (Infinity for no time trigger), got ${maxWaitMs}`, {
      field: 'batch.maxWaitMs',
    });
  }
  return { size, maxWaitMs };
}

/** Buffers rows with their lines; `add` says when the size trigger fired. */
export class BatchBuffer<T> {
  rows: T[] = [];
  lines: number[] = [];

  constructor(readonly size: number) {}

  get length(): number {
    return this.rows.length;
  }

  /** Adds a row; true when the batch is now full. */
  add(row: T, line: number): boolean {
    this.rows.push(row);
    this.lines.push(line);
    return this.rows.length >= this.size;
  }

  /** Takes the buffered rows out, leaving the buffer empty. */
  flush(): { rows: T[]; lines: number[] } {
    const out = { rows: this.rows, lines: this.lines };
    this.rows = [];
    this.lines = [];
    return out;
  }
}
