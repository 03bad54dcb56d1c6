// What the parts of one file's pipeline share: its name, the line of the row flowing now, the counts,
// the backpressure gate and where rejected records go. Operators stay pure; this carries the side channel.
import { FlowGate } from './flow-gate.js';
import type { Rejection } from './row.js';

/** Rows in flight per file before reading pauses, when not said (the default of the `highWaterMark` setting). */
export const DEFAULT_HIGH_WATER_MARK = 4096;

export interface RowCounts {
  /** Data records read (the header excluded), including those rejected. */
  read: number;
  /** Rows that reached the batcher (passed every operator). */
  batched: number;
  /** Rows durably written by the sink. */
  written: number;
  /** Records refused (malformed, or refused by an operator). */
  rejected: number;
}

export class FileContext {
  /** The source line where the row now flowing through the operators started (1-based; header = 1). */
  line = 0;
  /** The text of the row now flowing, when writing its fields back as CSV gives exactly that (fast path). */
  raw: string | undefined = undefined;
  readonly counts: RowCounts = { read: 0, batched: 0, written: 0, rejected: 0 };
  bytesRead = 0;
  /** Comment lines passed over (`input.comment`): not rows, not rejected. */
  comments = 0;
  readonly gate: FlowGate;

  constructor(
    readonly name: string,
    options: { highWaterMark?: number; onReject?: (r: Rejection) => void; onInFlight?: (delta: number) => void } = {},
  ) {
    this.gate = new FlowGate(options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK, options.onInFlight);
    this.onReject = options.onReject;
  }

  onReject: ((r: Rejection) => void) | undefined;

  /** Rows that an operator dropped on purpose (e.g. null rows): read - rejected - batched. */
  get filtered(): number {
    return this.counts.read - this.counts.rejected - this.counts.batched;
  }

  /**
   * Keys that JSON lines had beyond the header, with how many objects had each (at most 100 distinct keys
   * are kept): what the header left out is said, not silently dropped.
   */
  readonly extraKeys = new Map<string, number>();

  extraKey(key: string): void {
    const n = this.extraKeys.get(key);
    if (n !== undefined) this.extraKeys.set(key, n + 1);
    else if (this.extraKeys.size < 100) this.extraKeys.set(key, 1);
  }

  reject(r: Rejection): void {
    this.counts.rejected++;
    this.onReject?.(r);
  }
}
