// The batch policy: when a group of rows is complete. Pure state, no timers; batch() wires the clock.
import { SluiceError } from '../errors.js';

export interface BatchOptions {
  /** Emit when this many rows are buffered. Default 1000. */
  size?: number;
  /** Emit a partial batch this long after its first row arrived. Default 1000 ms; Infinity turns it off. */
  maxWaitMs?: number;
}

export interface NormalizedBatchOptions {
  readonly size: number;
  readonly maxWaitMs: number;
}

/** The options with their defaults; CONFIG_INVALID, naming the field, for a size or wait that cannot be. */
export function normalizeBatchOptions(options: BatchOptions = {}): NormalizedBatchOptions {
  const size = options.size ?? 1000;
  const maxWaitMs = options.maxWaitMs ?? 1000;
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
