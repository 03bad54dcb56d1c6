// The contract of an output format (a driver): its settings, its sink per file, and what the daemon may ask
// of it (is it reachable, did a claim's load commit). The daemon and the pipeline know drivers only by it.
import { z } from 'zod';
import type { FileContext } from '../file-context.js';
import type { MemoryOutput } from '../fs/atomic-file.js';
import type { StagedFile } from '../fs/no-clobber.js';
import type { BatchOptions } from '../operators/batch-policy.js';
import type { CastType } from '../operators/cast-values.js';
import type { RowBatch } from '../row.js';

export interface SinkResult {
  /** Where the output was published (absent when the sink publishes nothing, e.g. no rejects). */
  path?: string;
  rows: number;
  bytes: number;
}

/** A file made durable under a temporary name: published by link (it goes in the commit record). */
export interface StagedFileOutput {
  kind: 'file';
  file: StagedFile;
  rows: number;
  bytes: number;
}

/** An open transaction holding the whole load: confirmed (COMMIT) after the commit record, or aborted. */
export interface StagedTransaction {
  kind: 'transaction';
  /** What it loads into (a table), for receipts and logs. */
  target: string;
  rows: number;
  bytes: number;
  /** Makes the load visible. Not serializable: lives only in this process; recovery asks the driver instead. */
  confirm(): Promise<void>;
  /** Undoes the load (ROLLBACK). */
  abort(): Promise<void>;
}

/** What a sink made durable but not yet visible (the first half of a two-phase commit). */
export type StagedOutput = StagedFileOutput | StagedTransaction;

export interface RowSink {
  /** Writes one batch durably enough that its flow credit can be returned. Called one at a time. */
  write(batch: RowBatch): Promise<void>;
  /** Makes everything written visible at once. */
  commit(): Promise<SinkResult>;
  /** Makes everything written durable, not yet visible; publishing is then the caller's. */
  stage?(info?: { size?: number; sha256?: string }): Promise<StagedOutput>;
  /** Removes anything written. Safe after a failed commit. */
  abort(): Promise<void>;
  /**
   * Appends bytes another sink of the same output wrote for a slice of the file (`sliceable` outputs),
   * holding `rows` rows: the main thread assembles a file cut across workers this way, in order.
   */
  append?(chunks: readonly Uint8Array[], rows: number): Promise<void>;
}

/** What a sink factory is told of the file: how to tag its temporaries, and the input's dialect. */
export interface SinkFile {
  tempTag: string;
  fsync: boolean;
  claimId: string;
  /** The input's field delimiter (a tab for .tsv): a CSV output's default. */
  delimiter: string;
  /** The mode an output file gets (the driver's `mode`, else the input's, at most 0640). */
  mode: number;
  /**
   * Set in a worker running one slice of a file cut at row boundaries: write into `into` (memory), and
   * write what only the file's start has (a CSV header) only when `first`. The bytes are appended to the
   * real output's sink in order, so the slices' bytes one after the other must be what one sink writes.
   */
  slice?: { first: boolean; into: MemoryOutput };
}

/** Makes the sink of one file. */
export type SinkFactory = (ctx: FileContext, file: SinkFile) => RowSink | Promise<RowSink>;

/** Where a pipeline's outputs go, and what its steps make of the columns. */
export interface OutputPlace {
  outDir: string;
  pipeline: string;
  /** The type each column is cast to by the pipeline's steps (a table that `create: true` makes uses them). */
  types: Readonly<Record<string, CastType>>;
}

/** An output that can be unreachable (a database): its files wait for it, and a crash asks it what happened. */
export interface RemoteOutput<C> {
  /** How logs name it: "the database". */
  what: string;
  /** Is it reachable now? Never throws. */
  probe(config: C): Promise<boolean>;
  /**
   * Did the load staged for `claimId` commit? Asked when a commit record says a transaction was open at a
   * crash or an outage. Throws SINK_UNAVAILABLE if it cannot tell now.
   */
  committed(config: C, claimId: string): Promise<boolean>;
}

export interface OutputDriver<C extends { format: string } = { format: string }> {
  /** The value of `output.format` that chooses this driver. */
  readonly format: C['format'];
  /** Its settings under `output:`, `format` included (a strict object: unknown keys are refused). */
  readonly schema: z.ZodType<C>;
  /** Checks what the schema cannot (a name template) when the pipeline is built; `field` names the setting. */
  check?(config: C, field: string): void;
  /** The sink factory of a pipeline that writes to this output. */
  sinks(config: C, place: OutputPlace): SinkFactory;
  /** Batch settings this output works best with, under what the configuration sets. */
  readonly batch?: Partial<BatchOptions>;
  /** The mode its files (and the rejects) get, if the configuration sets one. */
  mode?(config: C): number | undefined;
  /** One line for `sluice preview`: where the rows would go. */
  describe(config: C, place: Pick<OutputPlace, 'outDir'>): string;
  /** Set for outputs that can be down. */
  readonly remote?: RemoteOutput<C>;
  /**
   * True when a file's output is the concatenation of its slices' outputs (`SinkFile.slice`), each written
   * by the same sink, and its sinks can `append`: a large file may then be cut across workers. Absent: false.
   */
  sliceable?(config: C): boolean;
}

/** The batch policy one output may set (`output.batch`), over the top-level `batch` and the driver's defaults. */
export const outputBatchSetting = z
  .strictObject({
    size: z.number().int().min(1).optional().describe('Rows per write to this output.'),
    maxWaitMs: z.number().positive().optional().describe('A partial batch is written to this output this long (ms) after its first row.'),
  })
  .optional()
  .describe("This output's batch policy; default the top-level `batch`.");

/**
 * The batch policy of a pipeline: its output's `batch`, over the top-level `batch` if the configuration
 * sets one, over the driver's defaults, over the top-level defaults.
 */
export function batchPolicy(
  top: Required<BatchOptions>,
  topGiven: boolean,
  driver: Partial<BatchOptions> | undefined,
  output: { size?: number | undefined; maxWaitMs?: number | undefined } | undefined,
): Required<BatchOptions> {
  const pick = (k: 'size' | 'maxWaitMs'): number => output?.[k] ?? (topGiven ? top[k] : (driver?.[k] ?? top[k]));
  return { size: pick('size'), maxWaitMs: pick('maxWaitMs') };
}
