// The contract every sink meets: write batches in order, then commit (publish) or abort (leave nothing).
import type { RowBatch } from '../row.js';

export interface SinkResult {
  /** Where the output was published (absent when the sink publishes nothing, e.g. no rejects). */
  path?: string;
  rows: number;
  bytes: number;
}

export interface RowSink {
  /** Writes one batch durably enough that its flow credit can be returned. Called one at a time. */
  write(batch: RowBatch): Promise<void>;
  /** Makes everything written visible at once. */
  commit(): Promise<SinkResult>;
  /** Removes anything written. Safe after a failed commit. */
  abort(): Promise<void>;
}
