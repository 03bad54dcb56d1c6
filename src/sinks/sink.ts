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
  /** A file sink's complete temporary file, published by link (serializable: it goes in the commit record). */
  file?: StagedFile;
  /** A database sink's target; its open transaction is committed by `publish`. */
  table?: string;
  /** Makes a non-file output visible (a database COMMIT). Not serializable: lives only in this process. */
  publish?: () => Promise<string>;
  /** Undoes a staged non-file output (a database ROLLBACK). */
  abort?: () => Promise<void>;
  rows: number;
  bytes: number;
}

export interface RowSink {
  /** Writes one batch durably enough that its flow credit can be returned. Called one at a time. */
  write(batch: RowBatch): Promise<void>;
  /** Makes everything written visible at once. */
  commit(): Promise<SinkResult>;
  /** Makes everything written durable, not yet visible; publishing is then the caller's. */
  stage?(info?: { size?: number; sha256?: string }): Promise<StagedOutput>;
  /** Removes anything written. Safe after a failed commit. */
  abort(): Promise<void>;
}
