// The messages between the main thread and its workers, and how what they carry crosses: errors as plain
// data (code, message, place, errno), rejects' bytes as Uint8Array (structured clone drops Buffer's class).
import type { SluiceConfig } from '../config/load.js';
import { type ErrorCode, errnoOf, SluiceError } from '../errors.js';
import type { FileReport } from '../pipeline/process-file.js';
import type { PerFile } from '../pipeline/settings.js';
import type { SliceResult, SliceSpec } from '../pipeline/slice.js';
import type { Rejection } from '../row.js';

/** A file or a slice of one, for pipeline `pipeline` (its index) of configuration `gen`. */
interface TaskBase {
  id: number;
  gen: number;
  pipeline: number;
  path: string;
  name: string;
  per: PerFile;
}

export type ToWorker =
  | { t: 'config'; gen: number; cfg: SluiceConfig }
  /** The pool will send no more tasks of this generation (until it sends its config again). */
  | { t: 'forget'; gen: number }
  | (TaskBase & { t: 'file' })
  | (TaskBase & { t: 'slice'; spec: SliceSpec })
  | { t: 'abort'; id: number }
  /** Slabs of slices' outputs, written: for the worker to reuse. */
  | { t: 'slabs'; slabs: ArrayBuffer[] };

/** Progress of a task: rows in flight moved, bytes read, batches written (rows, seconds each), the rows all written. */
export interface TaskEvent {
  inFlight: number;
  bytes: number;
  batches?: Array<[rows: number, seconds: number]>;
  parsed?: true;
}

export type FromWorker =
  /** Its code is loaded: from now on, its death is a crash. */
  | { t: 'ready' }
  | { t: 'ev'; id: number; ev: TaskEvent }
  | { t: 'done'; id: number; value: unknown }
  /** The task threw: the pool rejects with this error. */
  | { t: 'failed'; id: number; error: ErrorData };

/** A SluiceError as data. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  file?: string;
  line?: number;
  field?: string;
  errno?: string;
}

export function errorToData(e: SluiceError): ErrorData {
  const errno = errnoOf(e.cause);
  return {
    code: e.code,
    message: e.message,
    ...(e.file === undefined ? {} : { file: e.file }),
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.field === undefined ? {} : { field: e.field }),
    ...(errno === undefined ? {} : { errno }),
  };
}

export function errorFromData(d: ErrorData): SluiceError {
  // the errno stays findable (errnoOf) by the retry policy: a disk error in a worker is retried as one in this thread
  const cause = d.errno === undefined ? undefined : Object.assign(new Error(d.errno), { code: d.errno });
  return new SluiceError(d.code, d.message, { file: d.file, line: d.line, field: d.field, cause });
}

/** A result whose error is a SluiceError, as data. */
type AsData<T extends { error?: SluiceError | undefined }> = Omit<T, 'error'> & { error?: ErrorData };

function toData<T extends { error?: SluiceError | undefined }>(r: T): AsData<T> {
  const { error, ...rest } = r;
  return error === undefined ? rest : { ...rest, error: errorToData(error) };
}

function fromData<T extends { error?: SluiceError | undefined }>(d: AsData<T>): T {
  const { error, ...rest } = d;
  return (error === undefined ? rest : { ...rest, error: errorFromData(error) }) as T;
}

export type ReportData = AsData<FileReport>;
export const reportToData = (r: FileReport): ReportData => toData(r);
export const reportFromData = (d: ReportData): FileReport => fromData<FileReport>(d);

export type SliceData = AsData<SliceResult>;
export const sliceToData = (r: SliceResult): SliceData => toData(r);

export function sliceFromData(d: SliceData): SliceResult {
  const r = fromData<SliceResult>(d);
  return { ...r, rejects: r.rejects.map(rejectionBack) };
}

/** A rejection as it came through postMessage: its bytes a Uint8Array again a Buffer (same memory). */
function rejectionBack(r: Rejection): Rejection {
  const raw = r.raw as Uint8Array;
  return Buffer.isBuffer(raw) ? r : { ...r, raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) };
}
