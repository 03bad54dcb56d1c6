// The contract every sink meets: write batches in order, then commit (publish) or abort (leave nothing).
import type { StagedFile } from '../fs/no-clobber.js';
import type { RowBatch } from '../row.js';

export interface SinkResult {
  /** Where the output was published (absent when the sink publishes nothing, e.g. no rejects). */
  path?: string;
  rows: number;
  bytes: number;
}

/** What a sink made durable but not yet visible (the first half of a two-phase commit). */
export interface StagedOutput {
  file?: StagedFile;
  rows: number;
  bytes: number;
}

export interface RowSink {
  /** Writes one batch durably enough that its flow credit can be returned. Called one at a time. */
  write(batch: RowBatch): Promise<void>;
  /** Makes everything written visible at once. */
  commit(): Promise<SinkResult>;
  /** Makes everything written durable, not yet visible; publishing is then the caller's (file sinks). */
  stage?(): Promise<StagedOutput>;
  /** Removes anything written. Safe after a failed commit. */
  abort(): Promise<void>;
}
